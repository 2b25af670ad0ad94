package modbus

import (
	"encoding/binary"
	"fmt"
	"math"
	"strings"
)

// byteOrder says how a device lays a multi-register value out on the wire,
// as two independent swaps of the big-endian image: ABCD swaps nothing, CDAB
// reverses the register (word) order, BADC swaps the two bytes of every
// register, DCBA does both. The same two swaps generalize to 64-bit values
// (GHEFCDAB, BADCFEHG, HGFEDCBA); one register values only see the byte swap.
type byteOrder struct {
	swapWords bool
	swapBytes bool
}

func parseByteOrder(s string) (byteOrder, bool) {
	switch strings.ToUpper(s) {
	case "ABCD":
		return byteOrder{}, true
	case "CDAB":
		return byteOrder{swapWords: true}, true
	case "BADC":
		return byteOrder{swapBytes: true}, true
	case "DCBA":
		return byteOrder{swapWords: true, swapBytes: true}, true
	}
	return byteOrder{}, false
}

func (o byteOrder) String() string {
	switch o {
	case byteOrder{swapWords: true}:
		return "CDAB"
	case byteOrder{swapBytes: true}:
		return "BADC"
	case byteOrder{swapWords: true, swapBytes: true}:
		return "DCBA"
	}
	return "ABCD"
}

// canonical writes the big-endian image of the registers in src into dst
// (len(dst) >= len(src), len(src) even). Both swaps are involutions, so the
// same function also turns a big-endian image into the device's layout.
func canonical(dst, src []byte, o byteOrder) {
	words := len(src) / 2
	for i := range words {
		j := i
		if o.swapWords {
			j = words - 1 - i
		}
		hi, lo := src[2*j], src[2*j+1]
		if o.swapBytes {
			hi, lo = lo, hi
		}
		dst[2*i], dst[2*i+1] = hi, lo
	}
}

// valueType is one row of the decode table: how many registers a type spans
// and how its big-endian image becomes a Sample value.
type valueType struct {
	name string
	regs int // 0: given by the tag's Length (strings)
	// decode gets exactly 2*regs bytes, big-endian.
	decode func(b []byte) any
}

// valueTypes is the decode table, the only place that knows the types.
// Unsigned types up to 32 bits become int64 (they always fit); only uint64
// stays unsigned. Floats become float64, NaN and Inf included.
var valueTypes = [...]valueType{
	{"bool", 1, func(b []byte) any { return binary.BigEndian.Uint16(b) != 0 }},
	{"int16", 1, func(b []byte) any { return int64(int16(binary.BigEndian.Uint16(b))) }},
	{"uint16", 1, func(b []byte) any { return int64(binary.BigEndian.Uint16(b)) }},
	{"int32", 2, func(b []byte) any { return int64(int32(binary.BigEndian.Uint32(b))) }},
	{"uint32", 2, func(b []byte) any { return int64(binary.BigEndian.Uint32(b)) }},
	{"int64", 4, func(b []byte) any { return int64(binary.BigEndian.Uint64(b)) }},
	{"uint64", 4, func(b []byte) any { return binary.BigEndian.Uint64(b) }},
	{"float32", 2, func(b []byte) any { return float64(math.Float32frombits(binary.BigEndian.Uint32(b))) }},
	{"float64", 4, func(b []byte) any { return math.Float64frombits(binary.BigEndian.Uint64(b)) }},
	{"string", 0, decodeString},
}

func lookupType(name string) (*valueType, bool) {
	for i := range valueTypes {
		if valueTypes[i].name == name {
			return &valueTypes[i], true
		}
	}
	return nil, false
}

// decodeString reads two characters per register, high byte first, and
// trims the padding devices put after the text.
func decodeString(b []byte) any {
	s := strings.TrimRight(string(b), "\x00 ")
	return strings.ToValidUTF8(s, "\uFFFD")
}

// field is a compiled tag: everything Read needs, resolved once by New.
type field struct {
	kind  registerKind
	addr  uint16
	width uint16 // registers, or bits for coils and discrete inputs
	typ   *valueType
	order byteOrder
	bit   int // -1: none; else the bit of a 16-bit register (bool only)
}

// decode turns the reply of a request that starts at start into the
// field's value. data is the reply's payload (register bytes, or packed
// bits for coils and discrete inputs); scratch holds at least 2*width bytes.
// It never panics: a reply too short for the field is an error.
func (f *field) decode(data []byte, start uint16, scratch []byte) (any, error) {
	off := int(f.addr) - int(start)
	if off < 0 {
		return nil, fmt.Errorf("field at 0x%04X before request start 0x%04X", f.addr, start)
	}
	if f.kind.isBit() {
		i := off / 8
		if i >= len(data) {
			return nil, errShortReply
		}
		return data[i]>>(off%8)&1 == 1, nil
	}
	n := 2 * int(f.width)
	if 2*off+n > len(data) || n > len(scratch) {
		return nil, errShortReply
	}
	raw := data[2*off : 2*off+n]
	if f.typ.name == "string" {
		// Text has no word order: only the byte swap applies.
		canonical(scratch, raw, byteOrder{swapBytes: f.order.swapBytes})
		return decodeString(scratch[:n]), nil
	}
	canonical(scratch, raw, f.order)
	if f.bit >= 0 {
		return binary.BigEndian.Uint16(scratch)>>f.bit&1 == 1, nil
	}
	return f.typ.decode(scratch[:n]), nil
}
