package sim_test

import (
	"context"
	"errors"
	"io"
	"net"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/linegate/linegate/internal/testkit"

	goburrow "github.com/goburrow/modbus"

	"github.com/linegate/linegate/drivers"
	"github.com/linegate/linegate/drivers/modbus"
	"github.com/linegate/linegate/drivers/sim"
)

// waitTimeout bounds the waits for conditions that normally hold in
// milliseconds.
const waitTimeout = 15 * time.Second

// fakeClock is a settable clock; calls counts how often the line read it,
// so a test can wait for simulation ticks.
type fakeClock struct {
	mu    sync.Mutex
	now   time.Time
	calls int
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.calls++
	return c.now
}

func (c *fakeClock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = t
}

func (c *fakeClock) Calls() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.calls
}

// waitTicks waits until the line has run n more simulation steps.
func (c *fakeClock) waitTicks(t *testing.T, n int) {
	t.Helper()
	target := c.Calls() + n
	testkit.WaitFor(t, waitTimeout, "simulation ticks", func() bool { return c.Calls() >= target })
}

func startLine(t *testing.T, opts sim.Options) *sim.PressLine {
	t.Helper()
	p := sim.NewPressLine(opts)
	if err := p.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Stop() })
	return p
}

// mapDriver reads every point of sim.Map from one unit.
func mapDriver(t *testing.T, addr string, unit byte) *modbus.Driver {
	t.Helper()
	tags := make([]modbus.Tag, len(sim.Map))
	for i, pt := range sim.Map {
		tags[i] = modbus.Tag{Name: pt.Name, Register: pt.Register, Address: pt.Address, Type: pt.Type, Length: pt.Length, Bit: pt.Bit, ByteOrder: pt.ByteOrder}
	}
	d, err := modbus.New(modbus.Config{Device: "press", Address: "tcp://" + addr, UnitID: unit, Timeout: 5 * time.Second, Tags: tags})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	return d
}

// readMap reads the whole map and returns the values by point name.
func readMap(t *testing.T, d *modbus.Driver) map[string]any {
	t.Helper()
	out := make([]drivers.Sample, len(sim.Map))
	if err := d.Read(context.Background(), out); err != nil {
		t.Fatal(err)
	}
	vals := make(map[string]any, len(out))
	for i, s := range out {
		if s.Quality != drivers.Good {
			t.Fatalf("%s: %v %v", sim.Map[i].Name, s.Quality, s.Err)
		}
		vals[sim.Map[i].Name] = s.Value
	}
	return vals
}

func between(t *testing.T, name string, v any, lo, hi float64) {
	t.Helper()
	var f float64
	switch x := v.(type) {
	case float64:
		f = x
	case int64:
		f = float64(x)
	case uint64:
		f = float64(x)
	default:
		t.Fatalf("%s = %#v (%T), want a number", name, v, v)
	}
	if !(f >= lo && f <= hi) {
		t.Errorf("%s = %v, want %v..%v", name, f, lo, hi)
	}
}

func TestMapIsConsistent(t *testing.T) {
	seen := map[string]bool{}
	for _, pt := range sim.Map {
		if seen[pt.Name] {
			t.Errorf("%s twice", pt.Name)
		}
		seen[pt.Name] = true
		if pt.Address >= 200 || pt.Description == "" || pt.Scale == 0 {
			t.Errorf("%+v", pt)
		}
	}
}

func TestMapThroughDriver(t *testing.T) {
	line := startLine(t, sim.Options{Units: []byte{1, 2, 3}})
	for _, unit := range []byte{1, 2, 3} {
		d := mapDriver(t, line.Addr(), unit)
		if n := len(d.Plan()); n != 4 {
			t.Errorf("plan %v: want one read per table", d.Plan())
		}
		v := readMap(t, d)
		between(t, "temperature", v["temperature"], 60, 80)
		between(t, "speed", v["speed"], 0, 1300)
		between(t, "state", v["state"], 0, 3)
		between(t, "good_parts", v["good_parts"], 120000, 1<<32-1)
		between(t, "cycle_time", v["cycle_time"], 4000, 6000)
		for _, name := range []string{"pressure_abcd", "pressure_cdab", "pressure_badc", "pressure_dcba"} {
			between(t, name, v[name], 120, 126.5)
			if v[name] != v["pressure_abcd"] {
				t.Errorf("%s = %v, pressure_abcd = %v", name, v[name], v["pressure_abcd"])
			}
		}
		between(t, "energy", v["energy"], 1<<32, 1<<40)
		between(t, "strokes", v["strokes"], 1<<32, 1<<40)
		between(t, "run_hours", v["run_hours"], 40000, 50000)
		between(t, "force", v["force"], 0, 300)
		between(t, "status", v["status"], 0, 15)
		if s, _ := v["status_text"].(string); !strings.HasPrefix(s, "PRESS-0"+string('0'+unit)+" ") {
			t.Errorf("status_text %q", s)
		}
		// One read of the holding table is one snapshot: state, status
		// word and its bits agree.
		state := v["state"].(int64)
		status := v["status"].(int64)
		if v["status_running"] != (state == sim.Running) || v["status_fault"] != (state == sim.Fault) ||
			v["status_running"] != (status&sim.StatusRunning != 0) || v["status_door"] != (status&sim.StatusDoor != 0) ||
			v["status_estop"] != (status&sim.StatusEStop != 0) {
			t.Errorf("state %d, status %04b, bits %v %v %v %v", state, status, v["status_running"], v["status_fault"], v["status_door"], v["status_estop"])
		}
		if v["lamp"] != false {
			t.Errorf("lamp = %v", v["lamp"])
		}
	}
}

// pinned are register images for every point of the map; want is what
// they decode to.
var pinned = []struct {
	reg   string
	addr  uint16
	words []uint16
}{
	{"holding", 0, []uint16{0x41BC, 0x0000}},  // 23.5
	{"input", 4, []uint16{0xFB2E}},            // -1234
	{"holding", 10, []uint16{3}},              // fault
	{"holding", 12, []uint16{0x0001, 0x0002}}, // 65538
	{"holding", 14, []uint16{4321}},           // ms
	{"discrete", 3, []uint16{1}},              // door open
	{"coil", 0, []uint16{1}},                  // lamp
	{"holding", 20, []uint16{0x42F6, 0x8000, 0x8000, 0x42F6, 0xF642, 0x0080, 0x0080, 0xF642}}, // 123.25 x4
	{"holding", 30, []uint16{0xFFFF, 0xFEE0, 0x8E04, 0xFB35}},                                 // -1234567890123
	{"holding", 34, []uint16{0xFEDC, 0xBA98, 0x7654, 0x3210}},
	{"holding", 40, []uint16{0x405E, 0xD000, 0, 0}}, // 123.25
	{"holding", 44, []uint16{0xBFB9, 0x9999, 0x9999, 0x999A}},
	{"holding", 50, []uint16{0x5052, 0x4553, 0x532D, 0x3031, 0x2046, 0x4155, 0x4C54, 0x2020}},
	{"holding", 60, []uint16{0b1010}},
}

var pinnedWant = map[string]any{
	"temperature": 23.5, "speed": int64(-1234), "state": int64(3), "good_parts": int64(65538),
	"cycle_time": int64(4321), "door_open": true, "lamp": true,
	"pressure_abcd": 123.25, "pressure_cdab": 123.25, "pressure_badc": 123.25, "pressure_dcba": 123.25,
	"energy": int64(-1234567890123), "strokes": uint64(0xFEDCBA9876543210), "run_hours": 123.25, "force": -0.1,
	"status_text": "PRESS-01 FAULT", "status": int64(10),
	"status_running": false, "status_fault": true, "status_door": false, "status_estop": true,
}

func TestSetFreezeExact(t *testing.T) {
	clock := &fakeClock{now: time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC)}
	line := startLine(t, sim.Options{Clock: clock.Now})
	line.Freeze(true)
	for _, p := range pinned {
		line.Set(1, p.reg, p.addr, p.words...)
	}
	d := mapDriver(t, line.Addr(), 1)
	for range 3 {
		v := readMap(t, d)
		for _, pt := range sim.Map {
			if v[pt.Name] != pinnedWant[pt.Name] {
				t.Errorf("%s = %#v, want %#v", pt.Name, v[pt.Name], pinnedWant[pt.Name])
			}
		}
		// Pinned values hold whether frozen or not.
		line.Freeze(false)
		clock.Set(clock.Now().Add(time.Minute))
		clock.waitTicks(t, 2)
	}
}

func TestFreeze(t *testing.T) {
	clock := &fakeClock{now: time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC)}
	line := startLine(t, sim.Options{Clock: clock.Now})
	d := mapDriver(t, line.Addr(), 1)
	line.Freeze(true)
	before := readMap(t, d)
	clock.Set(clock.Now().Add(73 * time.Second))
	clock.waitTicks(t, 2)
	after := readMap(t, d)
	for k := range before {
		if before[k] != after[k] {
			t.Errorf("frozen %s changed: %v -> %v", k, before[k], after[k])
		}
	}
	line.Freeze(false)
	clock.waitTicks(t, 2)
	if v := readMap(t, d); v["temperature"] == before["temperature"] {
		t.Errorf("temperature did not move after thaw: %v", v["temperature"])
	}
}

func TestUnitsDiffer(t *testing.T) {
	clock := &fakeClock{now: time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC)}
	line := startLine(t, sim.Options{Units: []byte{1, 2}, Clock: clock.Now})
	v1 := readMap(t, mapDriver(t, line.Addr(), 1))
	v2 := readMap(t, mapDriver(t, line.Addr(), 2))
	for _, k := range []string{"temperature", "pressure_abcd", "good_parts", "run_hours"} {
		if v1[k] == v2[k] {
			t.Errorf("%s equal on both units: %v", k, v1[k])
		}
	}
}

func TestLineFollowsClock(t *testing.T) {
	// Unit 1's schedule: a fault from 560 s to 580 s of every 600 s, with
	// the e-stop in its first 10 s; counters rise while running.
	base := time.Unix(600*3_000_000, 0) // a multiple of the period
	clock := &fakeClock{now: base.Add(100 * time.Second)}
	line := startLine(t, sim.Options{Clock: clock.Now})
	d := mapDriver(t, line.Addr(), 1)
	v := readMap(t, d)
	if v["state"] != int64(sim.Running) || v["status_text"] != "PRESS-01 OK" {
		t.Fatalf("at 100 s: state %v %q", v["state"], v["status_text"])
	}
	parts, hours := v["good_parts"].(int64), v["run_hours"].(float64)
	// One step of a minute (over more than one tick) while running.
	for i := 1; i <= 6; i++ {
		clock.Set(base.Add(time.Duration(100+10*i) * time.Second))
		clock.waitTicks(t, 2)
	}
	v = readMap(t, d)
	between(t, "good_parts rise", v["good_parts"], float64(parts+9), float64(parts+16))
	between(t, "run_hours rise", v["run_hours"].(float64)-hours, 59.0/3600, 61.0/3600)

	clock.Set(base.Add(565 * time.Second))
	testkit.WaitFor(t, waitTimeout, "fault", func() bool { return readMap(t, d)["state"] == int64(sim.Fault) })
	v = readMap(t, d)
	if v["status"] != int64(sim.StatusFault|sim.StatusEStop) || v["speed"] != int64(0) || v["force"] != 0.0 || v["status_text"] != "PRESS-01 FAULT" {
		t.Errorf("in fault: %v", v)
	}
	clock.Set(base.Add(590 * time.Second))
	testkit.WaitFor(t, waitTimeout, "stopped", func() bool { return readMap(t, d)["state"] == int64(sim.Stopped) })
	v = readMap(t, d)
	if v["door_open"] != true || v["status"] != int64(sim.StatusDoor) {
		t.Errorf("stopped: %v", v)
	}
}

func TestExceptionsAndUnknownUnit(t *testing.T) {
	line := startLine(t, sim.Options{Units: []byte{1, 2}})
	tags := []modbus.Tag{
		{Name: "last", Register: "holding", Address: 199, Type: "uint16", Bit: -1},
		{Name: "past", Register: "holding", Address: 199, Type: "uint32", Bit: -1},
		{Name: "coil200", Register: "coil", Address: 200, Type: "bool", Bit: -1},
		{Name: "input", Register: "input", Address: 4, Type: "int16", Bit: -1},
	}
	d, err := modbus.New(modbus.Config{Address: "tcp://" + line.Addr(), UnitID: 2, Timeout: 5 * time.Second, MaxGap: -1, Tags: tags})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	out := make([]drivers.Sample, len(tags))
	if err := d.Read(context.Background(), out); err != nil {
		t.Fatal(err)
	}
	// "last" and "past" share one read, which runs past 199.
	for i, want := range []string{"modbus exception 2", "modbus exception 2", "modbus exception 2", ""} {
		if want == "" {
			if out[i].Quality != drivers.Good {
				t.Errorf("%s: %+v", tags[i].Name, out[i])
			}
		} else if out[i].Quality != drivers.Bad || !strings.Contains(out[i].Err.Error(), "illegal data address") {
			t.Errorf("%s: %+v, want %s", tags[i].Name, out[i], want)
		}
	}

	// A unit id not served gets no reply: the client times out.
	stranger, err := modbus.New(modbus.Config{Address: "tcp://" + line.Addr(), UnitID: 7, Timeout: 200 * time.Millisecond, Tags: tags[3:]})
	if err != nil {
		t.Fatal(err)
	}
	defer stranger.Close()
	if err := stranger.Read(context.Background(), out[:1]); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Errorf("unknown unit: %v, want a timeout", err)
	}
	// Meanwhile the line serves the others.
	if err := d.Read(context.Background(), out); err != nil || out[3].Quality != drivers.Good {
		t.Errorf("after unknown unit: %v %+v", err, out[3])
	}
}

func TestClientWrites(t *testing.T) {
	line := startLine(t, sim.Options{})
	h := goburrow.NewTCPClientHandler(line.Addr())
	h.SlaveId = 1
	h.Timeout = 5 * time.Second
	defer h.Close()
	c := goburrow.NewClient(h)
	if _, err := c.WriteSingleCoil(0, 0xFF00); err != nil {
		t.Fatal(err)
	}
	if _, err := c.WriteMultipleRegisters(100, 2, []byte{0x12, 0x34, 0x56, 0x78}); err != nil {
		t.Fatal(err)
	}
	if b, err := c.ReadCoils(0, 1); err != nil || b[0] != 1 {
		t.Errorf("lamp: %v %v", b, err)
	}
	if b, err := c.ReadHoldingRegisters(100, 2); err != nil || string(b) != "\x12\x34\x56\x78" {
		t.Errorf("holding 100: % x %v", b, err)
	}
	if _, err := c.WriteSingleRegister(200, 1); err == nil || !strings.Contains(err.Error(), "illegal data address") {
		t.Errorf("write past 199: %v", err)
	}
}

func TestStartStop(t *testing.T) {
	t.Run("stop", func(t *testing.T) {
		p := sim.NewPressLine(sim.Options{})
		if err := p.Stop(); err != nil {
			t.Errorf("Stop before Start: %v", err)
		}
		if err := p.Start(context.Background()); err != nil {
			t.Fatal(err)
		}
		if err := p.Start(context.Background()); err == nil {
			t.Error("second Start succeeded")
		}
		addr := p.Addr()
		if !strings.HasPrefix(addr, "127.0.0.1:") || strings.HasSuffix(addr, ":0") {
			t.Errorf("Addr() = %q", addr)
		}
		// A request to an unknown unit is being held when Stop comes.
		conn, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		if _, err := conn.Write([]byte{0, 1, 0, 0, 0, 6, 9, 3, 0, 0, 0, 1}); err != nil {
			t.Fatal(err)
		}
		if err := p.Stop(); err != nil {
			t.Fatal(err)
		}
		if err := p.Stop(); err != nil {
			t.Errorf("second Stop: %v", err)
		}
		conn.SetReadDeadline(time.Now().Add(10 * time.Second))
		if n, err := io.ReadFull(conn, make([]byte, 1)); n != 0 || err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
			t.Errorf("held connection: read %d bytes, %v; want closed unanswered", n, err)
		}
		if c, err := net.Dial("tcp", addr); err == nil {
			c.Close()
			t.Error("still listening after Stop")
		}
	})
	t.Run("context", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		p := sim.NewPressLine(sim.Options{})
		if err := p.Start(ctx); err != nil {
			t.Fatal(err)
		}
		addr := p.Addr()
		cancel()
		testkit.WaitFor(t, waitTimeout, "server gone", func() bool {
			c, err := net.Dial("tcp", addr)
			if err == nil {
				c.Close()
			}
			return err != nil
		})
		if err := p.Stop(); err != nil {
			t.Error(err)
		}
	})
	t.Run("fixed address", func(t *testing.T) {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := l.Addr().String()
		l.Close()
		p := startLine(t, sim.Options{Addr: addr})
		if p.Addr() != addr {
			t.Errorf("Addr() = %q, want %q", p.Addr(), addr)
		}
		// Taken address: Start fails.
		q := sim.NewPressLine(sim.Options{Addr: addr})
		if err := q.Start(context.Background()); err == nil {
			q.Stop()
			t.Error("second line on the same address started")
		}
	})
}

func TestSetIgnoresBadInput(t *testing.T) {
	line := startLine(t, sim.Options{})
	line.Set(9, "holding", 0, 1)            // unit not served
	line.Set(1, "nonsense", 0, 1)           // no such table
	line.Set(1, "holding", 198, 1, 2, 3, 4) // runs past 199: cut
	line.Set(1, "holding", 65535, 1)        // far past
	line.Set(1, "coil", 1, 7)               // bit: non-zero is on
	h := goburrow.NewTCPClientHandler(line.Addr())
	h.SlaveId = 1
	h.Timeout = 5 * time.Second
	defer h.Close()
	c := goburrow.NewClient(h)
	if b, err := c.ReadHoldingRegisters(198, 2); err != nil || string(b) != "\x00\x01\x00\x02" {
		t.Errorf("holding 198: % x %v", b, err)
	}
	if b, err := c.ReadCoils(0, 2); err != nil || b[0] != 0b10 {
		t.Errorf("coils: %v %v", b, err)
	}
}
