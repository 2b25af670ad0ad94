package main

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"log/slog"
	"net"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/linegate/linegate/buffer"
	"github.com/linegate/linegate/cmd/internal/agent"
	"github.com/linegate/linegate/collector"
	"github.com/linegate/linegate/configs"
	"github.com/linegate/linegate/drivers/sim"
)

// countingProxy forwards Modbus TCP between clients and a server and
// counts the requests per unit id; requests to a silent unit are dropped
// (never forwarded nor answered), as a gateway whose device is gone.
type countingProxy struct {
	l        net.Listener
	upstream string
	silent   byte

	mu     sync.Mutex
	counts map[byte]int
	conns  []net.Conn
	wg     sync.WaitGroup
}

func startCountingProxy(t *testing.T, upstream string, silent byte) *countingProxy {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &countingProxy{l: l, upstream: upstream, silent: silent, counts: map[byte]int{}}
	p.wg.Add(1)
	go p.accept()
	t.Cleanup(func() {
		l.Close()
		p.mu.Lock()
		for _, c := range p.conns {
			c.Close()
		}
		p.mu.Unlock()
		p.wg.Wait()
	})
	return p
}

func (p *countingProxy) track(c net.Conn) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.conns = append(p.conns, c)
}

func (p *countingProxy) accept() {
	defer p.wg.Done()
	for {
		c, err := p.l.Accept()
		if err != nil {
			return
		}
		up, err := net.Dial("tcp", p.upstream)
		if err != nil {
			c.Close()
			continue
		}
		p.track(c)
		p.track(up)
		p.wg.Add(2)
		go func() { // server to client, as is
			defer p.wg.Done()
			io.Copy(c, up)
			c.Close()
		}()
		go func() { // client to server, frame by frame
			defer p.wg.Done()
			defer up.Close()
			var hdr [7]byte
			for {
				if _, err := io.ReadFull(c, hdr[:]); err != nil {
					return
				}
				n := int(binary.BigEndian.Uint16(hdr[4:6]))
				if n < 2 || n > 254 {
					return
				}
				body := make([]byte, n-1)
				if _, err := io.ReadFull(c, body); err != nil {
					return
				}
				unit := hdr[6]
				p.mu.Lock()
				p.counts[unit]++
				p.mu.Unlock()
				if unit == p.silent {
					continue
				}
				if _, err := up.Write(append(hdr[:], body...)); err != nil {
					return
				}
			}
		}()
	}
}

func (p *countingProxy) count(unit byte) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.counts[unit]
}

// memSink keeps the messages the collector appends.
type memSink struct {
	mu   sync.Mutex
	msgs []buffer.Message
}

func (s *memSink) Append(m buffer.Message) (uint64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	m.Readings = slices.Clone(m.Readings) // the collector reuses the slice (Sink)
	s.msgs = append(s.msgs, m)
	return uint64(len(s.msgs)), nil
}

func (s *memSink) AppendEvent(buffer.Event) error { return nil }

// scaleTags is 200 tags over the four tables of a simulated press, with
// gaps that the planner bridges or not.
func scaleTags(b *strings.Builder) {
	for i := range 80 { // holding 0, 2, ... 158
		fmt.Fprintf(b, "      - {name: h%d, class: process, register: holding, address: %d, type: uint16}\n", i, 2*i)
	}
	for i := range 20 { // holding 160..199
		fmt.Fprintf(b, "      - {name: f%d, class: process, register: holding, address: %d, type: float32}\n", i, 160+2*i)
	}
	for i := range 60 { // input 0, 3, ... 177
		fmt.Fprintf(b, "      - {name: i%d, class: process, register: input, address: %d, type: int16}\n", i, 3*i)
	}
	for i := range 20 { // coils 0, 10, ... 190
		fmt.Fprintf(b, "      - {name: c%d, class: process, register: coil, address: %d}\n", i, 10*i)
	}
	for i := range 20 {
		fmt.Fprintf(b, "      - {name: d%d, class: process, register: discrete, address: %d}\n", i, i)
	}
}

// TestScaleFiftyDevices polls 50 devices of 200 tags (10,000 tags) behind
// five simulated gateways, ten unit ids each sharing one connection; one
// device never answers. The reads each server sees per poll are exactly
// what `linegate check` plans, and no device overruns its interval. It
// logs the reads per cycle and the poll jitter (p99).
func TestScaleFiftyDevices(t *testing.T) {
	if testing.Short() {
		t.Skip("scale test")
	}
	const (
		gateways = 5
		units    = 10
		interval = time.Second
		silent   = byte(11) // gateway 5's tenth device: never answers
		cycles   = 6
	)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var proxies []*countingProxy
	var cfgText strings.Builder
	cfgText.WriteString("gateway: {id: gw1, site: s, area: a, line: l}\nbuffer: {path: /tmp/linegate-scale.db}\nuplink: {brokers: [\"tcp://127.0.0.1:1884\"]}\nhttp: {listen: \"\"}\ndevices:\n")
	type dev struct {
		name string
		gw   int
		unit byte
	}
	var devs []dev
	for g := range gateways {
		ids := []byte{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}
		line := sim.NewPressLine(sim.Options{Addr: "127.0.0.1:0", Units: ids})
		if err := line.Start(ctx); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { line.Stop() })
		proxies = append(proxies, startCountingProxy(t, line.Addr(), silent))
		for u := range units {
			unit := byte(u + 1)
			if g == gateways-1 && u == units-1 {
				unit = silent
			}
			name := fmt.Sprintf("press%d-%d", g+1, unit)
			devs = append(devs, dev{name, g, unit})
			fmt.Fprintf(&cfgText, "  - name: %s\n    driver: modbus\n    address: tcp://%s\n    unit_id: %d\n    poll_interval: %s\n    timeout: 150ms\n    tags:\n",
				name, proxies[g].l.Addr(), unit, interval)
			scaleTags(&cfgText)
		}
	}
	cfg, err := configs.Parse("scale.yaml", []byte(cfgText.String()), func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}

	// What check plans.
	var out bytes.Buffer
	if err := printCheck(&out, cfg); err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(\d+) device\(s\), (\d+) tag\(s\), (\d+) Modbus read\(s\) per cycle`).FindStringSubmatch(out.String())
	if m == nil || m[1] != "50" || m[2] != "10000" {
		t.Fatalf("check summary: %v", m)
	}
	planned, _ := strconv.Atoi(m[3])
	plans := map[string]int{}
	total := 0
	for _, d := range cfg.Devices {
		drv, err := agent.NewModbusDriver(d, slog.New(slog.DiscardHandler))
		if err != nil {
			t.Fatal(err)
		}
		plans[d.Name] = len(drv.Plan())
		total += plans[d.Name]
	}
	if total != planned {
		t.Fatalf("check prints %d reads per cycle, the drivers plan %d", planned, total)
	}

	built, err := agent.BuildDevices(cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	sink := &memSink{}
	col, err := collector.New(collector.Options{Devices: built, Sink: sink})
	if err != nil {
		t.Fatal(err)
	}
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		col.Run(runCtx)
	}()
	polls := func(name string) uint64 {
		for _, s := range col.Status() {
			if s.Name == name {
				return s.Polls
			}
		}
		return 0
	}
	deadline := time.Now().Add(60 * time.Second)
	for _, d := range devs {
		for polls(d.name) < cycles {
			if time.Now().After(deadline) {
				stop()
				<-done
				t.Fatalf("%s: %d polls in a minute", d.name, polls(d.name))
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	stop()
	<-done

	var jitter, latency []time.Duration
	sink.mu.Lock()
	for _, msg := range sink.msgs {
		if msg.Equipment == fmt.Sprintf("press%d-%d", gateways, silent) || len(msg.Readings) == 0 {
			continue
		}
		ts := msg.Readings[0].TS
		jitter = append(jitter, ts.Sub(ts.Truncate(interval)))
		latency = append(latency, msg.Created.Sub(ts.Truncate(interval)))
	}
	sink.mu.Unlock()
	slices.Sort(jitter)
	slices.Sort(latency)

	// The silent device must not make its neighbours on the shared
	// connection miss their interval. Overruns are a matter of time, so the
	// check is relative: a neighbour may overrun only when the machine is
	// loaded (then devices on the other gateways overrun too), which is
	// logged rather than failed.
	var neighbours, others uint64
	for _, s := range col.Status() {
		if s.Name == fmt.Sprintf("press%d-%d", gateways, silent) {
			continue
		}
		if strings.HasPrefix(s.Name, fmt.Sprintf("press%d-", gateways)) {
			neighbours += s.Overruns
		} else {
			others += s.Overruns
		}
	}
	switch {
	case neighbours > 0 && others == 0:
		t.Errorf("the silent device's neighbours overran %d times, the other devices never", neighbours)
	case neighbours+others > 0:
		t.Logf("machine under load: %d overruns beside the silent device, %d elsewhere", neighbours, others)
	}
	perCycle := 0
	for _, d := range devs {
		got := proxies[d.gw].count(d.unit)
		n, plan := int(polls(d.name)), plans[d.name]
		if d.unit == silent {
			// At most two requests a poll, fewer while it backs off.
			if got > 2*n {
				t.Errorf("%s (silent): %d requests in %d polls", d.name, got, n)
			}
			continue
		}
		perCycle += plan
		// A poll cut short by the stop may have sent part of its plan.
		if got < n*plan || got >= (n+1)*plan {
			t.Errorf("%s: the server saw %d requests in %d polls, want %d per poll", d.name, got, n, plan)
		}
	}
	p99 := jitter[len(jitter)*99/100]
	t.Logf("50 devices x 200 tags: %d reads per cycle planned by check (%d for the 49 answering devices), %.0f reads/s",
		planned, perCycle, float64(planned)/interval.Seconds())
	t.Logf("poll start jitter over %d polls: p50 %v, p99 %v, max %v", len(jitter), jitter[len(jitter)/2], p99, jitter[len(jitter)-1])
	t.Logf("poll done after its tick: p50 %v, p99 %v, max %v", latency[len(latency)/2], latency[len(latency)*99/100], latency[len(latency)-1])
}
