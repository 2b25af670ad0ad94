package modbus

import (
	"encoding/binary"
	"fmt"
	"testing"
)

func TestEncodeValue(t *testing.T) {
	tests := []struct {
		typ, order string
		length     int
		text       string
		want       []uint16 // nil: an error
		value      any      // what decode gives back
	}{
		{"uint16", "", 0, "1500", []uint16{1500}, int64(1500)},
		{"uint16", "BADC", 0, "0x1234", []uint16{0x3412}, int64(0x1234)},
		{"int16", "", 0, "-2", []uint16{0xFFFE}, int64(-2)},
		{"int16", "", 0, "40000", nil, nil},
		{"uint16", "", 0, "-1", nil, nil},
		{"bool", "", 0, "on", []uint16{1}, true},
		{"bool", "", 0, "maybe", nil, nil},
		{"int32", "CDAB", 0, "-100000", []uint16{0x7960, 0xFFFE}, int64(-100000)},
		{"uint32", "", 0, "0x00010002", []uint16{1, 2}, int64(0x00010002)},
		{"float32", "ABCD", 0, "123.25", []uint16{0x42F6, 0x8000}, 123.25},
		{"float32", "CDAB", 0, "123.25", []uint16{0x8000, 0x42F6}, 123.25},
		{"float32", "DCBA", 0, "123.25", []uint16{0x0080, 0xF642}, 123.25},
		{"float32", "", 0, "abc", nil, nil},
		{"float64", "", 0, "1.5", []uint16{0x3FF8, 0, 0, 0}, 1.5},
		{"int64", "CDAB", 0, "1", []uint16{1, 0, 0, 0}, int64(1)},
		{"uint64", "", 0, "18446744073709551615", []uint16{0xFFFF, 0xFFFF, 0xFFFF, 0xFFFF}, uint64(18446744073709551615)},
		{"string", "", 2, "AB", []uint16{0x4142, 0}, "AB"},
		{"string", "BADC", 2, "ABC", []uint16{0x4241, 0x0043}, "ABC"},
		{"string", "", 1, "ABC", nil, nil},
		{"float", "", 0, "1", nil, nil},
		{"uint16", "XYZ", 0, "1", nil, nil},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%s %s %q", tt.typ, tt.order, tt.text), func(t *testing.T) {
			got, err := EncodeValue(tt.typ, tt.order, tt.length, tt.text)
			if tt.want == nil {
				if err == nil {
					t.Fatalf("got %04X, want an error", got)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if fmt.Sprint(got) != fmt.Sprint(tt.want) {
				t.Errorf("got %04X, want %04X", got, tt.want)
			}
			// The decoder reads back what was encoded.
			order := tt.order
			if order == "" {
				order = "ABCD"
			}
			f, err := compile(Tag{Register: "holding", Type: tt.typ, Length: tt.length, ByteOrder: order, Bit: -1}, byteOrder{}, maxRegistersPerRead)
			if err != nil {
				t.Fatal(err)
			}
			data := make([]byte, 2*len(got))
			for i, w := range got {
				binary.BigEndian.PutUint16(data[2*i:], w)
			}
			v, err := f.decode(data, 0, make([]byte, len(data)))
			if err != nil || v != tt.value {
				t.Errorf("decoded %v %v, want %v", v, err, tt.value)
			}
		})
	}
}
