package modbus

import (
	"context"
	"slices"
	"strings"
	"testing"
)

func TestRawReadWrite(t *testing.T) {
	b := newBank()
	b.limit = 100
	addr, _ := startServer(t, b, "")
	d := newDriver(t, addr, nil)
	ctx := context.Background()

	if err := d.WriteWords(ctx, 10, []uint16{0x41BC, 0x0000, 7}); err != nil {
		t.Fatal(err)
	}
	if err := d.WriteWords(ctx, 20, []uint16{0xBEEF}); err != nil {
		t.Fatal(err)
	}
	if err := d.WriteBits(ctx, 3, []bool{true, false, true}); err != nil {
		t.Fatal(err)
	}
	if err := d.WriteBits(ctx, 9, []bool{true}); err != nil {
		t.Fatal(err)
	}
	b.setWords("input", 5, 1, 2)
	b.setBit("discrete", 1, true)

	tests := []struct {
		register    string
		addr, count uint16
		words       []uint16
		bits        []bool
		err         string
	}{
		{register: "holding", addr: 10, count: 3, words: []uint16{0x41BC, 0, 7}},
		{register: "holding", addr: 20, count: 1, words: []uint16{0xBEEF}},
		{register: "input", addr: 4, count: 3, words: []uint16{0, 1, 2}},
		{register: "coil", addr: 2, count: 9, bits: []bool{false, true, false, true, false, false, false, true, false}},
		{register: "discrete", addr: 0, count: 2, bits: []bool{false, true}},
		{register: "holding", addr: 99, count: 2, err: "read holding 0x0063+2: modbus exception 2 (illegal data address)"},
		{register: "coil", addr: 0, count: 1, err: ""},
		{register: "holding", addr: 0, count: 126, err: "count must be 1..125"},
		{register: "bogus", addr: 0, count: 1, err: `register "bogus"`},
	}
	for _, tt := range tests {
		t.Run(tt.register, func(t *testing.T) {
			var words []uint16
			var bits []bool
			var err error
			if tt.register == "coil" || tt.register == "discrete" {
				bits, err = d.ReadBits(ctx, tt.register, tt.addr, tt.count)
			} else {
				words, err = d.ReadWords(ctx, tt.register, tt.addr, tt.count)
			}
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("err %v, want %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if tt.words != nil && !slices.Equal(words, tt.words) {
				t.Fatalf("words %04X, want %04X", words, tt.words)
			}
			if tt.bits != nil && !slices.Equal(bits, tt.bits) {
				t.Fatalf("bits %v, want %v", bits, tt.bits)
			}
		})
	}

	// An exception keeps the connection; the next read works and is typed.
	_, err := d.ReadWords(ctx, "holding", 99, 2)
	if !IsException(err) {
		t.Fatalf("err %v is not an exception", err)
	}
	if err := d.WriteWords(ctx, 99, []uint16{1, 2}); err == nil || !strings.Contains(err.Error(), "write holding 0x0063+2: modbus exception 2") {
		t.Fatalf("write past the end: %v", err)
	}
	if _, err := d.ReadWords(ctx, "holding", 0, 1); err != nil {
		t.Fatal(err)
	}
}

func TestRawDeviceDown(t *testing.T) {
	d := newDriver(t, freeAddr(t), nil)
	_, err := d.ReadWords(context.Background(), "holding", 0, 1)
	if err == nil || IsException(err) || !strings.Contains(err.Error(), "read holding 0x0000+1") {
		t.Fatalf("err %v", err)
	}
}
