package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/linegate/linegate/internal/testkit"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/linegate/linegate/drivers/sim"
	"github.com/linegate/linegate/testdata/peers"
)

const fleetSize = 20

// fleetConfig is one line PC: its own gateway id and line, one press (a
// unit of the shared simulator).
const fleetConfig = `gateway: {id: gw%02[1]d, site: plant-a, area: assembly, line: line%02[1]d}
buffer: {path: %[2]s}
uplink: {brokers: [%[3]s]}
http: {listen: ""}
devices:
  - name: press01
    driver: modbus
    address: tcp://%[4]s
    unit_id: %[1]d
    poll_interval: 100ms
    tags:
      - {name: temperature, class: process, register: holding, address: 0, type: float32, unit: degC}
      - {name: state, class: equipment, register: holding, address: 10, type: uint16, states: {0: stopped, 1: running}}
`

// fleetMES is the MES side: consumers in one shared-subscription group,
// each getting part of the stream; together they must see all of it.
type fleetMES struct {
	mu   sync.Mutex
	seqs map[string]map[uint64]int // gateway → seq → which consumer
	per  []int                     // messages per consumer
}

func (m *fleetMES) receive(consumer int) paho.MessageHandler {
	return func(_ paho.Client, msg paho.Message) {
		if strings.Contains(msg.Topic(), "/_gateway/") {
			return
		}
		var p struct {
			Gateway string
			Seq     uint64
		}
		if json.Unmarshal(msg.Payload(), &p) != nil {
			return
		}
		m.mu.Lock()
		defer m.mu.Unlock()
		if m.seqs[p.Gateway] == nil {
			m.seqs[p.Gateway] = map[uint64]int{}
		}
		m.seqs[p.Gateway][p.Seq] = consumer
		m.per[consumer]++
	}
}

// TestFleetSharedSubscription runs twenty real linegate processes against
// one Mosquitto, and an MES whose two consumers share
// $share/mes/linegate/#: every gateway's seq stream, the union of what the
// two got, is complete (no gap from 1), and both consumers got a share.
func TestFleetSharedSubscription(t *testing.T) {
	peers.Interop(t)
	bin := linegateBinary(t)
	broker := peers.StartMosquitto(t, peers.MosquittoOptions{})
	units := make([]byte, fleetSize)
	for i := range units {
		units[i] = byte(i + 1)
	}
	line := sim.NewPressLine(sim.Options{Addr: "127.0.0.1:0", Units: units})
	if err := line.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { line.Stop() })

	mes := &fleetMES{seqs: map[string]map[uint64]int{}, per: make([]int, 2)}
	for c := range 2 {
		opts := paho.NewClientOptions().AddBroker(broker.URL).SetClientID(fmt.Sprintf("mes-consumer-%d", c)).
			SetCleanSession(true).SetOrderMatters(false)
		cl := paho.NewClient(opts)
		if tok := cl.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
			t.Fatalf("consumer %d connect: %v", c, tok.Error())
		}
		t.Cleanup(func() { cl.Disconnect(100) })
		if tok := cl.Subscribe("$share/mes/linegate/#", 1, mes.receive(c)); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
			t.Fatalf("consumer %d subscribe: %v", c, tok.Error())
		}
	}

	dir := t.TempDir()
	agents := make([]*binaryProc, fleetSize)
	for i := range fleetSize {
		cfg := filepath.Join(dir, fmt.Sprintf("gw%02d.yaml", i+1))
		text := fmt.Sprintf(fleetConfig, i+1, filepath.Join(dir, fmt.Sprintf("gw%02d.db", i+1)), broker.URL, line.Addr())
		if err := os.WriteFile(cfg, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		agents[i] = startBinary(t, bin, "run", "-c", cfg, "--log-level", "warn")
	}
	count := func() (gateways, messages int) {
		mes.mu.Lock()
		defer mes.mu.Unlock()
		for _, s := range mes.seqs {
			messages += len(s)
		}
		return len(mes.seqs), messages
	}
	// ~10 s of traffic: 20 gateways × 10 polls/s × 2 classes ≈ 4000 messages.
	testkit.WaitFor(t, 20*time.Second, "every gateway publishing", func() bool { g, _ := count(); return g == fleetSize })
	start := time.Now()
	testkit.WaitFor(t, 30*time.Second, "ten seconds of traffic", func() bool { return time.Since(start) >= 10*time.Second })
	var wg sync.WaitGroup
	for _, a := range agents {
		wg.Add(1)
		go func() { defer wg.Done(); stopBinary(t, a) }()
	}
	wg.Wait()
	// Everything a stopping gateway published is acknowledged, so it has
	// been delivered to one of the consumers or is about to be.
	_, total := count()
	testkit.WaitFor(t, 10*time.Second, "deliveries to settle", func() bool {
		_, n := count()
		if n == total {
			return true
		}
		total = n
		return false
	})

	mes.mu.Lock()
	defer mes.mu.Unlock()
	for i := range fleetSize {
		gw := fmt.Sprintf("gw%02d", i+1)
		got := mes.seqs[gw]
		var seqs []uint64
		for s := range got {
			seqs = append(seqs, s)
		}
		slices.Sort(seqs)
		if len(seqs) < 50 {
			t.Fatalf("%s: only %d messages in 10 s", gw, len(seqs))
		}
		for j, s := range seqs {
			if s != uint64(j+1) {
				t.Fatalf("%s: seq stream has a gap before %d (have %d messages, expected seq %d)", gw, s, len(seqs), j+1)
			}
		}
	}
	if mes.per[0] == 0 || mes.per[1] == 0 {
		t.Fatalf("shared subscription did not share: consumers got %v", mes.per)
	}
	t.Logf("fleet: %d gateways, %d messages, consumers %v", fleetSize, mes.per[0]+mes.per[1], mes.per)
}
