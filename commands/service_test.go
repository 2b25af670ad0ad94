package commands

import (
	"encoding/json"
	"errors"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/linegate/linegate/buffer"
	"github.com/linegate/linegate/drivers"
)

// fakeExec is a device that holds one value per tag index.
type fakeExec struct {
	mu     sync.Mutex
	up     bool
	values map[int]any
	writes int
	err    error         // returned by the write
	alter  func(any) any // what the device holds after a write of v
}

func (f *fakeExec) DeviceUp(string) (bool, string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.up, "i/o timeout"
}

func (f *fakeExec) Submit(_ string, index int, v any, expires time.Time, done func(any, error)) error {
	f.mu.Lock()
	if f.err != nil {
		err := f.err
		f.mu.Unlock()
		done(nil, err)
		return nil
	}
	f.writes++
	if f.alter != nil {
		v = f.alter(v)
	}
	f.values[index] = v
	f.mu.Unlock()
	done(v, nil)
	return nil
}

type events struct {
	mu sync.Mutex
	ev []buffer.Event
}

func (e *events) AppendEvent(ev buffer.Event) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.ev = append(e.ev, ev)
	return nil
}

var clock = time.Date(2026, 11, 27, 10, 15, 2, 0, time.UTC)

func testDevices() []Device {
	return []Device{{Name: "press01", Enabled: true, Rate: 5, Tags: []Tag{
		{Name: "setpoint", Index: 0, Writable: true, Kind: KindNumber, Float32: true, Range: &[2]float64{0, 100}},
		{Name: "speed", Index: 1, Writable: true, Kind: KindNumber, Integer: true, Scale: 0.1},
		{Name: "reset", Index: 2, Writable: true, Kind: KindBool},
		{Name: "recipe", Index: 3, Writable: true, Kind: KindString},
		{Name: "temperature", Index: 4, Kind: KindNumber},
		{Name: "level", Index: 5, Writable: true, Kind: KindNumber, Integer: true, Map: &[4]float64{0, 27648, 0, 100}},
		{Name: "cycle", Index: 6, Writable: true, Kind: KindNumber, Integer: true, ToSeconds: 0.001},
	}}, {Name: "oven02", Enabled: false, Rate: 5, Tags: []Tag{{Name: "zone1", Writable: true, Kind: KindAny}}}}
}

type rig struct {
	svc  *Service
	exec *fakeExec
	ev   *events
	reg  *prometheus.Registry
	now  time.Time
	path string
	l    *Ledger
}

func newRig(t *testing.T) *rig {
	t.Helper()
	r := &rig{exec: &fakeExec{up: true, values: map[int]any{}}, ev: &events{}, reg: prometheus.NewRegistry(), now: clock,
		path: filepath.Join(t.TempDir(), LedgerFile)}
	r.open(t)
	return r
}

func (r *rig) open(t *testing.T) {
	t.Helper()
	if r.l != nil {
		r.l.Close()
	}
	l, err := OpenLedger(r.path, 0)
	if err != nil {
		t.Fatal(err)
	}
	r.l = l
	t.Cleanup(func() { l.Close() })
	r.reg = prometheus.NewRegistry()
	r.svc, err = New(Options{Devices: testDevices(), Executor: r.exec, Ledger: l, Events: r.ev, Registerer: r.reg,
		Clock: func() time.Time { return r.now }})
	if err != nil {
		t.Fatal(err)
	}
}

func cmd(id, tag, value string, expires time.Time) []byte {
	return []byte(`{"schema":"linegate/v1","id":"` + id + `","tag":"` + tag + `","value":` + value + `,"expires":"` + expires.Format(time.RFC3339Nano) + `"}`)
}

// send handles one command and returns the decoded cmd_result.
func (r *rig) send(t *testing.T, equipment string, payload []byte, retained bool) map[string]any {
	t.Helper()
	var got []byte
	r.svc.Handle("linegate/s/a/l/"+equipment+"/cmd", equipment, payload, retained, func(b []byte) { got = b })
	if got == nil {
		t.Fatal("no reply")
	}
	var m map[string]any
	if err := json.Unmarshal(got, &m); err != nil {
		t.Fatalf("reply %s: %v", got, err)
	}
	return m
}

func TestChecks(t *testing.T) {
	in := clock.Add(10 * time.Second)
	tests := []struct {
		name      string
		equipment string
		payload   []byte
		retained  bool
		result    string
		errText   string
		readback  any
	}{
		{"ok float32", "press01", cmd("a1", "setpoint", "52.5", in), false, OK, "", 52.5},
		{"ok scaled", "press01", cmd("a2", "speed", "52.3", in), false, OK, "", 52.300000000000004},
		{"ok bool", "press01", cmd("a3", "reset", "true", in), false, OK, "", true},
		{"ok string", "press01", cmd("a4", "recipe", `"PCB-4712"`, in), false, OK, "", "PCB-4712"},
		{"ok mapped", "press01", cmd("a5", "level", "50", in), false, OK, "", 50.0},
		{"ok ms", "press01", cmd("a6", "cycle", "1.5", in), false, OK, "", 1.5},
		{"malformed", "press01", []byte(`{"schema":"linegate/v1","id":"b1"`), false, Rejected, "malformed command", nil},
		{"no expires", "press01", []byte(`{"schema":"linegate/v1","id":"b2","tag":"setpoint","value":1}`), false, Rejected, "expires is required", nil},
		{"unknown field", "press01", []byte(`{"schema":"linegate/v1","id":"b3","tag":"setpoint","value":1,"expires":"2026-11-27T10:15:12Z","x":1}`), false, Rejected, "unknown field", nil},
		{"unknown equipment", "press99", cmd("b4", "setpoint", "1", in), false, Rejected, `unknown equipment "press99"`, nil},
		{"commands off", "oven02", cmd("b5", "zone1", "1", in), false, Rejected, "commands are off for device oven02", nil},
		{"unknown tag", "press01", cmd("b6", "nope", "1", in), false, Rejected, `unknown tag "nope"`, nil},
		{"not writable", "press01", cmd("b7", "temperature", "1", in), false, Rejected, "tag temperature is not writable", nil},
		{"expired", "press01", cmd("b8", "setpoint", "1", clock.Add(-time.Millisecond)), false, Rejected, "expired at 2026-11-27T10:15:01.999Z (gateway clock 2026-11-27T10:15:02Z)", nil},
		{"expires at now", "press01", cmd("b9", "setpoint", "1", clock), false, Rejected, "expired at", nil},
		{"too far ahead", "press01", cmd("b10", "setpoint", "1", clock.Add(2*time.Hour)), false, Rejected, "more than 1h0m0s ahead", nil},
		{"above range", "press01", cmd("b11", "setpoint", "100.5", in), false, Rejected, "outside write_range [0, 100]", nil},
		{"below range", "press01", cmd("b12", "setpoint", "-1", in), false, Rejected, "outside write_range", nil},
		{"wrong type", "press01", cmd("b13", "setpoint", "true", in), false, Rejected, "takes a number, not true/false", nil},
		{"string for bool", "press01", cmd("b14", "reset", `"on"`, in), false, Rejected, "takes a bool, not a string", nil},
		{"not whole raw", "press01", cmd("b15", "speed", "52.35", in), false, Rejected, "cannot hold (a whole number)", nil},
		{"null value", "press01", cmd("b16", "setpoint", "null", in), false, Rejected, "value is required", nil},
		{"object value", "press01", cmd("b17", "setpoint", `{"a":1}`, in), false, Rejected, "value must be a number", nil},
		{"retained", "press01", cmd("b18", "setpoint", "1", in), true, Rejected, "retained", nil},
	}
	r := newRig(t)
	devs := testDevices()
	devs[0].Rate = 100 // the rate has its own test
	r.svc.SetDevices(devs)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := r.exec.writes
			m := r.send(t, tt.equipment, tt.payload, tt.retained)
			if m["result"] != tt.result || !strings.Contains(str(m["error"]), tt.errText) {
				t.Fatalf("result %v, error %q; want %s with %q", m["result"], m["error"], tt.result, tt.errText)
			}
			if tt.result == OK && m["readback"] != tt.readback {
				t.Errorf("readback %#v, want %#v", m["readback"], tt.readback)
			}
			if wrote := r.exec.writes - before; (tt.result == OK) != (wrote == 1) {
				t.Errorf("%d writes", wrote)
			}
			if m["schema"] != Schema || m["ts"] == nil || m["equipment"] != tt.equipment {
				t.Errorf("payload %v", m)
			}
		})
	}
	// The raw values reversed the normalization.
	for i, want := range map[int]any{0: 52.5, 1: int64(523), 5: int64(13824), 6: int64(1500)} {
		if got := r.exec.values[i]; got != want {
			t.Errorf("tag #%d raw %#v, want %#v", i, got, want)
		}
	}
	if n := testutil.ToFloat64(r.svc.total.WithLabelValues("press01", OK)); n != 6 {
		t.Errorf("ok count %v", n)
	}
	if n := testutil.ToFloat64(r.svc.total.WithLabelValues("_unknown", Rejected)); n != 1 {
		t.Errorf("unknown equipment count %v", n)
	}
	if len(r.ev.ev) != len(tests) {
		t.Errorf("%d events for %d commands", len(r.ev.ev), len(tests))
	}
	e := r.ev.ev[0]
	if e.Type != "command" || e.Attrs[0] != (buffer.Attr{Key: "id", Value: "a1"}) || e.Attrs[1].Value != "linegate/s/a/l/press01/cmd" {
		t.Errorf("event %+v", e)
	}
	if got := r.svc.Recent()["press01"]; len(got) != recentPerDevice || got[len(got)-1].ID != "b18" {
		t.Errorf("recent: %+v", got)
	}
}

func str(v any) string { s, _ := v.(string); return s }

// TestDuplicateID: a second delivery of an id is refused, across a
// restart (the ledger file), whatever the first result was.
func TestDuplicateID(t *testing.T) {
	r := newRig(t)
	in := clock.Add(10 * time.Second)
	if m := r.send(t, "press01", cmd("m1", "setpoint", "10", in), false); m["result"] != OK {
		t.Fatal(m)
	}
	if m := r.send(t, "press01", cmd("m2", "setpoint", "1000", in), false); m["result"] != Rejected {
		t.Fatal(m)
	}
	m := r.send(t, "press01", cmd("m1", "setpoint", "20", in), false)
	if m["result"] != Rejected || !strings.Contains(str(m["error"]), "duplicate id: first received at 2026-11-27T10:15:02Z, result ok") {
		t.Fatal(m)
	}
	r.open(t) // a restart: a new service on the same file
	for _, id := range []string{"m1", "m2"} {
		m := r.send(t, "press01", cmd(id, "setpoint", "30", in), false)
		if m["result"] != Rejected || !strings.Contains(str(m["error"]), "duplicate id") {
			t.Fatalf("%s after restart: %v", id, m)
		}
	}
	if r.exec.writes != 1 || r.exec.values[0] != int64(10) {
		t.Errorf("%d writes, value %v", r.exec.writes, r.exec.values[0])
	}
}

func TestLedgerPrunes(t *testing.T) {
	l, err := OpenLedger(filepath.Join(t.TempDir(), LedgerFile), time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	for i := range 10 {
		if first, _, err := l.Claim(string(rune('a'+i)), "d", clock, clock); err != nil || !first {
			t.Fatal(first, err)
		}
	}
	// Kept until an hour after expiry: still a duplicate.
	if first, _, _ := l.Claim("a", "d", clock, clock.Add(59*time.Minute)); first {
		t.Fatal("forgotten before keep")
	}
	if _, _, err := l.Claim("z", "d", clock.Add(3*time.Hour), clock.Add(2*time.Hour)); err != nil {
		t.Fatal(err)
	}
	if n := l.Len(); n != 1 {
		t.Errorf("%d ids after pruning, want 1", n)
	}
}

func TestRate(t *testing.T) {
	r := newRig(t)
	in := clock.Add(10 * time.Second)
	ok := 0
	for i := range 8 {
		m := r.send(t, "press01", cmd("r"+string(rune('0'+i)), "setpoint", "1", in), false)
		if m["result"] == OK {
			ok++
		} else if !strings.Contains(str(m["error"]), "more than max_commands_per_s 5") {
			t.Fatal(m)
		}
	}
	if ok != 5 {
		t.Errorf("%d of 8 accepted in one instant, want 5", ok)
	}
	r.now = r.now.Add(time.Second)
	if m := r.send(t, "press01", cmd("r9", "setpoint", "1", in), false); m["result"] != OK {
		t.Errorf("after a second: %v", m)
	}
}

func TestDeviceDownAndFailures(t *testing.T) {
	r := newRig(t)
	in := clock.Add(10 * time.Second)
	r.exec.up = false
	if m := r.send(t, "press01", cmd("d1", "setpoint", "1", in), false); m["result"] != Rejected || str(m["error"]) != "device down: i/o timeout" {
		t.Fatal(m)
	}
	r.exec.up = true
	r.exec.alter = func(v any) any { return 7.0 } // the PLC clamps
	if m := r.send(t, "press01", cmd("d2", "setpoint", "1", in), false); m["result"] != Failed || !strings.Contains(str(m["error"]), "read back 7 after writing 1") || m["readback"] != 7.0 {
		t.Fatal(m)
	}
	r.exec.alter = nil
	r.exec.err = errors.New("press01: write holding 0x0000+2: modbus exception 2 (illegal data address)")
	if m := r.send(t, "press01", cmd("d3", "setpoint", "1", in), false); m["result"] != Failed || !strings.Contains(str(m["error"]), "exception 2") {
		t.Fatal(m)
	}
	r.exec.err = drivers.Refused("value does not fit")
	if m := r.send(t, "press01", cmd("d4", "setpoint", "1", in), false); m["result"] != Rejected {
		t.Fatal(m)
	}
	r.exec.err = ErrExpired
	if m := r.send(t, "press01", cmd("d5", "setpoint", "1", in), false); m["result"] != Rejected || !strings.Contains(str(m["error"]), "expired while queued") {
		t.Fatal(m)
	}
}

func TestSameRaw(t *testing.T) {
	f32 := Tag{Float32: true}
	anyT := Tag{Kind: KindAny}
	num := Tag{Kind: KindNumber}
	tests := []struct {
		tag         Tag
		wrote, back any
		same        bool
	}{
		{num, int64(5), uint64(5), true},
		{num, int64(-1), uint64(1<<64 - 1), false},
		{num, int64(5), 5.0, true},
		{f32, 52.1, float64(float32(52.1)), true},
		{num, 52.1, float64(float32(52.1)), false},
		{anyT, 52.1, 52.1, true},              // Float node reads back the shortest decimal
		{anyT, 52.123456789, 52.123455, true}, // ... of the float32
		{anyT, 52.123456789, 52.12345, false},
		{num, true, true, true},
		{num, "a", "a ", false},
	}
	for _, tt := range tests {
		if got := tt.tag.sameRaw(tt.wrote, tt.back); got != tt.same {
			t.Errorf("%+v: sameRaw(%#v, %#v) = %v", tt.tag, tt.wrote, tt.back, got)
		}
	}
}

// TestSetDevices: a reload's device list applies to the next command.
func TestSetDevices(t *testing.T) {
	r := newRig(t)
	in := clock.Add(10 * time.Second)
	if m := r.send(t, "press01", cmd("s1", "setpoint", "10", in), false); m["result"] != OK {
		t.Fatal(m)
	}
	devs := testDevices()
	devs[0].Tags[0].Writable = false
	r.svc.SetDevices(devs)
	if m := r.send(t, "press01", cmd("s2", "setpoint", "10", in), false); m["result"] != Rejected || str(m["error"]) != "tag setpoint is not writable" {
		t.Fatal(m)
	}
	r.svc.SetDevices(devs[1:])
	if m := r.send(t, "press01", cmd("s3", "setpoint", "10", in), false); m["result"] != Rejected || !strings.Contains(str(m["error"]), "unknown equipment") {
		t.Fatal(m)
	}
}

// TestHandleRequest: a request decoded by another door (a Sparkplug DCMD
// metric) gets the same checks: the ledger, writable, range, expiry; a
// decoding error is a rejection with its reason and an event.
func TestHandleRequest(t *testing.T) {
	r := newRig(t)
	exp := clock.Add(10 * time.Second)
	run := func(req Request, malformed error) Result {
		t.Helper()
		var got Result
		n := 0
		r.svc.HandleRequest("spBv1.0/g/DCMD/n/press01", "press01", req, malformed, false, func(res Result) { got = res; n++ })
		if n != 1 {
			t.Fatalf("done called %d times", n)
		}
		return got
	}
	tests := []struct {
		name           string
		req            Request
		malformed      error
		result, reason string
	}{
		{"ok", Request{ID: "dcmd:press01/setpoint@1", Tag: "setpoint", Value: json.Number("52.5"), Expires: exp}, nil, OK, ""},
		{"replayed", Request{ID: "dcmd:press01/setpoint@1", Tag: "setpoint", Value: json.Number("52.5"), Expires: exp}, nil, Rejected, "duplicate id"},
		{"not writable", Request{ID: "dcmd:press01/temperature@2", Tag: "temperature", Value: json.Number("1"), Expires: exp}, nil, Rejected, "tag temperature is not writable"},
		{"out of range", Request{ID: "dcmd:press01/setpoint@3", Tag: "setpoint", Value: json.Number("150"), Expires: exp}, nil, Rejected, "outside write_range"},
		{"stale", Request{ID: "dcmd:press01/setpoint@4", Tag: "setpoint", Value: json.Number("5"), Expires: clock.Add(-time.Second)}, nil, Rejected, "expired at"},
		{"malformed", Request{Tag: "alias 9"}, errors.New("malformed command: alias 9 is not a metric"), Rejected, "alias 9 is not a metric"},
		{"no expiry", Request{ID: "dcmd:x", Tag: "setpoint", Value: json.Number("5")}, nil, Rejected, "expires is required"},
		{"bad value type", Request{ID: "dcmd:y", Tag: "setpoint", Value: 5.0, Expires: exp}, nil, Rejected, "value must be a number"},
	}
	for _, tt := range tests {
		res := run(tt.req, tt.malformed)
		if res.Result != tt.result || !strings.Contains(res.Error, tt.reason) || res.Topic != "spBv1.0/g/DCMD/n/press01" {
			t.Errorf("%s: %s %q (topic %s), want %s %q", tt.name, res.Result, res.Error, res.Topic, tt.result, tt.reason)
		}
	}
	if r.exec.writes != 1 {
		t.Errorf("%d writes, want 1", r.exec.writes)
	}
	if len(r.ev.ev) != len(tests) {
		t.Errorf("%d command events, want %d", len(r.ev.ev), len(tests))
	}
}
