package modbus_test

// Interop with devices that misbehave as real ones do (the quirks of
// README.md), each played by the tests' own responder over a socat pty
// pair or TCP.

import (
	"context"
	"fmt"
	"strings"
	"sync"
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
			r := startResponder(t, framer, regs, func(n int, unit byte, pdu []byte) answer {
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

// A PLC in STOP answers exception 4 to everything for 5 s: the tags are
// bad while it lasts, the plan is not split, and afterwards every poll
// sends the configured plan's requests again, all good.
func TestInteropTransientExceptionKeepsPlan(t *testing.T) {
	peers.Interop(t)
	const window = 5 * time.Second
	regs := map[uint16]uint16{0: 10, 1: 11, 2: 12, 3: 13, 4: 14, 5: 15}
	var end time.Time
	var mu sync.Mutex
	r := startResponder(t, "rtu", regs, func(n int, unit byte, pdu []byte) answer {
		mu.Lock()
		defer mu.Unlock()
		if end.IsZero() {
			end = time.Now().Add(window)
		}
		if time.Now().Before(end) {
			return answer{reply: []byte{pdu[0] | 0x80, 4}}
		}
		return answer{}
	})
	tags := []modbus.Tag{u16Tag("a", 0), u16Tag("b", 1), u16Tag("c", 5)}
	d := quirkDriver(t, r, 1, 200*time.Millisecond, nil, tags...)
	plan := fmt.Sprint(d.Plan())
	if len(d.Plan()) != 1 {
		t.Fatalf("plan %s: want one merged read", plan)
	}
	over := func() bool {
		mu.Lock()
		defer mu.Unlock()
		return !end.IsZero() && time.Now().After(end)
	}
	// Polled every 200 ms, as the collector would.
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	polls, maxPerPoll := 0, 0
	for !over() {
		before := r.served()
		out, _ := interopRead(d, len(tags))
		polls++
		maxPerPoll = max(maxPerPoll, r.served()-before)
		if !over() {
			for i, s := range out {
				if s.Quality == drivers.Good {
					t.Errorf("poll %d: %s good %v during the exception window", polls, tags[i].Name, s.Value)
				}
			}
		}
		<-tick.C
	}
	t.Logf("%d polls in the exception window, at most %d request(s) per poll", polls, maxPerPoll)
	if got := fmt.Sprint(d.ActivePlan()); got != plan {
		t.Errorf("plan after the window %s, want %s", got, plan)
	}
	for poll := range 2 {
		before := r.served()
		out, err := interopRead(d, len(tags))
		if err != nil {
			t.Fatal(err)
		}
		if n := r.served() - before; n != 1 {
			t.Errorf("poll %d after the window sent %d requests, want the plan's 1", poll, n)
		}
		checkGood(t, tags, out, []any{int64(10), int64(11), int64(15)})
	}
}

// A hole in the device's map (exception 2) that persists is split away
// from the splitAfter-th poll in a row on (the other tags read good from
// the first), and once it is mapped the read is merged again.
func TestInteropHoleSplitThenMerged(t *testing.T) {
	peers.Interop(t)
	for _, framer := range []string{"rtu", "tcp"} {
		t.Run(framer, func(t *testing.T) {
			regs := map[uint16]uint16{0: 10, 1: 11, 2: 12, 4: 14, 5: 15} // 3 is a hole
			r := startResponder(t, framer, regs, nil)
			tags := []modbus.Tag{u16Tag("a", 0), u16Tag("b", 1), u16Tag("hole", 3), u16Tag("c", 5)}
			d := quirkDriver(t, r, 1, time.Second, nil, tags...)
			plan := fmt.Sprint(d.Plan())
			for poll := range 4 {
				out, err := interopRead(d, len(tags))
				if err != nil {
					t.Fatal(err)
				}
				checkGood(t, []modbus.Tag{tags[0], tags[1], tags[3]}, []drivers.Sample{out[0], out[1], out[3]}, []any{int64(10), int64(11), int64(15)})
				if out[2].Quality != drivers.Bad {
					t.Errorf("poll %d: hole %+v", poll, out[2])
				}
				split := fmt.Sprint(d.ActivePlan()) != plan
				if want := poll >= 2; split != want { // splitAfter = 3
					t.Errorf("poll %d: plan %v split %v, want %v", poll, d.ActivePlan(), split, want)
				}
			}
			r.set(3, 13)
			for poll := range 3 {
				before := r.served()
				out, err := interopRead(d, len(tags))
				if err != nil {
					t.Fatal(err)
				}
				checkGood(t, tags, out, []any{int64(10), int64(11), int64(13), int64(15)})
				if n := r.served() - before; poll > 0 && n != 1 {
					t.Errorf("poll %d after the hole was mapped: %d requests, want 1 (plan %v)", poll, n, d.ActivePlan())
				}
			}
		})
	}
}

// Diagnostic writes (functions 6, 16, 5, 15) are answered by an echo of
// address and count; over RTU that reply must be taken, not reported as a
// garbled one, and the values read back are those written.
func TestInteropWrites(t *testing.T) {
	peers.Interop(t)
	ctx := context.Background()
	for _, framer := range framers {
		t.Run(framer, func(t *testing.T) {
			r := startResponder(t, framer, map[uint16]uint16{10: 0, 11: 0, 12: 0}, nil)
			d := quirkDriver(t, r, 1, time.Second, nil, u16Tag("x", 10))
			for _, words := range [][]uint16{{0x1234}, {0xBEEF, 7, 0xFFFF}} {
				if err := d.WriteWords(ctx, 10, words); err != nil {
					t.Fatalf("write %v: %v", words, err)
				}
				got, err := d.ReadWords(ctx, "holding", 10, uint16(len(words)))
				if err != nil || fmt.Sprint(got) != fmt.Sprint(words) {
					t.Errorf("read back %v %v, want %v", got, err, words)
				}
			}
			for _, bits := range [][]bool{{true}, {false, true, true, false, true, false, false, true, true}} {
				if err := d.WriteBits(ctx, 3, bits); err != nil {
					t.Fatalf("write coils %v: %v", bits, err)
				}
				got, err := d.ReadBits(ctx, "coil", 3, uint16(len(bits)))
				if err != nil || fmt.Sprint(got) != fmt.Sprint(bits) {
					t.Errorf("read back %v %v, want %v", got, err, bits)
				}
			}
			// A refused write is an exception, not a garbled reply.
			if err := d.WriteWords(ctx, 50, []uint16{1}); !modbus.IsException(err) {
				t.Errorf("write to an unmapped register: %v, want exception 2", err)
			}
		})
	}
}

// Frame timing at a real baud rate, and a leading byte that is not part of
// the reply: a 125-register reply takes 266 ms on the wire at 9600 baud,
// longer than the 150 ms timeout (which counts to its first byte); a noise
// byte, or the RS-485 echo of the request, comes before the reply.
func TestInteropSerialFraming(t *testing.T) {
	peers.Interop(t)
	regs := map[uint16]uint16{}
	for a := range uint16(125) {
		regs[a] = 1000 + a
	}
	charTime := 10 * time.Second / 9600 // 8N1
	tests := []struct {
		name     string
		framer   string
		charTime time.Duration
		prefix   func(pdu []byte) []byte
	}{
		{"rtu 125 registers at 9600 baud", "rtu", charTime, nil},
		{"rtu noise byte", "rtu", 0, func([]byte) []byte { return []byte{0x00} }},
		{"rtu 0xFF byte", "rtu", 0, func([]byte) []byte { return []byte{0xFF} }},
		{"rtu echo", "rtu", 0, func(pdu []byte) []byte { return rtuFrameOf(1, pdu) }},
		{"rtu echo at 9600 baud", "rtu", charTime, func(pdu []byte) []byte { return rtuFrameOf(1, pdu) }},
		{"ascii noise", "ascii", 0, func([]byte) []byte { return []byte{0x00, '\n'} }},
		{"ascii echo", "ascii", 0, func(pdu []byte) []byte { return asciiFrame(1, pdu) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := startResponder(t, tt.framer, regs, func(n int, unit byte, pdu []byte) answer {
				if tt.prefix == nil {
					return answer{}
				}
				return answer{prefix: tt.prefix(pdu)}
			})
			r.charTime = tt.charTime
			d := quirkDriver(t, r, 1, 150*time.Millisecond, func(c *modbus.Config) {
				c.Address = strings.Replace(r.url(), "parity=N", "baud=9600&parity=N", 1)
				c.MaxGap = 125
			}, u16Tag("first", 0), u16Tag("last", 124))
			if got := fmt.Sprint(d.Plan()); got != "[holding 0x0000+125 (2 tags)]" {
				t.Fatalf("plan %s", got)
			}
			for poll := range 3 {
				out, err := interopRead(d, 2)
				if err != nil {
					t.Fatalf("poll %d: %v", poll, err)
				}
				checkGood(t, []modbus.Tag{u16Tag("first", 0), u16Tag("last", 124)}, out, []any{int64(1000), int64(1124)})
			}
		})
	}
}

// Device quirks: a TCP gateway that answers with unit id 0 or 1 whatever
// unit was asked (unit_id_check: false takes it, the default refuses it);
// a device that drops the requests sent in the first 150 ms of a
// connection (first_read_delay: 300ms waits that out, after every
// connect); rs485 on a port without RS-485 mode fails at open, naming it.
func TestInteropDeviceQuirks(t *testing.T) {
	peers.Interop(t)
	regs := map[uint16]uint16{0: 4242}
	tag := u16Tag("v", 0)
	t.Run("gateway answers with another unit id", func(t *testing.T) {
		for _, replyUnit := range []byte{0, 1} {
			r := startResponder(t, "tcp", regs, func(int, byte, []byte) answer { return answer{setUnit: true, unit: replyUnit} })
			checked := quirkDriver(t, r, 5, 300*time.Millisecond, nil, tag)
			if out, _ := interopRead(checked, 1); out[0].Quality != drivers.Bad {
				t.Errorf("unit_id_check on, reply from unit %d: %+v, want bad", replyUnit, out[0])
			}
			lax := quirkDriver(t, r, 5, 300*time.Millisecond, func(c *modbus.Config) { c.AnyUnitID = true }, tag)
			for poll := range 2 {
				out, err := interopRead(lax, 1)
				if err != nil {
					t.Fatalf("unit_id_check off, reply from unit %d, poll %d: %v", replyUnit, poll, err)
				}
				checkGood(t, []modbus.Tag{tag}, out, []any{int64(4242)})
			}
		}
	})
	t.Run("first read delay", func(t *testing.T) {
		r := startResponder(t, "tcp", regs, nil)
		r.deaf = 150 * time.Millisecond
		eager := quirkDriver(t, r, 1, 300*time.Millisecond, nil, tag)
		if out, _ := interopRead(eager, 1); out[0].Quality != drivers.Bad {
			t.Errorf("no first_read_delay: %+v, want the first request dropped", out[0])
		}
		patient := quirkDriver(t, r, 1, 300*time.Millisecond, func(c *modbus.Config) {
			c.FirstReadDelay = 300 * time.Millisecond
			c.CloseAfterPoll = true // a new connection, and delay, every poll
		}, tag)
		for poll := range 2 {
			out, err := interopRead(patient, 1)
			if err != nil {
				t.Fatalf("poll %d: %v", poll, err)
			}
			checkGood(t, []modbus.Tag{tag}, out, []any{int64(4242)})
		}
	})
	t.Run("rs485 on a pty", func(t *testing.T) {
		r := startResponder(t, "rtu", regs, nil)
		d := quirkDriver(t, r, 1, 300*time.Millisecond, func(c *modbus.Config) { c.Address = r.url() + "&rs485=true" }, tag)
		_, err := interopRead(d, 1)
		if err == nil || !strings.Contains(err.Error(), "with rs485 (the port's driver must support RS-485 mode)") {
			t.Errorf("got %v, want the open to fail on the RS-485 ioctl", err)
		}
	})
}

// Ten slaves on one RS-485 line at 9600 baud (the responder paces its
// replies at the baud rate), each polled every second on its own
// goroutine as the collector does: unit 10 is dead, unit 9 answers after
// 150 ms (within its timeout). Every good value is its own unit's, the
// eight others read good at every poll, and the figures Pool.Stats gives
// (polls per second per slave, bus utilisation) are logged.
func TestInteropBusDeadAndSlowSlave(t *testing.T) {
	peers.Interop(t)
	regs := map[uint16]uint16{0: 0}
	r := startResponder(t, "rtu", regs, func(_ int, unit byte, pdu []byte) answer {
		reply := []byte{pdu[0], 2, 0, unit} // register 0 holds the unit id
		switch unit {
		case 10:
			return answer{reply: []byte{}} // dead: no reply at all
		case 9:
			return answer{reply: reply, delay: 150 * time.Millisecond}
		}
		return answer{reply: reply}
	})
	r.charTime = 10 * time.Second / 9600
	pool := modbus.NewPool()
	const units = 10
	drvs := make([]*modbus.Driver, units)
	for i := range drvs {
		d, err := modbus.New(modbus.Config{
			Device: fmt.Sprintf("slave%02d", i+1), Address: "rtu://" + r.Device + "?baud=9600&parity=N",
			UnitID: byte(i + 1), Timeout: 300 * time.Millisecond, Pool: pool,
			Tags: []modbus.Tag{u16Tag("id", 0)},
		})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { d.Close() })
		drvs[i] = d
	}
	const polls = 8
	bad := make([]int, units)
	var wg sync.WaitGroup
	for i, d := range drvs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			tick := time.NewTicker(time.Second)
			defer tick.Stop()
			for range polls {
				ctx, cancel := context.WithTimeout(context.Background(), time.Second)
				out := make([]drivers.Sample, 1)
				d.Read(ctx, out)
				cancel()
				if out[0].Quality == drivers.Good {
					if out[0].Value != int64(i+1) {
						t.Errorf("slave%02d: good %v, want its own unit id %d", i+1, out[0].Value, i+1)
					}
				} else {
					bad[i]++
				}
				<-tick.C
			}
		}()
	}
	wg.Wait()
	for i, n := range bad {
		if i+1 != 10 && n > 0 {
			t.Errorf("slave%02d: %d of %d polls not good", i+1, n, polls)
		}
	}
	if bad[9] != polls {
		t.Errorf("dead slave10: %d of %d polls bad", bad[9], polls)
	}
	for _, ls := range pool.Stats() {
		t.Logf("%s: bus utilisation %.0f %%", ls.Link, 100*ls.Utilisation)
		for _, dr := range ls.Devices {
			t.Logf("  %s (unit %d): %.2f polls/s", dr.Device, dr.Unit, dr.PollsPerSecond)
		}
	}
}
