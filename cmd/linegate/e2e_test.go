package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/linegate/linegate/internal/testkit"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/linegate/linegate/cmd/internal/agent"
	"github.com/linegate/linegate/drivers/sim"
)

// received collects what an MQTT subscriber (the MES) gets.
type received struct {
	mu   sync.Mutex
	msgs []mqttMsg
}

type mqttMsg struct {
	topic    string
	payload  []byte
	retained bool
}

func (r *received) add(m mqttMsg) {
	r.mu.Lock()
	r.msgs = append(r.msgs, m)
	r.mu.Unlock()
}

func (r *received) all() []mqttMsg {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]mqttMsg(nil), r.msgs...)
}

// data returns the data messages by seq.
func (r *received) data(t *testing.T) map[uint64]mqttMsg {
	out := map[uint64]mqttMsg{}
	for _, m := range r.all() {
		if strings.Contains(m.topic, "/_gateway/") {
			continue
		}
		var p struct{ Seq uint64 }
		if err := json.Unmarshal(m.payload, &p); err != nil {
			t.Fatalf("payload on %s is not JSON: %v: %s", m.topic, err, m.payload)
		}
		out[p.Seq] = m
	}
	return out
}

func subscribe(t *testing.T, brokerURL, filter string) *received {
	t.Helper()
	r := &received{}
	opts := paho.NewClientOptions().AddBroker(brokerURL).SetClientID(fmt.Sprintf("mes-%d", time.Now().UnixNano())).
		SetAutoReconnect(true).SetConnectRetry(true).SetConnectRetryInterval(100 * time.Millisecond).
		SetOnConnectHandler(func(c paho.Client) {
			c.Subscribe(filter, 1, func(_ paho.Client, m paho.Message) {
				r.add(mqttMsg{m.Topic(), append([]byte(nil), m.Payload()...), m.Retained()})
			})
		})
	c := paho.NewClient(opts)
	if tok := c.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("subscriber connect: %v", tok.Error())
	}
	t.Cleanup(func() { c.Disconnect(100) })
	return r
}

const e2eConfig = `gateway: {id: e2e-gw, site: plant-a, area: assembly, line: line1}
buffer: {path: %s, commit_interval: 20ms}
uplink: {brokers: [tcp://%s], max_inflight: 16}
http: {listen: "%s"}
devices:
  - name: press01
    driver: modbus
    address: tcp://%s
    unit_id: 1
    poll_interval: 200ms
    timeout: 500ms
    tags:
      - {name: temperature, class: process, register: holding, address: 0, type: float32, unit: degC}
      - {name: speed, class: process, register: input, address: 4, type: int16, scale: 0.1, unit: rpm}
      - {name: pressure, class: process, register: holding, address: 22, type: float32, byte_order: CDAB, unit: bar}
      - {name: missing, class: process, register: holding, address: 250, type: uint16}
      - {name: state, class: equipment, register: holding, address: 10, type: uint16, states: {0: stopped, 1: running}}
      - {name: good_parts, class: equipment, register: holding, address: 12, type: uint32, counter: true}
      - {name: door_open, class: equipment, register: discrete, address: 3, type: bool}
      - {name: estop, class: equipment, register: holding, address: 60, bit: 3, type: bool}
      - {name: recipe, class: equipment, register: holding, address: 50, type: string, length: 4}
      - {name: cycle_time, class: time, register: holding, address: 14, type: uint16, unit: ms}
`

var tsField = regexp.MustCompile(`"ts":"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z)"`)

// TestEndToEnd runs the real command (simulator → run → broker → subscriber)
// and checks the exact payloads, the status, and seq across a restart.
func TestEndToEnd(t *testing.T) {
	ctx := context.Background()
	line := sim.NewPressLine(sim.Options{Addr: "127.0.0.1:0", Units: []byte{1}})
	if err := line.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { line.Stop() })
	line.Freeze(true)
	line.Set(1, "holding", 0, 0x41BC, 0x0000)  // 23.5 ABCD
	line.Set(1, "input", 4, 1203)              // 120.3 rpm
	line.Set(1, "holding", 22, 0x8000, 0x42F6) // 123.25 CDAB
	line.Set(1, "holding", 10, 1)
	line.Set(1, "holding", 12, 0x0001, 0x0002) // 65538
	line.Set(1, "discrete", 3, 1)
	line.Set(1, "holding", 60, 0x0008)
	line.Set(1, "holding", 50, 0x4142, 0x432D, 0x3031, 0x0000) // "ABC-01"
	line.Set(1, "holding", 14, 4500)

	broker, err := startBroker("127.0.0.1:0", nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { broker.Close() })
	mes := subscribe(t, "tcp://"+broker.addr, "linegate/#")

	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "linegate.yaml")
	httpAddr := fmt.Sprintf("127.0.0.1:%d", testkit.FreePort(t))
	if err := os.WriteFile(cfgPath, []byte(fmt.Sprintf(e2eConfig, filepath.Join(dir, "buffer.db"), broker.addr, httpAddr, line.Addr())), 0o600); err != nil {
		t.Fatal(err)
	}

	// First run.
	stop1, done1 := startRun(t, cfgPath)
	testkit.WaitFor(t, 20*time.Second, "two cycles of messages", func() bool { return len(mes.data(t)) >= 6 })

	// The second cycle's messages were certainly created while connected.
	data := mes.data(t)
	want := map[string]string{
		"process":   `{"schema":"linegate/v1","id":"e2e-gw:%d","gateway":"e2e-gw","seq":%d,"site":"plant-a","area":"assembly","line":"line1","equipment":"press01","class":"process","ts":"T","historical":false,"readings":[{"tag":"temperature","value":23.5,"unit":"degC","quality":"good","ts":"T"},{"tag":"speed","value":120.3,"unit":"rpm","quality":"good","ts":"T"},{"tag":"pressure","value":123.25,"unit":"bar","quality":"good","ts":"T"},{"tag":"missing","value":null,"quality":"bad","error":"read holding 0x00FA+1: modbus exception 2 (illegal data address)","ts":"T"}]}`,
		"equipment": `{"schema":"linegate/v1","id":"e2e-gw:%d","gateway":"e2e-gw","seq":%d,"site":"plant-a","area":"assembly","line":"line1","equipment":"press01","class":"equipment","ts":"T","historical":false,"readings":[{"tag":"state","value":"running","quality":"good","ts":"T","code":1},{"tag":"good_parts","value":65538,"quality":"good","ts":"T","delta":0},{"tag":"door_open","value":true,"quality":"good","ts":"T"},{"tag":"estop","value":true,"quality":"good","ts":"T"},{"tag":"recipe","value":"ABC-01","quality":"good","ts":"T"}]}`,
		"time":      `{"schema":"linegate/v1","id":"e2e-gw:%d","gateway":"e2e-gw","seq":%d,"site":"plant-a","area":"assembly","line":"line1","equipment":"press01","class":"time","ts":"T","historical":false,"readings":[{"tag":"cycle_time","value":4.5,"unit":"s","quality":"good","ts":"T"}]}`,
	}
	for seq := uint64(4); seq <= 6; seq++ {
		m, ok := data[seq]
		if !ok {
			t.Fatalf("seq %d missing; have %d messages", seq, len(data))
		}
		class := m.topic[strings.LastIndex(m.topic, "/")+1:]
		if wantTopic := "linegate/plant-a/assembly/line1/press01/" + class; m.topic != wantTopic {
			t.Fatalf("topic %s, want %s", m.topic, wantTopic)
		}
		if n := len(tsField.FindAll(m.payload, -1)); n != strings.Count(want[class], `"ts":"T"`) {
			t.Fatalf("seq %d: %d well-formed ts fields in %s", seq, n, m.payload)
		}
		got := tsField.ReplaceAllString(string(m.payload), `"ts":"T"`)
		if w := fmt.Sprintf(want[class], seq, seq); got != w {
			t.Fatalf("seq %d payload\n got: %s\nwant: %s", seq, got, w)
		}
	}

	// The health endpoint reports the device up and the uplink connected.
	var st agent.Status
	getJSON(t, "http://"+httpAddr+"/status", &st)
	if len(st.Devices) != 1 || !st.Devices[0].Up || !st.Uplink.Connected || st.Buffer.Path == "" {
		t.Fatalf("/status %+v", st)
	}
	if body := get(t, "http://"+httpAddr+"/metrics"); !strings.Contains(body, `linegate_device_up{device="press01"} 1`) {
		t.Fatalf("/metrics lacks linegate_device_up:\n%.2000s", body)
	}

	stop1()
	if code := <-done1; code != exitOK {
		t.Fatalf("run exit code %d", code)
	}
	status := lastOn(mes, "linegate/plant-a/assembly/line1/_gateway/e2e-gw/status")
	if !strings.Contains(status, `"state":"offline"`) {
		t.Fatalf("last status %s", status)
	}
	var maxSeq uint64
	for seq := range mes.data(t) {
		maxSeq = max(maxSeq, seq)
	}
	for seq := uint64(1); seq <= maxSeq; seq++ {
		if _, ok := mes.data(t)[seq]; !ok {
			t.Fatalf("seq %d of 1..%d never arrived", seq, maxSeq)
		}
	}

	// Second run on the same buffer: seq continues with no gap.
	_, done2 := startRun(t, cfgPath)
	testkit.WaitFor(t, 20*time.Second, "messages after restart", func() bool {
		_, ok := mes.data(t)[maxSeq+3]
		return ok
	})
	for seq := maxSeq + 1; seq <= maxSeq+3; seq++ {
		if _, ok := mes.data(t)[seq]; !ok {
			t.Fatalf("after restart seq %d missing (first run ended at %d)", seq, maxSeq)
		}
	}
	if !strings.Contains(lastOn(mes, "linegate/plant-a/assembly/line1/_gateway/e2e-gw/status"), `"state":"online"`) {
		t.Fatal("no online status after restart")
	}
	_ = done2 // stopped by cleanup
}

// startRun runs `linegate run -c path` in-process; stop cancels it like SIGTERM.
func startRun(t *testing.T, path string) (stop func(), done <-chan int) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	ch := make(chan int, 1)
	finished := make(chan struct{})
	var stderr bytes.Buffer
	var mu sync.Mutex
	go func() {
		defer close(finished)
		ch <- execute(ctx, []string{"run", "-c", path, "--log-level", "warn"}, io.Discard, &lockedWriter{w: &stderr, mu: &mu})
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case <-finished:
		case <-time.After(15 * time.Second):
			t.Error("run did not stop")
		}
		mu.Lock()
		defer mu.Unlock()
		if t.Failed() && stderr.Len() > 0 {
			t.Logf("run stderr:\n%s", stderr.String())
		}
	})
	return cancel, ch
}

type lockedWriter struct {
	w  io.Writer
	mu *sync.Mutex
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

func lastOn(r *received, topic string) string {
	var last string
	for _, m := range r.all() {
		if m.topic == topic {
			last = string(m.payload)
		}
	}
	return last
}

func get(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s: %s", url, resp.Status, b)
	}
	return string(b)
}

func getJSON(t *testing.T, url string, v any) {
	t.Helper()
	if err := json.Unmarshal([]byte(get(t, url)), v); err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
}
