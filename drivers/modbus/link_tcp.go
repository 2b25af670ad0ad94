package modbus

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

const (
	mbapHeaderLen = 7
	maxADULen     = 260 // MBAP header + the largest PDU
)

// tcpLink is goburrow's Transporter for Modbus TCP, used in place of the
// TCPClientHandler's own (whose packager, with SlaveId and transaction
// ids, we keep) because that one cannot be cut short by a context, keeps
// its socket after a timeout, and serves one device. Here up to N
// connections to one address serve every unit id behind it, each
// carrying one request at a time; each exchange is bounded by the timeout
// and the context.
//
// A connection is dropped after any failure other than a Modbus exception:
// a reply that arrives after its timeout would otherwise be taken for the
// next request's, and the device may still be working on the abandoned
// request, which would hold up the next one behind it.
type tcpLink struct {
	addr  string
	slots chan *tcpConn // free connections; a request or a poll holds one
	all   []*tcpConn
	dial  dialBackoff
	// firstRead is kept silent after each connect (first_read_delay).
	firstRead time.Duration
	// waiting counts the holds waiting for a connection: the link is busy.
	waiting atomic.Int32
	busy    *meter // seconds connections were held, all added
}

type tcpConn struct {
	mu   sync.Mutex // guards conn against close from another goroutine
	conn net.Conn
	buf  [maxADULen]byte // the reply being read; used by the slot holder only
}

func newTCPLink(addr string, conns int) *tcpLink {
	l := &tcpLink{addr: addr, slots: make(chan *tcpConn, conns), dial: dialBackoff{lo: minBackoff, hi: maxBackoff}, busy: newMeter()}
	for range conns {
		c := &tcpConn{}
		l.all = append(l.all, c)
		l.slots <- c
	}
	return l
}

func (c *tcpConn) get() net.Conn {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.conn
}

func (c *tcpConn) set(conn net.Conn) {
	c.mu.Lock()
	old := c.conn
	c.conn = conn
	c.mu.Unlock()
	if old != nil {
		old.Close()
	}
}

func (c *tcpConn) drop() error {
	c.mu.Lock()
	conn := c.conn
	c.conn = nil
	c.mu.Unlock()
	if conn == nil {
		return nil
	}
	return conn.Close()
}

func (l *tcpLink) hold(ctx context.Context) (held, error) {
	c, err := take(ctx, l.slots, &l.waiting)
	if err != nil {
		return nil, err
	}
	return &tcpHeld{l: l, c: c, at: time.Now()}, nil
}

func (l *tcpLink) load() (*meter, int) { return l.busy, len(l.all) }

// tcpHeld is one connection of a tcpLink, taken by hold.
type tcpHeld struct {
	l  *tcpLink
	c  *tcpConn
	at time.Time // held since
}

func (h *tcpHeld) release() {
	now := time.Now()
	h.l.busy.add(now, now.Sub(h.at).Seconds())
	h.l.slots <- h.c
}

func (h *tcpHeld) exchange(ctx context.Context, adu []byte, timeout time.Duration, dst []byte, inStep func(req, reply []byte) bool) ([]byte, time.Time, error) {
	l, c := h.l, h.c
	conn := c.get()
	if conn == nil {
		if err := l.dial.check(); err != nil {
			return nil, time.Time{}, err
		}
		d := net.Dialer{Timeout: timeout}
		var err error
		conn, err = d.DialContext(ctx, "tcp", l.addr)
		if err != nil {
			if ctx.Err() != nil {
				return nil, time.Time{}, ctx.Err()
			}
			l.dial.failed(err)
			return nil, time.Time{}, linkDown(err)
		}
		l.dial.ok()
		c.set(conn)
		if err := sleepCtx(ctx, l.firstRead); err != nil {
			c.drop()
			return nil, time.Time{}, err
		}
	}

	deadline, ctxFirst := exchangeDeadline(ctx, timeout)
	if err := conn.SetDeadline(deadline); err != nil {
		c.drop()
		return nil, time.Time{}, err
	}
	if ctx.Done() != nil {
		// A deadline in the past wakes the blocked Read/Write at once.
		stop := context.AfterFunc(ctx, func() { conn.SetDeadline(time.Unix(1, 0)) })
		defer stop()
	}
	sent := time.Now()
	reply, err := c.roundTrip(conn, adu)
	if err == nil {
		if inStep != nil && !inStep(adu, reply) {
			c.drop()
		}
		return append(dst, reply...), sent, nil
	}
	c.drop() // out of step with the device: see tcpLink
	switch {
	case ctx.Err() != nil:
		return nil, time.Time{}, ctx.Err()
	case ctxFirst && errors.Is(err, os.ErrDeadlineExceeded):
		// The socket's deadline may beat the context's own timer.
		return nil, time.Time{}, context.DeadlineExceeded
	}
	return nil, time.Time{}, err
}

func (c *tcpConn) roundTrip(conn net.Conn, adu []byte) ([]byte, error) {
	if _, err := conn.Write(adu); err != nil {
		return nil, err
	}
	// One read takes the whole reply when it came in one segment (the usual
	// case): a read syscall per request instead of one for the header and
	// one for the rest.
	got, err := io.ReadAtLeast(conn, c.buf[:], mbapHeaderLen)
	if err != nil {
		return nil, err
	}
	// The length counts the unit id (already read) and the PDU.
	n := int(binary.BigEndian.Uint16(c.buf[4:6]))
	if n < 2 || mbapHeaderLen-1+n > maxADULen {
		return nil, fmt.Errorf("bad MBAP length %d in reply", n)
	}
	end := mbapHeaderLen - 1 + n
	if got > end {
		// One request is outstanding at a time: bytes after its reply are
		// not a reply to anything. The caller drops the connection.
		return nil, fmt.Errorf("%d unexpected bytes after the reply", got-end)
	}
	if _, err := io.ReadFull(conn, c.buf[got:end]); err != nil {
		return nil, err
	}
	return c.buf[:end], nil
}

func (l *tcpLink) closeIdle() {
	for range len(l.all) {
		select {
		case c := <-l.slots:
			c.drop()
			defer func() { l.slots <- c }()
		default:
			return
		}
	}
}

// close drops every connection, in use or not: a request in flight fails
// at once.
func (l *tcpLink) close() error {
	var errs []error
	for _, c := range l.all {
		errs = append(errs, c.drop())
	}
	return errors.Join(errs...)
}
