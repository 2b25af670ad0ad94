package modbus

import (
	"errors"
	"io"
	"log"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/linegate/linegate/internal/testkit"
	mbserver "github.com/simonvetter/modbus"
)

// waitTimeout bounds the waits for conditions that normally hold in
// milliseconds.
const waitTimeout = 15 * time.Second

// bank is the register map of a test device, served by a real
// simonvetter/modbus server. Addresses from limit on answer exception 2.
type bank struct {
	mu       sync.Mutex
	limit    uint16
	holes    map[uint16]bool // addresses (of every table) that answer exception 2
	requests int
	holding  [1024]uint16
	input    [1024]uint16
	coils    [1024]bool
	discrete [1024]bool

	// hold, when set, makes the next holding read wait until release is
	// closed: a reply delayed past the client's timeout.
	hold    bool
	held    chan struct{} // closed when the held request has arrived
	release chan struct{}

	arrived []time.Time // when each request reached the handler, in order
	units   []uint8     // and from which unit id
}

func newBank() *bank { return &bank{limit: 1024} }

// holdNext arms the delayed reply; the returned channel closes once the
// request is being held.
func (b *bank) holdNext() (held <-chan struct{}) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.hold = true
	b.held = make(chan struct{})
	b.release = make(chan struct{})
	return b.held
}

func (b *bank) releaseHeld() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.release != nil {
		close(b.release)
		b.release = nil
	}
}

func (b *bank) setWords(table string, addr uint16, words ...uint16) {
	b.mu.Lock()
	defer b.mu.Unlock()
	dst := b.holding[:]
	if table == "input" {
		dst = b.input[:]
	}
	copy(dst[addr:], words)
}

func (b *bank) setBit(table string, addr uint16, v bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if table == "coil" {
		b.coils[addr] = v
	} else {
		b.discrete[addr] = v
	}
}

func (b *bank) check(unit uint8, addr, qty uint16) error {
	b.requests++
	b.arrived = append(b.arrived, time.Now())
	b.units = append(b.units, unit)
	if int(addr)+int(qty) > int(b.limit) {
		return mbserver.ErrIllegalDataAddress
	}
	for a := int(addr); a < int(addr)+int(qty); a++ {
		if b.holes[uint16(a)] {
			return mbserver.ErrIllegalDataAddress
		}
	}
	return nil
}

// arrivals returns when each request reached the handler.
func (b *bank) arrivals() []time.Time {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]time.Time(nil), b.arrived...)
}

// unitOrder returns the unit id of each request, in the order they came.
func (b *bank) unitOrder() []uint8 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]uint8(nil), b.units...)
}

// served counts the requests the bank has seen.
func (b *bank) served() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.requests
}

func (b *bank) HandleCoils(req *mbserver.CoilsRequest) ([]bool, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if err := b.check(req.UnitId, req.Addr, req.Quantity); err != nil {
		return nil, err
	}
	if req.IsWrite {
		copy(b.coils[req.Addr:], req.Args)
		return nil, nil
	}
	return append([]bool(nil), b.coils[req.Addr:req.Addr+req.Quantity]...), nil
}

func (b *bank) HandleDiscreteInputs(req *mbserver.DiscreteInputsRequest) ([]bool, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if err := b.check(req.UnitId, req.Addr, req.Quantity); err != nil {
		return nil, err
	}
	return append([]bool(nil), b.discrete[req.Addr:req.Addr+req.Quantity]...), nil
}

func (b *bank) HandleHoldingRegisters(req *mbserver.HoldingRegistersRequest) ([]uint16, error) {
	b.mu.Lock()
	if b.hold && !req.IsWrite {
		b.hold = false
		held, release := b.held, b.release
		b.mu.Unlock()
		close(held)
		<-release
		b.mu.Lock()
	}
	defer b.mu.Unlock()
	if err := b.check(req.UnitId, req.Addr, req.Quantity); err != nil {
		return nil, err
	}
	if req.IsWrite {
		copy(b.holding[req.Addr:], req.Args)
		return nil, nil
	}
	return append([]uint16(nil), b.holding[req.Addr:req.Addr+req.Quantity]...), nil
}

func (b *bank) HandleInputRegisters(req *mbserver.InputRegistersRequest) ([]uint16, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if err := b.check(req.UnitId, req.Addr, req.Quantity); err != nil {
		return nil, err
	}
	return append([]uint16(nil), b.input[req.Addr:req.Addr+req.Quantity]...), nil
}

// freeAddr finds a loopback address nobody listens on.
func freeAddr(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

// startServer serves b on addr ("" = a free port) until the returned stop
// function or the end of the test.
func startServer(t testing.TB, b *bank, addr string) (string, func()) {
	t.Helper()
	var srv *mbserver.ModbusServer
	// simonvetter cannot listen on port 0 and report the port, so pick a
	// free one and retry if someone takes it in between.
	for try := 0; ; try++ {
		a := addr
		if a == "" {
			a = freeAddr(t)
		}
		s, err := mbserver.NewServer(&mbserver.ServerConfiguration{
			URL:        "tcp://" + a,
			Timeout:    time.Minute,
			MaxClients: 64,
			Logger:     log.New(io.Discard, "", 0),
		}, b)
		if err != nil {
			t.Fatal(err)
		}
		if err = s.Start(); err == nil {
			srv, addr = s, a
			break
		}
		if try == 20 || !strings.Contains(err.Error(), "address already in use") {
			t.Fatalf("start server on %s: %v", a, err)
		}
	}
	var once sync.Once
	stop := func() {
		once.Do(func() {
			b.releaseHeld()
			srv.Stop()
		})
	}
	t.Cleanup(stop)
	return addr, stop
}

// silentServer accepts connections and reads requests but never answers.
// got receives one value per request read.
func silentServer(t *testing.T) (addr string, got <-chan struct{}) {
	t.Helper()
	ch := make(chan struct{}, 100)
	addr = testkit.Serve(t, func(c net.Conn) {
		buf := make([]byte, 260)
		for {
			if _, err := c.Read(buf); err != nil {
				return
			}
			select {
			case ch <- struct{}{}:
			default:
			}
		}
	})
	return addr, ch
}

// rawServer answers each request with reply(request ADU), written as is;
// a nil reply closes the connection. accepts counts connections.
func rawServer(t *testing.T, reply func(req []byte) []byte) (addr string, accepts func() int) {
	t.Helper()
	var n atomic.Int32
	addr = testkit.Serve(t, func(c net.Conn) {
		n.Add(1)
		req := make([]byte, 12) // every read request ADU is 12 bytes
		for {
			if _, err := io.ReadFull(c, req); err != nil {
				return
			}
			resp := reply(req)
			if resp == nil {
				return
			}
			if _, err := c.Write(resp); err != nil && !errors.Is(err, net.ErrClosed) {
				return
			}
		}
	})
	return addr, func() int { return int(n.Load()) }
}
