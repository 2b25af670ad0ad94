package collector

import (
	"math"
	"testing"
	"time"

	"github.com/linegate/linegate/buffer"
)

func oeeDevice(t *testing.T, rejects bool) *oeeCalc {
	t.Helper()
	plan, err := NewShiftPlan([]string{"06:00", "14:00", "22:00"}, time.UTC, 0)
	if err != nil {
		t.Fatal(err)
	}
	o := &OEE{StateTag: "state", TotalCounter: "total", GoodCounter: "good", IdealCycle: 5,
		Categories: map[string]Category{"running": OEERun, "break": OEEPlannedStop, "fault": OEEUnplannedStop}}
	if rejects {
		o.GoodCounter, o.RejectsCounter = "", "good"
	}
	d := &Device{Name: "press01", Shifts: plan, OEE: o, Tags: []Tag{
		{Name: "state", States: map[int64]string{0: "fault", 1: "running", 2: "break"}},
		{Name: "total", Counter: true}, {Name: "good", Counter: true}}}
	k, err := newOEECalc(d, d.descriptions())
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// step feeds one poll: the state (or a bad read), then the counters'
// deltas (-1: none), and returns what the poll publishes.
func oeeStep(k *oeeCalc, ts time.Time, state string, total, good int64) []buffer.Reading {
	r := buffer.Reading{Tag: "state", Value: state, Quality: buffer.Good, TS: ts}
	if state == "" {
		r = buffer.Reading{Tag: "state", Quality: buffer.Bad, Error: "timeout", TS: ts}
	}
	k.observe(0, &r)
	for i, d := range []int64{total, good} {
		c := buffer.Reading{Tag: []string{"total", "good"}[i], Value: uint64(0), Quality: buffer.Good, TS: ts}
		if d >= 0 {
			c.Attrs = []buffer.Attr{{Key: "delta", Value: uint64(d)}}
		}
		k.observe(1+i, &c)
	}
	return k.flush(nil)
}

func oeeAt(h, m, s int) time.Time { return time.Date(2026, 11, 27, h, m, s, 0, time.UTC) }

func near(a any, b float64) bool {
	f, ok := a.(float64)
	return ok && math.Abs(f-b) < 1e-12
}

// TestOEEShift runs one 06:00 shift by hand: 1 h run, 30 min fault, 30 min
// break, 2 h run, 10 min bad reads, run to 14:00.
func TestOEEShift(t *testing.T) {
	for _, rejects := range []bool{false, true} {
		k := oeeDevice(t, rejects)
		good := func(g, total int64) int64 {
			if rejects {
				return total - g
			}
			return g
		}
		oeeStep(k, oeeAt(6, 0, 0), "running", -1, -1)
		oeeStep(k, oeeAt(7, 0, 0), "fault", 1500, good(1450, 1500))
		oeeStep(k, oeeAt(7, 30, 0), "break", 0, 0)
		oeeStep(k, oeeAt(8, 0, 0), "running", 0, 0)
		oeeStep(k, oeeAt(10, 0, 0), "", 3000, good(2950, 3000))
		oeeStep(k, oeeAt(10, 10, 0), "running", 0, 0)
		out := oeeStep(k, oeeAt(14, 0, 5), "running", 4000, good(3990, 4000))
		if len(out) != 8 {
			t.Fatalf("published %d readings at the shift change, want 4 finals and 4 current", len(out))
		}
		// By hand: run 1 h + 2 h + 3 h 50 min = 24600 s; unplanned 1800 s;
		// planned 1800 s; unknown 600 s; planned production time 27000 s.
		// total 4500, good 4400, ideal 5 s.
		a, p, q := 24600.0/27000, 5*4500.0/24600, 4400.0/4500
		want := []struct {
			tag     string
			v       float64
			quality buffer.Quality
		}{{"oee_availability", a, buffer.Uncertain}, {"oee_performance", p, buffer.Uncertain}, {"oee_quality", q, buffer.Good}, {"oee", a * p * q, buffer.Uncertain}}
		for i, w := range want {
			r := out[i]
			if r.Tag != w.tag || !near(r.Value, w.v) || r.Quality != w.quality || attr(r, "final") != true || !r.TS.Equal(oeeAt(14, 0, 0)) {
				t.Errorf("rejects=%v: final %d: %s %v %s %q final=%v at %v; want %s %v %s", rejects, i, r.Tag, r.Value, r.Quality, r.Error, attr(r, "final"), r.TS, w.tag, w.v, w.quality)
			}
		}
		o := out[3]
		for key, v := range map[string]any{"run_s": 24600.0, "planned_stop_s": 1800.0, "unplanned_stop_s": 1800.0, "unknown_s": 600.0,
			"total_count": uint64(4500), "good_count": uint64(4400), "ideal_cycle_s": 5.0, "shift": "06:00", "shift_start": "2026-11-27T06:00:00.000Z"} {
			if attr(o, key) != v {
				t.Errorf("rejects=%v: oee %s = %v, want %v", rejects, key, attr(o, key), v)
			}
		}
		if o.Error != "600 s of the shift in no known state" {
			t.Errorf("reason %q", o.Error)
		}
		// The parts read at 14:00:05 belong to the shift that holds the
		// reading: the new one, whose 5 s of run cannot have made them.
		if cur := out[5]; cur.Quality != buffer.Uncertain || attr(out[7], "total_count") != uint64(4000) {
			t.Errorf("new shift: performance %v %s, total %v", cur.Value, cur.Quality, attr(out[7], "total_count"))
		}
		st := k.status()
		if len(st.Last) != 1 || st.Last[0].RunS != 24600 || st.Current.Shift != "14:00" {
			t.Errorf("status %+v", st)
		}
	}
}

// TestOEEUndefinedAndGaps: factors without a denominator are null and
// uncertain; a bad counter read makes performance and quality uncertain;
// a jump of more than maxCatchUp shifts starts over.
func TestOEEUndefinedAndGaps(t *testing.T) {
	k := oeeDevice(t, false)
	out := oeeStep(k, oeeAt(6, 0, 0), "break", -1, -1)
	for _, r := range out {
		if r.Value != nil || r.Quality != buffer.Uncertain || r.Error == "" {
			t.Errorf("%s = %v %s %q at the shift start; want null, uncertain, a reason", r.Tag, r.Value, r.Quality, r.Error)
		}
	}
	oeeStep(k, oeeAt(7, 0, 0), "running", 0, 0)
	bad := buffer.Reading{Tag: "total", Quality: buffer.Bad, Error: "timeout", TS: oeeAt(7, 30, 0)}
	k.observe(1, &bad)
	k.changed = true
	out = k.flush(nil)
	if out[1].Quality != buffer.Uncertain || out[2].Quality != buffer.Uncertain || out[0].Quality != buffer.Good {
		t.Errorf("after a bad counter read: availability %s, performance %s %q, quality %s", out[0].Quality, out[1].Quality, out[1].Error, out[2].Quality)
	}
	out = oeeStep(k, oeeAt(6, 0, 0).Add(40*8*time.Hour), "running", -1, -1)
	// As the state times do: maxCatchUp shifts closed, then the current
	// one from its start.
	if n := len(out); n != 4*maxCatchUp+4 || attr(out[n-1], "final") != nil || attr(out[n-1], "shift_start") != "2026-12-10T14:00:00.000Z" {
		t.Errorf("after a clock jump: %d readings, last %v", n, out[n-1])
	}
}
