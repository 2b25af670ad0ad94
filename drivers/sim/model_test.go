package sim

import (
	"encoding/binary"
	"math"
	"slices"
	"testing"
	"time"
)

func TestSchedule(t *testing.T) {
	tests := []struct {
		t           float64
		state       uint16
		door, estop bool
	}{
		{0, Stopped, true, false},
		{19.9, Stopped, true, false},
		{20, Running, false, false},
		{299, Running, false, false},
		{300, Idle, false, false},
		{330, Running, false, false},
		{560, Fault, false, true},
		{569.9, Fault, false, true},
		{570, Fault, false, false},
		{580, Stopped, true, false},
		{600 + 100, Running, false, false},
		{-40, Fault, false, true}, // before the epoch: 560
	}
	for _, tc := range tests {
		state, door, estop := schedule(tc.t)
		if state != tc.state || door != tc.door || estop != tc.estop {
			t.Errorf("schedule(%v) = %d %v %v, want %d %v %v", tc.t, state, door, estop, tc.state, tc.door, tc.estop)
		}
	}
}

func float32At(tb *table, addr int) float64 {
	return float64(math.Float32frombits(uint32(tb.words[addr])<<16 | uint32(tb.words[addr+1])))
}

func uint64At(tb *table, addr int) uint64 {
	var v uint64
	for i := range 4 {
		v = v<<16 | uint64(tb.words[addr+i])
	}
	return v
}

// TestSimulationRanges runs two simulated hours of unit 3 in 100 ms ticks
// and checks that every value stays in its documented range, moves
// smoothly, and that the press is mostly running.
func TestSimulationRanges(t *testing.T) {
	u := &unit{id: 3, model: newModel(3)}
	start := time.Date(2026, 11, 27, 6, 0, 0, 0, time.UTC)
	states := make([]int, 4)
	var lastTemp float64
	var lastParts uint32
	var lastStrokes uint64
	for i := range 72000 {
		u.step(start.Add(time.Duration(i) * tickInterval))
		h := &u.holding
		temp := float32At(h, addrTemperature)
		if temp < 60 || temp > 80 {
			t.Fatalf("tick %d: temperature %v", i, temp)
		}
		if i > 0 && math.Abs(temp-lastTemp) > 0.2 {
			t.Fatalf("tick %d: temperature jumps %v -> %v", i, lastTemp, temp)
		}
		lastTemp = temp
		state := h.words[addrState]
		states[state]++
		if ct := h.words[addrCycleTime]; ct < 4000 || ct > 6000 {
			t.Fatalf("tick %d: cycle time %d", i, ct)
		}
		speed := int16(u.input.words[addrSpeed])
		if (state == Running) != (speed > 1100) || speed < 0 || speed > 1300 {
			t.Fatalf("tick %d: state %d speed %d", i, state, speed)
		}
		p := float32At(h, addrPressure)
		if p < 121 || p > 125.5 {
			t.Fatalf("tick %d: pressure %v", i, p)
		}
		parts := uint32(h.words[addrGoodParts])<<16 | uint32(h.words[addrGoodParts+1])
		strokes := uint64At(h, addrStrokes)
		if parts < lastParts || strokes < lastStrokes || (state != Running && parts != lastParts && i > 0) {
			t.Fatalf("tick %d: parts %d -> %d, strokes %d -> %d in state %d", i, lastParts, parts, lastStrokes, strokes, state)
		}
		lastParts, lastStrokes = parts, strokes
		if door := u.discrete.words[addrDoorOpen] == 1; door != (state == Stopped) {
			t.Fatalf("tick %d: door %v in state %d", i, door, state)
		}
	}
	if run := float64(states[Running]) / 72000; run < 0.8 || run > 0.9 {
		t.Errorf("running %.0f%% of the time", 100*run)
	}
	for s, n := range states {
		if n == 0 {
			t.Errorf("state %d never seen", s)
		}
	}
	// About one part per 5 s of running.
	if got, want := float64(lastParts-(120000+3000)), float64(states[Running])/50; math.Abs(got-want) > want*0.1 {
		t.Errorf("%v parts, want about %v", got, want)
	}
}

func TestStepClockJumps(t *testing.T) {
	u := &unit{id: 1, model: newModel(1)}
	base := time.Unix(600*3_000_000+100, 0) // running
	u.step(base)
	h0 := u.model.runHours
	u.step(base.Add(-time.Hour)) // backwards: nothing counted
	u.step(base.Add(time.Hour))  // a suspended host: at most maxStep counted
	if d := u.model.runHours - h0; d > maxStep.Hours()+1e-9 || d < 0 {
		t.Errorf("run hours moved %v h", d)
	}
}

func TestPutImage(t *testing.T) {
	img := []byte{0x41, 0xBC, 0x00, 0x00}
	tests := []struct {
		order string
		want  []uint16
	}{
		{"ABCD", []uint16{0x41BC, 0x0000}},
		{"CDAB", []uint16{0x0000, 0x41BC}},
		{"BADC", []uint16{0xBC41, 0x0000}},
		{"DCBA", []uint16{0x0000, 0xBC41}},
	}
	for _, tc := range tests {
		var tb table
		tb.putImage(10, img, tc.order)
		if got := tb.words[10:12]; !slices.Equal(got, tc.want) {
			t.Errorf("%s: % x, want % x", tc.order, got, tc.want)
		}
	}
	var tb table
	tb.pinned[1] = true
	tb.put(0, 1, 2, 3)
	tb.put(tableSize-1, 7, 8) // cut at the end
	if tb.words[0] != 1 || tb.words[1] != 0 || tb.words[2] != 3 || tb.words[tableSize-1] != 7 {
		t.Errorf("put: %v ... %v", tb.words[:3], tb.words[tableSize-1])
	}
	tb.putString(20, 2, "ABCDEF") // cut to 4 chars
	var b [4]byte
	binary.BigEndian.PutUint16(b[:], tb.words[20])
	binary.BigEndian.PutUint16(b[2:], tb.words[21])
	if string(b[:]) != "ABCD" || tb.words[22] != 0 {
		t.Errorf("putString: %q", b)
	}
}
