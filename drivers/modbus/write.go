package modbus

import (
	"context"
	"encoding/binary"
	"fmt"
	"math"
	"strconv"

	"github.com/linegate/linegate/drivers"
)

var _ drivers.Writer = (*Driver)(nil)

// Write writes one tag (drivers.Writer): a coil with function 5, holding
// registers with 6 or 16 in the tag's type and byte order (EncodeValue),
// a bit: tag by reading its register, changing the bit and writing the
// register back, which Tag.ReadModifyWrite must allow. Then it reads the
// tag back and decodes it as Read does.
func (d *Driver) Write(ctx context.Context, index int, value any) (any, error) {
	if index < 0 || index >= len(d.fields) {
		return nil, drivers.Refused(fmt.Sprintf("no tag #%d", index))
	}
	f := &d.fields[index]
	switch {
	case f.kind == input || f.kind == discrete:
		return nil, drivers.Refused(fmt.Sprintf("%s registers are read-only", f.kind))
	case f.kind == coil:
		b, ok := value.(bool)
		if !ok {
			return nil, drivers.Refused(fmt.Sprintf("a coil takes true or false, not %v", value))
		}
		if err := d.WriteBits(ctx, f.addr, []bool{b}); err != nil {
			return nil, err
		}
		bits, err := d.ReadBits(ctx, "coil", f.addr, 1)
		if err != nil {
			return nil, fmt.Errorf("read back: %w", err)
		}
		return bits[0], nil
	case f.bit >= 0:
		return d.writeBit(ctx, index, f, value)
	}
	text, ok := valueText(value)
	if !ok {
		return nil, drivers.Refused(fmt.Sprintf("value %v (%T) cannot be written to a %s register", value, value, f.typ.name))
	}
	words, err := EncodeValue(f.typ.name, f.order.String(), int(f.width), text)
	if err != nil {
		return nil, drivers.Refused(err.Error())
	}
	if f.typ.name == "string" && text != decodeString([]byte(text)) {
		// Trailing spaces and NULs are padding to Read: the read-back
		// could never equal what was sent.
		return nil, drivers.Refused("a string value may not end in spaces")
	}
	if err := d.WriteWords(ctx, f.addr, words); err != nil {
		return nil, err
	}
	return d.readBack(ctx, f)
}

// writeBit changes one bit of a holding register: read, set or clear,
// write. Whatever the PLC writes to the register between the read and the
// write is undone, hence Tag.ReadModifyWrite.
func (d *Driver) writeBit(ctx context.Context, index int, f *field, value any) (any, error) {
	if !d.rmw[index] {
		return nil, drivers.Refused(fmt.Sprintf("bit %d of holding 0x%04X is written by rewriting the whole register: allowed only with read_modify_write (linegate the register's only writer)", f.bit, f.addr))
	}
	b, ok := value.(bool)
	if !ok {
		return nil, drivers.Refused(fmt.Sprintf("a bit takes true or false, not %v", value))
	}
	words, err := d.ReadWords(ctx, "holding", f.addr, 1)
	if err != nil {
		return nil, fmt.Errorf("read before setting bit %d: %w", f.bit, err)
	}
	// The bit counts after the byte order, as Read decodes it.
	w := words[0]
	if f.order.swapBytes {
		w = w<<8 | w>>8
	}
	if b {
		w |= 1 << f.bit
	} else {
		w &^= 1 << f.bit
	}
	if f.order.swapBytes {
		w = w<<8 | w>>8
	}
	if err := d.WriteWords(ctx, f.addr, []uint16{w}); err != nil {
		return nil, err
	}
	return d.readBack(ctx, f)
}

// readBack reads a register field and decodes it as Read does.
func (d *Driver) readBack(ctx context.Context, f *field) (any, error) {
	words, err := d.ReadWords(ctx, "holding", f.addr, f.width)
	if err != nil {
		return nil, fmt.Errorf("read back: %w", err)
	}
	data := make([]byte, 2*len(words))
	for i, w := range words {
		binary.BigEndian.PutUint16(data[2*i:], w)
	}
	v, err := f.decode(data, f.addr, make([]byte, len(data)))
	if err != nil {
		return nil, fmt.Errorf("read back: %w", err)
	}
	return v, nil
}

// valueText formats a raw value for EncodeValue, exactly: floats with the
// shortest text that parses back to the same number.
func valueText(v any) (string, bool) {
	switch x := v.(type) {
	case bool:
		return strconv.FormatBool(x), true
	case int64:
		return strconv.FormatInt(x, 10), true
	case uint64:
		return strconv.FormatUint(x, 10), true
	case float64:
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return "", false
		}
		return strconv.FormatFloat(x, 'g', -1, 64), true
	case string:
		return x, true
	}
	return "", false
}
