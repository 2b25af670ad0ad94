package collector

import (
	"context"
	"sync"
	"time"

	"github.com/linegate/linegate/drivers"
)

// heartbeat publishes report_every for a subscribed device. A server sends
// a value only when it changes, so without it a quiet tag (a set point, a
// recipe value) would never repeat itself and the MES could not tell "no
// change" from "nobody there". While the device is up, a tag whose last
// sample was not bad is normalized again with the gateway's time once
// report_every has passed since it was last reported. The driver vouches
// for the value meanwhile: a subscription that stops delivering keep-alives
// makes its tags bad (drivers/opcua), and a bad tag gets no heartbeat.
type heartbeat struct {
	c *Collector
	d *device
	// mu lets the driver's deliver and the heartbeat take turns with the
	// device's normalization state.
	mu   sync.Mutex
	last []drivers.Sample // the last sample delivered per tag
	have []bool
	min  time.Duration // the shortest report_every of the device's tags
}

// newHeartbeat is nil when no tag of d has report_every.
func newHeartbeat(c *Collector, d *device) *heartbeat {
	h := &heartbeat{c: c, d: d}
	for i := range d.Tags {
		if re := d.Tags[i].ReportEvery; re > 0 && (h.min == 0 || re < h.min) {
			h.min = re
		}
	}
	if h.min == 0 {
		return nil
	}
	h.last = make([]drivers.Sample, len(d.Tags))
	h.have = make([]bool, len(d.Tags))
	return h
}

// remember keeps the samples of one publish; the caller holds mu.
func (h *heartbeat) remember(changes []drivers.Change) {
	for _, ch := range changes {
		if ch.Index >= 0 && ch.Index < len(h.last) {
			s := ch.Sample
			s.TS = time.Time{} // repeated, it is stamped with the gateway's time
			h.last[ch.Index], h.have[ch.Index] = s, true
		}
	}
}

// run repeats due tags until ctx is done.
func (h *heartbeat) run(ctx context.Context) {
	timer := time.NewTimer(h.min)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
		}
		timer.Reset(h.beat())
	}
}

// beat publishes the tags that are due and returns the wait for the next.
func (h *heartbeat) beat() time.Duration {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.d.mu.Lock()
	up := h.d.state.Up
	h.d.mu.Unlock()
	next := h.min
	if !up {
		return next
	}
	now := h.c.now()
	var due []drivers.Change
	for i := range h.d.Tags {
		re := h.d.Tags[i].ReportEvery
		st := &h.d.tags[i]
		if re <= 0 || !h.have[i] || !st.reported {
			continue
		}
		if h.last[i].Quality == drivers.Bad {
			continue
		}
		// lastReportAt has a monotonic reading when Clock is time.Now.
		if wait := re - now.Sub(st.lastReportAt); wait > 0 {
			next = min(next, wait)
			continue
		}
		due = append(due, drivers.Change{Index: i, Sample: h.last[i]})
		next = min(next, re)
	}
	if len(due) > 0 {
		if perr := h.c.guard(h.d, "normalize", func() {
			h.c.emit(h.d, now, now, len(due), func(i int) (int, drivers.Sample) { return due[i].Index, due[i].Sample })
		}); perr != nil {
			h.c.fail(h.d, perr, false)
		}
	}
	return max(next, time.Millisecond)
}
