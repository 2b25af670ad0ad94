package collector

import (
	"encoding/binary"
	"encoding/json"
	"math"
	"testing"
	"time"

	"github.com/linegate/linegate/buffer"
	"github.com/linegate/linegate/drivers"
)

// fuzzValue decodes one value of every shape a driver delivers (nil, bool,
// int64, uint64, float64 incl. NaN and ±Inf, string, and []any of those,
// nested) from b; it returns what is left of b.
func fuzzValue(b []byte, depth int) (any, []byte) {
	if len(b) == 0 {
		return nil, b
	}
	kind, b := b[0], b[1:]
	word := func() uint64 {
		var w [8]byte
		n := copy(w[:], b)
		b = b[n:]
		return binary.LittleEndian.Uint64(w[:])
	}
	switch kind % 11 {
	case 0:
		return nil, b
	case 1:
		return kind&0x80 != 0, b
	case 2:
		return int64(word()), b
	case 3:
		return word(), b
	case 4:
		return math.Float64frombits(word()), b
	case 5:
		return []float64{math.NaN(), math.Inf(1), math.Inf(-1), 0, math.Copysign(0, -1), 1e308}[int(kind>>4)%6], b
	case 6:
		n := min(int(kind>>4), len(b))
		s := string(b[:n])
		return s, b[n:]
	case 7:
		return int64(int8(kind)), b // small numbers: state codes, bits, counters
	case 8, 9:
		if depth >= 3 {
			return nil, b
		}
		n := int(kind>>4) % 5
		arr := make([]any, n)
		for i := range arr {
			arr[i], b = fuzzValue(b, depth+1)
		}
		return arr, b
	default:
		return float64(int16(word())) / 10, b
	}
}

// fuzzTags is one tag of every normalization the collector does.
func fuzzTags() []Tag {
	return []Tag{
		{Name: "plain", Class: "process"},
		{Name: "deadband", Class: "process", Deadband: 0.5, ReportEvery: 3 * time.Second},
		{Name: "heartbeat", Class: "process", ReportEvery: 2 * time.Second},
		{Name: "scaled", Class: "process", Scale: 0.1, Offset: -40, Float32: true, Limits: &[2]float64{-50, 50}},
		{Name: "mapped", Class: "process", Map: &LinearMap{RawLo: 0, RawHi: 27648, Lo: 0, Hi: 100}, DeadbandPercent: 1},
		{Name: "state", Class: "equipment", States: map[int64]string{0: "stopped", 1: "running"}, ReportEvery: time.Second},
		{Name: "state_text", Class: "equipment", State: true, Deadband: 1},
		{Name: "state_bits", Class: "equipment", StateBits: []StateBit{{Bit: 0, State: "fault"}, {Bit: 63, State: "running"}}, DefaultState: "idle"},
		{Name: "alarms", Class: "equipment", Alarms: []Alarm{{Bit: 0, Text: "door"}, {Bit: 63, Text: "top"}}, ReportEvery: time.Second},
		{Name: "counter16", Class: "equipment", Counter: true, CounterBits: 16, Deadband: 1},
		{Name: "counter64", Class: "equipment", Counter: true},
		{Name: "ms", Class: "time", ToSeconds: 1e-3, Deadband: 0.01},
		{Name: "unix_ms", Class: "time", Timestamp: UnixMillis, ReportEvery: time.Second},
		{Name: "unix_s", Class: "time", Timestamp: UnixSeconds},
		{Name: "s7_dt", Class: "time", Timestamp: S7DT},
		{Name: "opcua_time", Class: "time", Timestamp: OPCUATime},
		{Name: "stale", Class: "process", StaleAfter: time.Second, Deadband: 0.1},
	}
}

// FuzzEmit drives a device with every tag kind (and a shift plan) through
// cycles of fuzzed samples: any value shape, quality and source time. No
// input may panic, every published value must be one the payload encodes,
// and a good reading carries no error.
func FuzzEmit(f *testing.F) {
	f.Add([]byte{8 | 3<<4, 4, 0, 0, 0, 0, 0, 0, 0x37, 0x40, 2, 1, 0, 0, 0, 0, 0, 0, 0})
	f.Add([]byte{9 | 2<<4, 8 | 1<<4, 7, 6 | 3<<4, 'a', 'b', 'c', 5 | 1<<4})
	f.Add([]byte{3, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 2, 0, 0, 0, 0, 0, 0, 0, 0x80})
	f.Fuzz(func(t *testing.T, data []byte) {
		plan, err := NewShiftPlan([]string{"06:00", "14:00", "22:00"}, nil, time.Second)
		if err != nil {
			t.Fatal(err)
		}
		sink := &memSink{}
		c, err := New(Options{Sink: sink, Devices: []Device{{Name: "fuzz", Interval: time.Second, Driver: &scriptDriver{}, Tags: fuzzTags(), Shifts: plan}}})
		if err != nil {
			t.Fatal(err)
		}
		d := c.devices[0]
		n := len(d.Tags)
		now := t0
		samples := make([]drivers.Sample, n)
		for cycle := 0; cycle < 8 && len(data) > 0; cycle++ {
			for i := range samples {
				var v any
				v, data = fuzzValue(data, 0)
				s := drivers.Sample{Value: v}
				if len(data) > 0 {
					ctl := data[0]
					data = data[1:]
					s.Quality = drivers.Quality(ctl % 4) // 3 is no known quality
					if s.Quality != drivers.Good {
						s.Err = errString("fuzzed fault")
					}
					if ctl&0x10 != 0 {
						s.TS = now.Add(time.Duration(int8(ctl)) * time.Hour)
					}
				}
				samples[i] = s
			}
			now = now.Add(time.Duration(1+cycle%3) * 700 * time.Millisecond)
			if err := c.guard(d, "normalize", func() {
				c.emit(d, now, now, n, func(i int) (int, drivers.Sample) { return i, samples[i] })
			}); err != nil {
				t.Fatal(err)
			}
		}
		msgs, events := sink.snapshot()
		for _, m := range msgs {
			for _, r := range m.Readings {
				if r.Quality == buffer.Good && r.Error != "" {
					t.Fatalf("good reading with an error: %+v", r)
				}
				if !encodable(r.Value) {
					t.Fatalf("reading %s: value %#v cannot be published", r.Tag, r.Value)
				}
				for _, a := range r.Attrs {
					if !encodable(a.Value) {
						t.Fatalf("reading %s: attribute %s %#v cannot be published", r.Tag, a.Key, a.Value)
					}
				}
			}
		}
		if _, err := json.Marshal(events); err != nil {
			t.Fatalf("events: %v", err)
		}
	})
}

type errString string

func (e errString) Error() string { return string(e) }

// encodable: the shapes the payload encoders know, no NaN or Inf (JSON has
// none).
func encodable(v any) bool {
	switch x := v.(type) {
	case nil, bool, int64, uint64, string:
		return true
	case float64:
		return !math.IsNaN(x) && !math.IsInf(x, 0)
	case []any:
		for _, e := range x {
			if !encodable(e) {
				return false
			}
		}
		return true
	}
	return false
}
