package sim_test

import (
	"strings"
	"testing"
	"time"

	goburrow "github.com/goburrow/modbus"

	"github.com/linegate/linegate/drivers/sim"
)

// TestFail: a failing register answers exception 4 to every read that
// covers it, and only those, until it is released.
func TestFail(t *testing.T) {
	line := startLine(t, sim.Options{})
	line.Freeze(true)
	line.Set(1, "holding", 10, 7)
	h := goburrow.NewTCPClientHandler(line.Addr())
	h.SlaveId = 1
	h.Timeout = 5 * time.Second
	defer h.Close()
	c := goburrow.NewClient(h)

	line.Fail(1, "holding", 10, true)
	for _, r := range [][2]uint16{{10, 1}, {8, 4}} {
		if _, err := c.ReadHoldingRegisters(r[0], r[1]); err == nil || !strings.Contains(err.Error(), "exception '4'") {
			t.Errorf("read %d+%d of a failing register: %v, want exception 4", r[0], r[1], err)
		}
	}
	if b, err := c.ReadHoldingRegisters(11, 2); err != nil || len(b) != 4 {
		t.Errorf("read beside the failing register: %v %v", b, err)
	}
	line.Fail(1, "holding", 10, false)
	if b, err := c.ReadHoldingRegisters(10, 1); err != nil || string(b) != "\x00\x07" {
		t.Errorf("after release: %q %v", b, err)
	}
}
