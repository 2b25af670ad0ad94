// Package modbus is the Modbus TCP driver: it reads the configured tags of
// one device in as few requests as the register map allows, decodes them
// by type and byte order, and reports each request's outcome on its tags.
//
// Connection policy: the socket is dialled lazily by Read and dropped after
// any failure other than a Modbus exception, because a reply that arrives
// after its timeout would otherwise be taken for the next request's. After
// a failed dial, Read does not dial again before a backoff (1s doubling to
// 30s, reset when the device answers); meanwhile it returns at once with
// every sample Bad. Two requests failing in a row end the cycle early, so a
// dead device costs at most two timeouts per cycle.
package modbus

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	goburrow "github.com/goburrow/modbus"

	"github.com/linegate/linegate/drivers"
)

const (
	minBackoff = time.Second
	maxBackoff = 30 * time.Second
	// maxFailures in a row ends a cycle: the device is not answering.
	maxFailures = 2
)

// Driver reads one Modbus TCP device. Read and Close are safe to call from
// different goroutines; Reads are serialized. It logs only at debug level:
// the collector reports a device going down or up.
type Driver struct {
	fields []field
	reqs   []Request
	kinds  []registerKind // of reqs
	log    *slog.Logger

	mu      sync.Mutex // one Read at a time; guards everything below
	t       *transport
	client  goburrow.Client
	scratch [2 * maxRegistersPerRead]byte

	minBackoff, maxBackoff time.Duration // fields so tests can shorten them
	backoff                time.Duration // current delay, 0 while healthy
	nextDial               time.Time
	dialErr                error
}

var _ drivers.Driver = (*Driver)(nil)

// New checks the configuration and plans the reads. It does no I/O.
func New(cfg Config) (*Driver, error) {
	where := "modbus"
	if cfg.Device != "" {
		where = cfg.Device
	}
	if err := cfg.normalize(); err != nil {
		return nil, fmt.Errorf("%s: %w", where, err)
	}
	addr, err := dialAddress(cfg.Address)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", where, err)
	}
	order, _ := parseByteOrder(cfg.ByteOrder)
	fields := make([]field, len(cfg.Tags))
	for i, tag := range cfg.Tags {
		f, err := compile(tag, order, cfg.MaxRegisters)
		if err != nil {
			name := tag.Name
			if name == "" {
				name = fmt.Sprintf("tags[%d]", i)
			}
			return nil, fmt.Errorf("%s/%s: %w", where, name, err)
		}
		fields[i] = f
	}
	reqs := plan(fields, cfg.MaxGap, cfg.MaxRegisters, cfg.MaxBits)
	kinds := make([]registerKind, len(reqs))
	for i, r := range reqs {
		kinds[i], _ = parseRegisterKind(r.Register)
	}

	// The handler only packages requests (MBAP header, SlaveId,
	// transaction ids); the transport below does the I/O.
	handler := goburrow.NewTCPClientHandler(addr)
	handler.SlaveId = cfg.UnitID
	handler.Timeout = cfg.Timeout
	handler.IdleTimeout = 0
	t := &transport{addr: addr, timeout: cfg.Timeout}

	return &Driver{
		fields:     fields,
		reqs:       reqs,
		kinds:      kinds,
		log:        cfg.Logger,
		t:          t,
		client:     goburrow.NewClient2(handler, t),
		minBackoff: minBackoff,
		maxBackoff: maxBackoff,
	}, nil
}

// Plan returns the reads of one cycle, in the order Read sends them.
func (d *Driver) Plan() []Request {
	out := make([]Request, len(d.reqs))
	for i, r := range d.reqs {
		r.Tags = slices.Clone(r.Tags)
		out[i] = r
	}
	return out
}

// Read fills out[i] for Config.Tags[i]. Good samples have a zero TS (the
// collector stamps the read time). A request answered by a Modbus exception
// makes only its own tags Bad. Read returns an error, and every sample is
// Bad with it, only when no request was answered: the device is down, is
// backing off, or ctx ended.
func (d *Driver) Read(ctx context.Context, out []drivers.Sample) error {
	if len(out) < len(d.fields) {
		return fmt.Errorf("modbus: %d samples for %d tags", len(out), len(d.fields))
	}
	out = out[:len(d.fields)]
	d.mu.Lock()
	defer d.mu.Unlock()
	d.t.ctx = ctx
	defer func() { d.t.ctx = nil }()

	answered := false
	failures := 0
	var lastErr error // the last failure that was not an exception
	for i := range d.reqs {
		r := &d.reqs[i]
		if err := d.connect(ctx); err != nil {
			lastErr = err
			d.markBad(out, d.reqs[i:], err)
			break
		}
		if failures >= maxFailures {
			d.markBad(out, d.reqs[i:], fmt.Errorf("not sent after %d failed requests: %w", failures, lastErr))
			break
		}
		data, err := d.read(r, d.kinds[i])
		if err == nil {
			answered, failures = true, 0
			d.decode(r, data, out)
			continue
		}
		err, exception := classify(err)
		rerr := &RequestError{Register: r.Register, Address: r.Address, Count: r.Count, Err: err}
		if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
			d.t.close()
			lastErr = rerr
			d.markBad(out, d.reqs[i:], rerr)
			break
		}
		d.markBad(out, d.reqs[i:i+1], rerr)
		if exception {
			answered, failures = true, 0
			d.log.Debug("modbus exception", "request", r.String(), "err", err)
			continue
		}
		// Out of step with the device: drop the socket (see transport).
		d.log.Debug("modbus connection dropped", "err", rerr)
		d.t.close()
		lastErr = rerr
		failures++
	}

	if answered {
		d.backoff = 0
		return nil
	}
	if lastErr == nil {
		return nil // no tags
	}
	for i := range out {
		out[i] = drivers.Sample{Quality: drivers.Bad, Err: lastErr}
	}
	return lastErr
}

// connect dials if there is no socket, unless a failed dial is still
// backing off.
func (d *Driver) connect(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if d.t.connected() {
		return nil
	}
	if wait := time.Until(d.nextDial); d.dialErr != nil && wait > 0 {
		// Round up to 0.1s so the message never says "reconnect in 0s".
		wait = (wait + 99*time.Millisecond).Truncate(100 * time.Millisecond)
		return fmt.Errorf("reconnect in %v: %w", wait, d.dialErr)
	}
	err := d.t.dial(ctx)
	if err == nil {
		d.dialErr = nil
		return nil
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	d.backoff = nextBackoff(d.backoff, d.minBackoff, d.maxBackoff)
	d.nextDial = time.Now().Add(d.backoff)
	d.dialErr = err
	d.log.Debug("modbus dial failed", "err", err, "retry_in", d.backoff)
	return err
}

// nextBackoff doubles the delay between dials, from lo up to hi.
func nextBackoff(cur, lo, hi time.Duration) time.Duration {
	return min(max(2*cur, lo), hi)
}

// read sends one request and checks that the reply holds what was asked.
func (d *Driver) read(r *Request, kind registerKind) ([]byte, error) {
	var data []byte
	var err error
	switch kind {
	case holding:
		data, err = d.client.ReadHoldingRegisters(r.Address, r.Count)
	case input:
		data, err = d.client.ReadInputRegisters(r.Address, r.Count)
	case coil:
		data, err = d.client.ReadCoils(r.Address, r.Count)
	case discrete:
		data, err = d.client.ReadDiscreteInputs(r.Address, r.Count)
	default:
		return nil, fmt.Errorf("unknown register kind %d", kind)
	}
	if err != nil {
		return nil, err
	}
	want := 2 * int(r.Count)
	if kind.isBit() {
		want = (int(r.Count) + 7) / 8
	}
	if len(data) != want {
		return nil, fmt.Errorf("reply has %d data bytes, want %d", len(data), want)
	}
	return data, nil
}

func (d *Driver) decode(r *Request, data []byte, out []drivers.Sample) {
	for _, i := range r.Tags {
		v, err := d.fields[i].decode(data, r.Address, d.scratch[:])
		if err != nil {
			out[i] = drivers.Sample{Quality: drivers.Bad, Err: &RequestError{Register: r.Register, Address: r.Address, Count: r.Count, Err: err}}
			continue
		}
		out[i] = drivers.Sample{Value: v, Quality: drivers.Good}
	}
}

func (d *Driver) markBad(out []drivers.Sample, reqs []Request, err error) {
	for _, r := range reqs {
		for _, i := range r.Tags {
			out[i] = drivers.Sample{Quality: drivers.Bad, Err: err}
		}
	}
}

// Close drops the connection; a Read in progress fails at once. Read after
// Close dials again.
func (d *Driver) Close() error {
	return d.t.close()
}
