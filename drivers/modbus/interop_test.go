package modbus_test

// Interop tests: the driver against pymodbus 3.0, a Modbus stack it shares
// no code with, and against mbpoll as an independent reader of the same
// registers. They skip unless LINEGATE_INTEROP=1; then a missing peer fails.
// The register words served are computed here from the intended values,
// without the driver's decoder, so a shared misreading of a byte order
// cannot make both sides agree.

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/linegate/linegate/internal/testkit"

	"github.com/linegate/linegate/drivers"
	"github.com/linegate/linegate/drivers/modbus"
	"github.com/linegate/linegate/drivers/sim"
	"github.com/linegate/linegate/testdata/peers"
)

var byteOrders = []string{"ABCD", "CDAB", "BADC", "DCBA"}

// deviceWords lays the big-endian image of a value out as a device with
// the given byte order sends it, and cuts it into registers. Written out
// per order on purpose: it must not share logic with the driver's decoder.
func deviceWords(order string, img []byte) []uint16 {
	n := len(img)
	b := make([]byte, n)
	switch order {
	case "ABCD": // big-endian, as is
		copy(b, img)
	case "CDAB": // registers in reverse order, bytes within each kept
		for i := 0; i < n; i += 2 {
			b[i], b[i+1] = img[n-2-i], img[n-1-i]
		}
	case "BADC": // registers in order, the two bytes of each swapped
		for i := 0; i < n; i += 2 {
			b[i], b[i+1] = img[i+1], img[i]
		}
	case "DCBA": // little-endian: every byte reversed
		for i := range n {
			b[i] = img[n-1-i]
		}
	default:
		panic("test bug: byte order " + order)
	}
	words := make([]uint16, n/2)
	for i := range words {
		words[i] = binary.BigEndian.Uint16(b[2*i:])
	}
	return words
}

// stringWords lays text out in length registers, two characters each,
// NUL padded. Text has no word order (the driver's documented rule): the
// byte orders that swap bytes swap the two characters of each register.
func stringWords(order, text string, length int) []uint16 {
	img := make([]byte, 2*length)
	copy(img, text)
	if order == "BADC" || order == "DCBA" {
		return deviceWords("BADC", img)
	}
	return deviceWords("ABCD", img)
}

func i16(v int16) []byte   { return binary.BigEndian.AppendUint16(nil, uint16(v)) }
func u16(v uint16) []byte  { return binary.BigEndian.AppendUint16(nil, v) }
func i32(v int32) []byte   { return binary.BigEndian.AppendUint32(nil, uint32(v)) }
func u32(v uint32) []byte  { return binary.BigEndian.AppendUint32(nil, v) }
func i64(v int64) []byte   { return binary.BigEndian.AppendUint64(nil, uint64(v)) }
func u64(v uint64) []byte  { return binary.BigEndian.AppendUint64(nil, v) }
func f32(v float32) []byte { return u32(math.Float32bits(v)) }
func f64(v float64) []byte { return u64(math.Float64bits(v)) }

// TestDeviceWordsMatchLiterals pins the test's own encoder to words written
// by hand, so that the interop tests below check the driver against
// something known to be right.
func TestDeviceWordsMatchLiterals(t *testing.T) {
	tests := []struct {
		img  []byte
		want map[string][]uint16
	}{
		{f32(123.25), map[string][]uint16{ // 0x42F68000
			"ABCD": {0x42F6, 0x8000}, "CDAB": {0x8000, 0x42F6}, "BADC": {0xF642, 0x0080}, "DCBA": {0x0080, 0xF642}}},
		{u64(0x0102030405060708), map[string][]uint16{
			"ABCD": {0x0102, 0x0304, 0x0506, 0x0708}, "CDAB": {0x0708, 0x0506, 0x0304, 0x0102},
			"BADC": {0x0201, 0x0403, 0x0605, 0x0807}, "DCBA": {0x0807, 0x0605, 0x0403, 0x0201}}},
		{u16(0x1234), map[string][]uint16{"ABCD": {0x1234}, "CDAB": {0x1234}, "BADC": {0x3412}, "DCBA": {0x3412}}},
	}
	for _, tc := range tests {
		for order, want := range tc.want {
			if got := deviceWords(order, tc.img); fmt.Sprint(got) != fmt.Sprint(want) {
				t.Errorf("deviceWords(%s, % X) = %04X, want %04X", order, tc.img, got, want)
			}
		}
	}
	if got := stringWords("DCBA", "ABC", 2); got[0] != 0x4241 || got[1] != 0x0043 {
		t.Errorf("stringWords(DCBA, ABC) = %04X", got)
	}
}

// valueCase is one value of every type, with its big-endian image.
type valueCase struct {
	name   string
	typ    string
	img    []byte // the value, big-endian; nil for strings
	text   string // strings only
	length int    // strings only, registers
	want   any    // what the driver must return
}

var valueCases = []valueCase{
	{name: "int16_neg", typ: "int16", img: i16(-12345), want: int64(-12345)},
	{name: "int16_max", typ: "int16", img: i16(math.MaxInt16), want: int64(math.MaxInt16)},
	{name: "int16_min", typ: "int16", img: i16(math.MinInt16), want: int64(math.MinInt16)},
	{name: "uint16", typ: "uint16", img: u16(0xBEEF), want: int64(0xBEEF)},
	{name: "uint16_max", typ: "uint16", img: u16(math.MaxUint16), want: int64(math.MaxUint16)},
	{name: "int32_neg", typ: "int32", img: i32(-123456789), want: int64(-123456789)},
	{name: "int32_min", typ: "int32", img: i32(math.MinInt32), want: int64(math.MinInt32)},
	{name: "uint32", typ: "uint32", img: u32(0xDEADBEEF), want: int64(0xDEADBEEF)},
	{name: "uint32_small", typ: "uint32", img: u32(0x01020304), want: int64(0x01020304)},
	{name: "int64_neg", typ: "int64", img: i64(-1234567890123456789), want: int64(-1234567890123456789)},
	{name: "int64_max", typ: "int64", img: i64(math.MaxInt64), want: int64(math.MaxInt64)},
	{name: "uint64", typ: "uint64", img: u64(0xFEDCBA9876543210), want: uint64(0xFEDCBA9876543210)},
	{name: "uint64_max", typ: "uint64", img: u64(math.MaxUint64), want: uint64(math.MaxUint64)},
	{name: "float32", typ: "float32", img: f32(123.25), want: 123.25},
	{name: "float32_neg", typ: "float32", img: f32(-0.15625), want: -0.15625},
	{name: "float32_max", typ: "float32", img: f32(math.MaxFloat32), want: float64(float32(math.MaxFloat32))},
	{name: "float32_tiny", typ: "float32", img: f32(1e-40), want: float64(float32(1e-40))},
	{name: "float64_pi", typ: "float64", img: f64(math.Pi), want: math.Pi},
	{name: "float64_neg", typ: "float64", img: f64(-2.5e-300), want: -2.5e-300},
	{name: "bool_word_true", typ: "bool", img: u16(0x0100), want: true},
	{name: "bool_word_false", typ: "bool", img: u16(0), want: false},
	{name: "string", typ: "string", text: "PRESS-01 OK", length: 8, want: "PRESS-01 OK"},
	{name: "string_odd", typ: "string", text: "ABC", length: 2, want: "ABC"},
	{name: "string_full", typ: "string", text: "Line 1, cell 7", length: 7, want: "Line 1, cell 7"},
}

// statusWord's 16 bits are read as 16 bool tags (Bit 0..15).
const statusWord = 0xA5C3

func coilOn(a uint16) bool     { return a%3 == 0 || a == 7 }
func discreteOn(a uint16) bool { return a%4 == 1 || a == 16 }

const bitTableLen = 20 // coils and discrete inputs served per unit

// layout is one unit's register map and the tags that read it.
type layout struct {
	unit peers.UnitSpec
	tags []modbus.Tag
	want []any
	next map[string]uint16 // next free address per table
}

func newLayout() *layout {
	return &layout{
		unit: peers.UnitSpec{Holding: map[uint16]uint16{}, Input: map[uint16]uint16{}, Coils: map[uint16]bool{}, Discrete: map[uint16]bool{}},
		next: map[string]uint16{},
	}
}

// addWords puts words at the next free address of table and a tag there.
func (l *layout) addWords(table string, tag modbus.Tag, words []uint16, want any) {
	addr := l.next[table]
	dst := l.unit.Holding
	if table == "input" {
		dst = l.unit.Input
	}
	for i, w := range words {
		dst[addr+uint16(i)] = w
	}
	tag.Register, tag.Address = table, addr
	l.tags = append(l.tags, tag)
	l.want = append(l.want, want)
	l.next[table] = addr + uint16(len(words))
}

// addValues adds every value case and the status word's bits to both
// register tables, laid out in order; tagOrder is the tags' own ByteOrder
// ("" = the device's).
func (l *layout) addValues(order, tagOrder string) {
	for _, table := range []string{"holding", "input"} {
		for _, vc := range valueCases {
			words := deviceWords(order, vc.img)
			if vc.typ == "string" {
				words = stringWords(order, vc.text, vc.length)
			}
			tag := modbus.Tag{Name: fmt.Sprintf("%s_%s_%s", table, order, vc.name), Type: vc.typ, Length: vc.length, Bit: -1, ByteOrder: tagOrder}
			l.addWords(table, tag, words, vc.want)
		}
		words := deviceWords(order, u16(statusWord))
		for bit := range 16 {
			tag := modbus.Tag{Name: fmt.Sprintf("%s_%s_bit%d", table, order, bit), Type: "bool", Bit: bit, ByteOrder: tagOrder}
			l.addWords(table, tag, words, statusWord>>bit&1 == 1)
			l.next[table]-- // all 16 share the one register
		}
		l.next[table]++
	}
}

func (l *layout) addBits() {
	for a := range uint16(bitTableLen) {
		l.unit.Coils[a], l.unit.Discrete[a] = coilOn(a), discreteOn(a)
		l.tags = append(l.tags,
			modbus.Tag{Name: fmt.Sprintf("coil%d", a), Register: "coil", Address: a, Type: "bool", Bit: -1},
			modbus.Tag{Name: fmt.Sprintf("discrete%d", a), Register: "discrete", Address: a, Type: "bool", Bit: -1})
		l.want = append(l.want, coilOn(a), discreteOn(a))
	}
}

// allTypesSpec serves units 1..4, one per byte order, and unit 5 with all
// four orders at once, each tag naming its own (over a DCBA device).
func allTypesSpec() (peers.PymodbusSpec, map[byte]*layout) {
	layouts := map[byte]*layout{}
	for i, order := range byteOrders {
		l := newLayout()
		l.addValues(order, "")
		l.addBits()
		layouts[byte(i+1)] = l
	}
	mixed := newLayout()
	for _, order := range byteOrders {
		mixed.addValues(order, order)
	}
	layouts[5] = mixed
	spec := peers.PymodbusSpec{Units: map[byte]peers.UnitSpec{}}
	for id, l := range layouts {
		spec.Units[id] = l.unit
	}
	return spec, layouts
}

// deviceOrder is the Config.ByteOrder of each unit of allTypesSpec.
func deviceOrder(unit byte) string {
	if unit == 5 {
		return "DCBA" // every tag overrides it
	}
	return byteOrders[unit-1]
}

func interopDriver(t *testing.T, url string, unit byte, order string, timeout time.Duration, tags []modbus.Tag) *modbus.Driver {
	t.Helper()
	d, err := modbus.New(modbus.Config{
		Device:    fmt.Sprintf("unit%d", unit),
		Address:   url,
		UnitID:    unit,
		Timeout:   timeout,
		ByteOrder: order,
		Tags:      tags,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	return d
}

func interopRead(d *modbus.Driver, n int) ([]drivers.Sample, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	out := make([]drivers.Sample, n)
	err := d.Read(ctx, out)
	return out, err
}

// checkGood reports every sample that is not Good with exactly the wanted
// value and Go type.
func checkGood(t *testing.T, tags []modbus.Tag, out []drivers.Sample, want []any) {
	t.Helper()
	for i, s := range out {
		if s.Quality != drivers.Good || s.Err != nil || s.Value != want[i] {
			t.Errorf("%s (%s 0x%04X %s): got %v %T %v (err %v), want %T %v",
				tags[i].Name, tags[i].Register, tags[i].Address, tags[i].Type, s.Quality, s.Value, s.Value, s.Err, want[i], want[i])
		}
	}
}

func allGood(out []drivers.Sample) bool {
	for _, s := range out {
		if s.Quality != drivers.Good {
			return false
		}
	}
	return true
}

func TestInteropAllTypesAllByteOrders(t *testing.T) {
	peers.Interop(t)
	spec, layouts := allTypesSpec()
	srv := peers.StartPymodbus(t, spec)
	for unit := byte(1); unit <= 5; unit++ {
		l := layouts[unit]
		t.Run(fmt.Sprintf("unit%d_%s", unit, deviceOrder(unit)), func(t *testing.T) {
			d := interopDriver(t, srv.URL, unit, deviceOrder(unit), 2*time.Second, l.tags)
			if len(d.Plan()) < 2 {
				t.Fatalf("plan %v: want several requests", d.Plan())
			}
			for cycle := range 2 { // the second on the same connection
				out, err := interopRead(d, len(l.tags))
				if err != nil {
					t.Fatalf("cycle %d: %v", cycle, err)
				}
				checkGood(t, l.tags, out, l.want)
			}
		})
	}
}

func TestInteropExceptionOnlyBadForItsTags(t *testing.T) {
	peers.Interop(t)
	// Unit 1 serves addresses 0..9 of every table.
	srv := peers.StartPymodbus(t, peers.PymodbusSpec{Units: map[byte]peers.UnitSpec{1: {
		Size:     10,
		Holding:  map[uint16]uint16{0: 0xFFFE, 2: 0x0001, 3: 0x0002, 8: 0x4120, 9: 0x0000},
		Input:    map[uint16]uint16{5: 777},
		Coils:    map[uint16]bool{3: true},
		Discrete: map[uint16]bool{8: true},
	}}})
	// MaxGap -1: only adjacent or overlapping tags share a request.
	tags := []modbus.Tag{
		{Name: "h0", Register: "holding", Address: 0, Type: "int16", Bit: -1},
		{Name: "h2", Register: "holding", Address: 2, Type: "uint32", Bit: -1},
		{Name: "h8", Register: "holding", Address: 8, Type: "float32", Bit: -1}, // 8..9: the last two served
		{Name: "h40_past", Register: "holding", Address: 40, Type: "uint16", Bit: -1},
		{Name: "i5", Register: "input", Address: 5, Type: "uint16", Bit: -1},
		{Name: "i10_past", Register: "input", Address: 10, Type: "uint16", Bit: -1},
		{Name: "c3", Register: "coil", Address: 3, Type: "bool", Bit: -1},
		{Name: "c50_past", Register: "coil", Address: 50, Type: "bool", Bit: -1},
		{Name: "d8", Register: "discrete", Address: 8, Type: "bool", Bit: -1},
		{Name: "d10_past", Register: "discrete", Address: 10, Type: "bool", Bit: -1},
	}
	want := []any{int64(-2), int64(0x00010002), 10.0, nil, int64(777), nil, true, nil, true, nil} // nil: exception
	d, err := modbus.New(modbus.Config{Device: "press01", Address: srv.URL, UnitID: 1, Timeout: 2 * time.Second, MaxGap: -1, Tags: tags})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	// Precondition: no request mixes served and unserved addresses.
	for _, r := range d.Plan() {
		bad, good := 0, 0
		for _, i := range r.Tags {
			if want[i] == nil {
				bad++
			} else {
				good++
			}
		}
		if bad > 0 && good > 0 {
			t.Fatalf("request %v mixes served and unserved tags: the test needs another layout", r)
		}
	}

	out, err := interopRead(d, len(tags))
	if err != nil {
		t.Fatalf("a device that answers exceptions is up: %v", err)
	}
	for i, s := range out {
		if want[i] != nil {
			if s.Quality != drivers.Good || s.Value != want[i] {
				t.Errorf("%s: got %v %v (%v), want good %v", tags[i].Name, s.Quality, s.Value, s.Err, want[i])
			}
			continue
		}
		var ex *modbus.Exception
		if s.Quality != drivers.Bad || s.Value != nil || !errors.As(s.Err, &ex) || ex.Code != 2 ||
			!strings.Contains(s.Err.Error(), "illegal data address") {
			t.Errorf("%s: got %v %v (%v), want bad with modbus exception 2 (illegal data address)", tags[i].Name, s.Quality, s.Value, s.Err)
		}
	}

	// A value that starts at the last served register and runs one past.
	straddle := []modbus.Tag{{Name: "h9", Register: "holding", Address: 9, Type: "float32", Bit: -1}}
	ds := interopDriver(t, srv.URL, 1, "", 2*time.Second, straddle)
	out, err = interopRead(ds, 1)
	if err != nil || out[0].Quality != drivers.Bad || !strings.Contains(out[0].Err.Error(), "read holding 0x0009+2: modbus exception 2 (illegal data address)") {
		t.Errorf("float32 at 9..10: got %+v, %v; want bad with exception 2", out[0], err)
	}

	// mbpoll sees the same boundary: 9 (reference 10) answers, 9..10 does not.
	if _, err := peers.Mbpoll(t, srv.Addr, "-a", "1", "-r", "10", "-c", "1", "-t", "4"); err != nil {
		t.Errorf("mbpoll, last served register: %v", err)
	}
	if _, err := peers.Mbpoll(t, srv.Addr, "-a", "1", "-r", "10", "-c", "2", "-t", "4"); err == nil || !strings.Contains(err.Error(), "Illegal data address") {
		t.Errorf("mbpoll past the served range: %v, want Illegal data address", err)
	}
}

func TestInteropUnknownUnitTimesOut(t *testing.T) {
	peers.Interop(t)
	srv := peers.StartPymodbus(t, peers.PymodbusSpec{Units: map[byte]peers.UnitSpec{
		1: {Holding: map[uint16]uint16{0: 4242}},
	}})
	tags := []modbus.Tag{{Name: "h0", Register: "holding", Address: 0, Type: "uint16", Bit: -1}}
	const timeout = 300 * time.Millisecond
	unknown := interopDriver(t, srv.URL, 77, "", timeout, tags)
	good := interopDriver(t, srv.URL, 1, "", timeout, tags)

	for round := range 2 {
		out, err := interopRead(unknown, 1)
		if err == nil || !errors.Is(err, os.ErrDeadlineExceeded) || !strings.Contains(err.Error(), "i/o timeout") {
			t.Fatalf("round %d: unit 77: got %v, want an i/o timeout", round, err)
		}
		if out[0].Quality != drivers.Bad || out[0].Err == nil {
			t.Errorf("round %d: unit 77 sample %+v, want bad", round, out[0])
		}
		// The server is not wedged: a served unit answers right after.
		out, err = interopRead(good, 1)
		if err != nil {
			t.Fatalf("round %d: unit 1 after unit 77: %v", round, err)
		}
		checkGood(t, tags, out, []any{int64(4242)})
	}
}

func TestInteropPeerRestart(t *testing.T) {
	peers.Interop(t)
	spec, layouts := allTypesSpec()
	l := layouts[2] // CDAB, coils and discrete inputs
	tests := []struct {
		name string
		stop func(*peers.Pymodbus)
	}{
		{"SIGTERM", (*peers.Pymodbus).Stop},
		{"SIGKILL", (*peers.Pymodbus).Kill},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv := peers.StartPymodbus(t, spec)
			d := interopDriver(t, srv.URL, 2, "CDAB", time.Second, l.tags)
			out, err := interopRead(d, len(l.tags))
			if err != nil {
				t.Fatalf("before stopping: %v", err)
			}
			checkGood(t, l.tags, out, l.want)

			tc.stop(srv)
			for round := range 2 { // the second while the driver backs off
				out, err = interopRead(d, len(l.tags))
				if err == nil {
					t.Fatalf("round %d: read from a stopped server succeeded", round)
				}
				for i, s := range out {
					if s.Quality != drivers.Bad || s.Value != nil || s.Err == nil {
						t.Fatalf("round %d: %s with the server down: %+v, want bad", round, l.tags[i].Name, s)
					}
				}
				t.Logf("server down: %v", err)
			}

			srv.Start()
			var last error
			defer func() {
				if t.Failed() {
					t.Logf("last read: %v", last)
				}
			}()
			testkit.WaitFor(t, 20*time.Second, "good readings after the server restarted", func() bool {
				out, last = interopRead(d, len(l.tags))
				return last == nil && allGood(out)
			})
			checkGood(t, l.tags, out, l.want)
		})
	}
}

// mbpollCheck says how mbpoll reads a tag and compares what it prints
// with the driver's value.
type mbpollCheck struct {
	args   []string // -t ... [-B]; -a, -r and -c are added
	single bool     // one register or bit per value: tags can share a run
	same   func(text string, v any) bool
}

// mbpollFor says how mbpoll reads a tag, if it can: 16-bit registers, bits,
// and 32-bit integers and floats in ABCD (-B) or CDAB (its default) order.
// It swaps no bytes, so BADC and DCBA values are left out.
func mbpollFor(tag modbus.Tag, order string) (mbpollCheck, bool) {
	table := map[string]string{"coil": "0", "discrete": "1", "input": "3", "holding": "4"}[tag.Register]
	if tag.ByteOrder != "" {
		order = tag.ByteOrder
	}
	var wordOrder []string // mbpoll's default is CDAB
	if order == "" || order == "ABCD" {
		wordOrder = []string{"-B"}
	}
	switch {
	case tag.Register == "coil" || tag.Register == "discrete":
		return mbpollCheck{[]string{"-t", table}, true, func(s string, v any) bool {
			return s == map[bool]string{true: "1", false: "0"}[v.(bool)]
		}}, true
	case order == "BADC" || order == "DCBA":
		return mbpollCheck{}, false
	case tag.Type == "uint16" || tag.Type == "int16":
		// "65535 (-1)": unsigned, then signed when they differ.
		return mbpollCheck{[]string{"-t", table}, true, func(s string, v any) bool {
			f := strings.Fields(s)
			if tag.Type == "int16" && len(f) == 2 {
				return strings.Trim(f[1], "()") == strconv.FormatInt(v.(int64), 10)
			}
			return len(f) > 0 && f[0] == strconv.FormatInt(v.(int64), 10)
		}}, true
	case tag.Type == "bool" && tag.Bit >= 0:
		return mbpollCheck{[]string{"-t", table + ":hex"}, true, func(s string, v any) bool {
			w, err := strconv.ParseUint(strings.TrimPrefix(s, "0x"), 16, 16)
			return err == nil && (w>>tag.Bit&1 == 1) == v.(bool)
		}}, true
	case tag.Type == "int32" || tag.Type == "uint32":
		// Printed as a signed 32-bit integer.
		return mbpollCheck{append([]string{"-t", table + ":int"}, wordOrder...), false, func(s string, v any) bool {
			return s == strconv.FormatInt(int64(int32(uint32(v.(int64)))), 10)
		}}, true
	case tag.Type == "float32":
		// Printed with C's %g: 6 significant digits.
		return mbpollCheck{append([]string{"-t", table + ":float"}, wordOrder...), false, func(s string, v any) bool {
			return s == fmt.Sprintf("%.6g", v.(float64))
		}}, true
	}
	return mbpollCheck{}, false
}

// crossCheck reads every tag mbpoll can read with mbpoll and compares the
// value it prints with the driver's sample; it returns how many it
// compared. One-register values of a kind share one mbpoll run (mbpoll
// takes ~10 ms a run, more on a loaded machine); 32-bit ones get a run each.
func crossCheck(t *testing.T, addr string, unit byte, order string, tags []modbus.Tag, out []drivers.Sample) int {
	t.Helper()
	type run struct {
		args     []string
		from, to int           // references, 1-based, inclusive
		idx      []int         // tags
		checks   []mbpollCheck // of the tags
	}
	var runs []*run
	shared := map[string]*run{}
	for i, tag := range tags {
		c, ok := mbpollFor(tag, order)
		if !ok {
			continue
		}
		if out[i].Quality != drivers.Good {
			t.Errorf("%s: driver sample %+v, want good", tag.Name, out[i])
			continue
		}
		ref := int(tag.Address) + 1 // mbpoll's references are 1-based
		key := strings.Join(c.args, " ")
		if r := shared[key]; c.single && r != nil && max(r.to, ref)-min(r.from, ref) < 125 {
			r.from, r.to = min(r.from, ref), max(r.to, ref)
			r.idx, r.checks = append(r.idx, i), append(r.checks, c)
			continue
		}
		r := &run{args: c.args, from: ref, to: ref, idx: []int{i}, checks: []mbpollCheck{c}}
		runs = append(runs, r)
		if c.single {
			shared[key] = r
		}
	}
	n := 0
	for _, r := range runs {
		count := r.to - r.from + 1
		args := append([]string{"-a", strconv.Itoa(int(unit)), "-r", strconv.Itoa(r.from), "-c", strconv.Itoa(count)}, r.args...)
		got, err := peers.Mbpoll(t, addr, args...)
		if err != nil {
			t.Errorf("%s: %v", tags[r.idx[0]].Name, err)
			continue
		}
		for j, i := range r.idx {
			tag, ref := tags[i], int(tags[i].Address)+1
			if text, ok := got[ref]; !ok || !r.checks[j].same(text, out[i].Value) {
				t.Errorf("%s (%s 0x%04X %s): mbpoll %v printed %q, driver read %v", tag.Name, tag.Register, tag.Address, tag.Type, args, got[ref], out[i].Value)
			}
			n++
		}
	}
	return n
}

func TestInteropMbpollAgreesWithDriver(t *testing.T) {
	peers.Interop(t)

	t.Run("pymodbus", func(t *testing.T) {
		spec, layouts := allTypesSpec()
		srv := peers.StartPymodbus(t, spec)
		for _, unit := range []byte{1, 2, 5} { // ABCD, CDAB, per-tag orders
			l := layouts[unit]
			d := interopDriver(t, srv.URL, unit, deviceOrder(unit), 2*time.Second, l.tags)
			out, err := interopRead(d, len(l.tags))
			if err != nil {
				t.Fatal(err)
			}
			n := crossCheck(t, srv.Addr, unit, deviceOrder(unit), l.tags, out)
			t.Logf("unit %d (%s): mbpoll agrees on %d of %d values", unit, deviceOrder(unit), n, len(l.tags))
			if n < 40 { // guards against checking nothing

				t.Errorf("unit %d: only %d values cross-checked", unit, n)
			}
		}
	})

	t.Run("sim", func(t *testing.T) {
		line := sim.NewPressLine(sim.Options{Addr: "127.0.0.1:0", Units: []byte{1, 2}})
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		if err := line.Start(ctx); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { line.Stop() })
		line.Freeze(true)
		// Pinned values in a free part of the map, with their intended
		// readings; the simulated map is compared as it stands.
		line.Set(2, "holding", 100, deviceWords("ABCD", f32(-7.75))...)
		line.Set(2, "holding", 102, deviceWords("CDAB", f32(-7.75))...)
		line.Set(2, "holding", 104, deviceWords("ABCD", i32(-99999))...)
		line.Set(2, "input", 110, deviceWords("ABCD", i16(-12345))...)
		pinned := []struct {
			tag  modbus.Tag
			want any
		}{
			{modbus.Tag{Name: "f_abcd", Register: "holding", Address: 100, Type: "float32", Bit: -1}, -7.75},
			{modbus.Tag{Name: "f_cdab", Register: "holding", Address: 102, Type: "float32", Bit: -1, ByteOrder: "CDAB"}, -7.75},
			{modbus.Tag{Name: "i32", Register: "holding", Address: 104, Type: "int32", Bit: -1}, int64(-99999)},
			{modbus.Tag{Name: "i16", Register: "input", Address: 110, Type: "int16", Bit: -1}, int64(-12345)},
		}
		var tags []modbus.Tag
		for _, p := range sim.Map {
			tags = append(tags, modbus.Tag{Name: p.Name, Register: p.Register, Address: p.Address, Type: p.Type, Length: p.Length, Bit: p.Bit, ByteOrder: p.ByteOrder})
		}
		for _, p := range pinned {
			tags = append(tags, p.tag)
		}
		addr := line.Addr()
		for _, unit := range []byte{1, 2} {
			d := interopDriver(t, "tcp://"+addr, unit, "ABCD", 2*time.Second, tags)
			out, err := interopRead(d, len(tags))
			if err != nil {
				t.Fatal(err)
			}
			if unit == 2 {
				for i, p := range pinned {
					j := len(sim.Map) + i
					if out[j].Quality != drivers.Good || out[j].Value != p.want {
						t.Errorf("pinned %s: got %+v, want %v", p.tag.Name, out[j], p.want)
					}
				}
			}
			n := crossCheck(t, addr, unit, "ABCD", tags, out)
			t.Logf("sim unit %d: mbpoll agrees on %d of %d values", unit, n, len(tags))
			if n < 10 {
				t.Errorf("unit %d: only %d values cross-checked", unit, n)
			}
		}
	})
}
