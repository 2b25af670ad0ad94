package modbus

import (
	"testing"
)

// FuzzDecode feeds arbitrary replies to every decoder: none may panic, and
// a decoded value must have one of the types Sample allows.
func FuzzDecode(f *testing.F) {
	f.Add([]byte{0x41, 0xBC, 0, 0}, uint8(7), uint8(0), int8(-1), uint8(0), uint16(0), uint16(0))
	f.Add([]byte{0x50, 0x52, 0x45}, uint8(9), uint8(2), int8(-1), uint8(4), uint16(5), uint16(3))
	f.Add([]byte{0xFF}, uint8(0), uint8(3), int8(15), uint8(0), uint16(1), uint16(0))
	f.Add([]byte{}, uint8(6), uint8(1), int8(-1), uint8(0), uint16(0xFFFC), uint16(0xFFFC))
	f.Fuzz(func(t *testing.T, data []byte, typ, order uint8, bit int8, length uint8, addr, start uint16) {
		kinds := []string{"holding", "input", "coil", "discrete"}
		orders := []string{"ABCD", "CDAB", "BADC", "DCBA", ""}
		tag := Tag{
			Register:  kinds[int(typ>>4)%len(kinds)],
			Address:   addr,
			Type:      valueTypes[int(typ&0x0F)%len(valueTypes)].name,
			Length:    int(length),
			Bit:       int(bit),
			ByteOrder: orders[int(order)%len(orders)],
		}
		fl, err := compile(tag, byteOrder{}, maxRegistersPerRead)
		if err != nil {
			return
		}
		var scratch [2 * maxRegistersPerRead]byte
		v, err := fl.decode(data, start, scratch[:])
		if err != nil {
			if v != nil {
				t.Fatalf("value %v with error %v", v, err)
			}
			return
		}
		switch v.(type) {
		case bool, int64, uint64, float64, string:
		default:
			t.Fatalf("value %#v of type %T", v, v)
		}
	})
}
