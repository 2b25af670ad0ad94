package modbus

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"sync/atomic"
	"time"

	"github.com/goburrow/serial"
)

// readSlice bounds one wait of the serial port for data, so that an
// exchange notices its context and Close within that time.
const readSlice = 20 * time.Millisecond

// maxSerialFrame is the largest ASCII frame (RTU frames are at most 256).
const maxSerialFrame = 513

// serialLink is the one port all devices on an RS-485 bus share. A
// one-slot channel admits one device's poll (or one request) at a time,
// in arrival order, so the units of the bus take turns poll by poll.
// Between frames it keeps the line silent for 3.5 characters (RTU's frame gap).
//
// RTU and ASCII frames carry no transaction id: a late reply to a request
// that timed out looks exactly like the reply to the next request of the
// same shape (same unit, function and byte count: two 1-register tags on
// different addresses), and taking it would shift every value of the line
// by one request, as good. So a request that timed out stays pending:
// before the next request to the same unit and function, whatever arrives
// is discarded until the late reply came (a whole frame answering the
// pending request) or could no longer come (one more timeout, at most
// maxLate, has passed), and then the line has been silent for a frame
// gap. Requests to other units only wait for silence: a late frame of
// another unit is skipped by its unit id, so a dead or slow unit costs the
// others nothing beyond its own timeout. A frame whose unit, function,
// byte count or CRC does not match the outstanding request is never taken
// as its reply.
type serialLink struct {
	cfg   serialConfig
	ascii bool
	slot  chan struct{}
	dial  dialBackoff
	gen   atomic.Uint64 // bumped by close; an exchange of an older one stops
	// waiting counts the holds waiting for the line: the bus is busy.
	waiting atomic.Int32
	busy    *meter // seconds the line was held
	heldAt  time.Time

	// Held by the slot owner only.
	port    io.ReadWriteCloser
	portGen uint64
	quietAt time.Time // the line is silent enough to send from then on
	dirty   bool      // bytes of an abandoned reply may still arrive
	// pending are the requests that timed out and whose late reply may
	// still come; the next request to the same unit and function waits
	// it out (settle).
	pending []lostReq
	rx      []byte // bytes read, not yet consumed
	rbuf    [2 * maxSerialFrame]byte
}

func newSerialLink(cfg serialConfig, ascii bool) *serialLink {
	l := &serialLink{cfg: cfg, ascii: ascii, slot: make(chan struct{}, 1), dial: dialBackoff{lo: minBackoff, hi: maxBackoff}, busy: newMeter()}
	l.slot <- struct{}{}
	return l
}

// charTime is the time one character takes on the line: start bit, data
// bits, parity and stop bits.
func (l *serialLink) charTime() time.Duration {
	bits := 1 + l.cfg.DataBits + l.cfg.StopBits
	if l.cfg.Parity != "N" {
		bits++
	}
	return time.Duration(bits) * time.Second / time.Duration(l.cfg.Baud)
}

// frameGap is RTU's inter-frame silence: 3.5 characters, fixed at 1.75 ms
// above 19200 baud (the serial line specification's rule).
func (l *serialLink) frameGap() time.Duration {
	if l.cfg.Baud > 19200 {
		return 1750 * time.Microsecond
	}
	return 7 * l.charTime() / 2
}

func (l *serialLink) hold(ctx context.Context) (held, error) {
	if _, err := take(ctx, l.slot, &l.waiting); err != nil {
		return nil, err
	}
	l.heldAt = time.Now()
	return serialHeld{l}, nil
}

// serialHeld is a serialLink's line, taken by hold.
type serialHeld struct{ l *serialLink }

func (h serialHeld) release() { h.l.release() }

func (h serialHeld) exchange(ctx context.Context, adu []byte, timeout time.Duration, dst []byte, inStep func(req, reply []byte) bool) ([]byte, time.Time, error) {
	l := h.l
	gen := l.gen.Load()
	if l.port != nil && l.portGen != gen {
		l.closePort()
	}
	if l.port == nil {
		if err := l.open(gen); err != nil {
			return nil, time.Time{}, err
		}
	}
	// A late reply can be taken only for a request to the same unit and
	// function (a frame of another unit is skipped): only such a request
	// waits for it.
	late := l.pendingFor(adu)
	if l.dirty || late >= 0 {
		if err := l.settle(ctx, gen, late); err != nil {
			return nil, time.Time{}, l.failed(ctx, err, false, nil, 0)
		}
	}
	if err := sleepCtx(ctx, time.Until(l.quietAt)); err != nil {
		return nil, time.Time{}, err
	}
	deadline, ctxFirst := exchangeDeadline(ctx, timeout)
	l.rx = l.rx[:0]
	if err := l.write(ctx, gen, adu, deadline); err != nil {
		return nil, time.Time{}, l.failed(ctx, err, ctxFirst, adu, timeout)
	}
	// The request is on the wire only once the UART has sent it; the
	// device's timeout runs from then to the first byte of its reply.
	sent := time.Now().Add(time.Duration(len(adu)) * l.charTime())
	l.quietAt = sent.Add(l.frameGap())
	w := replyWait{deadline: sent.Add(timeout)}
	if end, ok := ctx.Deadline(); ok {
		w.ctxEnd = end
	}
	w.clip()
	w.wire = l.replyWire(adu)
	var n int
	var err error
	if l.ascii {
		n, err = l.readASCII(ctx, gen, adu, &w)
	} else {
		n, err = l.readRTU(ctx, gen, adu, &w)
	}
	l.quietAt = maxTime(l.quietAt, time.Now().Add(l.frameGap()))
	if err != nil {
		return nil, time.Time{}, l.failed(ctx, err, w.ctxFirst, adu, timeout)
	}
	dst = append(dst, l.rx[:n]...)
	l.consume(n)
	if len(l.rx) > 0 || (inStep != nil && !inStep(adu, dst[len(dst)-n:])) {
		l.dirty = true // trailing noise, or a reply that makes no sense
	}
	return dst, sent, nil
}

// replyWait is when an exchange stops waiting for its reply: timeout
// after the request left for the reply's first byte, and from that byte
// on as long as the whole reply takes on the wire (a 125-register reply
// takes 290 ms at 9600 baud, longer than many timeouts), never past the
// context's deadline.
type replyWait struct {
	deadline time.Time
	ctxEnd   time.Time // zero: none
	ctxFirst bool      // deadline is the context's
	wire     time.Duration
	started  bool // a byte of the reply came
}

func (w *replyWait) clip() {
	if !w.ctxEnd.IsZero() && !w.deadline.Before(w.ctxEnd) {
		w.deadline, w.ctxFirst = w.ctxEnd, true
	}
}

// got notes that bytes came: the first one starts the reply's own time.
func (w *replyWait) got() {
	if w.started {
		return
	}
	w.started = true
	w.deadline = maxTime(w.deadline, time.Now().Add(w.wire))
	w.clip()
}

// replyWire is how long the longest proper reply to req takes on the
// line, with room for the adapter's latency (USB serial adapters deliver
// in slices of up to 16 ms) and slow character gaps.
func (l *serialLink) replyWire(req []byte) time.Duration {
	size := 8 // a write's echo, an exception (5)
	_, fc, count, ok := requestHead(req, l.ascii)
	if ok && fc >= 1 && fc <= 4 {
		size = 5 + expectedData(fc, count)
	}
	if l.ascii {
		size = 2*size + 1 // ':', two hex digits a byte, LRC for CRC, CR LF
	}
	wire := time.Duration(size) * l.charTime()
	return wire + wire/4 + 2*readSlice + l.frameGap()
}

// requestHead reads unit, function and count (or value) of a request
// frame.
func requestHead(req []byte, ascii bool) (unit, fc byte, count uint16, ok bool) {
	if ascii {
		if len(req) < 15 {
			return 0, 0, 0, false
		}
		b, err := hex.DecodeString(string(req[1:13]))
		if err != nil {
			return 0, 0, 0, false
		}
		req = b
	}
	if len(req) < 6 {
		return 0, 0, 0, false
	}
	return req[0], req[1], uint16(req[4])<<8 | uint16(req[5]), true
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

func (l *serialLink) load() (*meter, int) { return l.busy, 1 }

func (l *serialLink) release() {
	now := time.Now()
	l.busy.add(now, now.Sub(l.heldAt).Seconds())
	if l.port != nil && l.portGen != l.gen.Load() {
		l.closePort() // closed while we used it
	}
	l.slot <- struct{}{}
}

// failed sorts an exchange's failure: the line may carry a late reply to
// req, or the rest of one (settle discards it before the next request); a
// port error closes the port so the next exchange reopens it (a USB
// adapter that came back).
func (l *serialLink) failed(ctx context.Context, err error, ctxFirst bool, req []byte, timeout time.Duration) error {
	l.dirty = true
	if req != nil {
		// Timed out, cancelled or garbled (which readRTU/readASCII report
		// at the deadline, after bytes that made no reply) after the
		// request went out: its reply may still come, as late again as the
		// timeout (at most maxLate). A slave that misses its timeout by
		// more is not told apart (RTU has no transaction id): its timeout
		// is too short.
		if unit, fc, _, ok := requestHead(req, l.ascii); ok {
			l.addPending(lostReq{unit: unit, fc: fc, until: time.Now().Add(min(timeout, maxLate))})
		}
	}
	switch {
	case ctx.Err() != nil:
		return ctx.Err()
	case errors.Is(err, os.ErrDeadlineExceeded):
		if ctxFirst {
			return context.DeadlineExceeded
		}
		return err
	case errors.Is(err, errGarbled):
		return err
	}
	l.closePort()
	return err
}

func (l *serialLink) open(gen uint64) error {
	if err := l.dial.check(); err != nil {
		return err
	}
	port, err := serial.Open(&serial.Config{
		Address:  l.cfg.Path,
		BaudRate: l.cfg.Baud,
		DataBits: l.cfg.DataBits,
		StopBits: l.cfg.StopBits,
		Parity:   l.cfg.Parity,
		Timeout:  readSlice,
		// The kernel raises RTS while a frame is sent, drops it after.
		RS485: serial.RS485Config{Enabled: l.cfg.RS485, RtsHighDuringSend: true},
	})
	if err != nil {
		if l.cfg.RS485 {
			err = fmt.Errorf("open %s with rs485 (the port's driver must support RS-485 mode): %w", l.cfg.Path, err)
		} else {
			err = fmt.Errorf("open %s: %w", l.cfg.Path, err)
		}
		l.dial.failed(err)
		return linkDown(err)
	}
	l.dial.ok()
	l.port, l.portGen = port, gen
	l.dirty = true // whatever the line held before we listened
	l.quietAt = time.Time{}
	return nil
}

func (l *serialLink) closePort() {
	if l.port != nil {
		l.port.Close()
		l.port = nil
	}
	l.rx = l.rx[:0]
}

var (
	errGarbled    = errors.New("garbled reply")
	errPortClosed = errors.New("serial port closed")
)

// write sends the whole frame; the port is non-blocking, so a full
// output buffer is waited out.
func (l *serialLink) write(ctx context.Context, gen uint64, b []byte, deadline time.Time) error {
	for len(b) > 0 {
		n, err := l.port.Write(b)
		b = b[max(n, 0):]
		if err == nil {
			continue
		}
		if !isAgain(err) {
			return err
		}
		if err := l.alive(ctx, gen, deadline); err != nil {
			return err
		}
		time.Sleep(time.Millisecond)
	}
	return nil
}

// alive reports why an exchange must stop: ctx done, Close, or deadline.
func (l *serialLink) alive(ctx context.Context, gen uint64, deadline time.Time) error {
	switch {
	case ctx.Err() != nil:
		return ctx.Err()
	case l.gen.Load() != gen:
		return errPortClosed
	case !time.Now().Before(deadline):
		return os.ErrDeadlineExceeded
	}
	return nil
}

// fill reads until l.rx holds at least n bytes, or w's deadline.
func (l *serialLink) fill(ctx context.Context, gen uint64, n int, w *replyWait) error {
	if n > len(l.rbuf) {
		return errGarbled
	}
	for len(l.rx) < n {
		if err := l.alive(ctx, gen, w.deadline); err != nil {
			return err
		}
		m, err := l.port.Read(l.rbuf[len(l.rx):])
		// A failed read(2) returns -1.
		l.rx = l.rbuf[:len(l.rx)+max(m, 0)]
		if m > 0 {
			w.got()
		}
		switch {
		case err == serial.ErrTimeout:
		case err != nil && !isAgain(err):
			return err
		case err == nil && m == 0:
			return errPortClosed // readable but empty: the other end hung up
		}
	}
	return nil
}

// consume drops the first n bytes of l.rx, which always starts at rbuf[0].
func (l *serialLink) consume(n int) {
	k := copy(l.rbuf[:], l.rx[n:])
	l.rx = l.rbuf[:k]
}

// maxLate bounds the wait for a late reply after a timeout: it costs the
// other devices on the line as much bus time, at every timeout of a dead
// or slow one.
const maxLate = time.Second

// maxSettle bounds settle past the late wait, for a line that never falls
// silent (a babbling device, noise).
const maxSettle = time.Second

// lostReq is a request that timed out: its reply may come until until.
type lostReq struct {
	unit, fc byte
	until    time.Time
}

// maxPending bounds the timed-out requests remembered (one per unit and
// function; a line rarely has more than a few dead or slow units).
const maxPending = 16

func (l *serialLink) addPending(r lostReq) {
	l.prunePending()
	for i := range l.pending {
		if l.pending[i].unit == r.unit && l.pending[i].fc == r.fc {
			l.pending[i].until = maxTime(l.pending[i].until, r.until)
			return
		}
	}
	if len(l.pending) == maxPending {
		l.pending = l.pending[1:] // the oldest
	}
	l.pending = append(l.pending, r)
}

func (l *serialLink) prunePending() {
	now := time.Now()
	l.pending = slices.DeleteFunc(l.pending, func(r lostReq) bool { return !now.Before(r.until) })
}

// pendingFor is the index of the pending request a late reply of which
// could be taken for req's (same unit and function), or -1.
func (l *serialLink) pendingFor(req []byte) int {
	if len(l.pending) == 0 {
		return -1
	}
	l.prunePending()
	unit, fc, _, ok := requestHead(req, l.ascii)
	for i, r := range l.pending {
		if ok && r.unit == unit && r.fc == fc {
			return i
		}
	}
	return -1
}

// settle discards what the line carries until it has been silent for a
// frame gap (at least one read slice) and, with late >= 0, until the late
// reply to pending[late] came or can no longer come; bounded by maxSettle
// past that. Late replies of other pending requests that come meanwhile
// are struck off too. It fails only when ctx ends or the port does; the
// line stays dirty then.
func (l *serialLink) settle(ctx context.Context, gen uint64, late int) error {
	l.rx = l.rx[:0]
	quiet := max(l.frameGap(), readSlice)
	last := time.Now() // bytes may be on their way
	var until time.Time
	var want lostReq
	if late >= 0 {
		want = l.pending[late]
		until = want.until
	}
	end := maxTime(until, last).Add(maxSettle)
	for {
		if err := l.alive(ctx, gen, end); err != nil {
			if errors.Is(err, os.ErrDeadlineExceeded) {
				break // babbling: give up on silence
			}
			return err
		}
		now := time.Now()
		if !now.Before(until) && now.Sub(last) >= quiet {
			break
		}
		if len(l.rx) == len(l.rbuf) {
			l.consume(maxSerialFrame) // keep the tail: a frame may span it
		}
		m, err := l.port.Read(l.rbuf[len(l.rx):])
		l.rx = l.rbuf[:len(l.rx)+max(m, 0)]
		switch {
		case m > 0:
			last = time.Now()
			if l.strikeCaught() && late >= 0 && l.caughtFrame(want.unit, want.fc) {
				// The late reply is in: only silence is left to wait for.
				until = time.Time{}
			}
		case err == serial.ErrTimeout, isAgain(err):
		case err != nil:
			return err
		default:
			return errPortClosed // readable but empty: the other end hung up
		}
	}
	if late >= 0 {
		l.pending = slices.DeleteFunc(l.pending, func(r lostReq) bool { return r.unit == want.unit && r.fc == want.fc })
	}
	l.rx = l.rx[:0]
	l.dirty = false
	return nil
}

// strikeCaught removes the pending requests whose late reply is in l.rx,
// and tells whether there was any.
func (l *serialLink) strikeCaught() bool {
	n := len(l.pending)
	if n == 0 {
		return false
	}
	var any bool
	l.pending = slices.DeleteFunc(l.pending, func(r lostReq) bool {
		c := l.caughtFrame(r.unit, r.fc)
		any = any || c
		return c
	})
	return any
}

// caughtFrame tells whether l.rx holds a whole frame from unit answering
// function fc (or its exception), with a good CRC (RTU) or both ends of
// the frame (ASCII), anywhere in what was discarded.
func (l *serialLink) caughtFrame(unit, fc byte) bool {
	rx := l.rx
	if l.ascii {
		for {
			i := bytes.IndexByte(rx, ':')
			if i < 0 || len(rx)-i < 6 {
				return false
			}
			rx = rx[i+1:]
			head, err := hex.DecodeString(string(rx[:4]))
			if err == nil && head[0] == unit && head[1]&0x7F == fc && bytes.IndexByte(rx, '\n') > 0 {
				return true
			}
		}
	}
	for i := 0; i+5 <= len(rx); i++ {
		if rx[i] != unit || rx[i+1]&0x7F != fc {
			continue
		}
		size := replySize(rx[i:])
		if size > 0 && i+size <= len(rx) && checkCRC(rx[i:i+size]) {
			return true
		}
	}
	return false
}

// replySize is the length of the RTU reply frame b starts with, from its
// function code (and byte count), or 0 for a function this link does not
// use. b holds at least 3 bytes.
func replySize(b []byte) int {
	switch f := b[1]; {
	case f&0x80 != 0:
		return 5 // unit, function|0x80, code, CRC
	case f >= 1 && f <= 4:
		return 3 + int(b[2]) + 2
	case f == 5 || f == 6 || f == 15 || f == 16:
		return 8 // unit, function, address, value or count, CRC
	}
	return 0
}

func checkCRC(frame []byte) bool {
	n := len(frame)
	return crc16(frame[:n-2]) == uint16(frame[n-2])|uint16(frame[n-1])<<8
}

// expectedData is the byte count a read reply to req must carry.
func expectedData(fc byte, count uint16) int {
	if fc == 1 || fc == 2 {
		return (int(count) + 7) / 8
	}
	return 2 * int(count)
}

// readRTU reads until a frame answers req (same unit and function, the
// byte count asked for, good CRC), which it leaves at l.rx[:n]. Anything
// else is skipped a byte at a time, resynchronising on the frame: a noise
// byte or the RS-485 echo of the request before the reply, a late reply
// to an earlier request. Only the expected reply's length is ever waited
// for, so no garbage byte count can make it wait for bytes that will not
// come. Writes (5, 6, 15, 16) are answered by an 8-byte echo.
func (l *serialLink) readRTU(ctx context.Context, gen uint64, req []byte, w *replyWait) (n int, err error) {
	unit, fc, count, _ := requestHead(req, false)
	size := 8
	if fc >= 1 && fc <= 4 {
		size = 5 + expectedData(fc, count)
	}
	var garbled error // why what came was no reply
	for {
		if err := l.fill(ctx, gen, 3, w); err != nil {
			return 0, orGarbled(err, garbled)
		}
		var want int
		switch {
		case l.rx[0] != unit:
		case l.rx[1] == fc|0x80:
			want = 5 // unit, function|0x80, code, CRC
		case l.rx[1] == fc && (fc > 4 || int(l.rx[2]) == expectedData(fc, count)):
			want = size
		}
		if want == 0 {
			if garbled == nil { // a CRC mismatch says more
				garbled = fmt.Errorf("%w: no frame for unit %d function %d", errGarbled, unit, fc)
			}
			l.consume(1)
			continue
		}
		if err := l.fill(ctx, gen, want, w); err != nil {
			return 0, orGarbled(err, garbled)
		}
		if checkCRC(l.rx[:want]) {
			return want, nil
		}
		garbled = fmt.Errorf("%w: CRC mismatch", errGarbled)
		l.consume(1)
	}
}

// orGarbled reports a timeout after bytes that made no frame as garbled.
func orGarbled(err, garbled error) error {
	if garbled != nil && errors.Is(err, os.ErrDeadlineExceeded) {
		return garbled
	}
	return err
}

// readASCII reads ':'..."\r\n" frames until one answers req (unit,
// function, byte count, LRC), which it leaves at l.rx[:n]; anything else
// (noise, the echo of the request, a late reply) is skipped.
func (l *serialLink) readASCII(ctx context.Context, gen uint64, req []byte, w *replyWait) (n int, err error) {
	unit, fc, count, ok := requestHead(req, true)
	if !ok {
		return 0, fmt.Errorf("bad ASCII request %q", req)
	}
	var garbled error
	for {
		// Skip to the start of a frame, then to its end.
		if err := l.fill(ctx, gen, 1, w); err != nil {
			return 0, orGarbled(err, garbled)
		}
		if l.rx[0] != ':' {
			l.consume(1)
			continue
		}
		end := -1
		for end < 0 {
			for i := 1; i < len(l.rx); i++ {
				if l.rx[i] == '\n' {
					end = i + 1
					break
				}
			}
			if end < 0 {
				if len(l.rx) >= maxSerialFrame {
					garbled = fmt.Errorf("%w: no end of frame", errGarbled)
					l.consume(1)
					break
				}
				if err := l.fill(ctx, gen, len(l.rx)+1, w); err != nil {
					return 0, orGarbled(err, garbled)
				}
			}
		}
		if end < 0 {
			continue
		}
		frame := l.rx[:end]
		body, err := hex.DecodeString(string(frame[1 : len(frame)-2]))
		if err != nil || len(body) < 3 || frame[len(frame)-2] != '\r' {
			garbled = fmt.Errorf("%w: bad ASCII frame", errGarbled)
			l.consume(1)
			continue
		}
		var lrc byte
		for _, b := range body[:len(body)-1] {
			lrc += b
		}
		if -lrc != body[len(body)-1] {
			garbled = fmt.Errorf("%w: LRC mismatch", errGarbled)
			l.consume(1)
			continue
		}
		switch {
		case body[0] != unit:
		case body[1] == fc|0x80 && len(body) == 4:
			return end, nil
		case body[1] != fc:
		case fc > 4 || (int(body[2]) == expectedData(fc, count) && len(body) == 4+int(body[2])):
			return end, nil
		}
		l.consume(end) // the echo of the request, or a late reply
	}
}

// crc16 is Modbus RTU's CRC (polynomial 0xA001, initial 0xFFFF).
func crc16(b []byte) uint16 {
	crc := uint16(0xFFFF)
	for _, c := range b {
		crc ^= uint16(c)
		for range 8 {
			if crc&1 != 0 {
				crc = crc>>1 ^ 0xA001
			} else {
				crc >>= 1
			}
		}
	}
	return crc
}

// closeIdle: a serial port stays open (close_after_poll is for TCP).
func (l *serialLink) closeIdle() {}

// close makes the exchange in progress, if any, stop within a read slice
// and closes the port; the next exchange reopens it.
func (l *serialLink) close() error {
	l.gen.Add(1)
	select {
	case <-l.slot:
		l.closePort()
		l.slot <- struct{}{}
	default: // the slot owner closes it on release
	}
	return nil
}
