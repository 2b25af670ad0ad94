package main

import (
	"context"
	"encoding/binary"
	"io"
	"log/slog"
	"net"
	"testing"
	"time"

	"github.com/linegate/linegate/cmd/internal/agent"
	"github.com/linegate/linegate/configs"
	"github.com/linegate/linegate/drivers"
	"github.com/linegate/linegate/internal/testkit"
)

// otherUnitGateway is a Modbus TCP gateway that answers every read with
// unit id 0 and register value 77, and drops the requests that arrive
// within deaf of a connect.
func otherUnitGateway(t *testing.T, deaf time.Duration) string {
	t.Helper()
	return testkit.Serve(t, func(c net.Conn) {
		at := time.Now()
		req := make([]byte, 12)
		for {
			if _, err := io.ReadFull(c, req); err != nil {
				return
			}
			if time.Since(at) < deaf {
				continue
			}
			out := append(append([]byte(nil), req[:4]...), 0, 5, 0, req[7], 2)
			out = binary.BigEndian.AppendUint16(out, 77)
			if _, err := c.Write(out); err != nil {
				return
			}
		}
	})
}

// The config's unit_id_check and first_read_delay reach the driver.
func TestModbusQuirkOptionsWired(t *testing.T) {
	off := false
	tests := []struct {
		name  string
		check *bool
		delay time.Duration
		good  bool
	}{
		{"unit id checked", nil, 300 * time.Millisecond, false},
		{"unit_id_check false", &off, 300 * time.Millisecond, true},
		{"no first_read_delay", &off, 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			addr := otherUnitGateway(t, 150*time.Millisecond)
			unit := 3
			d, err := agent.NewModbusDriver(configs.Device{
				Name: "gw", Driver: "modbus", Address: "tcp://" + addr, UnitID: &unit, ByteOrder: "ABCD",
				Timeout: configs.Duration(300 * time.Millisecond), UnitIDCheck: tt.check, FirstReadDelay: configs.Duration(tt.delay),
				Tags: []configs.Tag{{Name: "v", Register: "holding", Type: "uint16"}},
			}, slog.New(slog.DiscardHandler))
			if err != nil {
				t.Fatal(err)
			}
			defer d.Close()
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			out := make([]drivers.Sample, 1)
			d.Read(ctx, out)
			if got := out[0].Quality == drivers.Good && out[0].Value == int64(77); got != tt.good {
				t.Errorf("sample %+v, want good 77: %v", out[0], tt.good)
			}
		})
	}
}
