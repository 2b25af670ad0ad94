package main

import (
	"context"
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

// TestMaxMessageSizeBinary runs the binary with a press of 60 tags (a 6 KB
// process message each poll) against a Mosquitto with max_packet_size 1024.
// With the default limit the first message is refused at every resend; with
// max_message_size: 1KiB each cycle is split into messages that fit and
// every seq reaches the MES.
func TestMaxMessageSizeBinary(t *testing.T) {
	peers.Interop(t)
	const limit = 1024
	m := peers.StartMosquitto(t, peers.MosquittoOptions{GlobalConfig: fmt.Sprintf("max_packet_size %d", limit)})
	line := sim.NewPressLine(sim.Options{Addr: "127.0.0.1:0", Units: []byte{1}})
	if err := line.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { line.Stop() })
	var tags strings.Builder
	for i := range 60 {
		fmt.Fprintf(&tags, "      - {name: reg%03d, class: process, register: holding, address: %d, type: uint16}\n", i, i)
	}
	for _, tc := range []struct {
		name, key string
		split     bool
	}{
		{"default limit", "", false},
		{"max_message_size 1KiB", "  max_message_size: 1KiB\n", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			r := &safRig{t: t, opts: rigOptions{devices: 1, maxInflight: 64}, bin: linegateBinary(t),
				cfgPath: filepath.Join(dir, "linegate.yaml"), bufPath: filepath.Join(dir, "buffer.db"),
				httpAddr: fmt.Sprintf("127.0.0.1:%d", testkit.FreePort(t))}
			cfg := fmt.Sprintf(`gateway: {id: saf-gw, site: plant-a, area: assembly, line: line1}
buffer: {path: %s, commit_interval: 50ms}
uplink:
  brokers: [%s]
  reconnect_max: 1s
%shttp: {listen: "%s"}
devices:
  - name: press01
    driver: modbus
    address: tcp://%s
    unit_id: 1
    poll_interval: 200ms
    tags:
%s`, r.bufPath, m.URL, tc.key, r.httpAddr, line.Addr(), tags.String())
			if err := os.WriteFile(r.cfgPath, []byte(cfg), 0o600); err != nil {
				t.Fatal(err)
			}
			r.mes = startMES(t, m.URL, false)
			p := r.start()
			if !tc.split {
				testkit.WaitFor(t, 20*time.Second, "three reconnects", func() bool { st, ok := r.status(); return ok && st.Uplink.Reconnects >= 3 })
				st := r.mustStatus()
				t.Logf("default limit: %d reconnects, %d messages waiting, %d delivered", st.Uplink.Reconnects, st.Buffer.Messages, len(r.mes.dataArrivals()))
				if n := len(r.mes.dataArrivals()); n != 0 {
					t.Errorf("%d messages delivered over a 1024-byte limit", n)
				}
				p.term(t)
				return
			}
			testkit.WaitFor(t, 20*time.Second, "40 messages at the MES", func() bool { return len(r.mes.dataArrivals()) >= 40 })
			last := r.waitDrained(20 * time.Second)
			st := r.mustStatus()
			p.term(t)
			tl := count(r.mes.all(), last)
			biggest := 0
			for _, a := range r.mes.dataArrivals() {
				biggest = max(biggest, 9+len(a.topic)+len(a.payload))
			}
			t.Logf("max_message_size 1KiB: %v; largest packet %d bytes; reconnects %d", tl, biggest, st.Uplink.Reconnects)
			if tl.missing != 0 || st.Uplink.Reconnects != 0 || biggest > limit {
				t.Errorf("missing %d, reconnects %d, largest packet %d (limit %d)", tl.missing, st.Uplink.Reconnects, biggest, limit)
			}
		})
	}
}
