package modbus

import (
	"encoding/binary"
	"fmt"
	"math"
	"strconv"
	"strings"
)

// EncodeValue turns the text of one value of type typ (a tag type; length
// registers for string) into the registers to write, laid out in
// orderName (ABCD when empty) as the device reads them: the inverse of
// what Read decodes. Integers take decimal or 0x hex; bool is 1/0,
// true/false or on/off (one register, 1 or 0); a string is padded with
// zero bytes to length registers.
func EncodeValue(typ, orderName string, length int, text string) ([]uint16, error) {
	vt, ok := lookupType(typ)
	if !ok {
		return nil, fmt.Errorf("type %q: want bool, int16, uint16, int32, uint32, int64, uint64, float32, float64 or string", typ)
	}
	if orderName == "" {
		orderName = "ABCD"
	}
	order, ok := parseByteOrder(orderName)
	if !ok {
		return nil, fmt.Errorf("byte order %q: want ABCD, CDAB, BADC or DCBA", orderName)
	}
	regs := vt.regs
	if typ == "string" {
		if length < 1 || length > maxRegistersPerRead {
			return nil, fmt.Errorf("string length %d: want 1..%d registers", length, maxRegistersPerRead)
		}
		regs = length
	}
	img := make([]byte, 2*regs) // big-endian
	text = strings.TrimSpace(text)
	bad := func(what string) error { return fmt.Errorf("value %q: want %s", text, what) }
	switch typ {
	case "bool":
		switch strings.ToLower(text) {
		case "1", "true", "on":
			img[1] = 1
		case "0", "false", "off":
		default:
			return nil, bad("1, 0, true, false, on or off")
		}
	case "int16", "int32", "int64":
		bits := 16 * regs
		v, err := strconv.ParseInt(text, 0, bits)
		if err != nil {
			return nil, bad(typ)
		}
		putUint(img, uint64(v))
	case "uint16", "uint32", "uint64":
		v, err := strconv.ParseUint(text, 0, 16*regs)
		if err != nil {
			return nil, bad(typ)
		}
		putUint(img, v)
	case "float32":
		v, err := strconv.ParseFloat(text, 32)
		if err != nil {
			return nil, bad("float32")
		}
		binary.BigEndian.PutUint32(img, math.Float32bits(float32(v)))
	case "float64":
		v, err := strconv.ParseFloat(text, 64)
		if err != nil {
			return nil, bad("float64")
		}
		binary.BigEndian.PutUint64(img, math.Float64bits(v))
	case "string":
		if len(text) > len(img) {
			return nil, fmt.Errorf("value %q: %d bytes do not fit %d registers", text, len(text), regs)
		}
		copy(img, text)
		// Text has no word order: only the byte swap applies (as decode).
		order = byteOrder{swapBytes: order.swapBytes}
	}
	dev := make([]byte, len(img))
	canonical(dev, img, order)
	words := make([]uint16, regs)
	for i := range words {
		words[i] = binary.BigEndian.Uint16(dev[2*i:])
	}
	return words, nil
}

// putUint writes v big-endian into all of b (2, 4 or 8 bytes).
func putUint(b []byte, v uint64) {
	for i := len(b) - 1; i >= 0; i-- {
		b[i] = byte(v)
		v >>= 8
	}
}
