package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/linegate/linegate/internal/testkit"

	"github.com/linegate/linegate/testdata/peers"
)

var (
	binOnce sync.Once
	binPath string
	binErr  error
)

// linegateBinary builds the real binary once per test run.
func linegateBinary(t *testing.T) string {
	t.Helper()
	binOnce.Do(func() {
		dir, err := os.MkdirTemp("", "linegate-bin-")
		if err != nil {
			binErr = err
			return
		}
		binPath = filepath.Join(dir, "linegate")
		out, err := exec.Command("go", "build", "-o", binPath, ".").CombinedOutput()
		if err != nil {
			binErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if binErr != nil {
		t.Fatal(binErr)
	}
	return binPath
}

// designConfig is the example config of the design contract (its Modbus
// device; configs/README.md has every key), with only the addresses pointed
// at the test's peers.
const designConfig = `gateway: {id: line1-pc, site: plant-a, area: assembly, line: line1}
buffer:  {path: %s, max_size: 1GiB, on_full: drop_oldest, commit_interval: 50ms}
uplink:
  brokers: [%s]
  client_id: ""
  username: ""
  password_file: ""
  tls: {ca_file: "", cert_file: "", key_file: "", insecure_skip_verify: false}
  qos: 1
  topic_prefix: linegate
  format: json
  max_inflight: 64
http: {listen: ""}
devices:
  - name: press01
    driver: modbus
    address: tcp://%s
    unit_id: 1
    poll_interval: 200ms
    timeout: 500ms
    byte_order: ABCD
    tags:
      - {name: temperature, class: process, register: holding, address: 0, type: float32, unit: degC, deadband: 0.2}
      - {name: speed, class: process, register: input, address: 4, type: int16, scale: 0.1, unit: rpm}
      - {name: state, class: equipment, register: holding, address: 10, type: uint16,
         states: {0: stopped, 1: running, 2: idle, 3: fault}}
      - {name: good_parts, class: equipment, register: holding, address: 12, type: uint32, counter: true}
      - {name: cycle_time, class: time, register: holding, address: 14, type: uint16, unit: ms}
      - {name: door_open, class: equipment, register: discrete, address: 3, type: bool}
`

type contractPayload struct {
	Schema     string `json:"schema"`
	ID         string `json:"id"`
	Gateway    string `json:"gateway"`
	Seq        uint64 `json:"seq"`
	Site       string `json:"site"`
	Area       string `json:"area"`
	Line       string `json:"line"`
	Equipment  string `json:"equipment"`
	Class      string `json:"class"`
	TS         string `json:"ts"`
	Historical *bool  `json:"historical"`
	Readings   []struct {
		Tag     string  `json:"tag"`
		Value   any     `json:"value"`
		Unit    string  `json:"unit"`
		Quality string  `json:"quality"`
		Error   *string `json:"error"`
		TS      string  `json:"ts"`
	} `json:"readings"`
}

// TestInteropRunAgainstPymodbusAndMosquitto is the spine's acceptance: the
// real binary, a pymodbus PLC and a Mosquitto broker, the design contract's
// example config; the MES sees the contract's topics and payloads with the right
// values, and seq rises by one with no gap across a restart.
func TestInteropRunAgainstPymodbusAndMosquitto(t *testing.T) {
	peers.Interop(t)
	bin := linegateBinary(t)
	plc := peers.StartPymodbus(t, peers.PymodbusSpec{Units: map[byte]peers.UnitSpec{1: {
		Holding:  map[uint16]uint16{0: 0x41BC, 1: 0x0000, 10: 1, 12: 0x0001, 13: 0x0002, 14: 4500},
		Input:    map[uint16]uint16{4: 1203},
		Discrete: map[uint16]bool{3: true},
	}}})
	broker := peers.StartMosquitto(t, peers.MosquittoOptions{})
	mes := subscribe(t, broker.URL, "linegate/#")

	dir := t.TempDir()
	cfg := filepath.Join(dir, "linegate.yaml")
	if err := os.WriteFile(cfg, []byte(fmt.Sprintf(designConfig, filepath.Join(dir, "buffer.db"), broker.URL, plc.Addr)), 0o600); err != nil {
		t.Fatal(err)
	}

	// check prints the plan: holding 0..14 in one read, input 4, discrete 3.
	out, err := exec.Command(bin, "check", "-c", cfg).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "3 Modbus read(s) per cycle") {
		t.Fatalf("check: %v\n%s", err, out)
	}

	proc1 := startBinary(t, bin, "run", "-c", cfg)
	testkit.WaitFor(t, 20*time.Second, "three cycles", func() bool { return len(mes.data(t)) >= 9 })
	stopBinary(t, proc1)

	const statusTopic = "linegate/plant-a/assembly/line1/_gateway/line1-pc/status"
	if s := lastOn(mes, statusTopic); !strings.Contains(s, `"state":"offline"`) {
		t.Fatalf("status after SIGTERM: %s", s)
	}
	first := mes.data(t)
	var maxSeq uint64
	seenClass := map[string]bool{}
	for seq, m := range first {
		maxSeq = max(maxSeq, seq)
		var p contractPayload
		if err := json.Unmarshal(m.payload, &p); err != nil {
			t.Fatal(err)
		}
		checkContract(t, m.topic, p)
		seenClass[p.Class] = true
		checkValues(t, p)
	}
	if len(seenClass) != 3 {
		t.Fatalf("classes seen: %v", seenClass)
	}
	for seq := uint64(1); seq <= maxSeq; seq++ {
		if _, ok := first[seq]; !ok {
			t.Fatalf("seq %d of 1..%d missing", seq, maxSeq)
		}
	}

	// Restart: seq continues at maxSeq+1.
	proc2 := startBinary(t, bin, "run", "-c", cfg)
	testkit.WaitFor(t, 20*time.Second, "messages after restart", func() bool { _, ok := mes.data(t)[maxSeq+3]; return ok })
	stopBinary(t, proc2)
	all := mes.data(t)
	for seq := maxSeq + 1; seq <= maxSeq+3; seq++ {
		if _, ok := all[seq]; !ok {
			t.Fatalf("after restart, seq %d missing (first run ended at %d)", seq, maxSeq)
		}
	}

	// A retained status reaches a subscriber that comes later.
	late := subscribe(t, broker.URL, statusTopic)
	testkit.WaitFor(t, 10*time.Second, "retained status", func() bool { return len(late.all()) > 0 })
	if m := late.all()[0]; !m.retained || !strings.Contains(string(m.payload), `"state":"offline"`) {
		t.Fatalf("retained status %+v %s", m, m.payload)
	}

	// A broken config: exit 2, naming the line.
	broken := filepath.Join(dir, "broken.yaml")
	text, _ := os.ReadFile(cfg)
	os.WriteFile(broken, bytes.Replace(text, []byte("type: int16"), []byte("type: int"), 1), 0o600)
	cmd := exec.Command(bin, "check", "-c", broken)
	out, err = cmd.CombinedOutput()
	if cmd.ProcessState.ExitCode() != 2 || !strings.Contains(string(out), `broken.yaml:24: device press01, tag speed: unknown type "int"`) {
		t.Fatalf("check on broken config: exit %d (%v)\n%s", cmd.ProcessState.ExitCode(), err, out)
	}
}

func checkContract(t *testing.T, topic string, p contractPayload) {
	t.Helper()
	wantTopic := "linegate/plant-a/assembly/line1/press01/" + p.Class
	switch {
	case topic != wantTopic:
		t.Fatalf("topic %s, want %s", topic, wantTopic)
	case p.Schema != "linegate/v1", p.Gateway != "line1-pc", p.ID != fmt.Sprintf("line1-pc:%d", p.Seq),
		p.Site != "plant-a", p.Area != "assembly", p.Line != "line1", p.Equipment != "press01", p.Historical == nil:
		t.Fatalf("header fields: %+v", p)
	}
	if _, err := time.Parse("2006-01-02T15:04:05.000Z", p.TS); err != nil {
		t.Fatalf("ts %q: %v", p.TS, err)
	}
	for _, r := range p.Readings {
		if _, err := time.Parse("2006-01-02T15:04:05.000Z", r.TS); err != nil || r.Quality != "good" || r.Error != nil {
			t.Fatalf("reading %+v (%v)", r, err)
		}
	}
}

func checkValues(t *testing.T, p contractPayload) {
	t.Helper()
	want := map[string]struct {
		value any
		unit  string
	}{
		"temperature": {23.5, "degC"},
		"speed":       {120.3, "rpm"},
		"state":       {"running", ""},
		"good_parts":  {65538.0, ""},
		"cycle_time":  {4.5, "s"},
		"door_open":   {true, ""},
	}
	for _, r := range p.Readings {
		w, ok := want[r.Tag]
		if !ok || r.Value != w.value || r.Unit != w.unit {
			t.Fatalf("seq %d: reading %s = %v %q, want %v %q", p.Seq, r.Tag, r.Value, r.Unit, w.value, w.unit)
		}
	}
}

type binaryProc struct {
	cmd    *exec.Cmd
	stderr *bytes.Buffer
	done   chan error
}

func startBinary(t *testing.T, bin string, args ...string) *binaryProc {
	t.Helper()
	p := &binaryProc{cmd: exec.Command(bin, args...), stderr: &bytes.Buffer{}, done: make(chan error, 1)}
	p.cmd.Stderr = p.stderr
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.done <- p.cmd.Wait() }()
	t.Cleanup(func() {
		if p.cmd.ProcessState == nil {
			p.cmd.Process.Kill()
			<-p.done
		}
		if t.Failed() {
			t.Logf("linegate %v stderr:\n%s", args, p.stderr)
		}
	})
	return p
}

// stopBinary sends SIGTERM and expects a clean exit 0.
func stopBinary(t *testing.T, p *binaryProc) {
	t.Helper()
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-p.done:
		if err != nil {
			t.Fatalf("linegate exited with %v\n%s", err, p.stderr)
		}
	case <-time.After(15 * time.Second):
		t.Fatalf("linegate did not stop on SIGTERM\n%s", p.stderr)
	}
}
