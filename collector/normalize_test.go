package collector

import (
	"errors"
	"math"
	"reflect"
	"testing"
	"time"

	"github.com/linegate/linegate/buffer"
	"github.com/linegate/linegate/drivers"
)

var t0 = time.Date(2026, 11, 27, 10, 15, 2, 101e6, time.UTC)

func good(v any) drivers.Sample { return drivers.Sample{Value: v} }

func TestNormalize(t *testing.T) {
	states := map[int64]string{0: "stopped", 1: "running"}
	tests := []struct {
		name    string
		tag     Tag
		in      drivers.Sample
		value   any
		quality buffer.Quality
		errText string
		unit    string
		attrs   []buffer.Attr
	}{
		{"float passes", Tag{Unit: "degC"}, good(23.5), 23.5, buffer.Good, "", "degC", nil},
		{"float32 rounded", Tag{Float32: true}, good(float64(float32(23.4))), 23.4, buffer.Good, "", "", nil},
		{"int stays exact", Tag{}, good(int64(1 << 60)), int64(1 << 60), buffer.Good, "", "", nil},
		{"uint64 stays exact", Tag{}, good(uint64(math.MaxUint64)), uint64(math.MaxUint64), buffer.Good, "", "", nil},
		{"scale by reciprocal", Tag{Scale: 0.1}, good(int64(123)), 12.3, buffer.Good, "", "", nil},
		{"scale and offset", Tag{Scale: 2, Offset: -10}, good(int64(15)), 20.0, buffer.Good, "", "", nil},
		{"float32 then scale", Tag{Float32: true, Scale: 10}, good(float64(float32(2.3))), 23.0, buffer.Good, "", "", nil},
		{"NaN is null uncertain", Tag{}, good(math.NaN()), nil, buffer.Uncertain, "value is NaN", "", nil},
		{"Inf is null uncertain", Tag{}, good(math.Inf(-1)), nil, buffer.Uncertain, "value is -Inf", "", nil},
		{"bad keeps reason", Tag{Unit: "degC"}, drivers.Sample{Quality: drivers.Bad, Err: errors.New("read holding 0x0000+2: i/o timeout")}, nil, buffer.Bad, "read holding 0x0000+2: i/o timeout", "degC", nil},
		{"uncertain passes", Tag{}, drivers.Sample{Value: 1.5, Quality: drivers.Uncertain, Err: errors.New("sensor")}, 1.5, buffer.Uncertain, "sensor", "", nil},
		{"bool", Tag{}, good(true), true, buffer.Good, "", "", nil},
		{"string", Tag{}, good("PRESS-01"), "PRESS-01", buffer.Good, "", "", nil},
		{"state known", Tag{States: states}, good(int64(1)), "running", buffer.Good, "", "", []buffer.Attr{{Key: "code", Value: int64(1)}}},
		{"state unknown kept", Tag{States: states}, good(int64(7)), "unknown", buffer.Uncertain, "unknown state code 7", "", []buffer.Attr{{Key: "code", Value: int64(7)}}},
		{"ms to seconds", Tag{Unit: "ms", ToSeconds: 1e-3}, good(int64(4500)), 4.5, buffer.Good, "", "s", nil},
		{"ms to seconds exactly", Tag{Unit: "ms", ToSeconds: 1e-3}, good(int64(5475)), 5.475, buffer.Good, "", "s", nil},
		{"min to seconds", Tag{Unit: "min", ToSeconds: 60}, good(1.5), 90.0, buffer.Good, "", "s", nil},
		{"first counter has no delta", Tag{Counter: true, CounterBits: 32}, good(int64(100)), int64(100), buffer.Good, "", "", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var st tagState
			r, ok := tt.tag.normalize(tt.in, &st, t0)
			if !ok {
				t.Fatal("suppressed")
			}
			if !reflect.DeepEqual(r.Value, tt.value) || r.Quality != tt.quality || r.Error != tt.errText || r.Unit != tt.unit {
				t.Fatalf("got value %#v quality %v error %q unit %q; want %#v %v %q %q", r.Value, r.Quality, r.Error, r.Unit, tt.value, tt.quality, tt.errText, tt.unit)
			}
			if !reflect.DeepEqual(r.Attrs, tt.attrs) {
				t.Fatalf("attrs %v, want %v", r.Attrs, tt.attrs)
			}
			if !r.TS.Equal(t0) {
				t.Fatalf("ts %v", r.TS)
			}
		})
	}
}

func TestSourceTimestampKept(t *testing.T) {
	src := t0.Add(-time.Second).In(time.FixedZone("CET", 3600))
	r, _ := (&Tag{}).normalize(drivers.Sample{Value: 1.0, TS: src}, &tagState{}, t0)
	if !r.TS.Equal(src) || r.TS.Location() != time.UTC {
		t.Fatalf("ts %v", r.TS)
	}
}

func TestCounterDelta(t *testing.T) {
	tests := []struct {
		name  string
		bits  int
		seq   []any
		delta []any // nil = no delta attr
	}{
		{"rising", 32, []any{int64(10), int64(15), int64(15), int64(20)}, []any{nil, uint64(5), uint64(0), uint64(5)}},
		{"16-bit rollover", 16, []any{int64(65530), int64(4)}, []any{nil, uint64(10)}},
		{"32-bit rollover", 32, []any{int64(4294967290), int64(5)}, []any{nil, uint64(11)}},
		{"64-bit rollover", 64, []any{uint64(math.MaxUint64 - 1), uint64(3)}, []any{nil, uint64(5)}},
		{"reset to zero counts from zero", 32, []any{int64(5000), int64(3)}, []any{nil, uint64(3)}},
		{"reset mid-range", 16, []any{int64(30000), int64(100)}, []any{nil, uint64(100)}},
		{"signed int16 crossing", 16, []any{int64(32767), int64(-32768)}, []any{nil, uint64(1)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tag := Tag{Counter: true, CounterBits: tt.bits}
			var st tagState
			for i, v := range tt.seq {
				r, _ := tag.normalize(good(v), &st, t0)
				var got any
				for _, a := range r.Attrs {
					if a.Key == "delta" {
						got = a.Value
					}
				}
				if !reflect.DeepEqual(got, tt.delta[i]) {
					t.Fatalf("step %d (%v): delta %#v, want %#v", i, v, got, tt.delta[i])
				}
			}
		})
	}
	// A bad read in between: no delta across the gap.
	tag := Tag{Counter: true, CounterBits: 32}
	var st tagState
	tag.normalize(good(int64(1)), &st, t0)
	tag.normalize(drivers.Sample{Quality: drivers.Bad, Err: errors.New("x")}, &st, t0)
	if r, _ := tag.normalize(good(int64(9)), &st, t0); len(r.Attrs) != 0 {
		t.Fatalf("delta across a bad read: %v", r.Attrs)
	}
}

func TestDeadband(t *testing.T) {
	tag := Tag{Deadband: 0.5, ReportEvery: 10 * time.Second}
	steps := []struct {
		at     time.Duration
		in     drivers.Sample
		report bool
	}{
		{0, good(20.0), true},
		{1 * time.Second, good(20.3), false}, // within deadband of 20.0
		{2 * time.Second, good(19.6), false}, // still within
		{3 * time.Second, good(20.6), true},  // moved 0.6
		{4 * time.Second, good(20.9), false}, // 0.3 from 20.6
		{14 * time.Second, good(20.9), true}, // heartbeat
		{15 * time.Second, drivers.Sample{Quality: drivers.Bad, Err: errors.New("timeout")}, true}, // quality change
		{16 * time.Second, drivers.Sample{Quality: drivers.Bad, Err: errors.New("timeout")}, false},
		{17 * time.Second, good(20.9), true}, // back to good
		{18 * time.Second, good(math.NaN()), true},
		{19 * time.Second, good(20.95), true},
	}
	var st tagState
	for i, s := range steps {
		_, ok := tag.normalize(s.in, &st, t0.Add(s.at))
		if ok != s.report {
			t.Fatalf("step %d (%v): reported %v, want %v", i, s.in.Value, ok, s.report)
		}
	}
}

func TestNextTick(t *testing.T) {
	base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	sec := time.Second
	tests := []struct {
		name    string
		now     time.Duration
		next    time.Duration
		skipped int64
	}{
		{"on time", 200 * time.Millisecond, 1 * sec, 0},
		{"exactly at next", 1 * sec, 1 * sec, 0},
		{"overran by a bit", 1100 * time.Millisecond, 2 * sec, 1},
		{"overran three", 3500 * time.Millisecond, 4 * sec, 3},
	}
	for _, tt := range tests {
		next, skipped := nextTick(base, base.Add(tt.now), sec)
		if !next.Equal(base.Add(tt.next)) || skipped != tt.skipped {
			t.Errorf("%s: next %v skipped %d; want %v %d", tt.name, next.Sub(base), skipped, tt.next, tt.skipped)
		}
	}
	if ft := firstTick(base.Add(1234*time.Millisecond), 500*time.Millisecond); !ft.Equal(base.Add(1500 * time.Millisecond)) {
		t.Errorf("firstTick = %v", ft.Sub(base))
	}
}
