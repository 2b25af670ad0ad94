package buffer

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math"
	"reflect"
	"strings"
	"testing"
	"time"
)

var t0 = time.Date(2026, 11, 27, 10, 15, 2, 123456789, time.UTC)

// sampleMessage is a message of n readings with every value kind.
func sampleMessage(seq uint64, n int) Message {
	m := Message{Seq: seq, Created: t0, Equipment: "press01", Class: "process"}
	for i := range n {
		r := Reading{Tag: "tag" + string(rune('a'+i%26)), Unit: "degC", TS: t0.Add(-time.Duration(i) * time.Millisecond)}
		switch i % 6 {
		case 0:
			r.Value = 23.5 + float64(i)
		case 1:
			r.Value = int64(-1000 * i)
		case 2:
			r.Value = uint64(1<<40 + i)
		case 3:
			r.Value = i%2 == 0
		case 4:
			r.Value = "running"
		case 5:
			r.Value, r.Quality, r.Error = nil, Bad, "modbus exception 2 (illegal data address)"
		}
		if i%4 == 0 {
			r.Attrs = []Attr{{Key: "delta", Value: int64(i)}, {Key: "previous", Value: "idle"}}
		}
		m.Readings = append(m.Readings, r)
	}
	return m
}

func encodeMessage(t testing.TB, m Message) []byte {
	t.Helper()
	rec, err := appendMessage(nil, &m)
	if err != nil {
		t.Fatalf("encode: %v", err)
	}
	return sealRecord(rec)
}

func TestCodecRoundTrip(t *testing.T) {
	far := time.Date(1970, 1, 1, 0, 0, 0, 0, time.UTC)
	tests := []struct {
		name string
		in   Message
		want Message // zero: same as in
	}{
		{name: "empty", in: Message{}},
		{name: "no readings", in: Message{Seq: 7, Created: t0, Equipment: "oven02", Class: "time"}},
		{name: "all kinds", in: sampleMessage(1, 12)},
		{name: "extremes", in: Message{Seq: math.MaxUint64, Created: t0, Readings: []Reading{
			{Tag: "a", Value: int64(math.MinInt64)},
			{Tag: "b", Value: int64(math.MaxInt64)},
			{Tag: "c", Value: uint64(math.MaxUint64)},
			{Tag: "d", Value: math.Inf(-1)},
			{Tag: "e", Value: math.SmallestNonzeroFloat64},
			{Tag: "f", Value: ""},
			{Tag: "ü ✓", Value: strings.Repeat("x", 300), Unit: "µs"},
		}}},
		{name: "arrays", in: Message{Created: t0, Readings: []Reading{
			{Tag: "temps", Value: []any{1.5, int64(-2), uint64(3), "x", true, nil}},
			{Tag: "empty", Value: []any{}},
			{Tag: "matrix", Value: []any{[]any{1.0, 2.0}, []any{3.0, 4.0}}},
		}}},
		{name: "zero and distant times", in: Message{Created: t0, Readings: []Reading{
			{Tag: "zero"},
			{Tag: "epoch", TS: far},
			{Tag: "max", TS: time.Date(9999, 12, 31, 23, 59, 59, 999999999, time.UTC)},
			{Tag: "min", TS: time.Date(1, 1, 1, 0, 0, 0, 1, time.UTC)},
		}}},
		{name: "readings without created", in: Message{Readings: []Reading{{Tag: "x", TS: t0}}}},
		{name: "local times are stored as instants, decoded as UTC",
			in:   Message{Created: t0.In(time.FixedZone("CET", 3600)), Readings: []Reading{{Tag: "x", TS: t0.In(time.FixedZone("X", -7200))}}},
			want: Message{Created: t0, Readings: []Reading{{Tag: "x", TS: t0}}}},
		{name: "narrow kinds are widened",
			in: Message{Readings: []Reading{{Tag: "i", Value: 5}, {Tag: "u8", Value: uint8(200)}, {Tag: "f32", Value: float32(0.5)},
				{Tag: "i16", Value: int16(-3)}, {Tag: "attr", Attrs: []Attr{{Key: "k", Value: uint32(9)}}}}},
			want: Message{Readings: []Reading{{Tag: "i", Value: int64(5)}, {Tag: "u8", Value: uint64(200)}, {Tag: "f32", Value: 0.5},
				{Tag: "i16", Value: int64(-3)}, {Tag: "attr", Attrs: []Attr{{Key: "k", Value: uint64(9)}}}}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			want := tt.want
			if reflect.DeepEqual(want, Message{}) {
				want = tt.in
			}
			got, err := decodeMessage(encodeMessage(t, tt.in))
			if err != nil {
				t.Fatalf("decode: %v", err)
			}
			if !messagesEqual(got, want) {
				t.Fatalf("round trip:\n got %+v\nwant %+v", got, want)
			}
		})
	}
}

// messagesEqual compares instants, not time.Time representations.
func messagesEqual(a, b Message) bool {
	if a.Seq != b.Seq || !a.Created.Equal(b.Created) || a.Equipment != b.Equipment || a.Class != b.Class || len(a.Readings) != len(b.Readings) {
		return false
	}
	for i := range a.Readings {
		ra, rb := a.Readings[i], b.Readings[i]
		if !ra.TS.Equal(rb.TS) {
			return false
		}
		ra.TS, rb.TS = time.Time{}, time.Time{}
		if !reflect.DeepEqual(ra, rb) {
			return false
		}
	}
	return true
}

func TestCodecEventRoundTrip(t *testing.T) {
	in := Event{ID: 42, Type: EventOverflow, TS: t0, Attrs: []Attr{
		{Key: "dropped_seq_from", Value: uint64(100)}, {Key: "dropped_seq_to", Value: uint64(180)}, {Key: "dropped", Value: uint64(81)}}}
	rec, err := appendEvent(nil, &in)
	if err != nil {
		t.Fatal(err)
	}
	got, err := decodeEvent(sealRecord(rec))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, in) {
		t.Fatalf("got %+v, want %+v", got, in)
	}
	from, to, n, ok := overflowRange(got)
	if !ok || from != 100 || to != 180 || n != 81 {
		t.Fatalf("overflowRange = %d %d %d %v", from, to, n, ok)
	}
}

func TestCodecEncodeErrors(t *testing.T) {
	tests := []struct {
		name string
		m    Message
		want string
	}{
		{"unsupported value", Message{Readings: []Reading{{Tag: "t", Value: struct{}{}}}}, `reading "t": unsupported value type struct {}`},
		{"array too deep", Message{Readings: []Reading{{Tag: "t", Value: []any{[]any{[]any{[]any{[]any{1.0}}}}}}}}, `array nested deeper than 4`},
		{"unsupported attr", Message{Readings: []Reading{{Tag: "t", Attrs: []Attr{{Key: "k", Value: []byte("x")}}}}}, `attr "k": unsupported value type []uint8`},
		{"created out of range", Message{Created: time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)}, "created: time"},
		{"ts out of range", Message{Created: t0, Readings: []Reading{{Tag: "t", TS: time.Date(-5, 1, 1, 0, 0, 0, 0, time.UTC)}}}, `reading "t": ts: time`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := appendMessage(nil, &tt.m)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want it to contain %q", err, tt.want)
			}
		})
	}
}

func TestCodecDecodeErrors(t *testing.T) {
	valid := encodeMessage(t, sampleMessage(3, 4))
	reseal := func(body []byte) []byte { return sealRecord(append([]byte(nil), body...)) }
	header := func(rest ...byte) []byte {
		b := append([]byte{recordVersion}, make([]byte, 8)...)
		return reseal(append(b, rest...))
	}
	flipped := append([]byte(nil), valid...)
	flipped[20] ^= 0x40
	tests := []struct {
		name string
		in   []byte
		want string
	}{
		{"nil", nil, "too short"},
		{"short", []byte{1, 2, 3}, "too short"},
		{"bit flip", flipped, "checksum mismatch"},
		{"version", reseal(append([]byte{9}, valid[1:len(valid)-crcSize]...)), "unknown record version 9"},
		{"trailing", reseal(append(append([]byte(nil), valid[:len(valid)-crcSize]...), 0)), "trailing"},
		{"huge count", header(timeZero, 0, 0, 0xff, 0xff, 0xff, 0xff, 0x0f), "exceeds the record"},
		{"huge string", header(timeZero, 0x80, 0x01), "exceeds the record"},
		{"bad time kind", header(7), "unknown time kind"},
		{"nanoseconds", header(timeAbs, 0, 0xff, 0xff, 0xff, 0xff, 0x0f), "out of range"},
		{"year 10000", header(append(binary.AppendVarint([]byte{timeAbs}, maxUnix+1), 0)...), "out of range"},
		{"delta without base", header(timeZero, 0, 0, 1, 1, 't', 0, 0, 0, 0, timeDelta, 2, 0), "without a base"},
		{"bad value kind", header(timeZero, 0, 0, 1, 1, 't', 9, 0, 0, 0, 0, 0, 0), "unknown value kind"},
		{"short float", header(timeZero, 0, 0, 1, 1, 't', kindFloat, 1, 2, 3, 4, 5, 6, 7), "end of record in float"},
		{"overlong varint", header(timeZero, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01), "varint"},
		{"varint overflow", header(timeZero, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02), "overflows"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := decodeMessage(tt.in)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want it to contain %q", err, tt.want)
			}
			if body, err := checkRecord(tt.in); err == nil {
				checkBatchDecode(t, body)
			}
		})
	}
	// Every truncation of a valid body fails cleanly.
	body := valid[:len(valid)-crcSize]
	for n := range len(body) {
		if _, err := decodeMessageBody(body[:n]); err == nil {
			t.Fatalf("truncated to %d bytes: decoded without error", n)
		}
		checkBatchDecode(t, body[:n])
	}
}

func TestCodecAllocations(t *testing.T) {
	m := sampleMessage(1, 10)
	for i := range m.Readings {
		m.Readings[i].Attrs = nil
	}
	rec := encodeMessage(t, m)
	allocs := testing.AllocsPerRun(100, func() {
		if _, err := decodeMessage(rec); err != nil {
			t.Fatal(err)
		}
	})
	// One string for all the text, one readings slice, and one box per
	// number that is not a small integer: far fewer than one per field.
	if allocs > 12 {
		t.Fatalf("decode of 10 readings: %v allocations, want <= 12", allocs)
	}
}

func TestCodecCompact(t *testing.T) {
	// A typical process reading (float, unit, good, ts a few ms before
	// created) should cost little more than its text.
	m := Message{Created: t0, Equipment: "press01", Class: "process",
		Readings: []Reading{{Tag: "temperature", Value: 23.5, Unit: "degC", TS: t0.Add(-22 * time.Millisecond)}}}
	rec := encodeMessage(t, m)
	text := len("press01") + len("process") + len("temperature") + len("degC")
	if overhead := len(rec) - text; overhead > 45 {
		t.Fatalf("record is %d bytes for %d bytes of text: %d bytes overhead", len(rec), text, overhead)
	}
}

func FuzzDecodeMessage(f *testing.F) {
	for _, m := range []Message{{}, sampleMessage(1, 1), sampleMessage(2, 7), richMessage(3)} {
		rec, err := appendMessage(nil, &m)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(sealRecord(rec))
	}
	ev := Event{ID: 1, Type: EventCorrupt, TS: t0, Attrs: []Attr{{Key: "moved_to", Value: "/x"}}}
	rec, _ := appendEvent(nil, &ev)
	f.Add(sealRecord(rec))
	f.Add([]byte{recordVersion, 0, 0, 0, 0, 0, 0, 0, 1, timeAbs, 0x80})

	f.Fuzz(func(t *testing.T, data []byte) {
		// Through the CRC (as stored) and straight to the body parser, which
		// the CRC would otherwise shield from almost every input.
		for _, m := range decodeAll(data) {
			rec, err := appendMessage(nil, &m)
			if err != nil {
				t.Fatalf("decoded message does not encode: %v", err)
			}
			again, err := decodeMessage(sealRecord(rec))
			if err != nil {
				t.Fatalf("re-encoded message does not decode: %v", err)
			}
			rec2, err := appendMessage(nil, &again)
			if err != nil || !bytes.Equal(rec, rec2) {
				t.Fatalf("encoding not stable: %v\n%x\n%x", err, rec, rec2)
			}
		}
		checkBatchDecode(t, data)
		if body, err := checkRecord(data); err == nil {
			checkBatchDecode(t, body)
		}
		if e, err := decodeEventBody(data); err == nil {
			if _, err := appendEvent(nil, &e); err != nil {
				t.Fatalf("decoded event does not encode: %v", err)
			}
		}
		_, _ = decodeEvent(data)
		if body, err := checkRecord(data); err == nil {
			_, _ = recordCreated(body)
		}
	})
}

func decodeAll(data []byte) []Message {
	var out []Message
	if m, err := decodeMessage(data); err == nil {
		out = append(out, m)
	}
	if m, err := decodeMessageBody(data); err == nil {
		out = append(out, m)
	}
	return out
}

// checkBatchDecode checks that Read's decoder (batch, with the name table
// and shapes) agrees with decodeMessageBody on body, also on a second pass,
// when the table and the shape already hold the body's strings and values.
func checkBatchDecode(t *testing.T, body []byte) {
	t.Helper()
	want, werr := decodeMessageBody(body)
	nt := newNameTable()
	for pass := range 2 {
		bt := batch{names: nt, readings: make([]Reading, 3)}
		got, gerr := bt.message(body)
		if fmt.Sprint(gerr) != fmt.Sprint(werr) {
			t.Fatalf("pass %d: batch decode error %v, decodeMessageBody %v", pass, gerr, werr)
		}
		if werr == nil {
			encodedEqual(t, got, want)
		}
	}
}
