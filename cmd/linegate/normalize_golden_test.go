package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"sync"
	"testing"
	"time"

	"github.com/linegate/linegate/buffer"
	"github.com/linegate/linegate/cmd/internal/agent"
	"github.com/linegate/linegate/collector"
	"github.com/linegate/linegate/configs"
	"github.com/linegate/linegate/drivers"
	"github.com/linegate/linegate/drivers/sim"
	"github.com/linegate/linegate/internal/testkit"
	"github.com/linegate/linegate/uplink"
)

// goldenBase is the source time of the golden steps: 13:59 in Berlin, a
// minute before the 14:00 shift change.
var goldenBase = time.Date(2026, 11, 27, 12, 59, 0, 0, time.UTC)

// steppedDriver paces the collector for the golden tests: each Read waits
// for the test's go, which comes after the test has pinned the simulator's
// registers for the step, and stamps the samples with the step's time, as
// an OPC UA source timestamp would. The next Read starting tells the test
// that the previous cycle's messages are all in the sink.
type steppedDriver struct {
	drivers.Driver
	ready chan struct{}
	steps chan time.Time
}

func (d *steppedDriver) Read(ctx context.Context, out []drivers.Sample) error {
	select {
	case d.ready <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	var ts time.Time
	select {
	case ts = <-d.steps:
	case <-ctx.Done():
		return ctx.Err()
	}
	err := d.Driver.Read(ctx, out)
	for i := range out {
		out[i].TS = ts
	}
	return err
}

// goldenSink encodes what the uplink would publish, in order.
type goldenSink struct {
	mu   sync.Mutex
	gw   uplink.Gateway
	seq  uint64
	sent [][]byte
}

func (s *goldenSink) Append(m buffer.Message) (uint64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.seq++
	m.Seq = s.seq
	s.sent = append(s.sent, uplink.AppendJSON(nil, m, s.gw, false))
	return s.seq, nil
}

func (s *goldenSink) AppendEvent(e buffer.Event) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sent = append(s.sent, uplink.AppendEventJSON(nil, e, s.gw))
	return nil
}

func (s *goldenSink) take() [][]byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := s.sent
	s.sent = nil
	return out
}

type goldenStep struct {
	name string
	set  func(l *sim.PressLine)
	at   time.Duration // source time after goldenBase
	ts   time.Time     // instead of at, when set
}

const goldenConfig = `gateway: {id: golden-gw, site: plant-a, area: assembly, line: line1}
buffer: {path: unused.db}
uplink: {brokers: ["tcp://127.0.0.1:1884"]}
http: {listen: ""}
devices:
  - name: press01
    driver: modbus
    address: tcp://%s
    poll_interval: 10ms
    timeout: 2s
%s`

func words64(v uint64) []uint16 {
	return []uint16{uint16(v >> 48), uint16(v >> 32), uint16(v >> 16), uint16(v)}
}

// TestNormalizationGolden drives every normalization rule through the
// simulator, the Modbus driver, the collector and the JSON encoder, and
// compares what the MES would receive with testdata/normalization/*.json
// (ts fields normalized to "T"). go test -run Golden -update rewrites them.
func TestNormalizationGolden(t *testing.T) {
	h := func(l *sim.PressLine, addr uint16, words ...uint16) { l.Set(1, "holding", addr, words...) }
	cases := []struct {
		file   string
		device string
		steps  []goldenStep
		// tweak adjusts the collector's devices: Modbus has no source
		// timestamps, so the config refuses stale_after on it, but the
		// stepped driver stamps them and the rule can be shown.
		tweak func(*collector.Device)
	}{
		{"process.json", `    tags:
      - {name: level, class: process, register: holding, address: 100, type: int16, unit: "%", raw_range: [0, 27648], range: [0, 100], limits: [0, 100], deadband_percent: 1}
      - {name: temperature, class: process, register: holding, address: 0, type: float32, unit: degC, deadband: 0.5}
      - {name: speed, class: process, register: input, address: 4, type: int16, scale: 0.1, unit: rpm}
      - {name: pressure, class: process, register: holding, address: 102, type: float32, unit: bar, offset: -1, limits: [0, 400]}
      - {name: missing, class: process, register: holding, address: 250, type: uint16}
`, []goldenStep{
			{name: "S7 analog 13824 is 50 %; every tag reported", at: 0, set: func(l *sim.PressLine) {
				h(l, 100, 13824)
				h(l, 0, 0x41BC, 0) // 23.5
				l.Set(1, "input", 4, 1203)
				h(l, 102, 0x42F8, 0x8000) // 124.25 - 1
			}},
			{name: "within the deadbands: level 50.27 % (1 % of 0..100) and 23.75 degC (0.5) held back", at: time.Second, set: func(l *sim.PressLine) {
				h(l, 100, 13900)
				h(l, 0, 0x41BE, 0)
			}},
			{name: "moved past the deadbands: 60 % and 24.5 degC", at: 2 * time.Second, set: func(l *sim.PressLine) {
				h(l, 100, 16589)
				h(l, 0, 0x41C4, 0)
			}},
			{name: "wire break: S7 overflow 32767 is above the limit; NaN pressure is null", at: 3 * time.Second, set: func(l *sim.PressLine) {
				h(l, 100, 32767)
				h(l, 102, 0x7FC0, 0)
			}},
			{name: "back within limits", at: 4 * time.Second, set: func(l *sim.PressLine) {
				h(l, 100, 16589)
				h(l, 102, 0x42F8, 0x8000)
			}},
		}, nil},
		{"states.json", `    timezone: Europe/Berlin
    shifts: ["06:00", "14:00", "22:00"]
    tags:
      - {name: state, class: equipment, register: holding, address: 10, type: uint16, states: {0: stopped, 1: running, 2: idle, 3: fault}}
      - {name: status, class: equipment, register: holding, address: 60, type: uint16, default_state: stopped,
         state_bits: [{bit: 3, state: emergency_stop}, {bit: 1, state: fault}, {bit: 0, state: running}]}
`, []goldenStep{
			{name: "13:59:00 Berlin: running (code 1; status bit 0); state times of the 06:00 shift start", at: 0, set: func(l *sim.PressLine) {
				h(l, 10, 1)
				h(l, 60, 0x0001)
			}},
			{name: "13:59:20: fault (code 3; bits 0 and 1: fault beats running), running lasted 20 s", at: 20 * time.Second, set: func(l *sim.PressLine) {
				h(l, 10, 3)
				h(l, 60, 0x0003)
			}},
			{name: "13:59:30: unknown code 7 is uncertain, kept; no status bit: default stopped", at: 30 * time.Second, set: func(l *sim.PressLine) {
				h(l, 10, 7)
				h(l, 60, 0x0000)
			}},
			{name: "14:00:05: shift change: final totals of the 06:00 shift, then the 14:00 shift; e-stop beats running", at: 65 * time.Second, set: func(l *sim.PressLine) {
				h(l, 10, 0)
				h(l, 60, 0x0009)
			}},
			{name: "14:00:10: running again", at: 70 * time.Second, set: func(l *sim.PressLine) {
				h(l, 10, 1)
				h(l, 60, 0x0001)
			}},
		}, nil},
		{"counters.json", `    tags:
      - {name: strokes, class: equipment, register: holding, address: 110, type: uint16, counter: true}
      - {name: good_parts, class: equipment, register: holding, address: 112, type: uint32, counter: true}
      - {name: energy, class: equipment, register: holding, address: 120, type: uint64, counter: true, unit: Wh}
`, []goldenStep{
			{name: "first reading: no delta yet", at: 0, set: func(l *sim.PressLine) {
				h(l, 110, 65530)
				h(l, 112, 0xFFFF, 0xFFFA)
				h(l, 120, words64(1<<64-3)...)
			}},
			{name: "16-, 32- and 64-bit rollover", at: time.Second, set: func(l *sim.PressLine) {
				h(l, 110, 4)
				h(l, 112, 0, 5)
				h(l, 120, words64(2)...)
			}},
			{name: "counting on", at: 2 * time.Second, set: func(l *sim.PressLine) {
				h(l, 110, 30000)
				h(l, 112, 0, 12)
				h(l, 120, words64(10)...)
			}},
			{name: "operator resets: counted from zero, never a huge delta", at: 3 * time.Second, set: func(l *sim.PressLine) {
				h(l, 110, 100)
				h(l, 112, 0, 3)
				h(l, 120, words64(10)...)
			}},
		}, nil},
		{"alarms.json", `    tags:
      - {name: alarms, class: equipment, register: holding, address: 60, type: uint16, alarms: {0: motor overload, 1: door open, 3: emergency stop}}
`, []goldenStep{
			{name: "door open active at start: announced", at: 0, set: func(l *sim.PressLine) { h(l, 60, 0x0002) }},
			{name: "unchanged: no event", at: time.Second, set: func(l *sim.PressLine) { h(l, 60, 0x0002) }},
			{name: "motor overload and emergency stop; bit 2 is no configured alarm", at: 2 * time.Second, set: func(l *sim.PressLine) { h(l, 60, 0x000F) }},
			{name: "all cleared, with how long each was active", at: 12 * time.Second, set: func(l *sim.PressLine) { h(l, 60, 0x0000) }},
		}, nil},
		{"time.json", `    timezone: Europe/Berlin
    tags:
      - {name: cycle_time, class: time, register: holding, address: 14, type: uint16, unit: ms}
      - {name: run_time, class: time, register: holding, address: 130, type: int32, unit: ms}
      - {name: run_hours, class: time, register: holding, address: 40, type: float64, unit: h}
      - {name: plc_clock, class: time, register: holding, address: 132, type: uint64, timestamp: s7_dt}
      - {name: last_change, class: time, register: holding, address: 136, type: uint32, timestamp: unix_s}
      - {name: batch_start, class: time, register: holding, address: 138, type: uint64, timestamp: unix_ms}
`, []goldenStep{
			{name: "durations to seconds; S7 DATE_AND_TIME 2026-11-27 11:15:02.101 Berlin, unix s and ms to RFC 3339 UTC", at: 0, set: func(l *sim.PressLine) {
				h(l, 14, 4500)
				h(l, 130, 0x0526, 0x5C00) // IEC TIME T#1d
				h(l, 40, 0x40E4, 0x2250, 0, 0)
				h(l, 132, 0x2611, 0x2711, 0x1502, 0x1016)
				h(l, 136, 0x6B09, 0x5826)
				h(l, 138, words64(1795774502101)...)
			}},
			{name: "negative IEC TIME; a clock that is not BCD is null, uncertain", at: time.Second, set: func(l *sim.PressLine) {
				h(l, 130, 0xFFFF, 0xFA24) // T#-1s500ms
				h(l, 132, 0x261A, 0x2711, 0x1502, 0x1016)
			}},
		}, nil},
		{"quality.json", `    tags:
      - {name: temperature, class: process, register: holding, address: 0, type: float32, unit: degC}
      - {name: missing, class: process, register: holding, address: 250, type: uint16}
`, []goldenStep{
			{name: "fresh source timestamp: good; a read error is bad with the reason", ts: time.Now(), set: func(l *sim.PressLine) { h(l, 0, 0x41BC, 0) }},
			{name: "source timestamp older than stale_after: uncertain", ts: time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)},
			{name: "NaN: null, uncertain", ts: time.Now(), set: func(l *sim.PressLine) { h(l, 0, 0x7FC0, 0) }},
		}, func(d *collector.Device) { d.Tags[0].StaleAfter = 10 * time.Second }},
	}

	line := sim.NewPressLine(sim.Options{Addr: "127.0.0.1:0", Units: []byte{1}})
	if err := line.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { line.Stop() })
	line.Freeze(true)

	for _, c := range cases {
		t.Run(c.file, func(t *testing.T) {
			got := runGolden(t, line, c.device, c.steps, c.tweak)
			path := filepath.Join("..", "..", "testdata", "normalization", c.file)
			if testkit.Updating() {
				if err := os.WriteFile(path, got, 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run go test ./cmd/linegate -run Golden -update to write it)", err)
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("payloads differ from %s (go test -run Golden -update rewrites it)\n got:\n%s\nwant:\n%s", path, got, want)
			}
		})
	}
}

var goldenTS = regexp.MustCompile(`"ts":"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z"`)

// runGolden runs one device through the steps and returns the golden text:
// a JSON array of steps, each with the payloads (messages and events, as
// published, one per line) its poll produced.
func runGolden(t *testing.T, line *sim.PressLine, device string, steps []goldenStep, tweak func(*collector.Device)) []byte {
	t.Helper()
	cfg, err := configs.Parse("golden.yaml", fmt.Appendf(nil, goldenConfig, line.Addr(), device), func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	devs, err := agent.BuildDevices(cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	drv := &steppedDriver{Driver: devs[0].Driver, ready: make(chan struct{}), steps: make(chan time.Time)}
	devs[0].Driver = drv
	if tweak != nil {
		tweak(&devs[0])
	}
	g := cfg.Gateway
	sink := &goldenSink{gw: uplink.Gateway{ID: g.ID, Site: g.Site, Area: g.Area, Line: g.Line}}
	col, err := collector.New(collector.Options{Devices: devs, Sink: sink})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = col.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()

	wait := func(what string) {
		select {
		case <-drv.ready:
		case <-time.After(10 * time.Second):
			t.Fatalf("timed out waiting for %s", what)
		}
	}
	var out bytes.Buffer
	out.WriteString("[\n")
	wait("the first poll")
	for i, s := range steps {
		if s.set != nil {
			s.set(line)
		}
		ts := s.ts
		if ts.IsZero() {
			ts = goldenBase.Add(s.at)
		}
		drv.steps <- ts
		// The next Read starting means this cycle's messages are all in.
		wait(fmt.Sprintf("the messages of step %d", i+1))
		if i > 0 {
			out.WriteString(",\n")
		}
		name, _ := json.Marshal(s.name)
		fmt.Fprintf(&out, "{\"step\":%s,\n \"published\":[", name)
		for j, p := range sink.take() {
			if !json.Valid(p) {
				t.Fatalf("step %d: invalid JSON %s", i+1, p)
			}
			if j > 0 {
				out.WriteString(",")
			}
			out.WriteString("\n  ")
			out.Write(goldenTS.ReplaceAll(p, []byte(`"ts":"T"`)))
		}
		out.WriteString("]}")
	}
	out.WriteString("\n]\n")
	if !json.Valid(out.Bytes()) {
		t.Fatalf("golden text is not JSON:\n%s", out.Bytes())
	}
	return out.Bytes()
}
