package collector

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/linegate/linegate/buffer"
	"github.com/linegate/linegate/drivers"
)

// Device is one polled device.
type Device struct {
	Name     string // equipment id
	Interval time.Duration
	Driver   drivers.Driver
	Tags     []Tag
	// Subscribe uses the driver's subscription (drivers.Subscriber)
	// instead of polling every Interval.
	Subscribe bool
	// Shifts, when set, makes every state tag of the device publish the
	// seconds spent in each state per shift, in class time.
	Shifts *ShiftPlan
	// OEE, when set, publishes availability, performance, quality and OEE
	// per period of Shifts (calendar days in UTC without), in class time.
	OEE *OEE

	// descs are Tags as the collector keeps them, once Compact has run.
	descs []tagDesc
}

// Sink is where messages go: the buffer. Append must not keep the
// message's Readings slice after it returns (the buffer encodes it at once):
// the collector gathers the next cycle's readings in it.
type Sink interface {
	Append(buffer.Message) (uint64, error)
	AppendEvent(buffer.Event) error
}

// Options configure a Collector.
type Options struct {
	Devices    []Device
	Sink       Sink
	Logger     *slog.Logger
	Registerer prometheus.Registerer
	// Clock stamps readings and events (default time.Now). Polls are
	// scheduled on the monotonic clock whatever it says.
	Clock func() time.Time
}

// Collector runs one goroutine per device.
type Collector struct {
	devices []*device
	sink    Sink
	log     *slog.Logger
	now     func() time.Time
	m       *metrics
	live    live // history of the watched tags, for the status page
	// scratch lends emit a *[3][]buffer.Reading to gather a cycle's
	// readings in, so each message gets one exactly sized slice instead of
	// one that grew by doubling.
	scratch sync.Pool

	// devMu guards devices and running: Replace (a live reload) swaps them
	// while Run and the status readers use them.
	devMu   sync.Mutex
	running *runSet
	// replaceMu lets one Replace run at a time.
	replaceMu sync.Mutex
}

// DeviceStatus is a snapshot of one device, for diagnostics.
type DeviceStatus struct {
	Name         string
	Up           bool
	LastError    string
	LastGoodRead time.Time
	LastPoll     time.Time
	Polls        uint64
	Overruns     uint64
}

type device struct {
	Device
	// Tags shadows Device.Tags, which newDevice clears: the descriptions
	// are kept once, compact.
	Tags  []tagDesc
	tags  []tagState
	out   []drivers.Sample
	last  lastReadings // for the status page
	mu    sync.Mutex   // guards status
	state DeviceStatus
	known bool // up/down known (an event was sent for the current state)
	// readings caches the device's linegate_readings_total children by
	// quality: a label lookup per reading costs more than the reading.
	readings [3]prometheus.Counter
	// cmds are the writes from the MES waiting for the device, in arrival
	// order (commands.go); cmdsClosed (under mu) once the device stopped
	// taking them.
	cmds       chan command
	cmdsClosed bool
	oee        *oeeCalc // nil without Device.OEE
}

// New checks the devices and prepares their state.
func New(opts Options) (*Collector, error) {
	if opts.Sink == nil {
		return nil, errors.New("collector: no sink")
	}
	c := &Collector{sink: opts.Sink, log: opts.Logger, now: opts.Clock}
	if c.log == nil {
		c.log = slog.New(slog.DiscardHandler)
	}
	if c.now == nil {
		c.now = time.Now
	}
	if err := checkDevices(opts.Devices); err != nil {
		return nil, err
	}
	for _, d := range opts.Devices {
		c.devices = append(c.devices, newDevice(d))
	}
	c.m = newMetrics(opts.Registerer)
	return c, nil
}

// Run polls every device until ctx is done, then closes the drivers.
// Replace (a live reload) adds, removes and restarts devices while it runs.
func (c *Collector) Run(ctx context.Context) error {
	rs, err := c.startAll(ctx)
	if err != nil {
		return err
	}
	<-ctx.Done()
	c.stopAll(rs)
	return nil
}

// Status returns a snapshot of every device.
func (c *Collector) Status() []DeviceStatus {
	devices := c.snapshot()
	out := make([]DeviceStatus, 0, len(devices))
	for _, d := range devices {
		d.mu.Lock()
		out = append(out, d.state)
		d.mu.Unlock()
	}
	return out
}

func (c *Collector) runDevice(ctx context.Context, d *device) {
	defer func() {
		_ = c.guard(d, "driver close", func() {
			if err := d.Driver.Close(); err != nil {
				c.log.Debug("close driver", "device", d.Name, "err", err)
			}
		})
	}()
	defer c.dropCommands(d)
	timer := time.NewTimer(0)
	defer timer.Stop()
	<-timer.C
	// The schedule runs on time.Now's monotonic clock, whatever Clock says:
	// Clock stamps readings (schedule.go).
	next := firstTick(time.Now(), d.Interval)
	failures := 0
	for {
		timer.Reset(time.Until(next))
		select {
		case <-ctx.Done():
			return
		case cmd := <-d.cmds:
			// Between polls, on the device's goroutine: a write never
			// overlaps a read of the same device.
			c.runCommand(ctx, d, cmd)
			continue
		case <-timer.C:
		}
		ok := c.poll(ctx, d)
		resume := time.Now() // after the poll: an overrun skips ticks
		if ok {
			failures = 0
		} else {
			failures++
			resume = resume.Add(failBackoff(failures, d.Interval))
		}
		var skipped int64
		next, skipped = nextTick(next, resume, d.Interval)
		if skipped > 0 && failures == 0 {
			c.m.overruns.WithLabelValues(d.Name).Add(float64(skipped))
			d.mu.Lock()
			d.state.Overruns += uint64(skipped)
			d.mu.Unlock()
		}
	}
}

// poll reads a device once and appends one message per class. It is false
// when the driver or normalization failed (a recovered panic): the device
// is then down and waits out a backoff.
func (c *Collector) poll(ctx context.Context, d *device) bool {
	start := c.now()
	for i := range d.out {
		d.out[i] = drivers.Sample{}
	}
	var err error
	if perr := c.guard(d, "driver read", func() { err = d.Driver.Read(ctx, d.out) }); perr != nil {
		c.fail(d, perr, true)
		return false
	}
	if ctx.Err() != nil {
		return true // shutting down: a cancelled read is not a device fault
	}
	done := c.now()
	c.m.pollDuration.WithLabelValues(d.Name).Observe(done.Sub(start).Seconds())
	c.deviceState(d, err, done)
	// Readings are stamped with the time the read began: the closest the
	// gateway knows to when the PLC sampled them.
	if perr := c.guard(d, "normalize", func() {
		c.emit(d, start, done, len(d.Tags), func(i int) (int, drivers.Sample) { return i, d.out[i] })
	}); perr != nil {
		c.fail(d, perr, true)
		return false
	}
	return true
}

// emit normalizes n samples (at returns the tag index and sample of the
// i-th) and appends one message per class.
func (c *Collector) emit(d *device, sampled, done time.Time, n int, at func(i int) (int, drivers.Sample)) {
	byClass, _ := c.scratch.Get().(*[3][]buffer.Reading)
	if byClass == nil {
		byClass = new([3][]buffer.Reading)
	}
	good := false
	for i := 0; i < n; i++ {
		ti, s := at(i)
		if ti < 0 || ti >= len(d.Tags) {
			continue
		}
		t, st := &d.Tags[ti], &d.tags[ti]
		r, ok := t.normalize(s, st, sampled)
		c.observe(d, ti, &r, done)
		if d.readings[r.Quality] == nil {
			d.readings[r.Quality] = c.m.readings.WithLabelValues(d.Name, r.Quality.String())
		}
		d.readings[r.Quality].Inc()
		if r.Quality == buffer.Good {
			good = true
		}
		if x := st.tagExt; x != nil {
			for _, e := range x.events {
				e.Attrs = append([]buffer.Attr{{Key: "device", Value: d.Name}}, e.Attrs...)
				c.event(e)
			}
			x.events = x.events[:0]
		}
		if d.Shifts != nil && t.isState() {
			// Even a reading the deadband holds back moves the clock.
			x := st.ext()
			if x.times == nil {
				x.times = newStateTimes(t.full)
			}
			byClass[2] = append(byClass[2], x.times.observe(d.Shifts, stateOf(&r), r.TS)...)
		}
		if d.oee != nil {
			d.oee.observe(ti, &r)
		}
		if !ok {
			continue
		}
		ci := classIndex(t.Class)
		byClass[ci] = append(byClass[ci], r)
	}
	if d.oee != nil {
		byClass[2] = d.oee.flush(byClass[2])
	}
	if good {
		d.mu.Lock()
		d.state.LastGoodRead = done
		d.mu.Unlock()
	}
	for ci, rs := range byClass {
		if len(rs) == 0 {
			continue
		}
		m := buffer.Message{Created: done.UTC(), Equipment: d.Name, Class: classNames[ci], Readings: rs}
		if _, err := c.sink.Append(m); err != nil {
			c.m.appendErrors.Inc()
			c.log.Error("buffer append failed: readings lost", "device", d.Name, "class", m.Class, "readings", len(m.Readings), "err", err)
		}
		// Cleared for the next cycle: the pool must not keep values alive.
		clear(rs)
		byClass[ci] = rs[:0]
	}
	// Not deferred: after a panic the half-filled slices are dropped.
	c.scratch.Put(byClass)
}

// runSubscribed lets a subscribing driver push changes. Subscribe
// reconnects by itself; it returns early only on an error retrying cannot
// mend, which is logged and retried slowly so a fixed server is picked up.
// A panic while handling a publish ends that subscription: the device goes
// down and subscribes again after a backoff.
func (c *Collector) runSubscribed(ctx context.Context, d *device) {
	defer func() {
		_ = c.guard(d, "driver close", func() {
			if err := d.Driver.Close(); err != nil {
				c.log.Debug("close driver", "device", d.Name, "err", err)
			}
		})
	}()
	sub := d.Driver.(drivers.Subscriber)
	// The subscription pushes values from its own loop: commands run on
	// a goroutine of their own, one at a time in arrival order.
	cmdCtx, stopCmds := context.WithCancel(ctx)
	cmdsDone := make(chan struct{})
	go func() { defer close(cmdsDone); c.serveCommands(cmdCtx, d) }()
	defer func() { stopCmds(); <-cmdsDone }()
	// The heartbeat (report_every) and deliver take turns with the tags'
	// state under mu; without report_every there is no heartbeat.
	hb := newHeartbeat(c, d)
	mu := &sync.Mutex{}
	if hb != nil {
		mu = &hb.mu
		hbCtx, stop := context.WithCancel(ctx)
		hbDone := make(chan struct{})
		go func() { defer close(hbDone); hb.run(hbCtx) }()
		defer func() { stop(); <-hbDone }()
	}
	failures := 0
	for {
		subCtx, cancel := context.WithCancel(ctx)
		var failed atomic.Bool
		deliver := func(changes []drivers.Change) {
			if failed.Load() {
				return // the subscription is being torn down
			}
			mu.Lock()
			defer mu.Unlock()
			if hb != nil {
				hb.remember(changes)
			}
			now := c.now()
			if perr := c.guard(d, "normalize", func() {
				c.emit(d, now, now, len(changes), func(i int) (int, drivers.Sample) { return changes[i].Index, changes[i].Sample })
			}); perr != nil {
				failed.Store(true)
				c.fail(d, perr, false)
				cancel()
			}
		}
		state := func(err error) {
			if !failed.Load() {
				c.deviceState(d, err, c.now())
			}
		}
		var err error
		if perr := c.guard(d, "driver subscribe", func() { err = sub.Subscribe(subCtx, deliver, state) }); perr != nil {
			if failed.CompareAndSwap(false, true) {
				mu.Lock()
				c.fail(d, perr, false)
				mu.Unlock()
			}
		}
		cancel()
		if failed.Load() {
			_ = c.guard(d, "driver close", func() { _ = d.Driver.Close() })
		}
		if ctx.Err() != nil {
			return
		}
		wait := subscribeRetry
		if failed.Load() {
			failures++
			wait = failBackoff(failures, d.Interval)
		} else {
			failures = 0
			if err == nil {
				err = errors.New("subscription ended")
			}
			c.deviceState(d, err, c.now())
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
	}
}

// subscribeRetry is the pause after a subscription failed for good.
const subscribeRetry = 30 * time.Second

var classNames = [3]string{"process", "equipment", "time"}

func classIndex(class string) int {
	for i, n := range classNames {
		if n == class {
			return i
		}
	}
	return 0
}

// deviceState tracks up/down and emits an event on each change, so the MES
// can tell a dead machine from a quiet one.
func (c *Collector) deviceState(d *device, err error, now time.Time) {
	d.mu.Lock()
	wasUp, known := d.state.Up, d.known
	d.state.LastPoll = now
	d.state.Polls++
	d.state.Up = err == nil
	d.known = true
	if err != nil {
		d.state.LastError = err.Error()
	} else {
		d.state.LastError = ""
	}
	d.mu.Unlock()

	up := 0.0
	if err == nil {
		up = 1
	}
	c.m.up.WithLabelValues(d.Name).Set(up)
	if err != nil {
		c.m.readErrors.WithLabelValues(d.Name, errorReason(err)).Inc()
	}
	switch {
	case err != nil && (wasUp || !known):
		c.log.Warn("device down", "device", d.Name, "err", err)
		c.event(buffer.Event{Type: "device_down", TS: now.UTC(), Attrs: []buffer.Attr{
			{Key: "device", Value: d.Name}, {Key: "error", Value: err.Error()}}})
	case err == nil && !wasUp && known:
		c.log.Info("device up", "device", d.Name)
		c.event(buffer.Event{Type: "device_up", TS: now.UTC(), Attrs: []buffer.Attr{{Key: "device", Value: d.Name}}})
	}
}

func (c *Collector) event(e buffer.Event) {
	if err := c.sink.AppendEvent(e); err != nil {
		c.log.Error("buffer append event failed", "event", e.Type, "err", err)
	}
}
