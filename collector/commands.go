package collector

import (
	"context"
	"fmt"
	"time"

	"github.com/linegate/linegate/drivers"
)

// commandQueue is how many writes may wait per device; the commands'
// rate limit keeps far fewer in it.
const commandQueue = 16

// commandTimeout bounds one write and its read-back; the drivers' own
// timeouts end it sooner.
const commandTimeout = 10 * time.Second

// command is one write from the MES.
type command struct {
	index   int
	value   any
	expires time.Time
	done    func(readback any, err error)
}

// expiredError is handed to done for a command that expired in the
// queue; its Expired method tells it from a write that failed.
type expiredError struct{ expires time.Time }

func (e expiredError) Error() string {
	return "expired at " + e.expires.UTC().Format(time.RFC3339Nano) + " while queued for the device"
}
func (expiredError) Expired() bool { return true }

// Submit queues a write of value (raw) to tag index of device, after those
// queued before it (commands.Executor). done is called once, from the
// device's goroutine, with the read-back or the error.
func (c *Collector) Submit(device string, index int, value any, expires time.Time, done func(any, error)) error {
	d := c.find(device)
	if d == nil {
		return fmt.Errorf("unknown device %s", device)
	}
	if _, ok := d.Driver.(drivers.Writer); !ok {
		return drivers.Refused(fmt.Sprintf("the %s driver cannot write", device))
	}
	if index < 0 || index >= len(d.Tags) {
		return drivers.Refused(fmt.Sprintf("no tag #%d", index))
	}
	// Under mu with dropCommands: a command is either queued before the
	// device stops, and answered by the drain, or refused here.
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.cmdsClosed {
		return drivers.Refused(fmt.Sprintf("device %s stopped (reload or shutdown)", device))
	}
	select {
	case d.cmds <- command{index: index, value: value, expires: expires, done: done}:
		return nil
	default:
		return fmt.Errorf("device %s is busy: %d commands queued", device, commandQueue)
	}
}

// DeviceUp says whether device answered its last poll (commands.Executor).
func (c *Collector) DeviceUp(device string) (bool, string) {
	d := c.find(device)
	if d == nil {
		return false, "unknown device"
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	switch {
	case !d.known:
		return false, "not polled yet"
	case !d.state.Up:
		return false, d.state.LastError
	}
	return true, ""
}

func (c *Collector) find(name string) *device {
	for _, d := range c.snapshot() {
		if d.Name == name {
			return d
		}
	}
	return nil
}

// serveCommands runs d's commands until ctx is done (subscribed devices).
func (c *Collector) serveCommands(ctx context.Context, d *device) {
	defer c.dropCommands(d)
	for {
		select {
		case <-ctx.Done():
			return
		case cmd := <-d.cmds:
			c.runCommand(ctx, d, cmd)
		}
	}
}

// runCommand writes one command unless it expired while it waited or the
// device is stopping.
func (c *Collector) runCommand(ctx context.Context, d *device, cmd command) {
	if ctx.Err() != nil {
		// Stopping: select may pick a queued command over ctx.Done.
		cmd.done(nil, drivers.Refused("device stopped (reload or shutdown) before the command ran"))
		return
	}
	if !c.now().Before(cmd.expires) {
		cmd.done(nil, expiredError{cmd.expires})
		return
	}
	w := d.Driver.(drivers.Writer) // checked by Submit
	wctx, cancel := context.WithTimeout(ctx, commandTimeout)
	defer cancel()
	var back any
	var err error
	if perr := c.guard(d, "driver write", func() { back, err = w.Write(wctx, cmd.index, cmd.value) }); perr != nil {
		err = perr
	}
	cmd.done(back, err)
}

// dropCommands answers the commands still queued when the device stops.
func (c *Collector) dropCommands(d *device) {
	d.mu.Lock()
	d.cmdsClosed = true
	d.mu.Unlock()
	for {
		select {
		case cmd := <-d.cmds:
			// Never sent: a refusal, not a failure.
			cmd.done(nil, drivers.Refused("device stopped (reload or shutdown) before the command ran"))
		default:
			return
		}
	}
}
