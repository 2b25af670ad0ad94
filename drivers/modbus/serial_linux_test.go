package modbus

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/linegate/linegate/internal/testkit"

	"golang.org/x/sys/unix"

	"github.com/linegate/linegate/drivers"
)

// rtuPeer is a fake RTU bus on the master side of a pty: the driver opens
// the slave side as its serial port. answer gets each request frame and
// returns the bytes to write back (nil: no reply).
type rtuPeer struct {
	path string
	m    *os.File
	wg   sync.WaitGroup

	mu   sync.Mutex
	reqs [][]byte
}

func startRTUPeer(t *testing.T, answer func(req []byte) []byte) *rtuPeer {
	t.Helper()
	m, err := os.OpenFile("/dev/ptmx", os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Skipf("no pty: %v", err)
	}
	// Through SyscallConn, not Fd: Fd would make the file blocking, and
	// Close could then not interrupt the peer's Read.
	rc, err := m.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var n int
	var ioErr error
	rc.Control(func(fd uintptr) {
		if ioErr = unix.IoctlSetPointerInt(int(fd), unix.TIOCSPTLCK, 0); ioErr == nil {
			n, ioErr = unix.IoctlGetInt(int(fd), unix.TIOCGPTN)
		}
	})
	if ioErr != nil {
		t.Fatal(ioErr)
	}
	p := &rtuPeer{path: fmt.Sprintf("/dev/pts/%d", n), m: m}
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		for {
			req := make([]byte, 8) // every read request frame is 8 bytes
			if _, err := io.ReadFull(m, req); err != nil {
				return
			}
			p.mu.Lock()
			p.reqs = append(p.reqs, req)
			p.mu.Unlock()
			if r := answer(req); r != nil {
				if _, err := m.Write(r); err != nil {
					return
				}
			}
		}
	}()
	t.Cleanup(func() {
		m.Close()
		p.wg.Wait()
	})
	return p
}

func (p *rtuPeer) requests() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.reqs)
}

// rtuFrame appends the CRC to unit, function and data.
func rtuFrame(b ...byte) []byte {
	c := crc16(b)
	return append(b, byte(c), byte(c>>8))
}

// rtuReply answers a holding/input read with words value+i.
func rtuReply(req []byte, value uint16) []byte {
	n := int(req[4])<<8 | int(req[5])
	b := []byte{req[0], req[1], byte(2 * n)}
	for i := range n {
		v := value + uint16(i)
		b = append(b, byte(v>>8), byte(v))
	}
	return rtuFrame(b...)
}

func rtuDriver(t *testing.T, pool *Pool, path string, unit byte, timeout time.Duration, tags ...Tag) *Driver {
	t.Helper()
	d, err := New(Config{Device: fmt.Sprintf("unit%d", unit), Address: "rtu://" + path + "?baud=115200&parity=N",
		UnitID: unit, Timeout: timeout, Pool: pool, Tags: tags})
	if err != nil {
		t.Fatal(err)
	}
	d.setBackoff(0, 0)
	t.Cleanup(func() { d.Close() })
	return d
}

func TestRTUCRC(t *testing.T) {
	// The specification's example: read holding 0x006B+3 from unit 17.
	if got := rtuFrame(0x11, 0x03, 0x00, 0x6B, 0x00, 0x03); got[6] != 0x76 || got[7] != 0x87 {
		t.Errorf("CRC % X, want 76 87", got[6:])
	}
}

func TestRTUSharedPortSkipsLateReplies(t *testing.T) {
	var mu sync.Mutex
	var stale []byte // unit 5's reply, sent late: before the next answer
	peer := startRTUPeer(t, func(req []byte) []byte {
		if crc16(req[:6]) != uint16(req[6])|uint16(req[7])<<8 {
			return rtuFrame(req[0], req[1]|0x80, 4) // a bad request frame
		}
		mu.Lock()
		defer mu.Unlock()
		switch req[0] {
		case 5:
			stale = rtuReply(req, 500)
			return nil
		case 6:
			return rtuFrame(6, req[1]|0x80, 2)
		}
		out := append(stale, rtuReply(req, 100*uint16(req[0]))...)
		stale = nil
		return out
	})
	pool := NewPool()
	d1 := rtuDriver(t, pool, peer.path, 1, time.Second, tg("holding", 0, "uint16"), tg("holding", 1, "uint16"))
	d2 := rtuDriver(t, pool, peer.path, 2, time.Second, tg("input", 0, "uint16"))
	d5 := rtuDriver(t, pool, peer.path, 5, 100*time.Millisecond, tg("holding", 0, "uint16"), tg("holding", 1, "uint16"))
	d6 := rtuDriver(t, pool, peer.path, 6, time.Second, tg("holding", 0, "uint16"))
	for round := range 3 {
		out, err := read(t, d5)
		if err == nil || !strings.Contains(err.Error(), "i/o timeout") {
			t.Fatalf("round %d: unit 5: %v, want an i/o timeout", round, err)
		}
		wantBad(t, out, 0, "read holding 0x0000+2: i/o timeout")
		// Unit 5's reply comes first now: skipped, never taken for unit 1's.
		out, err = read(t, d1)
		if err != nil {
			t.Fatalf("round %d: unit 1: %v", round, err)
		}
		wantGood(t, out, 0, int64(100))
		wantGood(t, out, 1, int64(101))
		out, err = read(t, d2)
		if err != nil {
			t.Fatalf("round %d: unit 2: %v", round, err)
		}
		wantGood(t, out, 0, int64(200))
		out, err = read(t, d6)
		if err != nil {
			t.Fatalf("round %d: an exception is an answer: %v", round, err)
		}
		var ex *Exception
		if !errors.As(out[0].Err, &ex) || ex.Code != 2 {
			t.Errorf("round %d: unit 6: %+v, want exception 2", round, out[0])
		}
	}
}

func TestRTUGarbledReplyThenRecovers(t *testing.T) {
	var mu sync.Mutex
	n := 0
	peer := startRTUPeer(t, func(req []byte) []byte {
		mu.Lock()
		defer mu.Unlock()
		n++
		r := rtuReply(req, 7)
		if n == 1 {
			r[len(r)-1] ^= 0xFF          // broken CRC
			return append(r, 0xDE, 0xAD) // and noise after it
		}
		return r
	})
	d := rtuDriver(t, nil, peer.path, 3, 300*time.Millisecond, tg("holding", 0, "uint16"))
	if _, err := read(t, d); err == nil || !strings.Contains(err.Error(), "garbled reply: CRC mismatch") {
		t.Fatalf("got %v, want a CRC mismatch", err)
	}
	for range 2 {
		out, err := read(t, d)
		if err != nil {
			t.Fatal(err)
		}
		wantGood(t, out, 0, int64(7))
	}
}

func TestRTUCancelAndClose(t *testing.T) {
	peer := startRTUPeer(t, func([]byte) []byte { return nil }) // silent
	d := rtuDriver(t, nil, peer.path, 1, time.Hour, tg("holding", 0, "uint16"))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Read(ctx, make([]drivers.Sample, 1)) }()
	testkit.WaitFor(t, waitTimeout, "the request on the line", func() bool { return peer.requests() == 1 })
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("got %v, want context.Canceled", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Read did not return after cancel")
	}
	go func() { done <- d.Read(context.Background(), make([]drivers.Sample, 1)) }()
	testkit.WaitFor(t, waitTimeout, "the second request on the line", func() bool { return peer.requests() == 2 })
	d.Close()
	select {
	case err := <-done:
		if err == nil {
			t.Fatal("Read succeeded on a closed port")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Read did not return after Close")
	}
}

func TestRTUOpenFails(t *testing.T) {
	path := t.TempDir() + "/ttyNone"
	d := rtuDriver(t, nil, path, 1, time.Second, tg("holding", 0, "uint16"))
	out, err := read(t, d)
	if err == nil || !strings.Contains(err.Error(), "open "+path+": no such file or directory") {
		t.Fatalf("got %v", err)
	}
	wantBad(t, out, 0, "no such file or directory")
}

func TestRTUPeerHangsUp(t *testing.T) {
	peer := startRTUPeer(t, func([]byte) []byte { return nil }) // silent
	d := rtuDriver(t, nil, peer.path, 1, 5*time.Second, tg("holding", 0, "uint16"))
	done := make(chan error, 1)
	go func() { done <- d.Read(context.Background(), make([]drivers.Sample, 1)) }()
	testkit.WaitFor(t, waitTimeout, "the request on the line", func() bool { return peer.requests() == 1 })
	peer.m.Close() // the adapter is unplugged: reads fail with EIO
	select {
	case err := <-done:
		if err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("got %v, want the port's error before the timeout", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Read did not return after the hang-up")
	}
}
