package modbus

import (
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/linegate/linegate/internal/testkit"

	"github.com/linegate/linegate/drivers"
)

// forwarder relays Modbus TCP to a server, counting connections, and
// drops the requests of a silent unit id (a gateway whose device is gone).
type forwarder struct {
	l        net.Listener
	upstream string
	silent   int // -1: none

	mu     sync.Mutex
	accept int
	open   int
	conns  []net.Conn
	wg     sync.WaitGroup
}

func startForwarder(t *testing.T, upstream string, silent int) *forwarder {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f := &forwarder{l: l, upstream: upstream, silent: silent}
	f.wg.Add(1)
	go f.run()
	t.Cleanup(func() {
		l.Close()
		f.mu.Lock()
		for _, c := range f.conns {
			c.Close()
		}
		f.mu.Unlock()
		f.wg.Wait()
	})
	return f
}

func (f *forwarder) addr() string { return f.l.Addr().String() }

func (f *forwarder) counts() (accepted, open int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.accept, f.open
}

func (f *forwarder) run() {
	defer f.wg.Done()
	for {
		c, err := f.l.Accept()
		if err != nil {
			return
		}
		up, err := net.Dial("tcp", f.upstream)
		if err != nil {
			c.Close()
			continue
		}
		f.mu.Lock()
		f.accept++
		f.open++
		f.conns = append(f.conns, c, up)
		f.mu.Unlock()
		f.wg.Add(2)
		go func() {
			defer f.wg.Done()
			io.Copy(c, up)
			c.Close()
		}()
		go func() {
			defer f.wg.Done()
			defer func() {
				up.Close()
				f.mu.Lock()
				f.open--
				f.mu.Unlock()
			}()
			var hdr [7]byte
			for {
				if _, err := io.ReadFull(c, hdr[:]); err != nil {
					return
				}
				body := make([]byte, int(binary.BigEndian.Uint16(hdr[4:6]))-1)
				if _, err := io.ReadFull(c, body); err != nil {
					return
				}
				if int(hdr[6]) == f.silent {
					continue
				}
				if _, err := up.Write(append(hdr[:], body...)); err != nil {
					return
				}
			}
		}()
	}
}

func pooledDriver(t *testing.T, pool *Pool, addr string, unit byte, edit func(*Config), tags ...Tag) *Driver {
	t.Helper()
	cfg := Config{Device: "unit" + string('0'+unit), Address: "tcp://" + addr, UnitID: unit, Timeout: 2 * time.Second, Pool: pool, Tags: tags}
	if edit != nil {
		edit(&cfg)
	}
	d, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	d.setBackoff(10*time.Millisecond, 50*time.Millisecond)
	t.Cleanup(func() { d.Close() })
	return d
}

func TestPoolSharesOneConnection(t *testing.T) {
	b := newBank()
	b.setWords("holding", 0, 7, 8, 9)
	addr, _ := startServer(t, b, "")
	fw := startForwarder(t, addr, -1)
	pool := NewPool()
	var drvs []*Driver
	for unit := byte(1); unit <= 3; unit++ {
		drvs = append(drvs, pooledDriver(t, pool, fw.addr(), unit, nil, tg("holding", uint16(unit-1), "uint16"), tg("coil", 0, "bool")))
	}
	var wg sync.WaitGroup
	errs := make(chan error, 30)
	for i, d := range drvs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 10 {
				out := make([]drivers.Sample, 2)
				if err := d.Read(t.Context(), out); err != nil {
					errs <- err
					return
				}
				if out[0].Value != int64(7+i) {
					errs <- io.ErrUnexpectedEOF
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if accepted, _ := fw.counts(); accepted != 1 {
		t.Errorf("%d connections for three units behind one address, want 1", accepted)
	}
	// The connection closes with the last driver, not before.
	drvs[0].Close()
	drvs[1].Close()
	if _, open := fw.counts(); open != 1 {
		t.Errorf("%d connections open with one driver left, want 1", open)
	}
	drvs[2].Close()
	testkit.WaitFor(t, waitTimeout, "connection closed after the last driver", func() bool { _, open := fw.counts(); return open == 0 })
	// Read after Close connects again.
	if _, err := read(t, drvs[0]); err != nil {
		t.Fatal(err)
	}
}

func TestReadStampsEachRequest(t *testing.T) {
	// A reading's ts is when its own request went out: before the device
	// got it, and after the reply to the request before it; not the time
	// the poll began. The device holds the first request until released,
	// so the later requests' readings must be stamped after the release.
	// The assertions are orderings of events, not durations.
	b := newBank()
	addr, _ := startServer(t, b, "")
	d := pooledDriver(t, NewPool(), addr, 1, nil, tg("holding", 0, "uint16"), tg("input", 0, "uint16"), tg("coil", 0, "bool"))
	held := b.holdNext()
	done := make(chan []drivers.Sample)
	began := time.Now()
	go func() {
		out, _ := read(t, d)
		done <- out
	}()
	<-held
	released := time.Now()
	b.releaseHeld()
	out := <-done

	arr := b.arrivals()
	if len(arr) != len(out) {
		t.Fatalf("%d requests served, want %d", len(arr), len(out))
	}
	for i, s := range out {
		if s.Quality != drivers.Good {
			t.Fatalf("tag %d: %+v", i, s)
		}
		switch {
		case s.TS.Before(began) || s.TS.After(arr[i]):
			t.Errorf("tag %d: ts %v is not between the poll's start (%v) and the device getting the request (%v)", i, s.TS, began, arr[i])
		case i > 0 && s.TS.Before(released):
			t.Errorf("tag %d: ts %v is before the reply to the request before it (released %v)", i, s.TS, released)
		}
	}
}

func TestPoolDevicesTakeTurnsPollByPoll(t *testing.T) {
	// Devices on one link take turns poll by poll: a device's requests
	// follow one another, so its readings are one snapshot. With a pause
	// between requests the link is given up during the pause, so another
	// device's request may come in between.
	cases := []struct {
		name  string
		pause time.Duration
		want  []uint8 // the first units in the order their requests came
	}{
		{name: "no pause", want: []uint8{1, 1, 1, 2, 2, 2}},
		// second waits for the link; first gives it up after its first
		// reply, so second's first request comes next.
		{name: "pause", pause: 20 * time.Millisecond, want: []uint8{1, 2}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			b := newBank()
			addr, _ := startServer(t, b, "")
			pool := NewPool()
			edit := func(c *Config) { c.Pause = tc.pause }
			tags := []Tag{tg("holding", 0, "uint16"), tg("input", 0, "uint16"), tg("coil", 0, "bool")}
			first := pooledDriver(t, pool, addr, 1, edit, tags...)
			second := pooledDriver(t, pool, addr, 2, edit, tags...)
			// first's first request is held by the device while second's
			// poll starts: second must wait for first's whole poll.
			held := b.holdNext()
			errs := make(chan error, 2)
			go func() { _, err := read(t, first); errs <- err }()
			<-held
			go func() { _, err := read(t, second); errs <- err }()
			testkit.WaitFor(t, waitTimeout, "second poll waiting for the link", func() bool { return linkWaiters(second.l) > 0 })
			b.releaseHeld()
			for range 2 {
				if err := <-errs; err != nil {
					t.Fatal(err)
				}
			}
			got := b.unitOrder()
			if len(got) != 6 {
				t.Fatalf("units of the requests: %v, want 6 requests", got)
			}
			if !slices.Equal(got[:len(tc.want)], tc.want) {
				t.Fatalf("units of the requests in order: %v, want %v", got, tc.want)
			}
		})
	}
}

// linkWaiters is how many polls or requests wait for l.
func linkWaiters(l link) int32 {
	switch l := l.(type) {
	case *tcpLink:
		return l.waiting.Load()
	case *serialLink:
		return l.waiting.Load()
	}
	return 0
}

func TestPoolSilentUnitCostsOnlyItsTimeout(t *testing.T) {
	b := newBank()
	b.setWords("holding", 0, 42)
	addr, _ := startServer(t, b, "")
	fw := startForwarder(t, addr, 9)
	pool := NewPool()
	good := pooledDriver(t, pool, fw.addr(), 1, nil, tg("holding", 0, "uint16"))
	silent := pooledDriver(t, pool, fw.addr(), 9, func(c *Config) { c.Timeout = 100 * time.Millisecond }, tg("holding", 0, "uint16"))
	silent.setBackoff(0, 0) // it tries every time

	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for range 5 {
			if _, err := read(t, silent); err == nil || !strings.Contains(err.Error(), "i/o timeout") {
				t.Errorf("silent unit: %v, want an i/o timeout", err)
			}
		}
	}()
	for range 10 {
		out, err := read(t, good)
		if err != nil {
			t.Fatalf("good unit beside a silent one: %v", err)
		}
		wantGood(t, out, 0, int64(42))
	}
	wg.Wait()
}

func TestPoolMaxConnectionsAndCloseAfterPoll(t *testing.T) {
	b := newBank()
	addr, _ := startServer(t, b, "")
	fw := startForwarder(t, addr, -1)
	pool := NewPool()
	d1 := pooledDriver(t, pool, fw.addr(), 1, func(c *Config) { c.MaxConnections = 2; c.CloseAfterPoll = true }, tg("holding", 0, "uint16"))
	for range 3 {
		if _, err := read(t, d1); err != nil {
			t.Fatal(err)
		}
	}
	if accepted, _ := fw.counts(); accepted != 3 {
		t.Errorf("close_after_poll: %d connections for 3 polls, want 3", accepted)
	}
	// A device on the same address must agree on the gateway's limit.
	_, err := New(Config{Device: "other", Address: "tcp://" + fw.addr(), UnitID: 2, Pool: pool, Tags: []Tag{tg("holding", 0, "uint16")}})
	if err == nil || !strings.Contains(err.Error(), "shared with device unit1, which sets max_connections 2, not max_connections 1") {
		t.Errorf("got %v", err)
	}
}

func TestSplitOnException(t *testing.T) {
	b := newBank()
	b.holes = map[uint16]bool{3: true, 4: true, 12: true}
	b.setWords("holding", 0, 10, 11, 12, 0, 0, 15, 16, 17, 18, 19, 20, 21, 0, 23)
	addr, _ := startServer(t, b, "")
	tags := []Tag{
		tg("holding", 0, "uint16"), tg("holding", 1, "uint16"), tg("holding", 2, "uint16"),
		tg("holding", 3, "uint16"), // hole
		tg("holding", 5, "uint32"), tg("holding", 7, "uint16"), bitTag(8, 0), bitTag(8, 1),
		tg("holding", 10, "uint16"), tg("holding", 11, "uint16"),
		tg("holding", 12, "uint16"), // hole
		tg("holding", 13, "uint16"),
	}
	d := newDriver(t, addr, nil, tags...)
	if got := len(d.Plan()); got != 1 {
		t.Fatalf("plan %v: want one merged read", d.Plan())
	}
	check := func() {
		out, err := read(t, d)
		if err != nil {
			t.Fatal(err)
		}
		want := []any{int64(10), int64(11), int64(12), nil, int64(15<<16 | 16), int64(17), false, true, int64(20), int64(21), nil, int64(23)}
		for i, w := range want {
			if w == nil {
				wantBad(t, out, i, "modbus exception 2 (illegal data address)")
				continue
			}
			wantGood(t, out, i, w)
		}
	}
	// A hole persists: the read is split within each cycle (its other
	// tags read good), and the split is kept from the splitAfter-th cycle
	// in a row on.
	for cycle := 1; cycle < splitAfter; cycle++ {
		check()
		if got := fmt.Sprint(d.ActivePlan()); got != fmt.Sprint(d.Plan()) {
			t.Fatalf("cycle %d: plan %s already split", cycle, got)
		}
	}
	check()
	split := d.ActivePlan()
	for _, r := range split {
		for _, i := range r.Tags {
			if (i == 3 || i == 10) && len(r.Tags) != 1 {
				t.Errorf("split %v: bad tag %d shares a read", split, i)
			}
		}
	}
	// The split is kept: the next cycle sends just its reads.
	before := b.served()
	check()
	if n := b.served() - before; n != len(split) {
		t.Errorf("next cycle sent %d requests, want the %d of the split plan %v", n, len(split), split)
	}
	// 0..2, 3 (hole), 5..11, 12 (hole), 13: the good ranges merged again.
	if got := fmt.Sprint(split); got != "[holding 0x0000+3 (3 tags) holding 0x0003+1 (1 tag) holding 0x0005+7 (6 tags) holding 0x000C+1 (1 tag) holding 0x000D+1 (1 tag)]" {
		t.Errorf("split plan %s", got)
	}

	// The holes are mapped now: once every part answers, the read is
	// merged again, one request per cycle.
	b.mu.Lock()
	b.holes = nil
	b.mu.Unlock()
	for range 2 {
		if _, err := read(t, d); err != nil {
			t.Fatal(err)
		}
	}
	before = b.served()
	out, err := read(t, d)
	if err != nil || !allGoodSamples(out) {
		t.Fatalf("after the holes cleared: %v %+v", err, out)
	}
	if n := b.served() - before; n != 1 || fmt.Sprint(d.ActivePlan()) != fmt.Sprint(d.Plan()) {
		t.Errorf("after the holes cleared: %d requests, plan %v, want the configured %v", n, d.ActivePlan(), d.Plan())
	}
}

func allGoodSamples(out []drivers.Sample) bool {
	for _, s := range out {
		if s.Quality != drivers.Good {
			return false
		}
	}
	return true
}

// Exceptions 4, 6, 10 and 11 pass (a PLC in STOP or busy, a gateway's
// device not answering): that cycle's tags are bad, the plan is not split.
func TestTransientExceptionKeepsPlan(t *testing.T) {
	for _, code := range []byte{4, 6, 10, 11} {
		t.Run(fmt.Sprint(code), func(t *testing.T) {
			var mu sync.Mutex
			failing := true
			addr, _ := rawServer(t, func(req []byte) []byte {
				mu.Lock()
				defer mu.Unlock()
				if failing {
					return append(append([]byte(nil), req[:4]...), 0, 3, req[6], req[7]|0x80, code)
				}
				n := int(binary.BigEndian.Uint16(req[10:]))
				out := append(append([]byte(nil), req[:4]...), 0, byte(3+2*n), req[6], req[7], byte(2*n))
				return append(out, make([]byte, 2*n)...)
			})
			d := newDriver(t, addr, nil, tg("holding", 0, "uint16"), tg("holding", 5, "uint16"))
			for range splitAfter + 1 {
				out, _ := read(t, d)
				wantBad(t, out, 0, "modbus exception")
				wantBad(t, out, 1, "modbus exception")
			}
			if got := fmt.Sprint(d.ActivePlan()); got != fmt.Sprint(d.Plan()) {
				t.Errorf("plan %s after exception %d, want %v", got, code, d.Plan())
			}
			mu.Lock()
			failing = false
			mu.Unlock()
			// 10 and 11 count as a silent device: it backs off first.
			var out []drivers.Sample
			testkit.WaitFor(t, waitTimeout, "an answer", func() bool {
				var err error
				out, err = read(t, d)
				return err == nil
			})
			wantGood(t, out, 0, int64(0))
			wantGood(t, out, 1, int64(0))
		})
	}
}

func TestPauseBetweenRequests(t *testing.T) {
	b := newBank()
	addr, _ := startServer(t, b, "")
	const pause = 30 * time.Millisecond
	d := newDriver(t, addr, func(c *Config) { c.Pause = pause; c.MaxGap = -1 },
		tg("holding", 0, "uint16"), tg("holding", 50, "uint16"), tg("input", 0, "uint16"))
	start := time.Now()
	if _, err := read(t, d); err != nil {
		t.Fatal(err)
	}
	// A lower bound only: three requests, two pauses between them.
	if took := time.Since(start); took < 2*pause {
		t.Errorf("3 requests took %v, less than 2 pauses of %v", took, pause)
	}
}
