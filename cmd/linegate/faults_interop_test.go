package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/linegate/linegate/internal/testkit"

	"github.com/linegate/linegate/drivers/sim"
	"github.com/linegate/linegate/testdata/peers"
)

// arrayTagConfig polls the simulated oven's ZoneTemperatures (Double[3])
// with report_every and a deadband beside a scalar tag.
const arrayTagConfig = `gateway: {id: faults-gw, site: plant-a, area: assembly, line: line1}
buffer: {path: %s, commit_interval: 20ms}
uplink: {brokers: [%s]}
http: {listen: ""}
devices:
  - name: oven01
    driver: opcua
    endpoint: %s
    mode: %s
    poll_interval: 100ms
    timeout: 2s
    tags:
      - {name: zones_heartbeat, class: process, node: "ns=1;s=Oven01.ZoneTemperatures", unit: degC, report_every: 10s}
      - {name: zones_deadband, class: process, node: "ns=1;s=Oven01.ZoneTemperatures", unit: degC, deadband: 0.5}
      - {name: zone1_temp, class: process, node: "ns=1;s=Oven01.Zone1.Temperature", unit: degC}
`

// TestArrayTagNoCrashLoop is fault 1 of the reliability review: an OPC UA
// array tag with report_every or a deadband made the collector compare two
// []any with == and panic, so the agent died on its second cycle, and again
// after every restart. The real binary, Mosquitto and the simulated oven
// (a real OPC UA server): the agent stays up, every cycle publishes, and
// the arrays arrive whole and good.
func TestArrayTagNoCrashLoop(t *testing.T) {
	peers.Interop(t)
	bin := linegateBinary(t)
	for _, mode := range []string{"poll", "subscribe"} {
		t.Run(mode, func(t *testing.T) {
			oven := sim.NewOven(sim.OvenOptions{})
			if err := oven.Start(context.Background()); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(oven.Stop)
			broker := peers.StartMosquitto(t, peers.MosquittoOptions{})
			mes := subscribe(t, broker.URL, "linegate/#")

			dir := t.TempDir()
			cfgPath := filepath.Join(dir, "linegate.yaml")
			cfg := fmt.Sprintf(arrayTagConfig, filepath.Join(dir, "buffer.db"), broker.URL, oven.Endpoint(), mode)
			if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
				t.Fatal(err)
			}
			p := startBinary(t, bin, "run", "-c", cfgPath, "--log-level", "warn")

			// Twenty messages with the scalar tag: far past the second cycle
			// that crashed, and the zones compared many times.
			type reading struct {
				Tag     string `json:"tag"`
				Value   any    `json:"value"`
				Quality string `json:"quality"`
			}
			count := func() (scalar int, zones map[string]int, bad []string) {
				zones = map[string]int{}
				for _, m := range mes.all() {
					if !strings.HasSuffix(m.topic, "/oven01/process") {
						continue
					}
					var doc struct{ Readings []reading }
					if err := json.Unmarshal(m.payload, &doc); err != nil {
						t.Fatalf("payload %s: %v", m.payload, err)
					}
					for _, r := range doc.Readings {
						if r.Quality != "good" {
							bad = append(bad, fmt.Sprintf("%+v", r))
						}
						switch r.Tag {
						case "zone1_temp":
							scalar++
						case "zones_heartbeat", "zones_deadband":
							if arr, ok := r.Value.([]any); !ok || len(arr) != 3 {
								t.Fatalf("%s published %v, want three zone temperatures", r.Tag, r.Value)
							}
							zones[r.Tag]++
						}
					}
				}
				return scalar, zones, bad
			}
			testkit.WaitFor(t, 60*time.Second, "20 cycles with both array tags", func() bool {
				select {
				case err := <-p.done:
					t.Fatalf("linegate exited (%v):\n%s", err, tail(p.stderr.String(), 40))
				default:
				}
				n, zones, _ := count()
				return n >= 20 && zones["zones_heartbeat"] >= 1 && zones["zones_deadband"] >= 1
			})
			if _, _, bad := count(); len(bad) > 0 {
				t.Fatalf("readings not good: %v", bad)
			}
			stopBinary(t, p)
			// Only after it exited: stderr is written until then.
			if strings.Contains(p.stderr.String(), "panic") {
				t.Fatalf("linegate logged a panic:\n%s", tail(p.stderr.String(), 40))
			}
		})
	}
}

// counterWidthConfig reads node-opcua's UInt16 Strokes counter, which
// rolls over every 6.6 s, as a counter tag (the config says no width).
const counterWidthConfig = `gateway: {id: faults-gw, site: plant-a, area: assembly, line: line1}
buffer: {path: %s, commit_interval: 20ms}
uplink: {brokers: [%s]}
http: {listen: ""}
devices:
  - name: oven01
    driver: opcua
    endpoint: %s
    mode: %s
    poll_interval: 100ms
    timeout: 2s
    tags:
      - {name: strokes, class: equipment, node: "ns=1;s=Oven.Strokes", counter: true}
`

// TestOPCUACounterRollsOverAtNodeWidth: a UInt16 counter on a real server
// (node-opcua) counts 2000 per step and wraps at 65536. Every delta the MES
// sums is a multiple of 2000: a wrap is counted as a wrap (at 64 bits it
// was a reset, delta = the small value after the wrap).
func TestOPCUACounterRollsOverAtNodeWidth(t *testing.T) {
	peers.Interop(t)
	bin := linegateBinary(t)
	srv := peers.StartNodeOPCUA(t, peers.NodeOPCUAOptions{AutoAccept: true})
	for _, mode := range []string{"poll", "subscribe"} {
		t.Run(mode, func(t *testing.T) {
			broker := peers.StartMosquitto(t, peers.MosquittoOptions{})
			mes := subscribe(t, broker.URL, "linegate/#")
			dir := t.TempDir()
			cfgPath := filepath.Join(dir, "linegate.yaml")
			cfg := fmt.Sprintf(counterWidthConfig, filepath.Join(dir, "buffer.db"), broker.URL, srv.Endpoint, mode)
			if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
				t.Fatal(err)
			}
			p := startBinary(t, bin, "run", "-c", cfgPath, "--log-level", "warn")
			type reading struct {
				Tag   string  `json:"tag"`
				Value float64 `json:"value"`
				Delta *uint64 `json:"delta"`
			}
			deltas := func() (all []uint64, wraps int) {
				var prev float64 = -1
				for _, m := range mes.all() {
					if !strings.HasSuffix(m.topic, "/oven01/equipment") {
						continue
					}
					var doc struct{ Readings []reading }
					if err := json.Unmarshal(m.payload, &doc); err != nil {
						t.Fatalf("payload %s: %v", m.payload, err)
					}
					for _, r := range doc.Readings {
						if r.Tag != "strokes" || r.Delta == nil {
							prev = r.Value
							continue
						}
						all = append(all, *r.Delta)
						if prev >= 0 && r.Value < prev {
							wraps++
						}
						prev = r.Value
					}
				}
				return all, wraps
			}
			testkit.WaitFor(t, 60*time.Second, "two rollovers of the UInt16 counter", func() bool {
				_, wraps := deltas()
				return wraps >= 2
			})
			stopBinary(t, p)
			all, wraps := deltas()
			for i, d := range all {
				if d%2000 != 0 {
					t.Fatalf("delta %d of %d is %d, not a multiple of 2000 (over %d rollovers): deltas %v", i, len(all), d, wraps, all)
				}
			}
			t.Logf("%d deltas over %d rollovers, all multiples of 2000", len(all), wraps)
		})
	}
}
