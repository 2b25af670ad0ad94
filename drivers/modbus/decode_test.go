package modbus

import (
	"encoding/binary"
	"math"
	"testing"
)

// decodeCase is a register image as the device sends it and the value it
// must decode to. The images are written out by hand, not computed, so a
// mistake in the decoder cannot hide in the test.
type decodeCase struct {
	name  string
	typ   string
	order string
	bit   int // -1 none
	len   int // string length
	words []uint16
	want  any
}

func nan32() any { return float64(math.Float32frombits(0x7FC00000)) }

var decodeCases = []decodeCase{
	// float32 23.5 = 0x41BC0000
	{"float32 ABCD", "float32", "ABCD", -1, 0, []uint16{0x41BC, 0x0000}, 23.5},
	{"float32 CDAB", "float32", "CDAB", -1, 0, []uint16{0x0000, 0x41BC}, 23.5},
	{"float32 BADC", "float32", "BADC", -1, 0, []uint16{0xBC41, 0x0000}, 23.5},
	{"float32 DCBA", "float32", "DCBA", -1, 0, []uint16{0x0000, 0xBC41}, 23.5},
	// float32 123.25 = 0x42F68000
	{"float32 123.25 CDAB", "float32", "CDAB", -1, 0, []uint16{0x8000, 0x42F6}, 123.25},
	{"float32 NaN", "float32", "ABCD", -1, 0, []uint16{0x7FC0, 0x0000}, nan32()},
	{"float32 +Inf", "float32", "ABCD", -1, 0, []uint16{0x7F80, 0x0000}, math.Inf(1)},
	{"float32 -Inf DCBA", "float32", "DCBA", -1, 0, []uint16{0x0000, 0x80FF}, math.Inf(-1)},

	// int16 -2 = 0xFFFE; uint16 0x1234 = 4660: one register, byte swap only
	{"int16 ABCD", "int16", "ABCD", -1, 0, []uint16{0xFFFE}, int64(-2)},
	{"int16 CDAB", "int16", "CDAB", -1, 0, []uint16{0xFFFE}, int64(-2)},
	{"int16 BADC", "int16", "BADC", -1, 0, []uint16{0xFEFF}, int64(-2)},
	{"int16 DCBA", "int16", "DCBA", -1, 0, []uint16{0xFEFF}, int64(-2)},
	{"uint16 ABCD", "uint16", "ABCD", -1, 0, []uint16{0x1234}, int64(4660)},
	{"uint16 CDAB", "uint16", "CDAB", -1, 0, []uint16{0x1234}, int64(4660)},
	{"uint16 BADC", "uint16", "BADC", -1, 0, []uint16{0x3412}, int64(4660)},
	{"uint16 DCBA", "uint16", "DCBA", -1, 0, []uint16{0x3412}, int64(4660)},
	{"uint16 max", "uint16", "ABCD", -1, 0, []uint16{0xFFFF}, int64(65535)},

	// int32 -2 = 0xFFFFFFFE; uint32 0x12345678 = 305419896
	{"int32 ABCD", "int32", "ABCD", -1, 0, []uint16{0xFFFF, 0xFFFE}, int64(-2)},
	{"int32 CDAB", "int32", "CDAB", -1, 0, []uint16{0xFFFE, 0xFFFF}, int64(-2)},
	{"int32 BADC", "int32", "BADC", -1, 0, []uint16{0xFFFF, 0xFEFF}, int64(-2)},
	{"int32 DCBA", "int32", "DCBA", -1, 0, []uint16{0xFEFF, 0xFFFF}, int64(-2)},
	{"uint32 ABCD", "uint32", "ABCD", -1, 0, []uint16{0x1234, 0x5678}, int64(305419896)},
	{"uint32 CDAB", "uint32", "CDAB", -1, 0, []uint16{0x5678, 0x1234}, int64(305419896)},
	{"uint32 BADC", "uint32", "BADC", -1, 0, []uint16{0x3412, 0x7856}, int64(305419896)},
	{"uint32 DCBA", "uint32", "DCBA", -1, 0, []uint16{0x7856, 0x3412}, int64(305419896)},
	{"uint32 max", "uint32", "ABCD", -1, 0, []uint16{0xFFFF, 0xFFFF}, int64(4294967295)},

	// int64 -1234567890123 = 0xFFFFFEE08E04FB35
	{"int64 ABCD", "int64", "ABCD", -1, 0, []uint16{0xFFFF, 0xFEE0, 0x8E04, 0xFB35}, int64(-1234567890123)},
	{"int64 CDAB", "int64", "CDAB", -1, 0, []uint16{0xFB35, 0x8E04, 0xFEE0, 0xFFFF}, int64(-1234567890123)},
	{"int64 BADC", "int64", "BADC", -1, 0, []uint16{0xFFFF, 0xE0FE, 0x048E, 0x35FB}, int64(-1234567890123)},
	{"int64 DCBA", "int64", "DCBA", -1, 0, []uint16{0x35FB, 0x048E, 0xE0FE, 0xFFFF}, int64(-1234567890123)},
	{"int64 ABCDEFGH", "int64", "ABCD", -1, 0, []uint16{0x0102, 0x0304, 0x0506, 0x0708}, int64(0x0102030405060708)},
	// uint64 0xFEDCBA9876543210 does not fit int64
	{"uint64 ABCD", "uint64", "ABCD", -1, 0, []uint16{0xFEDC, 0xBA98, 0x7654, 0x3210}, uint64(0xFEDCBA9876543210)},
	{"uint64 CDAB", "uint64", "CDAB", -1, 0, []uint16{0x3210, 0x7654, 0xBA98, 0xFEDC}, uint64(0xFEDCBA9876543210)},
	{"uint64 BADC", "uint64", "BADC", -1, 0, []uint16{0xDCFE, 0x98BA, 0x5476, 0x1032}, uint64(0xFEDCBA9876543210)},
	{"uint64 DCBA", "uint64", "DCBA", -1, 0, []uint16{0x1032, 0x5476, 0x98BA, 0xDCFE}, uint64(0xFEDCBA9876543210)},
	// float64 -0.1 = 0xBFB999999999999A; 123.25 = 0x405ED00000000000
	{"float64 ABCD", "float64", "ABCD", -1, 0, []uint16{0xBFB9, 0x9999, 0x9999, 0x999A}, -0.1},
	{"float64 CDAB", "float64", "CDAB", -1, 0, []uint16{0x999A, 0x9999, 0x9999, 0xBFB9}, -0.1},
	{"float64 BADC", "float64", "BADC", -1, 0, []uint16{0xB9BF, 0x9999, 0x9999, 0x9A99}, -0.1},
	{"float64 DCBA", "float64", "DCBA", -1, 0, []uint16{0x9A99, 0x9999, 0x9999, 0xB9BF}, -0.1},
	{"float64 123.25 DCBA", "float64", "DCBA", -1, 0, []uint16{0x0000, 0x0000, 0x00D0, 0x5E40}, 123.25},

	// bools in registers: whole register, or one bit after the byte order
	{"bool register zero", "bool", "ABCD", -1, 0, []uint16{0x0000}, false},
	{"bool register nonzero", "bool", "ABCD", -1, 0, []uint16{0x0100}, true},
	{"bit 0 of 0x0005", "bool", "ABCD", 0, 0, []uint16{0x0005}, true},
	{"bit 1 of 0x0005", "bool", "ABCD", 1, 0, []uint16{0x0005}, false},
	{"bit 2 of 0x0005", "bool", "ABCD", 2, 0, []uint16{0x0005}, true},
	{"bit 15 of 0x8000", "bool", "ABCD", 15, 0, []uint16{0x8000}, true},
	{"bit 0 of 0x0005 BADC", "bool", "BADC", 0, 0, []uint16{0x0500}, true},
	{"bit 8 of 0x0005 BADC", "bool", "BADC", 8, 0, []uint16{0x0500}, false},
	{"bit 0 of 0x0005 CDAB", "bool", "CDAB", 0, 0, []uint16{0x0005}, true},

	// strings: high byte first; BADC and DCBA swap bytes; no word order
	{"string ABCD", "string", "ABCD", -1, 8, []uint16{0x5052, 0x4553, 0x532D, 0x3031, 0x204F, 0x4B00, 0, 0}, "PRESS-01 OK"},
	{"string CDAB", "string", "CDAB", -1, 8, []uint16{0x5052, 0x4553, 0x532D, 0x3031, 0x204F, 0x4B00, 0, 0}, "PRESS-01 OK"},
	{"string BADC", "string", "BADC", -1, 8, []uint16{0x5250, 0x5345, 0x2D53, 0x3130, 0x4F20, 0x004B, 0, 0}, "PRESS-01 OK"},
	{"string DCBA", "string", "DCBA", -1, 8, []uint16{0x5250, 0x5345, 0x2D53, 0x3130, 0x4F20, 0x004B, 0, 0}, "PRESS-01 OK"},
	{"string trailing spaces", "string", "ABCD", -1, 3, []uint16{0x4142, 0x2020, 0x2000}, "AB"},
	{"string inner space kept", "string", "ABCD", -1, 2, []uint16{0x4120, 0x4200}, "A B"},
	{"string invalid utf-8", "string", "ABCD", -1, 1, []uint16{0xFF41}, "\uFFFDA"},
	{"string utf-8", "string", "ABCD", -1, 2, []uint16{0xC2B0, 0x4300}, "°C"},
	{"string empty", "string", "ABCD", -1, 2, []uint16{0, 0}, ""},
}

func wireBytes(words []uint16) []byte {
	b := make([]byte, 2*len(words))
	for i, w := range words {
		binary.BigEndian.PutUint16(b[2*i:], w)
	}
	return b
}

func sameValue(a, b any) bool {
	fa, ok1 := a.(float64)
	fb, ok2 := b.(float64)
	if ok1 && ok2 && math.IsNaN(fa) && math.IsNaN(fb) {
		return true
	}
	return a == b
}

func TestDecodeRegisters(t *testing.T) {
	var scratch [2 * maxRegistersPerRead]byte
	for _, tc := range decodeCases {
		t.Run(tc.name, func(t *testing.T) {
			// The device's order is the opposite corner, so the tag's own
			// order must win.
			f, err := compile(Tag{Register: "holding", Address: 7, Type: tc.typ, ByteOrder: tc.order, Bit: tc.bit, Length: tc.len}, byteOrder{swapWords: true, swapBytes: true}, maxRegistersPerRead)
			if err != nil {
				t.Fatal(err)
			}
			if int(f.width) != len(tc.words) {
				t.Fatalf("width %d, want %d", f.width, len(tc.words))
			}
			// Put the value after one unrelated register to check offsets.
			data := append([]byte{0xDE, 0xAD}, wireBytes(tc.words)...)
			got, err := f.decode(data, 6, scratch[:])
			if err != nil {
				t.Fatal(err)
			}
			if !sameValue(got, tc.want) {
				t.Errorf("got %#v (%T), want %#v (%T)", got, got, tc.want, tc.want)
			}
		})
	}
}

func TestDecodeDeviceByteOrder(t *testing.T) {
	// A tag without its own order takes the device's.
	for _, order := range []string{"ABCD", "CDAB", "BADC", "DCBA"} {
		for _, tc := range decodeCases {
			if tc.order != order || tc.typ != "float32" {
				continue
			}
			dev, _ := parseByteOrder(order)
			f, err := compile(Tag{Register: "input", Type: tc.typ, Bit: -1}, dev, maxRegistersPerRead)
			if err != nil {
				t.Fatal(err)
			}
			got, err := f.decode(wireBytes(tc.words), 0, make([]byte, 8))
			if err != nil || !sameValue(got, tc.want) {
				t.Errorf("%s: got %v, %v; want %v", tc.name, got, err, tc.want)
			}
		}
	}
}

func TestDecodeBits(t *testing.T) {
	// Coils 10..19 packed LSB first: 10, 12 and 18 are on.
	data := []byte{0b0000_0101, 0b0000_0001}
	tests := []struct {
		addr uint16
		want bool
	}{{10, true}, {11, false}, {12, true}, {17, false}, {18, true}, {19, false}}
	for _, kind := range []string{"coil", "discrete"} {
		for _, tc := range tests {
			f, err := compile(Tag{Register: kind, Address: tc.addr, Type: "bool", Bit: -1}, byteOrder{}, maxRegistersPerRead)
			if err != nil {
				t.Fatal(err)
			}
			got, err := f.decode(data, 10, nil)
			if err != nil || got != tc.want {
				t.Errorf("%s %d: got %v, %v; want %v", kind, tc.addr, got, err, tc.want)
			}
		}
	}
}

func TestDecodeShortReply(t *testing.T) {
	tests := []struct {
		name  string
		tag   Tag
		data  []byte
		start uint16
	}{
		{"float32 one register", Tag{Register: "holding", Type: "float32", Bit: -1}, []byte{1, 2}, 0},
		{"offset past end", Tag{Register: "holding", Address: 3, Type: "uint16", Bit: -1}, []byte{1, 2, 3, 4}, 0},
		{"before start", Tag{Register: "holding", Address: 3, Type: "uint16", Bit: -1}, []byte{1, 2, 3, 4}, 4},
		{"coil past end", Tag{Register: "coil", Address: 8, Type: "bool", Bit: -1}, []byte{0xFF}, 0},
		{"string", Tag{Register: "input", Type: "string", Length: 3, Bit: -1}, []byte{'a', 'b', 'c', 'd'}, 0},
	}
	for _, tc := range tests {
		f, err := compile(tc.tag, byteOrder{}, maxRegistersPerRead)
		if err != nil {
			t.Fatal(err)
		}
		if v, err := f.decode(tc.data, tc.start, make([]byte, 250)); err == nil {
			t.Errorf("%s: got %v, want an error", tc.name, v)
		}
	}
}

func TestCanonicalIsInvolution(t *testing.T) {
	src := []byte{1, 2, 3, 4, 5, 6, 7, 8}
	for _, o := range []string{"ABCD", "CDAB", "BADC", "DCBA"} {
		bo, _ := parseByteOrder(o)
		if bo.String() != o {
			t.Errorf("String() = %s, want %s", bo, o)
		}
		once, twice := make([]byte, 8), make([]byte, 8)
		canonical(once, src, bo)
		canonical(twice, once, bo)
		if string(twice) != string(src) {
			t.Errorf("%s: twice = %v", o, twice)
		}
	}
}
