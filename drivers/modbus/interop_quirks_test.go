package modbus_test

// Interop with devices that misbehave as real ones do (issue 19), each
// played by the tests' own responder over a socat pty pair or TCP.

import (
	"fmt"
	"testing"
	"time"

	"github.com/linegate/linegate/drivers"
	"github.com/linegate/linegate/drivers/modbus"
	"github.com/linegate/linegate/testdata/peers"
)

var framers = []string{"rtu", "ascii", "tcp"}

func quirkDriver(t *testing.T, r *responder, unit byte, timeout time.Duration, edit func(*modbus.Config), tags ...modbus.Tag) *modbus.Driver {
	t.Helper()
	cfg := modbus.Config{Device: "dev", Address: r.url(), UnitID: unit, Timeout: timeout, Tags: tags}
	if edit != nil {
		edit(&cfg)
	}
	d, err := modbus.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	return d
}

func u16Tag(name string, addr uint16) modbus.Tag {
	return modbus.Tag{Name: name, Register: "holding", Address: addr, Type: "uint16", Bit: -1}
}

// A slave that answers every other request 1.2 x the timeout late: its
// late reply has the same shape (unit, function, byte count) as the next
// request's. Every good value must be its own register's, and every tag
// must be good in some poll (the late ones rotate over the three tags).
func TestInteropLateReplyNeverTakenForTheNext(t *testing.T) {
	peers.Interop(t)
	const timeout = 200 * time.Millisecond
	regs := map[uint16]uint16{0: 1000, 20: 2000, 40: 3000}
	tags := []modbus.Tag{u16Tag("a", 0), u16Tag("b", 20), u16Tag("c", 40)}
	for _, framer := range framers {
		t.Run(framer, func(t *testing.T) {
			r := startResponder(t, framer, regs, func(n int, pdu []byte) answer {
				if n%2 == 1 {
					return answer{delay: timeout * 12 / 10}
				}
				return answer{}
			})
			d := quirkDriver(t, r, 1, timeout, nil, tags...)
			good := make([]int, len(tags))
			for poll := range 6 {
				out, _ := interopRead(d, len(tags))
				for i, s := range out {
					if s.Quality != drivers.Good {
						continue
					}
					good[i]++
					if want := int64(regs[tags[i].Address]); s.Value != want {
						t.Errorf("poll %d: %s good %v, want %d (its own register's)", poll, tags[i].Name, s.Value, want)
					}
				}
			}
			for i, n := range good {
				if n == 0 {
					t.Errorf("%s never good in 6 polls", tags[i].Name)
				}
			}
			t.Logf("%s: good readings per tag %v of 6 polls, %d requests", framer, good, r.served())
		})
	}
}

var _ = fmt.Sprint
