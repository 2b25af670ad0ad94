package collector

import (
	"fmt"
	"testing"
	"time"

	"github.com/linegate/linegate/buffer"
)

func TestShiftAt(t *testing.T) {
	p, err := NewShiftPlan([]string{"22:00", "06:00", "14:00"}, berlin, 0)
	if err != nil {
		t.Fatal(err)
	}
	at := func(s string) time.Time {
		ts, err := time.ParseInLocation("2006-01-02 15:04", s, berlin)
		if err != nil {
			t.Fatal(err)
		}
		return ts
	}
	tests := []struct {
		at, start, end, name string
	}{
		{"2026-11-27 10:15", "2026-11-27 06:00", "2026-11-27 14:00", "06:00"},
		{"2026-11-27 06:00", "2026-11-27 06:00", "2026-11-27 14:00", "06:00"},
		{"2026-11-27 05:59", "2026-11-26 22:00", "2026-11-27 06:00", "22:00"},
		{"2026-11-27 23:30", "2026-11-27 22:00", "2026-11-28 06:00", "22:00"},
		// The night of the change to summer time is an hour shorter.
		{"2026-03-29 03:30", "2026-03-28 22:00", "2026-03-29 06:00", "22:00"},
	}
	for _, tt := range tests {
		start, end, name := p.shiftAt(at(tt.at))
		if !start.Equal(at(tt.start)) || !end.Equal(at(tt.end)) || name != tt.name {
			t.Errorf("%s: %v..%v %s; want %s..%s %s", tt.at, start.In(berlin), end.In(berlin), name, tt.start, tt.end, tt.name)
		}
	}
	if s, e, _ := p.shiftAt(at("2026-03-29 03:30")); e.Sub(s) != 7*time.Hour {
		t.Errorf("DST night shift lasts %v", e.Sub(s))
	}
	for _, bad := range [][]string{nil, {"6:00"}, {"25:00"}, {"06:00", "06:00"}, {"noon"}} {
		if _, err := NewShiftPlan(bad, nil, 0); err == nil {
			t.Errorf("NewShiftPlan(%q) accepted", bad)
		}
	}
}

func TestStateTimes(t *testing.T) {
	plan, err := NewShiftPlan([]string{"06:00", "14:00", "22:00"}, time.UTC, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	tag := &Tag{Name: "state", States: map[int64]string{0: "stopped", 1: "running", 3: "fault"}}
	st := newStateTimes(tag)
	base := time.Date(2026, 11, 27, 13, 58, 0, 0, time.UTC) // 2 min before the 14:00 shift change
	type want struct {
		ts     string
		final  bool
		values [4]float64 // stopped running fault unknown
	}
	steps := []struct {
		at    time.Duration
		state string
		want  []want
	}{
		// First reading: shape published, 7h58m of the shift unknown.
		{0, "running", []want{{"13:58:00", false, [4]float64{0, 0, 0, 28680}}}},
		{10 * time.Second, "running", nil},
		{30 * time.Second, "fault", []want{{"13:58:30", false, [4]float64{0, 30, 0, 28680}}}},
		{60 * time.Second, "fault", nil},
		{90 * time.Second, "fault", []want{{"13:59:30", false, [4]float64{0, 30, 60, 28680}}}}, // heartbeat
		// Across the shift change: the old shift's final totals at 14:00, then the new shift.
		{125 * time.Second, "stopped", []want{
			{"14:00:00", true, [4]float64{0, 30, 90, 28680}},
			{"14:00:05", false, [4]float64{0, 0, 5, 0}}}},
		{126 * time.Second, Unknown, []want{{"14:00:06", false, [4]float64{1, 0, 5, 0}}}},
	}
	for i, s := range steps {
		got := st.observe(plan, s.state, base.Add(s.at))
		if len(got) != 4*len(s.want) {
			t.Fatalf("step %d: %d readings, want %d: %+v", i, len(got), 4*len(s.want), got)
		}
		for j, w := range s.want {
			for k, name := range []string{"stopped", "running", "fault", "unknown"} {
				r := got[4*j+k]
				if r.Tag != "state_time_"+name || r.Value != w.values[k] || r.Unit != "s" || r.Quality != buffer.Good ||
					r.TS.Format("15:04:05") != w.ts || (attr(r, "final") == true) != w.final {
					t.Fatalf("step %d reading %d: %+v; want %s=%v at %s final %v", i, 4*j+k, r, name, w.values[k], w.ts, w.final)
				}
			}
			wantShift := "06:00"
			if j == len(s.want)-1 && base.Add(s.at).Hour() >= 14 {
				wantShift = "14:00"
			}
			if attr(got[4*j], "shift") != wantShift {
				t.Fatalf("step %d: shift %v, want %s", i, attr(got[4*j], "shift"), wantShift)
			}
		}
	}
}

// TestStateTimesAddUp checks the invariant the MES relies on: the states'
// seconds add up to the time since the shift began, whatever the sequence.
func TestStateTimesAddUp(t *testing.T) {
	plan, _ := NewShiftPlan([]string{"06:00", "18:00"}, berlin, 0)
	tag := &Tag{Name: "s", StateBits: pressBits, DefaultState: "stopped"}
	st := newStateTimes(tag)
	ts := time.Date(2026, 3, 28, 17, 0, 0, 0, time.UTC)
	names := []string{"running", "fault", "stopped", Unknown}
	seed := uint64(7)
	next := func(n uint64) uint64 { seed = seed*6364136223846793005 + 1442695040888963407; return (seed >> 33) % n }
	for i := 0; i < 5000; i++ {
		ts = ts.Add(time.Duration(next(120_000)) * time.Millisecond)
		for _, r := range st.observe(plan, names[next(4)], ts) {
			_ = r
		}
		var sum time.Duration
		for _, d := range st.acc {
			sum += d
		}
		if sum != ts.Sub(st.start) {
			t.Fatalf("step %d at %v: states add up to %v, shift began %v ago", i, ts, sum, ts.Sub(st.start))
		}
	}
}

func TestStateTimesBounded(t *testing.T) {
	plan, _ := NewShiftPlan([]string{"06:00"}, nil, 0)
	st := newStateTimes(&Tag{Name: "s", State: true})
	ts := time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC)
	var last []buffer.Reading
	for i := 0; i < 100; i++ {
		if rs := st.observe(plan, fmt.Sprintf("text %d", i), ts.Add(time.Duration(i)*time.Second)); rs != nil {
			last = rs
		}
	}
	if len(last) != maxStates || last[len(last)-1].Tag != "s_time_unknown" {
		t.Fatalf("%d readings, last %s", len(last), last[len(last)-1].Tag)
	}
}
