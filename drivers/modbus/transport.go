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
	"time"
)

const (
	mbapHeaderLen = 7
	maxADULen     = 260 // MBAP header + the largest PDU
)

// transport is goburrow's Transporter for Modbus TCP, used in place of the
// TCPClientHandler's own (whose packager, with SlaveId and transaction ids,
// we keep) because that one cannot be cut short by a context, keeps its
// socket after a timeout, and allocates a reply buffer per request. Here
// the owner dials and drops the socket explicitly, each exchange is bounded
// by the timeout and the context, and the reply buffer is reused.
type transport struct {
	addr    string
	timeout time.Duration

	// ctx bounds the exchanges of the Read in progress; set by Read, which
	// alone calls Send (goburrow's Client API has no context parameter).
	ctx context.Context

	mu   sync.Mutex // guards conn against Close from another goroutine
	conn net.Conn

	buf [maxADULen]byte // the last reply; valid until the next Send
}

func (t *transport) connected() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.conn != nil
}

func (t *transport) dial(ctx context.Context) error {
	d := net.Dialer{Timeout: t.timeout}
	conn, err := d.DialContext(ctx, "tcp", t.addr)
	if err != nil {
		return err
	}
	t.mu.Lock()
	old := t.conn
	t.conn = conn
	t.mu.Unlock()
	if old != nil {
		old.Close()
	}
	return nil
}

// close drops the socket, so that nothing still in flight on it (a late
// reply) can be taken for the answer to a later request.
func (t *transport) close() error {
	t.mu.Lock()
	conn := t.conn
	t.conn = nil
	t.mu.Unlock()
	if conn == nil {
		return nil
	}
	return conn.Close()
}

// Send writes one request ADU and reads one reply ADU.
func (t *transport) Send(adu []byte) ([]byte, error) {
	t.mu.Lock()
	conn := t.conn
	t.mu.Unlock()
	if conn == nil {
		return nil, net.ErrClosed
	}
	ctx := t.ctx
	if ctx == nil {
		ctx = context.Background()
	}
	deadline := time.Now().Add(t.timeout)
	ctxDeadline := false
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline, ctxDeadline = d, true
	}
	if err := conn.SetDeadline(deadline); err != nil {
		return nil, err
	}
	if ctx.Done() != nil {
		// A deadline in the past wakes the blocked Read/Write at once.
		stop := context.AfterFunc(ctx, func() { conn.SetDeadline(time.Unix(1, 0)) })
		defer stop()
	}
	reply, err := t.exchange(conn, adu)
	switch {
	case err == nil:
		return reply, nil
	case ctx.Err() != nil:
		return nil, ctx.Err()
	case ctxDeadline && errors.Is(err, os.ErrDeadlineExceeded):
		// The socket's deadline may beat the context's own timer.
		return nil, context.DeadlineExceeded
	}
	return nil, err
}

func (t *transport) exchange(conn net.Conn, adu []byte) ([]byte, error) {
	if _, err := conn.Write(adu); err != nil {
		return nil, err
	}
	if _, err := io.ReadFull(conn, t.buf[:mbapHeaderLen]); err != nil {
		return nil, err
	}
	// The length counts the unit id (already read) and the PDU.
	n := int(binary.BigEndian.Uint16(t.buf[4:6]))
	if n < 2 || mbapHeaderLen-1+n > maxADULen {
		return nil, fmt.Errorf("bad MBAP length %d in reply", n)
	}
	end := mbapHeaderLen - 1 + n
	if _, err := io.ReadFull(conn, t.buf[mbapHeaderLen:end]); err != nil {
		return nil, err
	}
	return t.buf[:end], nil
}
