package modbus_test

import (
	"context"
	"testing"
	"time"

	"github.com/linegate/linegate/drivers/modbus"
	"github.com/linegate/linegate/testdata/peers"
)

// TestInteropWrite writes pymodbus's registers and coils and reads them
// with mbpoll, an independent client: the words on the device are the
// tag's type in its byte order, and a bit write keeps the other bits.
func TestInteropWrite(t *testing.T) {
	peers.Interop(t)
	srv := peers.StartPymodbus(t, peers.PymodbusSpec{Units: map[byte]peers.UnitSpec{1: {
		Holding: map[uint16]uint16{20: 0x00F0}, Size: 32,
	}}})
	tags := []modbus.Tag{
		{Name: "f32", Register: "holding", Address: 0, Type: "float32", Bit: -1, ByteOrder: "CDAB"},
		{Name: "i32", Register: "holding", Address: 2, Type: "int32", Bit: -1, ByteOrder: "DCBA"},
		{Name: "u64", Register: "holding", Address: 4, Type: "uint64", Bit: -1, ByteOrder: "BADC"},
		{Name: "f64", Register: "holding", Address: 8, Type: "float64", Bit: -1},
		{Name: "i16", Register: "holding", Address: 12, Type: "int16", Bit: -1},
		{Name: "s", Register: "holding", Address: 13, Type: "string", Length: 2, Bit: -1},
		{Name: "bit", Register: "holding", Address: 20, Type: "bool", Bit: 0, ReadModifyWrite: true},
		{Name: "coil", Register: "coil", Address: 3, Type: "bool", Bit: -1},
	}
	d := interopDriver(t, srv.URL, 1, "", 2*time.Second, tags)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for i, v := range []any{123.25, int64(-100000), uint64(0x0102030405060708), 1.5, int64(-2), "AB", true, true} {
		back, err := d.Write(ctx, i, v)
		if err != nil || back != v {
			t.Errorf("%s = %v: read back %#v, %v", tags[i].Name, v, back, err)
		}
	}
	// The device's words, as mbpoll sees them (1-based references).
	words, err := peers.Mbpoll(t, srv.Addr, "-a", "1", "-r", "1", "-c", "15", "-t", "4:hex")
	if err != nil {
		t.Fatal(err)
	}
	want := map[int]string{
		1: "0x8000", 2: "0x42F6", // 123.25 CDAB
		3: "0x6079", 4: "0xFEFF", // -100000 = 0xFFFE7960, DCBA: bytes reversed
		5: "0x0201", 6: "0x0403", 7: "0x0605", 8: "0x0807", // BADC
		9: "0x3FF8", 10: "0x0000", // 1.5 ABCD
		13: "0xFFFE", 14: "0x4142",
	}
	for ref, w := range want {
		if words[ref] != w {
			t.Errorf("register %d: mbpoll %q, want %s", ref, words[ref], w)
		}
	}
	if got, err := peers.Mbpoll(t, srv.Addr, "-a", "1", "-r", "21", "-c", "1", "-t", "4:hex"); err != nil || got[21] != "0x00F1" {
		t.Errorf("bit 0 of register 21: %v %v, want 0x00F1 (the other bits kept)", got, err)
	}
	if got, err := peers.Mbpoll(t, srv.Addr, "-a", "1", "-r", "4", "-c", "1", "-t", "0"); err != nil || got[4] != "1" {
		t.Errorf("coil 4: %v %v, want 1", got, err)
	}
}
