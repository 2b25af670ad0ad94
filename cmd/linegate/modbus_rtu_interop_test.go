package main

import (
	"testing"

	"github.com/linegate/linegate/testdata/peers"
)

// TestInteropModbusWriteRTU: `modbus write` over RTU to pymodbus on a socat
// pty, typed and raw, functions 6, 16, 5 and 15, each read back.
func TestInteropModbusWriteRTU(t *testing.T) {
	peers.Interop(t)
	srv := peers.StartPymodbusSerial(t, peers.PymodbusSpec{Units: map[byte]peers.UnitSpec{
		4: {Holding: map[uint16]uint16{0: 0, 20: 0}, Coils: map[uint16]bool{8: false}},
	}}, peers.SerialOptions{})
	addr := "rtu://" + srv.Device + "?parity=N"
	tests := []struct {
		name   string
		args   []string
		stdout string
	}{
		{"fc 6", []string{"-a", "2", "--values", "0x1234"}, "read back 0x1234"},
		{"fc 16 float32 CDAB", []string{"-a", "10", "-t", "float32", "-b", "CDAB", "--values", "12.5"}, "read back 0x0000 0x4148 = 12.5"},
		{"fc 16 string", []string{"-a", "12", "-t", "string", "--length", "2", "--values", "ok"}, `read back 0x6F6B 0x0000 = "ok"`},
		{"fc 5", []string{"-r", "coil", "-a", "8", "--values", "on"}, "read back [true]"},
		{"fc 15", []string{"-r", "coil", "-a", "3", "--values", "1,0,1"}, "read back [true false true]"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args := append([]string{"modbus", "write", addr, "-u", "4", "--allow-write", "-y"}, tt.args...)
			runCLI(t, args, exitOK, []string{tt.stdout}, nil)
		})
	}
}
