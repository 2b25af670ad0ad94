package collector

import (
	"errors"
	"math"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/linegate/linegate/buffer"
	"github.com/linegate/linegate/drivers"
)

var t0 = time.Date(2026, 11, 27, 10, 15, 2, 101e6, time.UTC)

var (
	s7pct     = &LinearMap{RawLo: 0, RawHi: 27648, Lo: 0, Hi: 100}
	pressBits = []StateBit{{Bit: 1, State: "fault"}, {Bit: 0, State: "running"}}
	berlin    = mustZone("Europe/Berlin")
)

func mustZone(name string) *time.Location {
	loc, err := time.LoadLocation(name)
	if err != nil {
		panic(err)
	}
	return loc
}

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

		// Process: linear range mapping and limits.
		{"S7 analog mid", Tag{Map: s7pct}, good(int64(13824)), 50.0, buffer.Good, "", "", nil},
		{"S7 analog top", Tag{Map: s7pct}, good(int64(27648)), 100.0, buffer.Good, "", "", nil},
		{"S7 analog 4..20mA offset", Tag{Map: &LinearMap{RawLo: 0, RawHi: 27648, Lo: -50, Hi: 150}}, good(int64(6912)), 0.0, buffer.Good, "", "", nil},
		{"S7 overrange extrapolated", Tag{Map: s7pct}, good(int64(29030)), 104.99855324074075, buffer.Good, "", "", nil},
		{"within limits", Tag{Map: s7pct, Limits: &[2]float64{0, 100}}, good(int64(27648)), 100.0, buffer.Good, "", "", nil},
		{"wire break above limits", Tag{Map: s7pct, Limits: &[2]float64{0, 100}}, good(int64(32767)), 118.51490162037037, buffer.Uncertain, "above high limit 100 (sensor fault?)", "", nil},
		{"below limits", Tag{Unit: "degC", Limits: &[2]float64{-20, 150}}, good(-40.5), -40.5, buffer.Uncertain, "below low limit -20 (sensor fault?)", "degC", nil},
		{"limits on integer keep it exact", Tag{Limits: &[2]float64{0, 10}}, good(int64(11)), int64(11), buffer.Uncertain, "above high limit 10 (sensor fault?)", "", nil},
		{"source uncertain reason wins", Tag{Limits: &[2]float64{0, 1}}, drivers.Sample{Value: 5.0, Quality: drivers.Uncertain, Err: errors.New("sensor")}, 5.0, buffer.Uncertain, "sensor", "", nil},

		// Equipment state.
		{"state from OPC UA enum text", Tag{States: states}, good("Running"), "running", buffer.Good, "", "", []buffer.Attr{{Key: "code", Value: int64(1)}}},
		{"state text unknown", Tag{States: states}, good("Setup"), "unknown", buffer.Uncertain, `unknown state "Setup"`, "", nil},
		{"state code not integer", Tag{States: states}, good(1.5), nil, buffer.Uncertain, "state code 1.5 is not an integer", "", nil},
		{"fault bit beats running bit", Tag{StateBits: pressBits, DefaultState: "stopped"}, good(int64(0b0011)), "fault", buffer.Good, "", "", []buffer.Attr{{Key: "bits", Value: int64(3)}}},
		{"running bit", Tag{StateBits: pressBits, DefaultState: "stopped"}, good(int64(0b0101)), "running", buffer.Good, "", "", []buffer.Attr{{Key: "bits", Value: int64(5)}}},
		{"no bit: default state", Tag{StateBits: pressBits, DefaultState: "stopped"}, good(int64(0b0100)), "stopped", buffer.Good, "", "", []buffer.Attr{{Key: "bits", Value: int64(4)}}},
		{"no bit, no default", Tag{StateBits: pressBits}, good(int64(0)), "unknown", buffer.Uncertain, "no state bit set in 0x0000", "", []buffer.Attr{{Key: "bits", Value: int64(0)}}},
		{"negative int16 word keeps its bits", Tag{StateBits: []StateBit{{15, "blocked"}}}, good(int64(-32768)), "blocked", buffer.Good, "", "", []buffer.Attr{{Key: "bits", Value: int64(-32768)}}},
		{"state string passed through", Tag{State: true}, good("Producing"), "Producing", buffer.Good, "", "", nil},
		{"state pass-through integer", Tag{State: true}, good(int64(4)), "unknown", buffer.Uncertain, "state value 4 is not a name (map codes with states)", "", []buffer.Attr{{Key: "code", Value: int64(4)}}},
		{"state pass-through empty", Tag{State: true}, good(""), "unknown", buffer.Uncertain, "empty state name", "", nil},

		// Time: durations and timestamps.
		{"IEC TIME negative", Tag{Unit: "ms", ToSeconds: 1e-3}, good(int64(-1500)), -1.5, buffer.Good, "", "s", nil},
		{"IEC TIME max", Tag{Unit: "ms", ToSeconds: 1e-3}, good(int64(math.MaxInt32)), 2147483.647, buffer.Good, "", "s", nil},
		{"hours to seconds", Tag{Unit: "h", ToSeconds: 3600}, good(41234.5), 148444200.0, buffer.Good, "", "s", nil},
		{"unix seconds", Tag{Timestamp: UnixSeconds, Unit: "s"}, good(int64(1795774502)), "2026-11-27T10:15:02.000Z", buffer.Good, "", "", nil},
		{"unix seconds fraction", Tag{Timestamp: UnixSeconds}, good(1795774502.25), "2026-11-27T10:15:02.250Z", buffer.Good, "", "", nil},
		{"unix ms", Tag{Timestamp: UnixMillis}, good(uint64(1795774502101)), "2026-11-27T10:15:02.101Z", buffer.Good, "", "", nil},
		{"unix ms out of range", Tag{Timestamp: UnixMillis}, good(uint64(math.MaxUint64)), nil, buffer.Uncertain, "unix_ms 18446744073709551615 is out of range", "", nil},
		{"unix s not a number", Tag{Timestamp: UnixSeconds}, good("x"), nil, buffer.Uncertain, "unix_s: value x is not a number", "", nil},
		{"s7 DATE_AND_TIME", Tag{Timestamp: S7DT}, good(uint64(0x2611271015021016)), "2026-11-27T10:15:02.101Z", buffer.Good, "", "", nil},
		{"s7 DATE_AND_TIME local", Tag{Timestamp: S7DT, Location: berlin}, good(uint64(0x2611271115021016)), "2026-11-27T10:15:02.101Z", buffer.Good, "", "", nil},
		{"s7 DATE_AND_TIME not BCD", Tag{Timestamp: S7DT}, good(uint64(0x261A271015021016)), nil, buffer.Uncertain, "s7_dt 261A271015021016: byte 1 (0x1A) is not BCD", "", nil},
		{"s7 DATE_AND_TIME zero", Tag{Timestamp: S7DT}, good(uint64(0)), nil, buffer.Uncertain, "s7_dt 0000000000000000: month 0", "", nil},
		{"opcua DateTime", Tag{Timestamp: OPCUATime}, good("2026-11-27T11:15:02.1015+01:00"), "2026-11-27T10:15:02.101Z", buffer.Good, "", "", nil},
		{"opcua null DateTime", Tag{Timestamp: OPCUATime}, good("1601-01-01T00:00:00Z"), nil, buffer.Uncertain, "opcua: DateTime 1601-01-01T00:00:00Z is the null time", "", nil},
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

// TestCounterWidthFromSource: an OPC UA UInt16 counter rolls over at 16
// bits although the tag's CounterBits says 64 (the width is the node's data
// type, known only when it is read): the wrap is a delta, not a reset.
func TestCounterWidthFromSource(t *testing.T) {
	tests := []struct {
		name      string
		bits      uint8
		prev, cur any
		want      uint64
	}{
		{"uint16 wrap", 16, uint64(63000), uint64(1464), 4000},
		{"uint32 wrap", 32, uint64(math.MaxUint32 - 9), uint64(10), 20},
		{"int16 wrap", 16, int64(32767), int64(-32768), 1},
		{"no width: the tag's", 0, uint64(63000), uint64(1464), 1464}, // a reset at 64 bits
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tag := Tag{Name: "strokes", Class: "equipment", Counter: true, CounterBits: 64}
			var st tagState
			tag.normalize(drivers.Sample{Value: tt.prev, Bits: tt.bits}, &st, t0)
			r, _ := tag.normalize(drivers.Sample{Value: tt.cur, Bits: tt.bits}, &st, t0.Add(time.Second))
			if d := attr(r, "delta"); d != tt.want {
				t.Fatalf("delta %v, want %d", d, tt.want)
			}
		})
	}
}

// TestStaleUsesGatewayTime: a source timestamp older than stale_after makes
// the reading uncertain with the source's time in the reason, and the
// reading (so a state's duration) takes the gateway's time.
func TestStaleUsesGatewayTime(t *testing.T) {
	src := t0.Add(-time.Hour)
	tests := []struct {
		name    string
		ts      time.Time
		quality buffer.Quality
		wantTS  time.Time
	}{
		{"stale", src, buffer.Uncertain, t0},
		{"fresh", t0.Add(-time.Second), buffer.Good, t0.Add(-time.Second)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tag := Tag{Name: "state", Class: "equipment", States: map[int64]string{1: "running"}, StaleAfter: 10 * time.Second}
			var st tagState
			r, _ := tag.normalize(drivers.Sample{Value: int64(1), TS: tt.ts}, &st, t0)
			if r.Quality != tt.quality || !r.TS.Equal(tt.wantTS) {
				t.Fatalf("reading %+v: want %s at %s", r, tt.quality, tt.wantTS)
			}
			if tt.quality == buffer.Uncertain && !strings.Contains(r.Error, formatTime(src)) {
				t.Fatalf("reason %q does not name the source time", r.Error)
			}
		})
	}
}
