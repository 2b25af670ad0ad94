package modbus

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/linegate/linegate/drivers"
)

// TestWrite writes every type in every byte order, checks the registers
// the server holds, the read-back, and that a Read afterwards agrees.
func TestWrite(t *testing.T) {
	b := newBank()
	addr, stop := startServer(t, b, freeAddr(t))
	defer stop()
	tags := []Tag{
		{Name: "c", Register: "coil", Address: 1, Type: "bool", Bit: -1},
		{Name: "i16", Register: "holding", Address: 10, Type: "int16", Bit: -1},
		{Name: "u16", Register: "holding", Address: 11, Type: "uint16", Bit: -1, ByteOrder: "BADC"},
		{Name: "i32", Register: "holding", Address: 12, Type: "int32", Bit: -1, ByteOrder: "CDAB"},
		{Name: "u32", Register: "holding", Address: 14, Type: "uint32", Bit: -1, ByteOrder: "DCBA"},
		{Name: "i64", Register: "holding", Address: 16, Type: "int64", Bit: -1, ByteOrder: "CDAB"},
		{Name: "u64", Register: "holding", Address: 20, Type: "uint64", Bit: -1},
		{Name: "f32", Register: "holding", Address: 24, Type: "float32", Bit: -1, ByteOrder: "CDAB"},
		{Name: "f64", Register: "holding", Address: 26, Type: "float64", Bit: -1, ByteOrder: "DCBA"},
		{Name: "s", Register: "holding", Address: 30, Type: "string", Length: 3, Bit: -1, ByteOrder: "BADC"},
		{Name: "bit", Register: "holding", Address: 40, Type: "bool", Bit: 9, ReadModifyWrite: true},
		{Name: "bitx", Register: "holding", Address: 41, Type: "bool", Bit: 2},
		{Name: "in", Register: "input", Address: 1, Type: "int16", Bit: -1},
	}
	d := newDriver(t, addr, nil, tags...)
	b.setWords("holding", 40, 0x0005)
	tests := []struct {
		index int
		value any
		regs  []uint16 // what the server holds afterwards, from the tag's address
		back  any
	}{
		{0, true, nil, true},
		{1, int64(-2), []uint16{0xFFFE}, int64(-2)},
		{2, int64(0x1234), []uint16{0x3412}, int64(0x1234)},
		{3, int64(-100000), []uint16{0x7960, 0xFFFE}, int64(-100000)},
		{4, int64(0x01020304), []uint16{0x0403, 0x0201}, int64(0x01020304)},
		{5, int64(1), []uint16{1, 0, 0, 0}, int64(1)},
		{6, uint64(1 << 63), []uint16{0x8000, 0, 0, 0}, uint64(1 << 63)},
		{7, 123.25, []uint16{0x8000, 0x42F6}, 123.25},
		{8, 1.5, []uint16{0, 0, 0, 0xF83F}, 1.5},
		{9, "ABC", []uint16{0x4241, 0x0043, 0}, "ABC"},
		{10, true, []uint16{0x0205}, true}, // the other bits kept
		{10, false, []uint16{0x0005}, false},
	}
	for _, tt := range tests {
		back, err := d.Write(context.Background(), tt.index, tt.value)
		if err != nil {
			t.Fatalf("%s = %v: %v", tags[tt.index].Name, tt.value, err)
		}
		if !sameValue(back, tt.back) {
			t.Errorf("%s: read back %#v, want %#v", tags[tt.index].Name, back, tt.back)
		}
		b.mu.Lock()
		for k, w := range tt.regs {
			if got := b.holding[int(tags[tt.index].Address)+k]; got != w {
				t.Errorf("%s: register %d = 0x%04X, want 0x%04X", tags[tt.index].Name, k, got, w)
			}
		}
		b.mu.Unlock()
	}
	out, err := read(t, d)
	if err != nil {
		t.Fatal(err)
	}
	wantGood(t, out, 7, 123.25)
	wantGood(t, out, 9, "ABC")
	b.mu.Lock()
	if !b.coils[1] {
		t.Error("coil 1 not set")
	}
	b.mu.Unlock()
}

// TestWriteRefused: nothing is sent for a value that does not fit, a
// read-only register, or a bit write without read_modify_write.
func TestWriteRefused(t *testing.T) {
	b := newBank()
	addr, stop := startServer(t, b, freeAddr(t))
	defer stop()
	d := newDriver(t, addr, nil,
		Tag{Name: "i16", Register: "holding", Address: 10, Type: "int16", Bit: -1},
		Tag{Name: "bitx", Register: "holding", Address: 41, Type: "bool", Bit: 2},
		Tag{Name: "in", Register: "input", Address: 1, Type: "int16", Bit: -1},
		Tag{Name: "c", Register: "coil", Address: 1, Type: "bool", Bit: -1},
		Tag{Name: "f32", Register: "holding", Address: 24, Type: "float32", Bit: -1},
	)
	tests := []struct {
		index int
		value any
		want  string
	}{
		{0, int64(40000), "want int16"},
		{0, 1.5, "want int16"},
		{0, true, "want int16"},
		{1, true, "allowed only with read_modify_write"},
		{2, int64(1), "read-only"},
		{3, int64(1), "true or false"},
		{4, 1e39, "want float32"},
		{9, int64(1), "no tag"},
	}
	before := b.served()
	for _, tt := range tests {
		_, err := d.Write(context.Background(), tt.index, tt.value)
		var r *drivers.RefusedError
		if !errors.As(err, &r) || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("write #%d %v: %v, want refused with %q", tt.index, tt.value, err, tt.want)
		}
	}
	if n := b.served() - before; n != 0 {
		t.Errorf("%d requests sent for refused writes", n)
	}
}
