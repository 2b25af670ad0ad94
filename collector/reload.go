package collector

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"sync"

	"github.com/linegate/linegate/drivers"
)

// ErrStopped is returned by Replace once Run has returned.
var ErrStopped = errors.New("collector: stopped")

// runSet is the goroutines of a running collector: each device has its own
// cancel, so one device can stop without the others noticing.
type runSet struct {
	ctx     context.Context // Run's: every device goroutine derives from it
	wg      sync.WaitGroup
	workers map[*device]*worker
	stopped bool // Run is stopping: start no more goroutines
}

type worker struct {
	cancel context.CancelFunc
	done   chan struct{}
}

// ReplaceResult names the devices a Replace touched, in the order of the
// new device list (removed: the old order).
type ReplaceResult struct {
	Added     []string
	Removed   []string
	Restarted []string
}

// Changed says whether Replace touched any device.
func (r ReplaceResult) Changed() bool {
	return len(r.Added)+len(r.Removed)+len(r.Restarted) > 0
}

// snapshot returns the current devices; the slice is never modified in
// place (Replace swaps it), so callers may range over it unlocked.
func (c *Collector) snapshot() []*device {
	c.devMu.Lock()
	defer c.devMu.Unlock()
	return c.devices
}

// startAll starts a goroutine per device under ctx.
func (c *Collector) startAll(ctx context.Context) (*runSet, error) {
	c.devMu.Lock()
	defer c.devMu.Unlock()
	if c.running != nil {
		return nil, errors.New("collector: already running")
	}
	rs := &runSet{ctx: ctx, workers: map[*device]*worker{}}
	for _, d := range c.devices {
		c.start(rs, d)
	}
	c.running = rs
	return rs, nil
}

// stopAll waits for every device goroutine (their contexts derive from
// Run's, which is done) and keeps Replace from starting new ones.
func (c *Collector) stopAll(rs *runSet) {
	c.devMu.Lock()
	rs.stopped = true
	c.devMu.Unlock()
	rs.wg.Wait()
}

// start runs d in its own goroutine; the caller holds devMu.
func (c *Collector) start(rs *runSet, d *device) {
	ctx, cancel := context.WithCancel(rs.ctx)
	w := &worker{cancel: cancel, done: make(chan struct{})}
	rs.workers[d] = w
	rs.wg.Add(1)
	go func() {
		defer rs.wg.Done()
		defer close(w.done)
		defer cancel()
		if d.Subscribe {
			c.runSubscribed(ctx, d)
			return
		}
		c.runDevice(ctx, d)
	}()
}

// Replace makes devices the collector's device list, in that order, while
// it runs (or before Run). A device whose name is new is added; a running
// device whose name is missing is removed; a device whose Driver is not the
// running one's is restarted with its new settings (normalization state,
// deadbands and counters start afresh); a device whose Driver is the
// running one's keeps running untouched, whatever else the new entry says.
// The caller builds a new driver exactly for the devices whose config
// changed, and reuses the running Driver for the others.
//
// Removed and restarted devices are stopped (their drivers closed) before
// any new device starts, so a serial port or a single allowed TCP
// connection is free again for its successor. On an error nothing has
// changed and the new drivers are the caller's to close; on success the
// collector owns them.
func (c *Collector) Replace(devices []Device) (ReplaceResult, error) {
	if err := checkDevices(devices); err != nil {
		return ReplaceResult{}, err
	}
	c.replaceMu.Lock()
	defer c.replaceMu.Unlock()

	c.devMu.Lock()
	if c.running != nil && c.running.stopped {
		c.devMu.Unlock()
		return ReplaceResult{}, ErrStopped
	}
	old := map[string]*device{}
	for _, d := range c.devices {
		old[d.Name] = d
	}
	var res ReplaceResult
	next := make([]*device, 0, len(devices))
	var fresh, gone []*device
	var restarted [][2]*device // old, new
	keep := map[*device]bool{}
	for _, nd := range devices {
		od := old[nd.Name]
		if od != nil && sameDriver(od.Driver, nd.Driver) {
			keep[od] = true
			next = append(next, od)
			continue
		}
		d := newDevice(nd)
		if od == nil {
			res.Added = append(res.Added, nd.Name)
		} else {
			res.Restarted = append(res.Restarted, nd.Name)
			restarted = append(restarted, [2]*device{od, d})
		}
		fresh = append(fresh, d)
		next = append(next, d)
	}
	inNew := map[string]bool{}
	for _, nd := range devices {
		inNew[nd.Name] = true
	}
	for _, od := range c.devices {
		if !keep[od] {
			gone = append(gone, od)
			if !inNew[od.Name] {
				res.Removed = append(res.Removed, od.Name)
			}
		}
	}
	rs := c.running
	var waits []chan struct{}
	if rs != nil {
		for _, d := range gone {
			if w := rs.workers[d]; w != nil {
				w.cancel()
				waits = append(waits, w.done)
				delete(rs.workers, d)
			}
		}
	}
	c.devMu.Unlock()

	// Stop outside the lock: a device in the middle of a read takes up to
	// its timeout, and the status page must not wait for it.
	for _, done := range waits {
		<-done
	}
	if rs == nil {
		// Not running yet: nobody else will close the old drivers.
		for _, d := range gone {
			if err := d.Driver.Close(); err != nil {
				c.log.Debug("close driver", "device", d.Name, "err", err)
			}
		}
	}

	// The old devices are stopped and the new ones not started: the status
	// page keeps showing a restarted device's tags, and their history.
	for _, p := range restarted {
		carryLast(p[0], p[1])
	}

	c.devMu.Lock()
	c.devices = next
	if rs != nil {
		if rs.stopped {
			// Run stopped while we waited: the new devices never start.
			c.devMu.Unlock()
			for _, d := range fresh {
				_ = d.Driver.Close()
			}
			c.live.forgetGone(next)
			return res, ErrStopped
		}
		for _, d := range fresh {
			c.start(rs, d)
		}
	}
	c.devMu.Unlock()

	// A removed device's last readings went with it; the rings of removed
	// devices and tags go now.
	c.live.forgetGone(next)
	for _, name := range res.Removed {
		c.m.up.DeleteLabelValues(name)
	}
	return res, nil
}

// sameDriver compares two drivers without panicking on a driver type that
// is not comparable (such a driver is always taken as changed).
func sameDriver(a, b drivers.Driver) bool {
	if a == nil || b == nil {
		return false
	}
	ta, tb := reflect.TypeOf(a), reflect.TypeOf(b)
	if ta != tb || !ta.Comparable() {
		return false
	}
	return a == b
}

// checkDevices is New's validation of a device list.
func checkDevices(devices []Device) error {
	seen := map[string]bool{}
	for _, d := range devices {
		switch {
		case d.Name == "" || seen[d.Name]:
			return fmt.Errorf("collector: device name %q empty or duplicate", d.Name)
		case d.Interval <= 0:
			return fmt.Errorf("collector: device %s: interval %v", d.Name, d.Interval)
		case d.Driver == nil:
			return fmt.Errorf("collector: device %s: no driver", d.Name)
		}
		if _, ok := d.Driver.(drivers.Subscriber); d.Subscribe && !ok {
			return fmt.Errorf("collector: device %s: driver cannot subscribe", d.Name)
		}
		if d.OEE != nil {
			if _, err := newOEECalc(&d, d.descriptions()); err != nil {
				return fmt.Errorf("collector: device %s: %w", d.Name, err)
			}
		}
		seen[d.Name] = true
	}
	return nil
}

func newDevice(d Device) *device {
	d.Compact()
	tags := d.descs
	d.descs = nil
	dev := &device{
		Device: d,
		Tags:   tags,
		tags:   make([]tagState, len(tags)),
		out:    make([]drivers.Sample, len(tags)),
		last:   lastReadings{slots: make([]lastReading, len(tags))},
		state:  DeviceStatus{Name: d.Name},
		cmds:   make(chan command, commandQueue),
	}
	if d.OEE != nil {
		dev.oee, _ = newOEECalc(&d, tags) // checkDevices has vetted it
	}
	return dev
}
