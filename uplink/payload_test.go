package uplink

import (
	"bytes"
	"encoding/json"
	"errors"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/linegate/linegate/buffer"
)

var testGW = Gateway{ID: "line1-pc", Site: "plant-a", Area: "assembly", Line: "line1"}

func mustTime(s string) time.Time {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		panic(err)
	}
	return t
}

// designMessage is the data payload example of the MQTT contract
// (README.md, "Topics and payload"), as in testdata/design_example.json.
func designMessage() buffer.Message {
	ts := mustTime("2026-11-27T10:15:02.101Z")
	return buffer.Message{
		Seq: 18234, Created: mustTime("2026-11-27T10:15:02.123456Z"), Equipment: "press01", Class: "process",
		Readings: []buffer.Reading{
			{Tag: "temperature", Value: 23.5, Unit: "degC", Quality: buffer.Good, TS: ts},
			{Tag: "speed", Value: nil, Unit: "", Quality: buffer.Bad, Error: "modbus exception 2 (illegal data address)", TS: ts},
		},
	}
}

func readGolden(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return bytes.TrimSuffix(b, []byte("\n"))
}

func TestGoldenPayloads(t *testing.T) {
	ts := mustTime("2026-11-27T10:15:01.999Z")
	// A local time zone must not leak into the payload: ts is always UTC "Z".
	cet := time.FixedZone("CET", 3600)
	tests := []struct {
		golden string
		got    []byte
	}{
		{"design_example.json", AppendJSON(nil, designMessage(), testGW, false)},
		{"equipment_attrs.json", AppendJSON(nil, buffer.Message{
			Seq: 7, Created: mustTime("2026-11-27T11:15:02+01:00").In(cet), Equipment: "press01", Class: "equipment",
			Readings: []buffer.Reading{
				{Tag: "state", Value: "running", Quality: buffer.Good, TS: ts,
					Attrs: []buffer.Attr{{Key: "previous", Value: "idle"}}},
				{Tag: "good_parts", Value: uint64(math.MaxUint64), Quality: buffer.Good, TS: ts,
					// "ts" would collide with the reading's own field and is dropped.
					Attrs: []buffer.Attr{{Key: "delta", Value: int64(3)}, {Key: "ts", Value: "x"}}},
				{Tag: "door_open", Value: false, Quality: buffer.Uncertain, Error: "stale: last read 5s ago", TS: ts},
				// The error of a good reading is not part of the contract.
				{Tag: "cycle_time", Value: 1e-7, Unit: "s", Quality: buffer.Good, Error: "ignored", TS: ts},
			},
		}, testGW, true)},
		{"event_overflow.json", AppendEventJSON(nil, buffer.Event{
			ID: 3, Type: "buffer_overflow", TS: mustTime("2026-11-27T10:15:03Z"),
			Attrs: []buffer.Attr{{Key: "dropped_seq_from", Value: uint64(100)}, {Key: "dropped_seq_to", Value: uint64(180)},
				{Key: "event", Value: "not me"}},
		}, testGW)},
		{"status_online.json", StatusJSON(testGW, "online", mustTime("2026-11-27T10:15:00Z"), "0.1.0")},
	}
	for _, tt := range tests {
		t.Run(tt.golden, func(t *testing.T) {
			want := readGolden(t, tt.golden)
			if !bytes.Equal(tt.got, want) {
				t.Errorf("payload differs from testdata/%s\n got: %s\nwant: %s", tt.golden, tt.got, want)
			}
			if !json.Valid(tt.got) {
				t.Errorf("invalid JSON: %s", tt.got)
			}
		})
	}
}

// marshalStd is what encoding/json writes for v, without HTML escaping.
func marshalStd(t testing.TB, v any) string {
	t.Helper()
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		t.Fatalf("encoding/json %#v: %v", v, err)
	}
	return strings.TrimSuffix(b.String(), "\n")
}

type stringer struct{}

func (stringer) String() string { return "I am a stringer" }

type panicky struct{}

func (panicky) String() string { panic("boom") }

func TestAppendValueMatchesEncodingJSON(t *testing.T) {
	values := []any{
		nil, true, false,
		int64(0), int64(-1), int64(math.MinInt64), int64(math.MaxInt64),
		uint64(0), uint64(math.MaxUint64), int(-42), int8(-8), int16(1600), int32(-320000),
		uint(7), uint8(255), uint16(65535), uint32(4294967295),
		0.0, math.Copysign(0, -1), 23.5, -23.5, 0.1, 1e20, 1e21, 123456789e15, 1e-6, 1e-7, 5e-324,
		math.MaxFloat64, -math.MaxFloat64, math.SmallestNonzeroFloat64, 1.0 / 3, 2.5e-10,
		float32(0.1), float32(1e21), float32(3.4028235e38), float32(1e-7), float32(-2.5),
		"", "plain", `quote " backslash \ slash /`, "tab\tnl\ncr\rbs\bff\f", "\x00\x01\x1f\x7f",
		"<html> & 'amp'", "ünïcödé ✓ 😀", "bad \xff\xfe utf8 \xc3", "\u2028\u2029", "\xed\xa0\x80",
	}
	for _, v := range values {
		got := string(appendValue(nil, v))
		if want := marshalStd(t, v); got != want {
			t.Errorf("appendValue(%#v) = %s, encoding/json writes %s", v, got, want)
		}
	}
}

func TestAppendValueSpecial(t *testing.T) {
	tests := []struct {
		name string
		v    any
		want string
	}{
		{"NaN", math.NaN(), "null"},
		{"+Inf", math.Inf(1), "null"},
		{"-Inf", math.Inf(-1), "null"},
		{"float32 NaN", float32(math.NaN()), "null"},
		{"float32 Inf", float32(math.Inf(1)), "null"},
		{"time", mustTime("2026-11-27T11:15:02.5+01:00"), `"2026-11-27T10:15:02.500Z"`},
		{"duration in seconds", 1500 * time.Millisecond, "1.5"},
		{"stringer", stringer{}, `"I am a stringer"`},
		{"error", errors.New(`read "x": timeout`), `"read \"x\": timeout"`},
		{"panicking stringer", panicky{}, `"%!v(PANIC=String method: boom)"`},
		{"slice", []int{1, 2}, `"[1 2]"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := string(appendValue(nil, tt.v)); got != tt.want {
				t.Errorf("got %s, want %s", got, tt.want)
			}
		})
	}
}

func TestAppendTime(t *testing.T) {
	tests := []struct {
		in   time.Time
		want string
	}{
		{mustTime("2026-11-27T10:15:02.123456789Z"), `"2026-11-27T10:15:02.123Z"`},
		{mustTime("2026-11-27T10:15:02Z"), `"2026-11-27T10:15:02.000Z"`},
		{mustTime("2026-11-27T00:15:02.9999-05:00"), `"2026-11-27T05:15:02.999Z"`},
		{time.Time{}, `"0001-01-01T00:00:00.000Z"`},
	}
	for _, tt := range tests {
		if got := string(appendTime(nil, tt.in)); got != tt.want {
			t.Errorf("appendTime(%v) = %s, want %s", tt.in, got, tt.want)
		}
	}
}

// TestAppendJSONRoundTrip checks that encoding/json reads back the values
// that went in, for every value type the buffer stores.
func TestAppendJSONRoundTrip(t *testing.T) {
	ts := mustTime("2026-11-27T10:15:02.101Z")
	m := buffer.Message{Seq: math.MaxUint64, Created: ts, Equipment: "oven\"02", Class: "time",
		Readings: []buffer.Reading{
			{Tag: "i", Value: int64(math.MinInt64), TS: ts},
			{Tag: "u", Value: uint64(math.MaxUint64), TS: ts},
			{Tag: "f", Value: 0.1, TS: ts},
			{Tag: "big", Value: 1e300, TS: ts},
			{Tag: "b", Value: true, TS: ts},
			{Tag: "s", Value: "a\nb\u00e9", TS: ts, Attrs: []buffer.Attr{{Key: "k\"ey", Value: nil}}},
			{Tag: "nan", Value: math.NaN(), Quality: buffer.Bad, Error: "not a number", TS: ts},
		}}
	gw := Gateway{ID: "gw\x00", Site: "s", Area: "a", Line: "l"}
	out := AppendJSON(nil, m, gw, true)

	type reading struct {
		Tag     string          `json:"tag"`
		Value   json.RawMessage `json:"value"`
		Quality string          `json:"quality"`
		Error   string          `json:"error"`
		TS      time.Time       `json:"ts"`
	}
	var got struct {
		Schema, ID, Gateway                string
		Seq                                uint64
		Site, Area, Line, Equipment, Class string
		TS                                 time.Time
		Historical                         bool
		Readings                           []reading
	}
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatalf("decode %s: %v", out, err)
	}
	if got.Schema != Schema || got.ID != "gw\x00:18446744073709551615" || got.Gateway != gw.ID ||
		got.Seq != m.Seq || got.Equipment != m.Equipment || got.Class != m.Class ||
		!got.TS.Equal(ts) || !got.Historical || len(got.Readings) != len(m.Readings) {
		t.Fatalf("decoded %+v from %s", got, out)
	}
	for i, r := range got.Readings {
		want := m.Readings[i].Value
		var v any
		d := json.NewDecoder(bytes.NewReader(r.Value))
		d.UseNumber()
		if err := d.Decode(&v); err != nil {
			t.Fatal(err)
		}
		switch w := want.(type) {
		case float64:
			if math.IsNaN(w) {
				if v != nil {
					t.Errorf("%s: NaN came back as %v", r.Tag, v)
				}
				continue
			}
			f, err := v.(json.Number).Float64()
			if err != nil || f != w {
				t.Errorf("%s: %v came back as %v", r.Tag, w, v)
			}
		case int64, uint64:
			if n, ok := v.(json.Number); !ok || n.String() != marshalStd(t, w) {
				t.Errorf("%s: %v came back as %v", r.Tag, w, v)
			}
		default:
			if !reflect.DeepEqual(v, w) {
				t.Errorf("%s: %#v came back as %#v", r.Tag, w, v)
			}
		}
		if !r.TS.Equal(ts) || r.Quality != m.Readings[i].Quality.String() {
			t.Errorf("%s: ts %v quality %s", r.Tag, r.TS, r.Quality)
		}
	}
	if e := got.Readings[6].Error; e != "not a number" {
		t.Errorf("error field %q", e)
	}
	var raw struct{ Readings []map[string]any }
	if err := json.Unmarshal(out, &raw); err != nil {
		t.Fatal(err)
	}
	if v, ok := raw.Readings[5]["k\"ey"]; !ok || v != nil {
		t.Errorf("attribute k\"ey: %v %v", v, ok)
	}
}

func FuzzAppendJSON(f *testing.F) {
	f.Add("temperature", "degC", "timeout", "delta", "running", 23.5, int64(-3), uint64(7))
	f.Add("\x00\"\\", "\xff", "\u2028", "k\xc3", "\xed\xa0\x80", math.Inf(1), int64(math.MinInt64), uint64(math.MaxUint64))
	f.Add("", "", "", "", "", 1e21, int64(0), uint64(0))
	f.Add("a", "b", "c", "d", "e", 1e-7, int64(1), uint64(1))
	f.Fuzz(func(t *testing.T, tag, unit, errText, key, sval string, fv float64, iv int64, uv uint64) {
		ts := time.Unix(0, iv).UTC()
		m := buffer.Message{Seq: uv, Created: ts, Equipment: sval, Class: key,
			Readings: []buffer.Reading{
				{Tag: tag, Value: fv, Unit: unit, Quality: buffer.Bad, Error: errText, TS: ts,
					Attrs: []buffer.Attr{{Key: key, Value: sval}, {Key: unit, Value: iv}}},
				{Tag: sval, Value: sval, Quality: buffer.Quality(uv % 4), TS: ts,
					Attrs: []buffer.Attr{{Key: tag, Value: uv}, {Key: errText, Value: float32(fv)}}},
			}}
		gw := Gateway{ID: tag, Site: unit, Area: errText, Line: key}
		out := AppendJSON(nil, m, gw, iv%2 == 0)
		if !json.Valid(out) {
			t.Fatalf("invalid JSON: %q", out)
		}
		ev := AppendEventJSON(nil, buffer.Event{Type: sval, TS: ts, Attrs: []buffer.Attr{{Key: key, Value: fv}}}, gw)
		if !json.Valid(ev) {
			t.Fatalf("invalid event JSON: %q", ev)
		}
		if st := StatusJSON(gw, sval, ts, errText); !json.Valid(st) {
			t.Fatalf("invalid status JSON: %q", st)
		}
		// Each value is written exactly as encoding/json writes it.
		for _, s := range []string{tag, unit, errText, key, sval} {
			if got, want := string(appendString(nil, s)), marshalStd(t, s); got != want {
				t.Fatalf("string %q: got %s, encoding/json %s", s, got, want)
			}
		}
		if !math.IsNaN(fv) && !math.IsInf(fv, 0) {
			if got, want := string(appendFloat(nil, fv, 64)), marshalStd(t, fv); got != want {
				t.Fatalf("float %v: got %s, encoding/json %s", fv, got, want)
			}
		}
		if f32 := float32(fv); !math.IsNaN(float64(f32)) && !math.IsInf(float64(f32), 0) {
			if got, want := string(appendFloat(nil, float64(f32), 32)), marshalStd(t, f32); got != want {
				t.Fatalf("float32 %v: got %s, encoding/json %s", f32, got, want)
			}
		}
		var back struct {
			Gateway string
			Seq     uint64
		}
		if err := json.Unmarshal(out, &back); err != nil || back.Seq != uv {
			t.Fatalf("seq %d came back as %d (%v)", uv, back.Seq, err)
		}
	})
}

func BenchmarkAppendJSON(b *testing.B) {
	now := time.Now()
	m := buffer.Message{Seq: 123456789, Created: now, Equipment: "press01", Class: "process"}
	for i := range 10 {
		r := buffer.Reading{Tag: "temperature_zone_" + string(rune('0'+i)), Unit: "degC", TS: now}
		switch i % 4 {
		case 0:
			r.Value = 23.5 + float64(i)
		case 1:
			r.Value = int64(i * 1000)
		case 2:
			r.Value = "running"
			r.Attrs = []buffer.Attr{{Key: "previous", Value: "idle"}}
		case 3:
			r.Value, r.Quality, r.Error = nil, buffer.Bad, "modbus exception 2 (illegal data address)"
		}
		m.Readings = append(m.Readings, r)
	}
	buf := AppendJSON(nil, m, testGW, false)
	b.SetBytes(int64(len(buf)))
	b.ReportAllocs()
	for b.Loop() {
		buf = AppendJSON(buf[:0], m, testGW, false)
	}
}

func TestAppendJSONArrays(t *testing.T) {
	m := buffer.Message{Seq: 1, Equipment: "oven02", Class: "process", Readings: []buffer.Reading{
		{Tag: "zones", Value: []any{180.5, int64(-2), uint64(3), "x", true, nil, math.NaN(), []any{1.0}}},
	}}
	out := AppendJSON(nil, m, Gateway{ID: "g", Site: "s", Area: "a", Line: "l"}, false)
	if !json.Valid(out) {
		t.Fatalf("invalid JSON: %s", out)
	}
	if want := `"value":[180.5,-2,3,"x",true,null,null,[1]]`; !bytes.Contains(out, []byte(want)) {
		t.Fatalf("got %s, want it to contain %s", out, want)
	}
}

// appendTime writes the layout by hand; it must agree with AppendFormat
// for every instant, including the years the fast path leaves out.
func TestAppendTimeMatchesLayout(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	zone := time.FixedZone("plant", 5*3600+30*60)
	cases := []time.Time{
		time.Unix(0, 0),
		time.Date(2026, 11, 27, 23, 59, 59, 999_999_999, time.UTC),
		time.Date(2026, 3, 29, 1, 0, 0, 1_000_000, zone),
		time.Date(9999, 12, 31, 23, 59, 59, 999_000_000, time.UTC),
		time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC),
		time.Date(-1, 1, 1, 0, 0, 0, 0, time.UTC),
		time.Date(1, 1, 1, 0, 0, 0, 0, time.UTC),
	}
	for range 20000 {
		cases = append(cases, time.Unix(rng.Int64N(400*365*86400)-100*365*86400, rng.Int64N(1e9)).In(zone))
	}
	for _, c := range cases {
		want := `"` + c.UTC().Format(timeLayout) + `"`
		if got := string(appendTime(nil, c)); got != want {
			t.Fatalf("appendTime(%v) = %s, want %s", c, got, want)
		}
	}
}
