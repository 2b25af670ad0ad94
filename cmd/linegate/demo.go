package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"
	"github.com/spf13/cobra"

	"github.com/linegate/linegate/cmd/internal/agent"
	"github.com/linegate/linegate/configs"
	"github.com/linegate/linegate/drivers/sim"
)

// demoOptions are the flags of `linegate demo`.
type demoOptions struct {
	g        *globals
	duration time.Duration
	raw      bool
	httpAddr string
}

func newDemoCmd(g *globals) *cobra.Command {
	o := &demoOptions{g: g}
	cmd := &cobra.Command{
		Use:   "demo",
		Short: "Run the whole pipeline on simulated presses and an embedded MQTT broker",
		Long: `Demo starts a simulated Modbus TCP press line (two presses, unit ids 1 and 2),
a simulated oven on an OPC UA server (subscribed) and an embedded MQTT
broker on free loopback ports, runs linegate on the
embedded configs/demo.yaml, and prints what the MES receives, one line per
message. Ctrl-C stops it cleanly. Nothing is installed and nothing is left
behind (the buffer lives in a temporary folder).`,
		Example: `  linegate demo
  linegate demo --raw            # print the JSON payloads as published
  linegate demo --duration 10s   # stop by itself
  linegate demo --http 127.0.0.1:9870   # and open http://127.0.0.1:9870/`,
		Args: cobra.NoArgs,
		RunE: o.run,
	}
	cmd.Flags().DurationVar(&o.duration, "duration", 0, "stop after this long (0 = until Ctrl-C)")
	cmd.Flags().BoolVar(&o.raw, "raw", false, "print the raw JSON payloads")
	cmd.Flags().StringVar(&o.httpAddr, "http", "", "serve the status page and /status on this loopback address (e.g. 127.0.0.1:9870)")
	return cmd
}

func (o *demoOptions) run(cmd *cobra.Command, _ []string) error {
	log, err := o.g.logger()
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if o.duration > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, o.duration)
		defer cancel()
	}
	if o.httpAddr != "" && !configs.IsLoopback(o.httpAddr) {
		return usageError(fmt.Errorf("--http %s: the demo serves its status page on loopback only (127.0.0.1:PORT)", o.httpAddr))
	}
	return runDemo(ctx, o.g.stdout, log, o.raw, o.httpAddr)
}

func runDemo(ctx context.Context, out io.Writer, log *slog.Logger, raw bool, httpAddr string) error {
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
	quietStdLog(log)
	oven := sim.NewOven(sim.OvenOptions{Addr: "127.0.0.1:0", Logger: log.With("component", "sim")})
	if err := oven.Start(simCtx); err != nil {
		return fmt.Errorf("simulator: %w", err)
	}
	defer oven.Stop()

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
		"DEMO_OPCUA":  strings.TrimPrefix(oven.Endpoint(), "opc.tcp://"),
		"DEMO_BROKER": broker.addr,
		"DEMO_BUFFER": filepath.Join(dir, "buffer.db"),
	}
	cfg, err := configs.Parse("demo.yaml", text, func(k string) (string, bool) { v, ok := env[k]; return v, ok })
	if err != nil {
		return err
	}

	if httpAddr != "" {
		cfg.HTTP.Listen = &httpAddr
	}

	pr := &demoPrinter{w: out, raw: raw}
	if err := broker.srv.Subscribe(cfg.Uplink.TopicPrefix+"/#", 1, func(_ *mqtt.Client, _ packets.Subscription, pk packets.Packet) {
		pr.print(pk.TopicName, pk.Payload)
	}); err != nil {
		return err
	}
	fmt.Fprintf(out, "linegate demo: simulated presses on modbus tcp://%s (units 1, 2), oven on %s, MQTT broker on tcp://%s\n", line.Addr(), oven.Endpoint(), broker.addr)
	if httpAddr != "" {
		fmt.Fprintf(out, "status page: http://%s/\n", httpAddr)
	}
	fmt.Fprintf(out, "what the MES receives on %s/# (Ctrl-C to stop):\n", cfg.Uplink.TopicPrefix)

	a, err := agent.New(cfg, log, agent.Options{Version: version})
	if err != nil {
		return err
	}
	err = a.Run(ctx)
	fmt.Fprintf(out, "linegate demo: stopped after %d message(s)\n", pr.count())
	return err
}

// demoPrinter turns payloads into one readable line each.
type demoPrinter struct {
	mu        sync.Mutex
	w         io.Writer
	raw       bool
	n         int
	explained bool // the note on state_time_unknown was printed
}

// unknownNote explains the first state_time_unknown a newcomer sees: hours
// of "unknown" in the first message look like a fault, and are the part of
// the shift before the gateway started.
const unknownNote = "              (state_time_unknown: the part of the current shift before linegate started, when no state was read)"

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
	line := describe(topic, payload)
	fmt.Fprintln(p.w, line)
	if !p.explained && strings.Contains(line, "state_time_unknown=") {
		p.explained = true
		fmt.Fprintln(p.w, unknownNote)
	}
}
