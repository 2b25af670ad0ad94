package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"
	"github.com/spf13/cobra"

	"github.com/linegate/linegate/configs"
	"github.com/linegate/linegate/drivers/sim"
)

func newDemoCmd(g *globals) *cobra.Command {
	var (
		duration time.Duration
		raw      bool
	)
	cmd := &cobra.Command{
		Use:   "demo",
		Short: "Run the whole pipeline on simulated presses and an embedded MQTT broker",
		Long: `Demo starts a simulated Modbus TCP press line (two presses, unit ids 1 and 2)
and an embedded MQTT broker on free loopback ports, runs linegate on the
embedded configs/demo.yaml, and prints what the MES receives, one line per
message. Ctrl-C stops it cleanly. Nothing is installed and nothing is left
behind (the buffer lives in a temporary folder).`,
		Example: `  linegate demo
  linegate demo --raw            # print the JSON payloads as published
  linegate demo --duration 10s   # stop by itself`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			log, err := g.logger()
			if err != nil {
				return err
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			if duration > 0 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, duration)
				defer cancel()
			}
			return runDemo(ctx, g.stdout, log, raw)
		},
	}
	cmd.Flags().DurationVar(&duration, "duration", 0, "stop after this long (0 = until Ctrl-C)")
	cmd.Flags().BoolVar(&raw, "raw", false, "print the raw JSON payloads")
	return cmd
}

func runDemo(ctx context.Context, out io.Writer, log *slog.Logger, raw bool) error {
	dir, err := os.MkdirTemp("", "linegate-demo-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)

	simCtx, stopSim := context.WithCancel(context.Background())
	defer stopSim()
	line := sim.NewPressLine(sim.Options{Addr: "127.0.0.1:0", Units: []byte{1, 2}, Logger: log.With("component", "sim")})
	if err := line.Start(simCtx); err != nil {
		return fmt.Errorf("simulator: %w", err)
	}
	defer line.Stop()

	brokerLog := slog.New(slog.DiscardHandler)
	broker, err := startBroker("127.0.0.1:0", brokerLog)
	if err != nil {
		return err
	}
	defer broker.Close()

	text, err := configs.Example("demo.yaml")
	if err != nil {
		return err
	}
	env := map[string]string{
		"DEMO_MODBUS": line.Addr(),
		"DEMO_BROKER": broker.addr,
		"DEMO_BUFFER": filepath.Join(dir, "buffer.db"),
	}
	cfg, err := configs.Parse("demo.yaml", text, func(k string) (string, bool) { v, ok := env[k]; return v, ok })
	if err != nil {
		return err
	}

	pr := &demoPrinter{w: out, raw: raw}
	if err := broker.srv.Subscribe(cfg.Uplink.TopicPrefix+"/#", 1, func(_ *mqtt.Client, _ packets.Subscription, pk packets.Packet) {
		pr.print(pk.TopicName, pk.Payload)
	}); err != nil {
		return err
	}
	fmt.Fprintf(out, "linegate demo: simulated presses on modbus tcp://%s (units 1, 2), MQTT broker on tcp://%s\n", line.Addr(), broker.addr)
	fmt.Fprintf(out, "what the MES receives on %s/# (Ctrl-C to stop):\n", cfg.Uplink.TopicPrefix)

	p, err := newPipeline(cfg, log)
	if err != nil {
		return err
	}
	err = p.run(ctx)
	fmt.Fprintf(out, "linegate demo: stopped after %d message(s)\n", pr.count())
	return err
}

// demoPrinter turns payloads into one readable line each.
type demoPrinter struct {
	mu  sync.Mutex
	w   io.Writer
	raw bool
	n   int
}

func (p *demoPrinter) count() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.n
}

func (p *demoPrinter) print(topic string, payload []byte) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.n++
	if p.raw {
		fmt.Fprintf(p.w, "%s %s\n", topic, payload)
		return
	}
	fmt.Fprintln(p.w, describe(topic, payload))
}

type demoPayload struct {
	Seq       uint64           `json:"seq"`
	Equipment string           `json:"equipment"`
	Class     string           `json:"class"`
	TS        string           `json:"ts"`
	Hist      bool             `json:"historical"`
	Readings  []map[string]any `json:"readings"`
	State     string           `json:"state"`
	Event     string           `json:"event"`
}

// describe renders one payload as a line a person can read.
func describe(topic string, payload []byte) string {
	var m demoPayload
	if err := json.Unmarshal(payload, &m); err != nil {
		return fmt.Sprintf("%s: unreadable payload: %v", topic, err)
	}
	ts := m.TS
	if t, err := time.Parse(time.RFC3339Nano, m.TS); err == nil {
		ts = t.Local().Format("15:04:05.000")
	}
	switch {
	case strings.HasSuffix(topic, "/status"):
		return fmt.Sprintf("%s  gateway %s", ts, m.State)
	case m.Event != "":
		var attrs map[string]any
		_ = json.Unmarshal(payload, &attrs)
		var kv []string
		for _, k := range []string{"device", "error", "dropped_seq_from", "dropped_seq_to"} {
			if v, ok := attrs[k]; ok {
				kv = append(kv, fmt.Sprintf("%s=%v", k, v))
			}
		}
		return fmt.Sprintf("%s  event %s %s", ts, m.Event, strings.Join(kv, " "))
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s  %-9s %-10s seq %-5d", ts, m.Equipment, m.Class, m.Seq)
	if m.Hist {
		b.WriteString(" (historical)")
	}
	for _, r := range m.Readings {
		fmt.Fprintf(&b, "  %v=", r["tag"])
		if q, _ := r["quality"].(string); q != "good" {
			fmt.Fprintf(&b, "%s(%v)", strings.ToUpper(q), r["error"])
			continue
		}
		switch v := r["value"].(type) {
		case string:
			b.WriteString(strconv.Quote(v))
		default:
			fmt.Fprintf(&b, "%v", v)
		}
		if u, ok := r["unit"].(string); ok {
			b.WriteString(" " + u)
		}
		if d, ok := r["delta"]; ok {
			fmt.Fprintf(&b, " (+%v)", d)
		}
	}
	return b.String()
}
