package collector

import (
	"fmt"
	"runtime/debug"
	"time"

	"github.com/linegate/linegate/drivers"
)

// A panic in a device's driver or normalization is a bug, never a reason to
// take the agent down: it would only die again on the same reply or tag
// after every restart (a crash loop, with every other device silent). So
// the device goroutine recovers it, takes the device down (every tag bad
// with the reason, a device_down event, the stack in the log), closes the
// driver and tries again after a backoff that doubles up to failBackoffMax.
const (
	failBackoffMin = time.Second
	failBackoffMax = 5 * time.Minute
)

// failBackoff is the pause after the n-th panic in a row (n ≥ 1).
func failBackoff(n int, interval time.Duration) time.Duration {
	d := max(failBackoffMin, interval)
	for i := 1; i < n && d < failBackoffMax; i++ {
		d *= 2
	}
	return min(d, failBackoffMax)
}

// guard runs f and turns a panic in it into an error naming what failed.
func (c *Collector) guard(d *device, what string, f func()) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("internal error in %s: %v", what, p)
			c.m.panics.WithLabelValues(d.Name).Inc()
			c.log.Error("device failed: taken down, retried after a backoff", "device", d.Name,
				"in", what, "panic", fmt.Sprint(p), "stack", string(debug.Stack()))
		}
	}()
	f()
	return nil
}

// fail takes d down after a panic: every tag is published bad with err and
// the device_down event says why. A polled device's driver is closed too
// (its state may be broken; the next read reconnects); a subscription's is
// closed by runSubscribed once Subscribe has returned, since fail then runs
// on the driver's own goroutine.
func (c *Collector) fail(d *device, err error, closeDriver bool) {
	now := c.now()
	if closeDriver {
		_ = c.guard(d, "driver close", func() { _ = d.Driver.Close() })
	}
	samples := make([]drivers.Sample, len(d.Tags))
	for i := range samples {
		samples[i] = drivers.Sample{Quality: drivers.Bad, Err: err}
	}
	// A panic here too leaves the readings out; the event still goes.
	_ = c.guard(d, "normalize", func() {
		c.emit(d, now, now, len(samples), func(i int) (int, drivers.Sample) { return i, samples[i] })
	})
	c.deviceState(d, err, now)
}
