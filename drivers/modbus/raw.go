package modbus

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
)

// Raw access for diagnostics (linegate modbus scan/write): single requests
// outside the tag plan, on the driver's connection and with its connection
// policy (a failure other than an exception drops the socket). Values are
// never decoded here: decoding stays with the tags (decode.go).

// ReadWords reads count registers of the holding or input table from
// address on and returns them as sent by the device.
func (d *Driver) ReadWords(ctx context.Context, register string, address, count uint16) ([]uint16, error) {
	kind, ok := parseRegisterKind(register)
	if !ok || kind.isBit() {
		return nil, fmt.Errorf("register %q: want holding or input", register)
	}
	if count < 1 || count > maxRegistersPerRead || int(address)+int(count) > 1<<16 {
		return nil, fmt.Errorf("read %s 0x%04X+%d: count must be 1..%d within 0..0xFFFF", register, address, count, maxRegistersPerRead)
	}
	data, err := d.raw(ctx, Request{Register: register, Address: address, Count: count}, kind)
	if err != nil {
		return nil, err
	}
	words := make([]uint16, count)
	for i := range words {
		words[i] = binary.BigEndian.Uint16(data[2*i:])
	}
	return words, nil
}

// ReadBits reads count bits of the coil or discrete input table from
// address on.
func (d *Driver) ReadBits(ctx context.Context, register string, address, count uint16) ([]bool, error) {
	kind, ok := parseRegisterKind(register)
	if !ok || !kind.isBit() {
		return nil, fmt.Errorf("register %q: want coil or discrete", register)
	}
	if count < 1 || count > maxBitsPerRead || int(address)+int(count) > 1<<16 {
		return nil, fmt.Errorf("read %s 0x%04X+%d: count must be 1..%d within 0..0xFFFF", register, address, count, maxBitsPerRead)
	}
	data, err := d.raw(ctx, Request{Register: register, Address: address, Count: count}, kind)
	if err != nil {
		return nil, err
	}
	bits := make([]bool, count)
	for i := range bits {
		bits[i] = data[i/8]>>(i%8)&1 == 1
	}
	return bits, nil
}

// WriteWords writes holding registers from address on: function 6 for one
// value, 16 for more.
func (d *Driver) WriteWords(ctx context.Context, address uint16, values []uint16) error {
	n := len(values)
	if n < 1 || n > 123 || int(address)+n > 1<<16 {
		return fmt.Errorf("write holding 0x%04X+%d: want 1..123 values within 0..0xFFFF", address, n)
	}
	_, err := d.do(ctx, "write", Request{Register: "holding", Address: address, Count: uint16(n)}, func() ([]byte, error) {
		if n == 1 {
			return d.client.WriteSingleRegister(address, values[0])
		}
		buf := make([]byte, 2*n)
		for i, v := range values {
			binary.BigEndian.PutUint16(buf[2*i:], v)
		}
		return d.client.WriteMultipleRegisters(address, uint16(n), buf)
	})
	return err
}

// WriteBits writes coils from address on: function 5 for one value, 15 for
// more.
func (d *Driver) WriteBits(ctx context.Context, address uint16, values []bool) error {
	n := len(values)
	if n < 1 || n > 1968 || int(address)+n > 1<<16 {
		return fmt.Errorf("write coil 0x%04X+%d: want 1..1968 values within 0..0xFFFF", address, n)
	}
	_, err := d.do(ctx, "write", Request{Register: "coil", Address: address, Count: uint16(n)}, func() ([]byte, error) {
		if n == 1 {
			var v uint16
			if values[0] {
				v = 0xFF00 // the protocol's "on"
			}
			return d.client.WriteSingleCoil(address, v)
		}
		buf := make([]byte, (n+7)/8)
		for i, v := range values {
			if v {
				buf[i/8] |= 1 << (i % 8)
			}
		}
		return d.client.WriteMultipleCoils(address, uint16(n), buf)
	})
	return err
}

// raw sends one read of r and returns a copy of its payload.
func (d *Driver) raw(ctx context.Context, r Request, kind registerKind) ([]byte, error) {
	data, err := d.do(ctx, "read", r, func() ([]byte, error) { return d.read(&r, kind) })
	if err != nil {
		return nil, err
	}
	return append([]byte(nil), data...), nil
}

// do runs one exchange under the driver's lock with Read's connection
// policy, and names the request in its error. An exception is returned as
// an *Exception inside the error (errors.As).
func (d *Driver) do(ctx context.Context, op string, r Request, fn func() ([]byte, error)) ([]byte, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.t.ctx = ctx
	defer func() { d.t.ctx = nil }()
	if err := d.connect(ctx); err != nil {
		return nil, fmt.Errorf("%s %s 0x%04X+%d: %w", op, r.Register, r.Address, r.Count, err)
	}
	data, err := fn()
	if err == nil {
		d.backoff = 0
		return data, nil
	}
	err, exception := classify(err)
	if !exception {
		// Out of step with the device: drop the socket (see transport).
		d.t.close()
	}
	if op == "read" {
		return nil, &RequestError{Register: r.Register, Address: r.Address, Count: r.Count, Err: err}
	}
	return nil, fmt.Errorf("%s %s 0x%04X+%d: %w", op, r.Register, r.Address, r.Count, err)
}

// IsException tells whether err is (or wraps) a Modbus exception reply:
// the device answered but refused the request.
func IsException(err error) bool {
	var e *Exception
	return errors.As(err, &e)
}
