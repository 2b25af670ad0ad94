package collector

import (
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/linegate/linegate/buffer"
	"github.com/linegate/linegate/drivers"
)

func attr(r buffer.Reading, key string) any {
	for _, a := range r.Attrs {
		if a.Key == key {
			return a.Value
		}
	}
	return nil
}

func TestStateChangeCarriesPrevious(t *testing.T) {
	tag := Tag{Name: "state", States: map[int64]string{0: "stopped", 1: "running", 3: "fault"}}
	bad := drivers.Sample{Quality: drivers.Bad, Err: errors.New("i/o timeout")}
	steps := []struct {
		at       time.Duration
		in       drivers.Sample
		value    any
		previous any // nil: no transition
		duration any
	}{
		{0, good(int64(0)), "stopped", nil, nil},
		{1 * time.Second, good(int64(0)), "stopped", nil, nil},
		{20 * time.Second, good(int64(1)), "running", "stopped", 20.0},
		{300*time.Second + 500*time.Millisecond, good(int64(3)), "fault", "running", 280.5},
		{301 * time.Second, good(int64(7)), "unknown", "fault", 0.5}, // an unknown code is a state of its own
		{302 * time.Second, bad, nil, nil, nil},                      // bad: still unknown, no transition
		{310 * time.Second, good(int64(1)), "running", "unknown", 9.0},
	}
	var st tagState
	for i, s := range steps {
		r, ok := tag.normalize(s.in, &st, t0.Add(s.at))
		if !ok {
			t.Fatalf("step %d suppressed", i)
		}
		if r.Value != s.value || attr(r, "previous") != s.previous || attr(r, "previous_duration_s") != s.duration {
			t.Fatalf("step %d: value %v previous %v duration %v; want %v %v %v", i, r.Value, attr(r, "previous"), attr(r, "previous_duration_s"), s.value, s.previous, s.duration)
		}
	}
}

func TestStateReportByException(t *testing.T) {
	tag := Tag{Name: "state", States: map[int64]string{0: "stopped", 1: "running"}, ReportEvery: time.Minute}
	steps := []struct {
		at     time.Duration
		code   int64
		report bool
	}{
		{0, 0, true},
		{time.Second, 0, false},
		{2 * time.Second, 1, true}, // change, with previous
		{3 * time.Second, 1, false},
		{62 * time.Second, 1, true}, // heartbeat
		{63 * time.Second, 1, false},
	}
	var st tagState
	for i, s := range steps {
		if _, ok := tag.normalize(good(s.code), &st, t0.Add(s.at)); ok != s.report {
			t.Fatalf("step %d: reported %v, want %v", i, ok, s.report)
		}
	}
}

func TestAlarms(t *testing.T) {
	tag := Tag{Name: "alarms", Alarms: []Alarm{{0, "motor overload"}, {1, "door open"}, {5, "oil low"}}}
	type ev struct {
		typ, text string
		dur       any
	}
	steps := []struct {
		at     time.Duration
		in     drivers.Sample
		count  any
		active string
		events []ev
	}{
		{0, good(int64(0b10)), int64(1), "door open", []ev{{"alarm_active", "door open", nil}}}, // announced on the first read
		{time.Second, good(int64(0b10)), int64(1), "door open", nil},
		{2 * time.Second, good(int64(0b100011)), int64(3), "motor overload; door open; oil low", []ev{{"alarm_active", "motor overload", nil}, {"alarm_active", "oil low", nil}}},
		{3 * time.Second, drivers.Sample{Quality: drivers.Bad, Err: errors.New("timeout")}, nil, "", nil}, // no edge on a bad read
		{4 * time.Second, good(int64(0b1100)), int64(0), "", []ev{ // bits 2 and 3 are not configured
			{"alarm_cleared", "motor overload", 2.0}, {"alarm_cleared", "door open", 4.0}, {"alarm_cleared", "oil low", 2.0}}},
	}
	var st tagState
	for i, s := range steps {
		r, _ := tag.normalize(s.in, &st, t0.Add(s.at))
		if r.Value != s.count {
			t.Fatalf("step %d: value %v, want %v", i, r.Value, s.count)
		}
		if r.Quality == buffer.Good && attr(r, "active") != s.active {
			t.Fatalf("step %d: active %q, want %q", i, attr(r, "active"), s.active)
		}
		var got []ev
		for _, e := range st.events {
			if !e.TS.Equal(t0.Add(s.at)) || attr(buffer.Reading{Attrs: e.Attrs}, "tag") != "alarms" {
				t.Fatalf("step %d: event %+v", i, e)
			}
			got = append(got, ev{e.Type, attr(buffer.Reading{Attrs: e.Attrs}, "text").(string), attr(buffer.Reading{Attrs: e.Attrs}, "duration_s")})
		}
		st.events = st.events[:0]
		if !reflect.DeepEqual(got, s.events) {
			t.Fatalf("step %d: events %+v, want %+v", i, got, s.events)
		}
	}
}

func TestStaleSourceTimestamp(t *testing.T) {
	tag := Tag{StaleAfter: 10 * time.Second}
	tests := []struct {
		name    string
		ts      time.Time
		quality buffer.Quality
		err     string
	}{
		{"fresh", t0.Add(-9 * time.Second), buffer.Good, ""},
		{"stale", t0.Add(-11 * time.Second), buffer.Uncertain, "stale: source timestamp 2026-11-27T10:14:51.101Z is older than stale_after 10s"},
		{"no source timestamp", time.Time{}, buffer.Good, ""},
		{"future is not stale", t0.Add(time.Hour), buffer.Good, ""},
	}
	for _, tt := range tests {
		r, _ := tag.normalize(drivers.Sample{Value: 1.0, TS: tt.ts}, &tagState{}, t0)
		if r.Quality != tt.quality || r.Error != tt.err || r.Value != 1.0 {
			t.Errorf("%s: %v %q %v", tt.name, r.Quality, r.Error, r.Value)
		}
	}
}

func TestDeadbandPercentAndChangeOnly(t *testing.T) {
	tests := []struct {
		name   string
		tag    Tag
		values []float64
		report []bool
	}{
		// 1 % of 0..200 is 2.
		{"percent of range", Tag{Map: &LinearMap{RawLo: 0, RawHi: 200, Lo: 0, Hi: 200}, DeadbandPercent: 1},
			[]float64{100, 101.9, 98.1, 102, 103}, []bool{true, false, false, true, false}},
		{"percent of limits", Tag{Limits: &[2]float64{-50, 50}, DeadbandPercent: 5},
			[]float64{0, 4.9, 5, -0.1}, []bool{true, false, true, true}},
		{"change only", Tag{ReportEvery: time.Hour}, []float64{1, 1, 1.0000001, 1.0000001}, []bool{true, false, true, false}},
		{"every cycle without either", Tag{}, []float64{1, 1}, []bool{true, true}},
	}
	for _, tt := range tests {
		var st tagState
		for i, v := range tt.values {
			if _, ok := tt.tag.normalize(good(v), &st, t0.Add(time.Duration(i)*time.Second)); ok != tt.report[i] {
				t.Errorf("%s: value %d (%v) reported %v, want %v", tt.name, i, v, ok, tt.report[i])
			}
		}
	}
}

// TestEmitEventsAndStateTimes checks the collector's part: alarm edges
// become events naming the device, and state times go into the time-class
// message of the cycle.
func TestEmitEventsAndStateTimes(t *testing.T) {
	plan, err := NewShiftPlan([]string{"06:00"}, time.UTC, 0)
	if err != nil {
		t.Fatal(err)
	}
	sink := &memSink{}
	c, err := New(Options{Sink: sink, Devices: []Device{{Name: "press01", Interval: time.Second, Driver: &scriptDriver{}, Shifts: plan, Tags: []Tag{
		{Name: "state", Class: "equipment", StateBits: pressBits, DefaultState: "stopped"},
		{Name: "alarms", Class: "equipment", Alarms: []Alarm{{3, "e-stop"}}},
		{Name: "cycle_time", Class: "time", Unit: "ms", ToSeconds: 1e-3},
	}}}})
	if err != nil {
		t.Fatal(err)
	}
	d := c.devices[0]
	cycle := func(at time.Time, status int64) {
		samples := []drivers.Sample{good(status), good(status), good(int64(4500))}
		c.emit(d, at, at, len(samples), func(i int) (int, drivers.Sample) { return i, samples[i] })
	}
	start := time.Date(2026, 11, 27, 6, 0, 0, 0, time.UTC)
	cycle(start, 0b0001)
	cycle(start.Add(time.Second), 0b1010)

	msgs, events := sink.snapshot()
	if len(msgs) != 4 {
		t.Fatalf("%d messages, want equipment and time twice", len(msgs))
	}
	tm := msgs[3]
	if tm.Class != "time" || len(tm.Readings) != 5 {
		t.Fatalf("time message %+v", tm)
	}
	wantTags := []string{"state_time_fault", "state_time_running", "state_time_stopped", "state_time_unknown"}
	for i, r := range tm.Readings[:4] {
		if r.Tag != wantTags[i] {
			t.Fatalf("reading %d is %s, want %s", i, r.Tag, wantTags[i])
		}
	}
	if tm.Readings[1].Value != 1.0 || tm.Readings[4].Tag != "cycle_time" {
		t.Fatalf("time readings %+v", tm.Readings)
	}
	if len(events) != 1 || events[0].Type != "alarm_active" {
		t.Fatalf("events %+v", events)
	}
	want := []buffer.Attr{{Key: "device", Value: "press01"}, {Key: "tag", Value: "alarms"}, {Key: "bit", Value: int64(3)}, {Key: "text", Value: "e-stop"}}
	if !reflect.DeepEqual(events[0].Attrs, want) || !events[0].TS.Equal(start.Add(time.Second)) {
		t.Fatalf("event %+v", events[0])
	}
}
