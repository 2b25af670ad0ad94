package modbus_test

// Interop over a serial line: pymodbus 3.0 as RTU (and ASCII) server on
// one end of a socat pty pair, the driver on the other, several unit ids
// sharing the line through one Pool. mbpoll reads the same line as an
// independent client.

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/linegate/linegate/internal/testkit"

	"github.com/linegate/linegate/drivers"
	"github.com/linegate/linegate/drivers/modbus"
	"github.com/linegate/linegate/testdata/peers"
)

// busUnits is the register map of the bus: unit 1 a plain device, unit 2
// one with holes in its map, unit 3 a slow one (answers within the
// timeout), unit 4 one slower than its timeout.
func busUnits() map[byte]peers.UnitSpec {
	return map[byte]peers.UnitSpec{
		1: {Holding: map[uint16]uint16{0: 0x42F6, 1: 0x8000, 2: 4242, 3: 0xFFFF}, Coils: map[uint16]bool{3: true}},
		2: {Sparse: true, Holding: map[uint16]uint16{0: 11, 1: 12, 5: 0x0001, 6: 0x0002, 9: 19}},
		3: {Delay: 150 * time.Millisecond, Input: map[uint16]uint16{0: 33}},
		4: {Delay: 900 * time.Millisecond, Holding: map[uint16]uint16{0: 44}},
	}
}

type busDevice struct {
	unit    byte
	timeout time.Duration
	tags    []modbus.Tag
	want    []any // nil: Bad with exception 2
}

func busDevices() []busDevice {
	return []busDevice{
		{1, time.Second, []modbus.Tag{
			{Name: "f", Register: "holding", Address: 0, Type: "float32", Bit: -1},
			{Name: "u", Register: "holding", Address: 2, Type: "uint16", Bit: -1},
			{Name: "i", Register: "holding", Address: 3, Type: "int16", Bit: -1},
			{Name: "c", Register: "coil", Address: 3, Type: "bool", Bit: -1},
		}, []any{123.25, int64(4242), int64(-1), true}},
		// One merged read 0..9 that draws exception 2: split, only h3 fails.
		{2, time.Second, []modbus.Tag{
			{Name: "h0", Register: "holding", Address: 0, Type: "uint16", Bit: -1},
			{Name: "h1", Register: "holding", Address: 1, Type: "uint16", Bit: -1},
			{Name: "h3", Register: "holding", Address: 3, Type: "uint16", Bit: -1},
			{Name: "h5", Register: "holding", Address: 5, Type: "uint32", Bit: -1},
			{Name: "h9", Register: "holding", Address: 9, Type: "uint16", Bit: -1},
		}, []any{int64(11), int64(12), nil, int64(0x00010002), int64(19)}},
		{3, time.Second, []modbus.Tag{{Name: "slow", Register: "input", Address: 0, Type: "uint16", Bit: -1}}, []any{int64(33)}},
	}
}

func busDriver(t *testing.T, pool *modbus.Pool, device string, unit byte, timeout time.Duration, tags []modbus.Tag) *modbus.Driver {
	t.Helper()
	d, err := modbus.New(modbus.Config{
		Device: fmt.Sprintf("unit%d", unit), Address: "rtu://" + device + "?baud=19200&parity=N",
		UnitID: unit, Timeout: timeout, Pool: pool, Tags: tags,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	return d
}

// checkBus reports every sample that differs from want (nil: Bad with
// exception 2).
func checkBus(t *testing.T, name string, tags []modbus.Tag, out []drivers.Sample, want []any) {
	t.Helper()
	for i, s := range out {
		if want[i] == nil {
			var ex *modbus.Exception
			if s.Quality != drivers.Bad || !errors.As(s.Err, &ex) || ex.Code != 2 {
				t.Errorf("%s/%s: %+v, want bad with exception 2", name, tags[i].Name, s)
			}
			continue
		}
		if s.Quality != drivers.Good || s.Value != want[i] {
			t.Errorf("%s/%s: %+v, want good %v", name, tags[i].Name, s, want[i])
		}
	}
}

func TestInteropRTUSharedBus(t *testing.T) {
	peers.Interop(t)
	srv := peers.StartPymodbusSerial(t, peers.PymodbusSpec{Units: busUnits()}, peers.SerialOptions{})
	pool := modbus.NewPool()
	devs := busDevices()
	drvs := make([]*modbus.Driver, len(devs))
	for i, bd := range devs {
		drvs[i] = busDriver(t, pool, srv.Device, bd.unit, bd.timeout, bd.tags)
	}

	t.Run("three units take turns", func(t *testing.T) {
		// Every device polls on its own goroutine, as under the collector.
		const cycles = 3
		outs := make([][][]drivers.Sample, len(devs))
		errs := make([]error, len(devs))
		var wg sync.WaitGroup
		for i := range devs {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for range cycles {
					out, err := interopRead(drvs[i], len(devs[i].tags))
					outs[i] = append(outs[i], out)
					if err != nil {
						errs[i] = err
						return
					}
				}
			}()
		}
		wg.Wait()
		for i, bd := range devs {
			if errs[i] != nil {
				t.Fatalf("unit %d: %v", bd.unit, errs[i])
			}
			for c, out := range outs[i] {
				checkBus(t, fmt.Sprintf("unit%d cycle %d", bd.unit, c), bd.tags, out, bd.want)
			}
		}
		// The exception split unit 2's one read, and the split is kept:
		// h3 alone fails, the ranges that answer read merged (7..8 are
		// holes too: h5 and h9 read apart).
		if got := fmt.Sprint(drvs[1].Plan()); got != "[holding 0x0000+10 (5 tags)]" {
			t.Errorf("configured plan %s", got)
		}
		if got := fmt.Sprint(drvs[1].ActivePlan()); got != "[holding 0x0000+2 (2 tags) holding 0x0003+1 (1 tag) holding 0x0005+2 (1 tag) holding 0x0009+1 (1 tag)]" {
			t.Errorf("split plan %s", got)
		}
	})

	t.Run("a unit slower than its timeout", func(t *testing.T) {
		slow := busDriver(t, pool, srv.Device, 4, 300*time.Millisecond, []modbus.Tag{{Name: "late", Register: "holding", Address: 0, Type: "uint16", Bit: -1}})
		for round := range 2 {
			out, err := interopRead(slow, 1)
			if err == nil || !errors.Is(err, os.ErrDeadlineExceeded) || out[0].Quality != drivers.Bad {
				t.Fatalf("round %d: unit 4: %v %+v, want an i/o timeout", round, err, out[0])
			}
			// Its late reply arrives while unit 1 waits for its own: it
			// must be skipped, never taken for unit 1's answer.
			out, err = interopRead(drvs[0], len(devs[0].tags))
			if err != nil {
				t.Fatalf("round %d: unit 1 after unit 4's timeout: %v", round, err)
			}
			checkBus(t, "unit1", devs[0].tags, out, devs[0].want)
		}
	})

	t.Run("a unit disappears and returns", func(t *testing.T) {
		srv.Mute(2)
		out, err := interopRead(drvs[1], len(devs[1].tags))
		if err == nil || !strings.Contains(err.Error(), "i/o timeout") {
			t.Fatalf("muted unit 2: %v, want an i/o timeout", err)
		}
		for i, s := range out {
			if s.Quality != drivers.Bad {
				t.Errorf("muted unit 2 %s: %+v", devs[1].tags[i].Name, s)
			}
		}
		// It backs off: the next read returns at once, without a request.
		start := time.Now()
		if _, err := interopRead(drvs[1], len(devs[1].tags)); err == nil || !strings.HasPrefix(err.Error(), "retry in ") {
			t.Fatalf("unit 2 during backoff: %v", err)
		}
		if d := time.Since(start); d > 500*time.Millisecond {
			t.Errorf("a read during backoff took %v", d)
		}
		// The others on the bus are unaffected.
		for _, i := range []int{0, 2} {
			out, err := interopRead(drvs[i], len(devs[i].tags))
			if err != nil {
				t.Fatalf("unit %d while unit 2 is gone: %v", devs[i].unit, err)
			}
			checkBus(t, fmt.Sprintf("unit%d", devs[i].unit), devs[i].tags, out, devs[i].want)
		}
		srv.Unmute(2)
		var last error
		// pymodbus may drop the first request after the unmute.
		testkit.WaitFor(t, 20*time.Second, "unit 2 back", func() bool {
			out, last = interopRead(drvs[1], len(devs[1].tags))
			return last == nil && out[0].Quality == drivers.Good
		})
		checkBus(t, "unit2 back", devs[1].tags, out, devs[1].want)
	})

	t.Run("mbpoll reads the same", func(t *testing.T) {
		out, err := interopRead(drvs[0], len(devs[0].tags))
		if err != nil {
			t.Fatal(err)
		}
		// Release the port: the pool closes it with its last driver.
		for _, d := range drvs {
			d.Close()
		}
		got, err := peers.MbpollSerial(t, srv.Device, "-a", "1", "-r", "1", "-t", "4:float", "-B")
		if err != nil {
			t.Fatal(err)
		}
		if got[1] != fmt.Sprintf("%.6g", out[0].Value.(float64)) {
			t.Errorf("mbpoll float32 at 0: %q, driver %v", got[1], out[0].Value)
		}
		got, err = peers.MbpollSerial(t, srv.Device, "-a", "1", "-r", "3", "-c", "2", "-t", "4")
		if err != nil {
			t.Fatal(err)
		}
		if got[3] != "4242" || got[4] != "65535 (-1)" {
			t.Errorf("mbpoll holding 2..3: %q %q, driver %v %v", got[3], got[4], out[1].Value, out[2].Value)
		}
		got, err = peers.MbpollSerial(t, srv.Device, "-a", "2", "-r", "10", "-t", "4")
		if err != nil || got[10] != "19" {
			t.Errorf("mbpoll unit 2 holding 9: %v %v", got, err)
		}
		if _, err := peers.MbpollSerial(t, srv.Device, "-a", "2", "-r", "1", "-c", "10", "-t", "4"); err == nil || !strings.Contains(err.Error(), "Illegal data address") {
			t.Errorf("mbpoll unit 2 holding 0..9 across the hole: %v, want Illegal data address", err)
		}
	})
}

func TestInteropASCII(t *testing.T) {
	peers.Interop(t)
	srv := peers.StartPymodbusSerial(t, peers.PymodbusSpec{Units: map[byte]peers.UnitSpec{
		7: {Holding: map[uint16]uint16{0: 0x4142, 1: 0x4300, 4: 0xFFFE}, Discrete: map[uint16]bool{2: true}},
	}}, peers.SerialOptions{Framer: "ascii"})
	tags := []modbus.Tag{
		{Name: "text", Register: "holding", Address: 0, Type: "string", Length: 2, Bit: -1},
		{Name: "swapped", Register: "holding", Address: 0, Type: "string", Length: 2, Bit: -1, ByteOrder: "BADC"},
		{Name: "n", Register: "holding", Address: 4, Type: "int16", Bit: -1},
		{Name: "d", Register: "discrete", Address: 2, Type: "bool", Bit: -1},
	}
	d, err := modbus.New(modbus.Config{Device: "scale", Address: "ascii://" + srv.Device + "?parity=N", UnitID: 7, Timeout: time.Second, Tags: tags})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	for range 2 {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		out := make([]drivers.Sample, len(tags))
		err := d.Read(ctx, out)
		cancel()
		if err != nil {
			t.Fatal(err)
		}
		checkGood(t, tags, out, []any{"ABC", "BA\x00C", int64(-2), true})
	}
}
