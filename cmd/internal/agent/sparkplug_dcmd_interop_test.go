package agent

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"google.golang.org/protobuf/proto"

	"github.com/linegate/linegate/configs"
	"github.com/linegate/linegate/internal/testkit"
	"github.com/linegate/linegate/testdata/peers"
	pb "github.com/linegate/linegate/uplink/sparkplugb"
)

const dcmdConfig = `gateway: {id: line1-pc, site: plant-a, area: assembly, line: line1}
buffer: {path: %[1]s/buffer.db, commit_interval: 20ms}
uplink: {brokers: [%[2]s], commands: true, format: sparkplugb, group_id: plant-a, edge_node: line1-pc, reconnect_max: 1s}
http: {listen: ""}
devices:
  - name: press01
    driver: modbus
    address: tcp://%[3]s
    poll_interval: 200ms
    timeout: 500ms
    commands: true
    tags:
      - {name: setpoint, class: process, register: holding, address: 0, type: float32, unit: degC, writable: true, write_range: [0, 100]}
      - {name: speed, class: process, register: holding, address: 2, type: int16, scale: 0.1, unit: rpm, writable: true}
      - {name: temperature, class: process, register: holding, address: 4, type: int16}
`

// spHostRec is a Sparkplug host: it records the edge node's messages.
type spHostRec struct {
	c    paho.Client
	mu   sync.Mutex
	msgs []spRec
}

type spRec struct {
	topic   string
	payload []byte
}

func (h *spHostRec) find(typ string, match func(*pb.Payload) bool) (*pb.Payload, []byte) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, m := range h.msgs {
		if strings.Split(m.topic, "/")[2] != typ {
			continue
		}
		var p pb.Payload
		if proto.Unmarshal(m.payload, &p) == nil && match(&p) {
			return &p, m.payload
		}
	}
	return nil, nil
}

// commandEvent is the command event of id with result, from the NDATA
// Gateway/Event (the event is kept in the buffer until the broker took it).
func (h *spHostRec) commandEvent(id, result string) map[string]any {
	var ev map[string]any
	h.find("NDATA", func(p *pb.Payload) bool {
		for _, m := range p.GetMetrics() {
			var e map[string]any
			if json.Unmarshal([]byte(m.GetStringValue()), &e) == nil && e["event"] == "command" && e["id"] == id && e["result"] == result {
				ev = e
				return true
			}
		}
		return false
	})
	return ev
}

// TestInteropSparkplugDCMD: DCMDs encoded by the npm sparkplug-payload
// package, through a real Mosquitto, write to pymodbus through the command
// path: the PLC holds the value (mbpoll), a DDATA confirms it (decoded by
// sparkplug-payload), a replayed DCMD is refused as a duplicate and not
// written again, a tag that is not writable is refused and says so, and a
// DCMD a minute old (held back by an outage) is refused as expired.
func TestInteropSparkplugDCMD(t *testing.T) {
	peers.Interop(t)
	broker := peers.StartMosquitto(t, peers.MosquittoOptions{})
	mb := peers.StartPymodbus(t, peers.PymodbusSpec{Units: map[byte]peers.UnitSpec{1: {Holding: map[uint16]uint16{4: 7}, Size: 16}}})
	h := &spHostRec{}
	opts := paho.NewClientOptions().AddBroker(broker.URL).SetClientID(fmt.Sprintf("host-%d", time.Now().UnixNano())).
		SetCleanSession(true).SetAutoReconnect(false).SetProtocolVersion(4)
	h.c = paho.NewClient(opts)
	if tok := h.c.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("host connect: %v", tok.Error())
	}
	t.Cleanup(func() { h.c.Disconnect(100) })
	if tok := h.c.Subscribe("spBv1.0/plant-a/#", 0, func(_ paho.Client, m paho.Message) {
		h.mu.Lock()
		h.msgs = append(h.msgs, spRec{m.Topic(), append([]byte(nil), m.Payload()...)})
		h.mu.Unlock()
	}); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("host subscribe: %v", tok.Error())
	}

	cfg, err := configs.Parse("linegate.yaml", []byte(fmt.Sprintf(dcmdConfig, t.TempDir(), broker.URL, mb.Addr)), func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	a, err := New(cfg, slog.New(slog.DiscardHandler), Options{Version: "test"})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("agent: %v", err)
		}
	})

	var alias uint64
	testkit.WaitFor(t, 20*time.Second, "DBIRTH of press01 with a good setpoint", func() bool {
		p, _ := h.find("DBIRTH", func(p *pb.Payload) bool {
			for _, m := range p.GetMetrics() {
				if m.GetName() == "setpoint" && !m.GetIsNull() {
					return true
				}
			}
			return false
		})
		for _, m := range p.GetMetrics() {
			if m.GetName() == "setpoint" {
				alias = m.GetAlias()
			}
		}
		return p != nil
	})
	dcmd := "spBv1.0/plant-a/DCMD/line1-pc/press01"
	publish := func(b []byte) {
		t.Helper()
		if tok := h.c.Publish(dcmd, 1, false, b); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
			t.Fatalf("publish DCMD: %v", tok.Error())
		}
	}
	setpoint := func() string {
		t.Helper()
		v, err := peers.Mbpoll(t, mb.Addr, "-a", "1", "-r", "1", "-c", "1", "-t", "4:float", "-B")
		if err != nil {
			t.Fatal(err)
		}
		return v[1]
	}
	waitEvent := func(id, result string) map[string]any {
		t.Helper()
		var ev map[string]any
		testkit.WaitFor(t, 20*time.Second, "command event "+id+" "+result, func() bool {
			ev = h.commandEvent(id, result)
			return ev != nil
		})
		return ev
	}

	ts := time.Now().UnixMilli()
	dcmds := peers.SparkplugEncode(t, []string{
		// By alias, as a host does after the DBIRTH.
		fmt.Sprintf(`{"timestamp":%d,"seq":1,"metrics":[{"alias":%d,"type":"Float","value":52.5,"timestamp":%d}]}`, ts, alias, ts),
		fmt.Sprintf(`{"timestamp":%d,"seq":2,"metrics":[{"name":"setpoint","type":"Float","value":60,"timestamp":%d}]}`, ts+1, ts+1),
		fmt.Sprintf(`{"timestamp":%d,"seq":3,"metrics":[{"name":"temperature","type":"Int16","value":9,"timestamp":%d}]}`, ts+2, ts+2),
		// Held back by an outage: a minute old when it arrives.
		fmt.Sprintf(`{"timestamp":%d,"seq":4,"metrics":[{"name":"setpoint","type":"Float","value":70,"timestamp":%d}]}`, ts-60000, ts-60000),
	})

	publish(dcmds[0])
	waitEvent(fmt.Sprintf("dcmd:press01/setpoint@%d#1", ts), "ok")
	if v := setpoint(); v != "52.5" {
		t.Errorf("PLC setpoint %s after the DCMD, want 52.5", v)
	}
	// The DDATA confirms, as sparkplug-payload reads it.
	testkit.WaitFor(t, 20*time.Second, "a DDATA of setpoint 52.5", func() bool {
		_, b := h.find("DDATA", func(p *pb.Payload) bool {
			for _, m := range p.GetMetrics() {
				if m.GetAlias() == alias && m.GetDoubleValue() == 52.5 {
					return true
				}
			}
			return false
		})
		if b == nil {
			return false
		}
		d := peers.SparkplugDecode(t, [][]byte{b})[0]
		ms, _ := d["metrics"].([]any)
		for _, m := range ms {
			mm, _ := m.(map[string]any)
			if fmt.Sprint(mm["alias"]) == fmt.Sprint(alias) && fmt.Sprint(mm["value"]) == "52.5" && mm["type"] == "Double" {
				return true
			}
		}
		t.Fatalf("sparkplug-payload reads the DDATA as %v", d)
		return false
	})

	publish(dcmds[1])
	waitEvent(fmt.Sprintf("dcmd:press01/setpoint@%d#2", ts+1), "ok")
	// The first DCMD again (a redelivery, a replay): refused, not written.
	publish(dcmds[0])
	ev := waitEvent(fmt.Sprintf("dcmd:press01/setpoint@%d#1", ts), "rejected")
	if e, _ := ev["error"].(string); !strings.Contains(e, "duplicate id") || ev["topic"] != dcmd {
		t.Errorf("replayed DCMD: event %v, want a duplicate id on %s", ev, dcmd)
	}
	if v := setpoint(); v != "60" {
		t.Errorf("PLC setpoint %s after the replay, want 60 (the replay not executed)", v)
	}

	// Not writable: refused and says so.
	publish(dcmds[2])
	ev = waitEvent(fmt.Sprintf("dcmd:press01/temperature@%d#3", ts+2), "rejected")
	if e, _ := ev["error"].(string); !strings.Contains(e, "tag temperature is not writable") {
		t.Errorf("not writable: event %v", ev)
	}
	if v, err := peers.Mbpoll(t, mb.Addr, "-a", "1", "-r", "5", "-c", "1", "-t", "4"); err != nil || v[5] != "7" {
		t.Errorf("PLC temperature %v (%v), want 7", v, err)
	}

	// Stale: rejected as expired, never executed late.
	publish(dcmds[3])
	ev = waitEvent(fmt.Sprintf("dcmd:press01/setpoint@%d#4", ts-60000), "rejected")
	if e, _ := ev["error"].(string); !strings.Contains(e, "expired at") {
		t.Errorf("stale DCMD: event %v", ev)
	}
	if v := setpoint(); v != "60" {
		t.Errorf("PLC setpoint %s after a stale DCMD, want 60", v)
	}
}
