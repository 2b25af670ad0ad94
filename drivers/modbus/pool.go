package modbus

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// link carries the requests of every device on one TCP address or serial
// port, one request at a time per connection: a device's poll waits for
// the link (bounded by its context only, so a slow neighbour costs it at
// most the neighbour's timeout for each request the neighbour sends), then
// each of its requests gets timeout for its own exchange.
type link interface {
	// hold takes the link (one connection, or the line) for one request or
	// for a run of them (a device's poll) until release; it fails only when
	// ctx ends first. Waiters get the link in the order they asked.
	hold(ctx context.Context) (held, error)
	// closeIdle drops connections nobody is using (close_after_poll).
	closeIdle()
	// close drops everything; an exchange in progress fails soon.
	close() error
	// load is the time the link was held (a meter of seconds held) and
	// how many holds it admits at once.
	load() (busy *meter, width int)
}

// held is a link taken by hold.
type held interface {
	// exchange sends one request ADU and appends the reply ADU to dst;
	// sent is when the request went out, the closest the gateway knows to
	// when the device sampled the values. Errors that wrap errLinkDown
	// mean nothing was sent: the port or connection cannot be opened (or
	// is backing off after that failed). inStep judges the reply: when
	// false, the link treats the connection as out of step (drops it, or
	// drains the line) but still returns the reply, for the caller to
	// report what is wrong with it.
	exchange(ctx context.Context, adu []byte, timeout time.Duration, dst []byte, inStep func(req, reply []byte) bool) (reply []byte, sent time.Time, err error)
	release()
}

// take receives a free slot of a link (a connection, or the line) in the
// order the callers asked, counting in waiting those that wait for one.
func take[T any](ctx context.Context, slots chan T, waiting *atomic.Int32) (T, error) {
	select {
	case v := <-slots:
		return v, nil
	default:
	}
	waiting.Add(1)
	defer waiting.Add(-1)
	select {
	case v := <-slots:
		return v, nil
	case <-ctx.Done():
		var zero T
		return zero, ctx.Err()
	}
}

// errLinkDown marks a failure to open the port or connection.
var errLinkDown = errors.New("link down")

type linkDownError struct{ err error }

func (e *linkDownError) Error() string        { return e.err.Error() }
func (e *linkDownError) Unwrap() []error      { return []error{e.err, errLinkDown} }
func linkDown(err error) error                { return &linkDownError{err} }
func (e *linkDownError) Is(target error) bool { return target == errLinkDown }

// Pool shares links between drivers: every device on one serial port, or
// on one TCP address (a gateway with several unit ids behind it), uses
// the same link. Create one per set of drivers (the pipeline owns it) and
// pass it in Config.Pool. A link's connection is dropped when the last
// driver using it closes.
type Pool struct {
	mu    sync.Mutex
	links map[string]*pooled
}

type pooled struct {
	l       link
	refs    int
	owner   string // first device, for messages
	sig     string // settings every sharer must agree on
	drivers []*Driver
	busy    *meter
	width   int
}

// NewPool returns an empty pool.
func NewPool() *Pool { return &Pool{links: map[string]*pooled{}} }

// get returns the link of ep, made by mk when it is the first; sig are the
// settings the devices on it must agree on.
func (p *Pool) get(ep endpoint, device, sig string, mk func() link) (link, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	key := ep.key()
	if pl, ok := p.links[key]; ok {
		if pl.sig != sig {
			return nil, fmt.Errorf("%s is shared with device %s, which sets %s, not %s", key, pl.owner, pl.sig, sig)
		}
		return pl.l, nil
	}
	pl := &pooled{l: mk(), owner: device, sig: sig}
	pl.busy, pl.width = pl.l.load()
	p.links[key] = pl
	return pl.l, nil
}

// attach and detach count the drivers that use a link; the last detach
// drops its connection.
func (p *Pool) attach(d *Driver) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, pl := range p.links {
		if pl.l == d.l {
			pl.refs++
			pl.drivers = append(pl.drivers, d)
		}
	}
}

func (p *Pool) detach(d *Driver) error {
	p.mu.Lock()
	last := false
	for _, pl := range p.links {
		if pl.l == d.l && pl.refs > 0 {
			pl.refs--
			last = pl.refs == 0
			pl.drivers = slices.DeleteFunc(pl.drivers, func(x *Driver) bool { return x == d })
		}
	}
	p.mu.Unlock()
	if last {
		return d.l.close()
	}
	return nil
}

// Close drops every connection and port of the pool. Drivers that read
// again reopen them.
func (p *Pool) Close() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	var errs []error
	for _, pl := range p.links {
		errs = append(errs, pl.l.close())
	}
	return errors.Join(errs...)
}

// dialBackoff spaces out the attempts to open a port or connection after
// one failed: shared by every device on the link, so a dead gateway costs
// one dial per backoff step, not one per device and cycle.
type dialBackoff struct {
	mu      sync.Mutex
	lo, hi  time.Duration
	cur     time.Duration
	next    time.Time
	lastErr error
}

// check returns an error while a failed open is backing off.
func (b *dialBackoff) check() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.lastErr == nil {
		return nil
	}
	wait := time.Until(b.next)
	if wait <= 0 {
		return nil
	}
	// Round up to 0.1s so the message never says "reconnect in 0s".
	wait = (wait + 99*time.Millisecond).Truncate(100 * time.Millisecond)
	return linkDown(fmt.Errorf("reconnect in %v: %w", wait, b.lastErr))
}

func (b *dialBackoff) failed(err error) time.Duration {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.cur = nextBackoff(b.cur, b.lo, b.hi)
	b.next = time.Now().Add(b.cur)
	b.lastErr = err
	return b.cur
}

func (b *dialBackoff) ok() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.cur, b.lastErr = 0, nil
}

func (b *dialBackoff) set(lo, hi time.Duration) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.lo, b.hi = lo, hi
}

// nextBackoff doubles the delay, from lo up to hi.
func nextBackoff(cur, lo, hi time.Duration) time.Duration {
	return min(max(2*cur, lo), hi)
}

// sleepCtx waits d or until ctx is done.
func sleepCtx(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// exchangeDeadline is now+timeout, or ctx's deadline when sooner; ctxFirst
// tells which.
func exchangeDeadline(ctx context.Context, timeout time.Duration) (deadline time.Time, ctxFirst bool) {
	deadline = time.Now().Add(timeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		return d, true
	}
	return deadline, false
}
