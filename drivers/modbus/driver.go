// Package modbus is the Modbus driver (TCP, RTU and ASCII): it reads the
// configured tags of one device (one unit id) in as few requests as the
// register map allows, decodes them by type and byte order, and reports
// each request's outcome on its own tags.
//
// Devices on one serial port, or behind one TCP address (a gateway), share
// one link through a Pool: one request at a time per connection, the
// units taking turns request by request, so a slow or silent unit costs
// the others at most its timeout per request it sends.
//
// Connection policy: a TCP connection is dialled lazily and dropped after
// any failure other than a Modbus exception (see tcpLink); a serial port
// is opened lazily and kept. After a failed dial or open the link does not
// try again before a backoff (1s doubling to 30s). A device that answered
// nothing in a cycle backs off the same way: until then Read returns at
// once with every sample Bad, and the first answer resets it. Two requests
// failing in a row end a cycle early, so a dead device costs at most two
// timeouts per cycle.
//
// A request answered with exception 2 or 3 (what devices answer when a
// merged read spans an address they do not serve) is split within the
// cycle to find the tags that fail; only those are Bad. The split is kept
// for the next cycles (ActivePlan) once the whole request drew 2 or 3 on
// splitAfter cycles in a row, and merged again when every part answers.
// Other exceptions (4, 6 while a PLC is in STOP or busy, a gateway's 10
// and 11) are transient: the request's tags are Bad for that cycle only
// and the plan stays as it is.
package modbus

import (
	"context"
	"encoding/binary"
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

// Driver reads one Modbus device. Read and Close are safe to call from
// different goroutines; Reads are serialized. It logs only at debug level:
// the collector reports a device going down or up.
type Driver struct {
	fields         []field
	rmw            []bool // per field: Tag.ReadModifyWrite
	reqs           []Request
	log            *slog.Logger
	pause          time.Duration
	closeAfterPoll bool

	pool *Pool // nil: l is this driver's own
	l    link

	amu      sync.Mutex // guards attached; not held during I/O, so Close never waits for a Read
	attached bool

	mu      sync.Mutex // one Read at a time; guards everything below
	t       *linkTransport
	client  goburrow.Client
	active  []planned // the plan, as split by exceptions
	scratch [2 * maxRegistersPerRead]byte

	name  string
	unit  byte
	polls *meter // polls that sent requests, for Pool.Stats

	minBackoff, maxBackoff time.Duration // fields so tests can shorten them
	backoff                time.Duration // current delay, 0 while healthy
	nextTry                time.Time
	downErr                error
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
	ep, err := parseEndpoint(cfg.Address)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", where, err)
	}
	if ep.scheme != "tcp" && (cfg.UnitID < 1 || cfg.UnitID > 247) {
		return nil, fmt.Errorf("%s: unit id %d: want 1..247 on a serial line (0 is broadcast, which has no reply)", where, cfg.UnitID)
	}
	if ep.scheme != "tcp" && cfg.CloseAfterPoll {
		return nil, fmt.Errorf("%s: close after poll applies to tcp:// devices", where)
	}
	if ep.scheme != "tcp" && (cfg.AnyUnitID || cfg.FirstReadDelay != 0) {
		return nil, fmt.Errorf("%s: unit_id_check and first_read_delay apply to tcp:// devices", where)
	}
	order, _ := parseByteOrder(cfg.ByteOrder)
	fields := make([]field, len(cfg.Tags))
	rmw := make([]bool, len(cfg.Tags))
	for i, tag := range cfg.Tags {
		rmw[i] = tag.ReadModifyWrite
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

	// The handler only packages requests (header or CRC, unit id); the
	// link does the I/O.
	var packager goburrow.Packager
	var sig string
	switch ep.scheme {
	case "tcp":
		h := goburrow.NewTCPClientHandler(ep.tcp)
		h.SlaveId = cfg.UnitID
		packager = h
		sig = fmt.Sprintf("max_connections %d", cfg.MaxConnections)
		if cfg.FirstReadDelay != 0 {
			sig += fmt.Sprintf(", first_read_delay %v", cfg.FirstReadDelay)
		}
	case "rtu":
		h := goburrow.NewRTUClientHandler(ep.serial.Path)
		h.SlaveId = cfg.UnitID
		packager = h
		sig = "rtu " + ep.serial.String()
	case "ascii":
		h := goburrow.NewASCIIClientHandler(ep.serial.Path)
		h.SlaveId = cfg.UnitID
		packager = h
		sig = "ascii " + ep.serial.String()
	}
	mk := func() link {
		if ep.scheme == "tcp" {
			l := newTCPLink(ep.tcp, cfg.MaxConnections)
			l.firstRead = cfg.FirstReadDelay
			return l
		}
		return newSerialLink(ep.serial, ep.scheme == "ascii")
	}
	var l link
	if cfg.Pool != nil {
		if l, err = cfg.Pool.get(ep, where, sig, mk); err != nil {
			return nil, fmt.Errorf("%s: %w", where, err)
		}
	} else {
		l = mk()
	}
	t := &linkTransport{l: l, p: packager, timeout: cfg.Timeout, anyUnit: cfg.AnyUnitID}
	return &Driver{
		fields:         fields,
		rmw:            rmw,
		reqs:           reqs,
		active:         newActive(reqs),
		log:            cfg.Logger,
		pause:          cfg.Pause,
		closeAfterPoll: cfg.CloseAfterPoll,
		pool:           cfg.Pool,
		l:              l,
		t:              t,
		client:         goburrow.NewClient2(packager, t),
		minBackoff:     minBackoff,
		maxBackoff:     maxBackoff,
		name:           where,
		unit:           cfg.UnitID,
		polls:          newMeter(),
	}, nil
}

func clonePlan(reqs []Request) []Request {
	out := make([]Request, len(reqs))
	for i, r := range reqs {
		r.Tags = slices.Clone(r.Tags)
		out[i] = r
	}
	return out
}

// Plan returns the reads of one cycle as configured, in the order Read
// sends them.
func (d *Driver) Plan() []Request { return clonePlan(d.reqs) }

// ActivePlan returns the reads Read sends now: Plan, with the requests
// that drew an exception split into the parts that succeed and the tags
// that fail.
func (d *Driver) ActivePlan() []Request {
	d.mu.Lock()
	defer d.mu.Unlock()
	var out []Request
	for _, p := range d.active {
		out = append(out, p.reads()...)
	}
	return clonePlan(out)
}

// splitAfter is how many cycles in a row a whole request must draw
// exception 2 or 3 before its split is kept: a hole in the device's map
// persists, a PLC briefly refusing every address does not.
const splitAfter = 3

// planned is one request of the configured plan and what Read sends for
// it now.
type planned struct {
	whole  Request
	parts  []Request // the kept split; nil: whole is read
	streak int       // cycles in a row whole drew exception 2 or 3
}

func (p *planned) reads() []Request {
	if p.parts != nil {
		return p.parts
	}
	return []Request{p.whole}
}

func newActive(reqs []Request) []planned {
	out := make([]planned, len(reqs))
	for i, r := range clonePlan(reqs) {
		out[i] = planned{whole: r}
	}
	return out
}

// linkTransport is goburrow's Transporter for one driver: it hands each
// request to the shared link with the context of the Read in progress
// (goburrow's Client API has none) and the driver's timeout.
type linkTransport struct {
	l       link
	p       goburrow.Packager
	timeout time.Duration
	anyUnit bool            // TCP: the reply's unit id is not checked
	ctx     context.Context // set by the caller holding Driver.mu
	h       held            // the link, while Read holds it; else nil
	buf     []byte          // the last reply; valid until the next Send
	sent    time.Time       // when the last request went out
}

func (t *linkTransport) Send(adu []byte) ([]byte, error) {
	ctx := t.ctx
	if ctx == nil {
		ctx = context.Background()
	}
	h := t.h
	if h == nil { // not in a poll: take the link for this request
		var err error
		if h, err = t.l.hold(ctx); err != nil {
			return nil, err
		}
		defer h.release()
	}
	reply, sent, err := h.exchange(ctx, adu, t.timeout, t.buf[:0], t.inStep)
	if err != nil {
		return nil, err
	}
	t.buf, t.sent = reply, sent
	return reply, nil
}

// inStep tells whether reply answers req as the protocol says: same
// header (transaction and unit id), checksum, function (or its exception),
// and for reads the byte count asked for. goburrow checks the same after
// Send, to report it; this lets the link drop a connection that is out of
// step before another request uses it. With anyUnit it first gives a TCP
// reply the request's unit id.
func (t *linkTransport) inStep(req, reply []byte) bool {
	if t.anyUnit && len(reply) >= mbapHeaderLen && len(req) >= mbapHeaderLen {
		// unit_id_check: false. The reply takes the request's unit id,
		// for this check and goburrow's after Send.
		reply[mbapHeaderLen-1] = req[mbapHeaderLen-1]
	}
	if t.p.Verify(req, reply) != nil {
		return false
	}
	rp, err := t.p.Decode(reply)
	if err != nil {
		return false
	}
	qp, err := t.p.Decode(req)
	if err != nil || len(qp.Data) < 4 {
		return false
	}
	switch {
	case rp.FunctionCode == qp.FunctionCode|0x80:
		return len(rp.Data) == 1
	case rp.FunctionCode != qp.FunctionCode || len(rp.Data) < 1:
		return false
	case qp.FunctionCode >= 1 && qp.FunctionCode <= 4:
		count := binary.BigEndian.Uint16(qp.Data[2:])
		return int(rp.Data[0]) == len(rp.Data)-1 && int(rp.Data[0]) == expectedData(qp.FunctionCode, count)
	}
	return true
}

// close: the link drops a connection after a failure by itself.
func (t *linkTransport) close() error { return nil }

// connect attaches the driver to its link; the link connects lazily.
func (d *Driver) connect(ctx context.Context) error {
	d.amu.Lock()
	defer d.amu.Unlock()
	if !d.attached {
		d.attached = true
		if d.pool != nil {
			d.pool.attach(d)
		}
	}
	return ctx.Err()
}

// Read fills out[i] for Config.Tags[i]. Good samples carry the time their
// request went out; the others have a zero TS (the collector stamps the
// time the poll began). A request answered by a Modbus exception
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
	if err := d.connect(ctx); err != nil {
		d.allBad(out, err)
		return err
	}
	if len(d.fields) == 0 {
		return nil
	}
	if wait := time.Until(d.nextTry); d.downErr != nil && wait > 0 {
		wait = (wait + 99*time.Millisecond).Truncate(100 * time.Millisecond)
		err := fmt.Errorf("retry in %v: %w", wait, d.downErr)
		d.allBad(out, err)
		return err
	}
	d.t.ctx = ctx
	defer func() { d.t.ctx = nil }()
	d.polls.add(time.Now(), 1)
	if d.closeAfterPoll {
		defer d.l.closeIdle() // after the release below
	}
	// The device's requests follow one another on the link (devices that
	// share it take turns poll by poll): its readings are then one
	// snapshot, a few round trips wide, and its message is ready as soon
	// as its own reads are done instead of at the end of every device's.
	// With a pause between requests the link is free during the pause.
	if d.pause == 0 {
		h, err := d.l.hold(ctx)
		if err != nil {
			d.allBad(out, err)
			return err
		}
		d.t.h = h
		defer func() {
			d.t.h = nil
			h.release()
		}()
	}

	c := cycle{d: d, ctx: ctx, out: out}
	for i := range d.active {
		c.do(&d.active[i])
	}

	if c.answered {
		d.backoff, d.downErr = 0, nil
		return nil
	}
	err := c.lastErr
	if err == nil {
		err = c.stop
	}
	if ctx.Err() == nil {
		d.backoff = nextBackoff(d.backoff, d.minBackoff, d.maxBackoff)
		d.nextTry = time.Now().Add(d.backoff)
		d.downErr = err
		d.log.Debug("modbus device not answering", "err", err, "retry_in", d.backoff)
	}
	d.allBad(out, err)
	return err
}

// cycle is the state of one Read.
type cycle struct {
	d        *Driver
	ctx      context.Context
	out      []drivers.Sample
	sent     int   // requests sent so far
	failures int   // in a row
	answered bool  // some request got a reply (an exception counts)
	lastErr  error // the last failure that was not an exception
	stop     error // set when the rest of the cycle is not sent
}

// do reads one request of the plan, whole or as its kept split, and
// updates the split (see planned).
func (c *cycle) do(p *planned) {
	if p.parts == nil {
		r := p.whole
		if c.stop != nil {
			c.d.markBad(c.out, &r, c.stop)
			return
		}
		err := c.send(&r)
		var ex *Exception
		switch {
		case err == nil:
			p.streak = 0
			return
		case !errors.As(err, &ex):
			return // a timeout says nothing about the map
		case !splittable(ex):
			p.streak = 0
			return
		}
		parts := clusters(c.d.fields, r)
		if len(parts) < 2 {
			return
		}
		p.streak++
		c.d.log.Debug("modbus exception on a merged read: splitting it", "request", r.String(), "err", err, "cycles", p.streak)
		split := compact(c.halves(parts))
		if p.streak >= splitAfter {
			p.parts, p.streak = split, 0
		}
		return
	}
	// The kept split: a part that draws 2 or 3 is split further; when
	// every part answers, the hole is gone and the next cycle reads whole.
	var next []Request
	cleared := true
	for _, r := range p.parts {
		if c.stop != nil {
			c.d.markBad(c.out, &r, c.stop)
			next, cleared = append(next, r), false
			continue
		}
		err := c.send(&r)
		var ex *Exception
		if err != nil {
			cleared = false
		}
		if err != nil && errors.As(err, &ex) && splittable(ex) {
			if parts := clusters(c.d.fields, r); len(parts) > 1 {
				next = append(next, compact(c.halves(parts))...)
				continue
			}
		}
		next = append(next, r)
	}
	p.parts = next
	if cleared {
		c.d.log.Debug("modbus split read answers whole again: merging it", "request", p.whole.String())
		p.parts = nil
	}
}

// part is one read of a split plan and whether it answered.
type part struct {
	r  Request
	ok bool
}

// halves reads each half of parts (clusters in address order) as one
// request, and halves again a half that draws an exception splitting may
// explain, down to single clusters: the tags that fail end up alone.
func (c *cycle) halves(parts []Request) []part {
	h := len(parts) / 2
	return append(c.try(parts[:h]), c.try(parts[h:])...)
}

func (c *cycle) try(parts []Request) []part {
	r := merge(parts)
	if c.stop != nil {
		c.d.markBad(c.out, &r, c.stop)
		return []part{{r, false}}
	}
	err := c.send(&r)
	var ex *Exception
	if err != nil && len(parts) > 1 && errors.As(err, &ex) && splittable(ex) {
		return c.halves(parts)
	}
	return []part{{r, err == nil}}
}

// compact joins reads that answered and touch each other (no address
// between them went unread), so halving at arbitrary points costs no
// extra reads in the next cycles.
func compact(parts []part) []Request {
	var out []Request
	prevOK := false
	for _, p := range parts {
		if n := len(out); n > 0 && prevOK && p.ok {
			last := &out[n-1]
			if int(last.Address)+int(last.Count) == int(p.r.Address) {
				last.Count += p.r.Count
				last.Tags = append(last.Tags, p.r.Tags...)
				continue
			}
		}
		out = append(out, p.r)
		prevOK = p.ok
	}
	return out
}

// send reads r and stores the outcome in its tags.
func (c *cycle) send(r *Request) error {
	d := c.d
	if c.sent > 0 && d.pause > 0 {
		if err := sleepCtx(c.ctx, d.pause); err != nil {
			c.stop, c.lastErr = err, err
			d.markBad(c.out, r, err)
			return err
		}
	}
	c.sent++
	kind, _ := parseRegisterKind(r.Register)
	data, err := d.read(r, kind)
	if err == nil {
		c.answered, c.failures = true, 0
		d.decode(r, data, d.t.sent, c.out)
		return nil
	}
	err, exception := classify(err)
	rerr := &RequestError{Register: r.Register, Address: r.Address, Count: r.Count, Err: err}
	d.markBad(c.out, r, rerr)
	switch {
	case errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded):
		c.stop, c.lastErr = rerr, rerr
	case errors.Is(err, errLinkDown):
		// Nothing was sent: the port or connection cannot be opened.
		c.stop, c.lastErr = err, err
	case exception && !gatewayNoAnswer(err):
		c.answered, c.failures = true, 0
		d.log.Debug("modbus exception", "request", r.String(), "err", err)
	default:
		d.log.Debug("modbus request failed", "err", rerr)
		c.lastErr = rerr
		c.failures++
		if c.failures >= maxFailures {
			c.stop = fmt.Errorf("not sent after %d failed requests: %w", c.failures, rerr)
		}
	}
	return rerr
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

// decode fills the samples of r's tags from its reply. Good samples carry
// the time the request went out: the device sampled them then, not when
// the poll began (which is earlier by the wait for a shared connection or
// line, and by the requests before this one).
func (d *Driver) decode(r *Request, data []byte, sent time.Time, out []drivers.Sample) {
	for _, i := range r.Tags {
		v, err := d.fields[i].decode(data, r.Address, d.scratch[:])
		if err != nil {
			out[i] = drivers.Sample{Quality: drivers.Bad, Err: &RequestError{Register: r.Register, Address: r.Address, Count: r.Count, Err: err}}
			continue
		}
		out[i] = drivers.Sample{Value: v, Quality: drivers.Good, TS: sent}
	}
}

func (d *Driver) markBad(out []drivers.Sample, r *Request, err error) {
	for _, i := range r.Tags {
		out[i] = drivers.Sample{Quality: drivers.Bad, Err: err}
	}
}

func (d *Driver) allBad(out []drivers.Sample, err error) {
	for i := range out {
		out[i] = drivers.Sample{Quality: drivers.Bad, Err: err}
	}
}

// Close releases the driver's hold on its link: the connection or port
// closes when no other device uses it, and a Read in progress on a link
// of its own fails at once. Read after Close connects again.
func (d *Driver) Close() error {
	d.amu.Lock()
	attached := d.attached
	d.attached = false
	d.amu.Unlock()
	if d.pool == nil {
		return d.l.close()
	}
	if !attached {
		return nil
	}
	return d.pool.detach(d)
}
