package buffer

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"math"
	"time"
)

// Record layout, version 1. Messages and events are stored as bbolt values in
// this compact binary form; keys are the seq (or event ID) as 8 bytes
// big-endian so that bbolt's byte order is the queue order.
//
//	version   1 byte (recordVersion); a reader refuses versions it does not know
//	seq / id  8 bytes big-endian. Fixed width, so that Append can encode the
//	          message outside the queue lock and patch the seq in under it.
//	body      message: created time, equipment, class, readings
//	          event:   type, ts, attrs
//	crc       4 bytes little-endian, CRC-32C of everything before it. bbolt
//	          checksums only its meta pages; without this a flipped bit in a
//	          value would be published to the MES as a wrong reading.
//
// Body encodings:
//
//	string   uvarint length, bytes
//	time     kind byte: 0 zero time | 1 absolute: varint Unix seconds, uvarint
//	         nanoseconds | 2 delta: varint nanoseconds from the message's
//	         created time (readings are sampled within milliseconds of it, so
//	         this is usually 1-4 bytes instead of 10)
//	value    kind byte: 0 nil | 1 false | 2 true | 3 int64 (zig-zag varint) |
//	         4 uint64 (uvarint) | 5 float64 (8 bytes LE IEEE 754) | 6 string |
//	         7 array: uvarint count, values (OPC UA arrays; nesting at most
//	         maxArrayDepth deep, so a hostile record cannot exhaust the stack)
//	reading  tag, value, unit, quality byte, error, ts, uvarint attr count,
//	         attrs (key string, value)
//	message  created, equipment, class, uvarint reading count, readings
//	event    type, ts, uvarint attr count, attrs
const (
	recordVersion = 1
	recordHeader  = 1 + 8 // version + seq/id
	crcSize       = 4
)

const (
	timeZero  = 0
	timeAbs   = 1
	timeDelta = 2
)

const (
	kindNil = iota
	kindFalse
	kindTrue
	kindInt
	kindUint
	kindFloat
	kindString
	kindArray
)

// maxArrayDepth bounds nested arrays (OPC UA matrices are arrays of arrays).
const maxArrayDepth = 4

// Times outside years 1..9999 are refused: they cannot be written as RFC 3339
// in the payload, and refusing them keeps the Unix-second arithmetic exact.
const (
	minUnix = -62135596800 // 0001-01-01T00:00:00Z
	maxUnix = 253402300799 // 9999-12-31T23:59:59Z
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

var errShortRecord = errors.New("record too short")

// appendMessage appends the record of m, without its CRC (see sealRecord), to b.
func appendMessage(b []byte, m *Message) ([]byte, error) {
	b = append(b, recordVersion)
	b = binary.BigEndian.AppendUint64(b, m.Seq)
	var err error
	if b, err = appendTime(b, m.Created, time.Time{}); err != nil {
		return b, fmt.Errorf("created: %w", err)
	}
	b = appendString(b, m.Equipment)
	b = appendString(b, m.Class)
	b = binary.AppendUvarint(b, uint64(len(m.Readings)))
	for i := range m.Readings {
		r := &m.Readings[i]
		b = appendString(b, r.Tag)
		if b, err = appendValue(b, r.Value); err != nil {
			return b, fmt.Errorf("reading %q: %w", r.Tag, err)
		}
		b = appendString(b, r.Unit)
		b = append(b, byte(r.Quality))
		b = appendString(b, r.Error)
		if b, err = appendTime(b, r.TS, m.Created); err != nil {
			return b, fmt.Errorf("reading %q: ts: %w", r.Tag, err)
		}
		if b, err = appendAttrs(b, r.Attrs); err != nil {
			return b, fmt.Errorf("reading %q: %w", r.Tag, err)
		}
	}
	return b, nil
}

// messageSizeHint is a close upper estimate of the record size of m, so that
// Append allocates the record once.
func messageSizeHint(m *Message) int {
	n := recordHeader + crcSize + 12 + len(m.Equipment) + len(m.Class) + 2*binary.MaxVarintLen16
	for i := range m.Readings {
		r := &m.Readings[i]
		n += len(r.Tag) + len(r.Unit) + len(r.Error) + 4*2 + 1 + 10 + 11 + 2
		if s, ok := r.Value.(string); ok {
			n += len(s)
		}
		for _, a := range r.Attrs {
			n += len(a.Key) + 2 + 10
			if s, ok := a.Value.(string); ok {
				n += len(s)
			}
		}
	}
	return n
}

// appendEvent appends the record of e, without its CRC, to b.
func appendEvent(b []byte, e *Event) ([]byte, error) {
	b = append(b, recordVersion)
	b = binary.BigEndian.AppendUint64(b, e.ID)
	b = appendString(b, e.Type)
	var err error
	if b, err = appendTime(b, e.TS, time.Time{}); err != nil {
		return b, fmt.Errorf("event %s: ts: %w", e.Type, err)
	}
	if b, err = appendAttrs(b, e.Attrs); err != nil {
		return b, fmt.Errorf("event %s: %w", e.Type, err)
	}
	return b, nil
}

// sealRecord appends the CRC. It is done at commit time, after the seq has
// been patched in; the record needs crcSize bytes of spare capacity to avoid
// a copy.
func sealRecord(b []byte) []byte {
	return binary.LittleEndian.AppendUint32(b, crc32.Checksum(b, castagnoli))
}

// setRecordID patches the seq (or event ID) of an encoded record.
func setRecordID(b []byte, id uint64) { binary.BigEndian.PutUint64(b[1:recordHeader], id) }

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

func appendTime(b []byte, t, base time.Time) ([]byte, error) {
	if t.IsZero() {
		return append(b, timeZero), nil
	}
	sec := t.Unix()
	if sec < minUnix || sec > maxUnix {
		return b, fmt.Errorf("time %v out of range (years 1-9999)", t)
	}
	if !base.IsZero() {
		// Sub saturates on overflow; the Equal check then fails and the
		// absolute form is used.
		d := t.Sub(base)
		if base.Add(d).Equal(t) {
			return binary.AppendVarint(append(b, timeDelta), int64(d)), nil
		}
	}
	b = binary.AppendVarint(append(b, timeAbs), sec)
	return binary.AppendUvarint(b, uint64(t.Nanosecond())), nil
}

func appendAttrs(b []byte, attrs []Attr) ([]byte, error) {
	b = binary.AppendUvarint(b, uint64(len(attrs)))
	var err error
	for _, a := range attrs {
		b = appendString(b, a.Key)
		if b, err = appendValue(b, a.Value); err != nil {
			return b, fmt.Errorf("attr %q: %w", a.Key, err)
		}
	}
	return b, nil
}

// appendValue encodes the value kinds a Reading may hold. The other Go
// integer and float kinds are widened (int -> int64, uint8 -> uint64,
// float32 -> float64) so that a collector that forgot a conversion loses
// nothing; anything else is an error rather than a silent null.
func appendValue(b []byte, v any) ([]byte, error) {
	return appendValueDepth(b, v, 0)
}

func appendValueDepth(b []byte, v any, depth int) ([]byte, error) {
	switch x := v.(type) {
	case nil:
		return append(b, kindNil), nil
	case bool:
		if x {
			return append(b, kindTrue), nil
		}
		return append(b, kindFalse), nil
	case int64:
		return binary.AppendVarint(append(b, kindInt), x), nil
	case int:
		return binary.AppendVarint(append(b, kindInt), int64(x)), nil
	case int32:
		return binary.AppendVarint(append(b, kindInt), int64(x)), nil
	case int16:
		return binary.AppendVarint(append(b, kindInt), int64(x)), nil
	case int8:
		return binary.AppendVarint(append(b, kindInt), int64(x)), nil
	case uint64:
		return binary.AppendUvarint(append(b, kindUint), x), nil
	case uint:
		return binary.AppendUvarint(append(b, kindUint), uint64(x)), nil
	case uint32:
		return binary.AppendUvarint(append(b, kindUint), uint64(x)), nil
	case uint16:
		return binary.AppendUvarint(append(b, kindUint), uint64(x)), nil
	case uint8:
		return binary.AppendUvarint(append(b, kindUint), uint64(x)), nil
	case float64:
		return binary.LittleEndian.AppendUint64(append(b, kindFloat), math.Float64bits(x)), nil
	case float32:
		return binary.LittleEndian.AppendUint64(append(b, kindFloat), math.Float64bits(float64(x))), nil
	case string:
		return appendString(append(b, kindString), x), nil
	case []any:
		if depth >= maxArrayDepth {
			return b, fmt.Errorf("array nested deeper than %d", maxArrayDepth)
		}
		b = binary.AppendUvarint(append(b, kindArray), uint64(len(x)))
		var err error
		for _, e := range x {
			if b, err = appendValueDepth(b, e, depth+1); err != nil {
				return b, err
			}
		}
		return b, nil
	default:
		return b, fmt.Errorf("unsupported value type %T", v)
	}
}

// checkRecord verifies the length, CRC and version of a stored record and
// returns it without the CRC.
func checkRecord(b []byte) ([]byte, error) {
	if len(b) < recordHeader+crcSize {
		return nil, fmt.Errorf("%w: %d bytes", errShortRecord, len(b))
	}
	body, sum := b[:len(b)-crcSize], binary.LittleEndian.Uint32(b[len(b)-crcSize:])
	if got := crc32.Checksum(body, castagnoli); got != sum {
		return nil, fmt.Errorf("record checksum mismatch: stored %08x, computed %08x", sum, got)
	}
	if body[0] != recordVersion {
		return nil, fmt.Errorf("unknown record version %d", body[0])
	}
	return body, nil
}

// decodeMessage decodes a stored message record (with CRC). It never panics
// and allocates one string for all the text of the message, one slice for
// the readings, one per attribute list and one per boxed non-small number.
func decodeMessage(b []byte) (Message, error) {
	body, err := checkRecord(b)
	if err != nil {
		return Message{}, err
	}
	return decodeMessageBody(body)
}

// decodeMessageBody decodes a record without its CRC. All strings of the
// result are substrings of one copy of body, so the record's text costs one
// allocation.
func decodeMessageBody(body []byte) (Message, error) {
	d := decoder{b: body, text: string(body)}
	m := d.message(nil)
	if err := d.finish(); err != nil {
		return Message{}, err
	}
	return m, nil
}

// messageReadings returns the reading count of a checked message record
// (checkRecord's result) without decoding the readings, so that Read can
// allocate the readings of a whole batch at once.
func messageReadings(body []byte) (int, error) {
	d := decoder{b: body}
	d.header()
	d.time(time.Time{})
	d.span() // equipment
	d.span() // class
	n := d.count(minReadingSize)
	return n, d.err
}

// batch decodes the messages of one Read. Compared with decodeMessage, per
// message: the readings of all messages share one slice and their
// attributes a few, and the text is not copied as a whole; short strings
// (tags, units, equipment, classes, attribute keys, states) come from names,
// which Read keeps across calls because the same device sends the same tag
// names every cycle. Longer strings are copied one by one.
type batch struct {
	names    *nameTable
	readings []Reading // room left for the rest of the batch
	attrs    []Attr
}

// message decodes a checked message record (checkRecord's result). The
// strings of the result never point into body, which may be bbolt's mmap.
func (bt *batch) message(body []byte) (Message, error) {
	d := decoder{b: body, names: bt.names}
	m := d.message(bt)
	if err := d.finish(); err != nil {
		return Message{}, err
	}
	return m, nil
}

// newReadings returns n zeroed readings, from the batch's slice when it
// has room. The slice is capped at n, so that appending to a message's
// readings cannot overwrite the next message's.
func (bt *batch) newReadings(n int) []Reading {
	if bt == nil || len(bt.readings) < n {
		return make([]Reading, n)
	}
	rs := bt.readings[:n:n]
	bt.readings = bt.readings[n:]
	return rs
}

// attrChunk is how many attributes a batch allocates at a time: attributes
// (a counter's delta, a state's previous) are on some readings only, so they
// are not counted ahead like the readings.
const attrChunk = 32

// newAttrs is newReadings for attributes.
func (bt *batch) newAttrs(n int) []Attr {
	if bt == nil {
		return make([]Attr, n)
	}
	if len(bt.attrs) < n {
		bt.attrs = make([]Attr, max(n, attrChunk))
	}
	as := bt.attrs[:n:n]
	bt.attrs = bt.attrs[n:]
	return as
}

// maxInternLen is the longest string that nameTable keeps: names, units and
// states are short, and a long string value (a JSON blob, a message text)
// is unlikely to repeat.
const maxInternLen = 64

// Bounds of a nameTable; past one of them it starts over. 10,000 distinct
// tags (100 devices × 100 tags, each its own names) take 10,000 entries.
const (
	maxNames     = 1 << 15
	maxNameBytes = 1 << 20
)

// nameTable interns the short strings decoded by Read, so that a tag name
// read every cycle is allocated once rather than once per message. It maps
// the bytes of a string to the string, boxed: a repeated string value (a
// state) then costs no allocation either.
type nameTable struct {
	m     map[string]any
	bytes int
}

func newNameTable() *nameTable { return &nameTable{m: make(map[string]any)} }

// box returns b as a boxed string, the same one for the same bytes. The
// string is always a copy: b may be bbolt's mmap.
func (t *nameTable) box(b []byte) any {
	if len(b) == 0 {
		return "" // no allocation
	}
	if len(b) > maxInternLen {
		return string(b)
	}
	if v, ok := t.m[string(b)]; ok { // no allocation for the lookup
		return v
	}
	if len(t.m) >= maxNames || t.bytes+len(b) > maxNameBytes {
		clear(t.m)
		t.bytes = 0
	}
	s := string(b)
	v := any(s)
	t.m[s] = v
	t.bytes += len(s)
	return v
}

func (t *nameTable) intern(b []byte) string { return t.box(b).(string) }

// decodeEvent decodes a stored event record (with CRC).
func decodeEvent(b []byte) (Event, error) {
	body, err := checkRecord(b)
	if err != nil {
		return Event{}, err
	}
	return decodeEventBody(body)
}

func decodeEventBody(body []byte) (Event, error) {
	d := decoder{b: body, text: string(body)}
	var e Event
	e.ID = d.header()
	e.Type = d.str()
	e.TS = d.time(time.Time{})
	e.Attrs = d.attrs(nil)
	if err := d.finish(); err != nil {
		return Event{}, err
	}
	return e, nil
}

// recordCreated reads only the created time of a checked message record
// (checkRecord's result), for the oldest-message statistics.
func recordCreated(body []byte) (time.Time, error) {
	d := decoder{b: body, i: recordHeader}
	t := d.time(time.Time{})
	return t, d.err
}

// minReadingSize is the least a reading takes: 5 empty fields, a value
// kind and a quality byte. It bounds the allocation a garbage count can
// cause by the record's length.
const minReadingSize = 7

// decoder reads a record. The first error sticks, later reads return zero
// values, so decode functions check once at the end.
//
// The strings it returns never share memory with b, which may be bbolt's
// mmap (valid only during the transaction): they are substrings of text
// when it is set (b copied once, by decodeMessage and decodeEvent),
// otherwise interned in names or copied one by one.
type decoder struct {
	b     []byte
	i     int
	err   error
	text  string     // "" or string(b); never "" for a record, whose header is 9 bytes
	names *nameTable // nil: no interning
}

func (d *decoder) fail(format string, args ...any) {
	if d.err == nil {
		d.err = fmt.Errorf("offset %d: "+format, append([]any{d.i}, args...)...)
	}
}

func (d *decoder) finish() error {
	if d.err == nil && d.i != len(d.b) {
		d.fail("%d trailing bytes", len(d.b)-d.i)
	}
	return d.err
}

// message decodes a message record; bt (nil for none) provides the
// readings and attributes.
func (d *decoder) message(bt *batch) Message {
	var m Message
	m.Seq = d.header()
	m.Created = d.time(time.Time{})
	m.Equipment = d.str()
	m.Class = d.str()
	if n := d.count(minReadingSize); n > 0 {
		m.Readings = bt.newReadings(n)
		for i := range m.Readings {
			r := &m.Readings[i]
			r.Tag = d.str()
			r.Value = d.value()
			r.Unit = d.str()
			r.Quality = Quality(d.byte())
			r.Error = d.str()
			r.TS = d.time(m.Created)
			r.Attrs = d.attrs(bt)
			if d.err != nil {
				break
			}
		}
	}
	return m
}

func (d *decoder) header() uint64 {
	if len(d.b) < recordHeader {
		d.err = errShortRecord
		return 0
	}
	if d.b[0] != recordVersion {
		d.fail("unknown record version %d", d.b[0])
		return 0
	}
	d.i = recordHeader
	return binary.BigEndian.Uint64(d.b[1:recordHeader])
}

func (d *decoder) byte() byte {
	if d.err != nil {
		return 0
	}
	if d.i >= len(d.b) {
		d.fail("unexpected end of record")
		return 0
	}
	c := d.b[d.i]
	d.i++
	return c
}

// uvarint is binary.Uvarint, refusing overlong and overflowing encodings.
func (d *decoder) uvarint() uint64 {
	if d.err != nil {
		return 0
	}
	var x uint64
	var shift uint
	for n := 0; n < binary.MaxVarintLen64; n++ {
		if d.i >= len(d.b) {
			d.fail("unexpected end of record in varint")
			return 0
		}
		c := d.b[d.i]
		d.i++
		if c < 0x80 {
			if n == binary.MaxVarintLen64-1 && c > 1 {
				d.fail("varint overflows 64 bits")
				return 0
			}
			return x | uint64(c)<<shift
		}
		x |= uint64(c&0x7f) << shift
		shift += 7
	}
	d.fail("varint overflows 64 bits")
	return 0
}

func (d *decoder) varint() int64 {
	ux := d.uvarint()
	x := int64(ux >> 1)
	if ux&1 != 0 {
		x = ^x
	}
	return x
}

// count reads an element count and refuses one that the rest of the record
// cannot hold at minSize bytes per element.
func (d *decoder) count(minSize int) int {
	n := d.uvarint()
	if d.err != nil {
		return 0
	}
	if n > uint64((len(d.b)-d.i)/minSize) {
		d.fail("count %d exceeds the record", n)
		return 0
	}
	return int(n)
}

// span reads a string field and returns where its bytes are in b.
func (d *decoder) span() (start, end int) {
	n := d.uvarint()
	if d.err != nil {
		return 0, 0
	}
	if n > uint64(len(d.b)-d.i) {
		d.fail("string length %d exceeds the record", n)
		return 0, 0
	}
	start = d.i
	d.i += int(n)
	return start, d.i
}

func (d *decoder) str() string {
	start, end := d.span()
	switch {
	case d.err != nil:
		return ""
	case d.text != "":
		return d.text[start:end]
	case d.names != nil:
		return d.names.intern(d.b[start:end])
	default:
		return string(d.b[start:end])
	}
}

func (d *decoder) time(base time.Time) time.Time {
	switch k := d.byte(); {
	case d.err != nil:
		return time.Time{}
	case k == timeZero:
		return time.Time{}
	case k == timeAbs:
		sec := d.varint()
		nsec := d.uvarint()
		if d.err != nil {
			return time.Time{}
		}
		if sec < minUnix || sec > maxUnix || nsec >= 1e9 {
			d.fail("time %d.%09d out of range", sec, nsec)
			return time.Time{}
		}
		return time.Unix(sec, int64(nsec)).UTC()
	case k == timeDelta:
		delta := d.varint()
		if d.err != nil {
			return time.Time{}
		}
		if base.IsZero() {
			d.fail("relative time without a base")
			return time.Time{}
		}
		t := base.Add(time.Duration(delta))
		if sec := t.Unix(); sec < minUnix || sec > maxUnix {
			d.fail("time out of range")
			return time.Time{}
		}
		return t
	default:
		d.fail("unknown time kind %d", k)
		return time.Time{}
	}
}

func (d *decoder) value() any { return d.valueDepth(0) }

func (d *decoder) valueDepth(depth int) any {
	switch k := d.byte(); {
	case d.err != nil:
		return nil
	case k == kindNil:
		return nil
	case k == kindFalse:
		return false
	case k == kindTrue:
		return true
	case k == kindInt:
		return d.varint()
	case k == kindUint:
		return d.uvarint()
	case k == kindFloat:
		if len(d.b)-d.i < 8 {
			d.fail("unexpected end of record in float")
			return nil
		}
		f := math.Float64frombits(binary.LittleEndian.Uint64(d.b[d.i:]))
		d.i += 8
		return f
	case k == kindString:
		if d.text == "" && d.names != nil {
			start, end := d.span()
			if d.err != nil {
				return nil
			}
			return d.names.box(d.b[start:end])
		}
		return d.str()
	case k == kindArray:
		if depth >= maxArrayDepth {
			d.fail("array nested deeper than %d", maxArrayDepth)
			return nil
		}
		n := d.count(1)
		arr := make([]any, 0, n)
		for i := 0; i < n && d.err == nil; i++ {
			arr = append(arr, d.valueDepth(depth+1))
		}
		return arr
	default:
		d.fail("unknown value kind %d", k)
		return nil
	}
}

// attrs decodes an attribute list; bt (nil for none) provides the slice.
func (d *decoder) attrs(bt *batch) []Attr {
	// An attribute takes at least 2 bytes (empty key, kind).
	n := d.count(2)
	if n == 0 {
		return nil
	}
	attrs := bt.newAttrs(n)
	for i := range attrs {
		attrs[i].Key = d.str()
		attrs[i].Value = d.value()
	}
	if d.err != nil {
		return nil
	}
	return attrs
}
