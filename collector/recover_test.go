package collector

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/linegate/linegate/internal/testkit"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/linegate/linegate/buffer"
	"github.com/linegate/linegate/drivers"
)

// panicDriver panics in Read while panics is set, else reads like
// scriptDriver.
type panicDriver struct {
	scriptDriver
	pmu    sync.Mutex
	panics bool
}

func (d *panicDriver) set(p bool) { d.pmu.Lock(); d.panics = p; d.pmu.Unlock() }

func (d *panicDriver) Read(ctx context.Context, out []drivers.Sample) error {
	d.pmu.Lock()
	p := d.panics
	d.pmu.Unlock()
	if p {
		var s []int
		s[len(out)]++ // a real runtime panic: index out of range
	}
	return d.scriptDriver.Read(ctx, out)
}

// panicSink panics on Append for one equipment, as a bug in normalization
// or encoding would inside emit.
type panicSink struct {
	memSink
	mu    sync.Mutex
	equip string
}

func (s *panicSink) set(equip string) { s.mu.Lock(); s.equip = equip; s.mu.Unlock() }

func (s *panicSink) Append(m buffer.Message) (uint64, error) {
	s.mu.Lock()
	e := s.equip
	s.mu.Unlock()
	if m.Equipment == e {
		panic("encode: unexpected value shape")
	}
	return s.memSink.Append(m)
}

func eventsOf(sink *panicSink, typ, device string) []buffer.Event {
	_, events := sink.snapshot()
	var out []buffer.Event
	for _, e := range events {
		if e.Type == typ && len(e.Attrs) > 0 && e.Attrs[0].Value == device {
			out = append(out, e)
		}
	}
	return out
}

// TestPanicTakesDownOnlyItsDevice: a panic in a driver's Read or in a
// device's normalization takes that device down (bad readings with the
// reason, device_down, the driver closed) and the collector and the other
// devices go on; once the fault is gone the device comes back.
func TestPanicTakesDownOnlyItsDevice(t *testing.T) {
	for _, where := range []string{"driver read", "normalize"} {
		t.Run(where, func(t *testing.T) {
			bad := &panicDriver{}
			sink := &panicSink{}
			reg := prometheus.NewRegistry()
			c, err := New(Options{Sink: sink, Registerer: reg, Devices: []Device{
				{Name: "bad", Interval: 10 * time.Millisecond, Driver: bad, Tags: threeTags()},
				{Name: "ok", Interval: 10 * time.Millisecond, Driver: &scriptDriver{}, Tags: threeTags()},
			}})
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan struct{})
			go func() { _ = c.Run(ctx); close(done) }()
			defer func() { cancel(); <-done }()

			testkit.WaitFor(t, waitTimeout, "both devices polled", func() bool { s := c.Status(); return s[0].Polls > 0 && s[1].Polls > 0 })
			if where == "driver read" {
				bad.set(true)
			} else {
				sink.set("bad")
			}
			testkit.WaitFor(t, waitTimeout, "device_down of the failing device", func() bool { return len(eventsOf(sink, "device_down", "bad")) > 0 })
			down := eventsOf(sink, "device_down", "bad")[0]
			if msg, _ := down.Attrs[1].Value.(string); !strings.Contains(msg, "internal error in "+where) {
				t.Fatalf("device_down error %q, want it to name %q", msg, where)
			}
			if where == "driver read" {
				// The bad readings say why; normalize's own failure cannot
				// publish them (the sink is what fails), the event still goes.
				testkit.WaitFor(t, waitTimeout, "bad readings with the reason", func() bool {
					msgs, _ := sink.snapshot()
					for _, m := range msgs {
						if m.Equipment == "bad" && len(m.Readings) > 0 && m.Readings[0].Quality == buffer.Bad &&
							strings.Contains(m.Readings[0].Error, "internal error in driver read") {
							return true
						}
					}
					return false
				})
				testkit.WaitFor(t, waitTimeout, "driver closed", func() bool { bad.mu.Lock(); defer bad.mu.Unlock(); return bad.closed > 0 })
			}
			if c.Status()[0].Up {
				t.Fatal("failing device reported up")
			}
			// The other device keeps polling while the first one is down.
			polls := c.Status()[1].Polls
			testkit.WaitFor(t, waitTimeout, "other device polls on", func() bool { return c.Status()[1].Polls >= polls+5 })
			if n := testutil.ToFloat64(c.m.panics.WithLabelValues("bad")); n < 1 {
				t.Fatalf("failures metric %v", n)
			}

			bad.set(false)
			sink.set("")
			testkit.WaitFor(t, waitTimeout, "device_up after the fault is gone", func() bool { return len(eventsOf(sink, "device_up", "bad")) > 0 })
			if !c.Status()[0].Up {
				t.Fatal("device not up again")
			}
		})
	}
}

// panicSubscriber delivers changes; its Subscribe itself panics on demand.
type panicSubscriber struct {
	pushDriver
	mu        sync.Mutex
	subscribe int
	panicSub  bool
}

func (p *panicSubscriber) Subscribe(ctx context.Context, deliver func([]drivers.Change), state func(error)) error {
	p.mu.Lock()
	p.subscribe++
	ps := p.panicSub
	p.mu.Unlock()
	if ps {
		panic("subscribe: index out of range")
	}
	return p.pushDriver.Subscribe(ctx, deliver, state)
}

func (p *panicSubscriber) subscribes() int { p.mu.Lock(); defer p.mu.Unlock(); return p.subscribe }

// TestPanicInSubscription: a panic while a publish is normalized ends the
// subscription (device down, the reason in the event, the driver closed)
// and the device subscribes again after the backoff; a panic in Subscribe
// itself does the same.
func TestPanicInSubscription(t *testing.T) {
	drv := &panicSubscriber{pushDriver: pushDriver{changes: make(chan []drivers.Change), states: make(chan error)}}
	sink := &panicSink{}
	c, err := New(Options{Sink: sink, Devices: []Device{{Name: "oven", Interval: 10 * time.Millisecond, Driver: drv, Subscribe: true,
		Tags: []Tag{{Name: "zone1", Class: "process"}}}}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = c.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()

	drv.states <- nil
	sink.set("oven")
	drv.changes <- []drivers.Change{{Index: 0, Sample: drivers.Sample{Value: 1.0}}}
	testkit.WaitFor(t, waitTimeout, "device_down", func() bool { return len(eventsOf(sink, "device_down", "oven")) == 1 })
	if msg, _ := eventsOf(sink, "device_down", "oven")[0].Attrs[1].Value.(string); !strings.Contains(msg, "internal error in normalize") {
		t.Fatalf("device_down error %q", msg)
	}
	testkit.WaitFor(t, waitTimeout, "driver closed", func() bool { drv.scriptDriver.mu.Lock(); defer drv.scriptDriver.mu.Unlock(); return drv.closed > 0 })
	testkit.WaitFor(t, waitTimeout, "subscribed again", func() bool { return drv.subscribes() >= 2 })

	sink.set("")
	drv.states <- nil
	drv.changes <- []drivers.Change{{Index: 0, Sample: drivers.Sample{Value: 2.0}}}
	testkit.WaitFor(t, waitTimeout, "device_up and a reading", func() bool {
		msgs, _ := sink.snapshot()
		return len(eventsOf(sink, "device_up", "oven")) == 1 && len(msgs) > 0
	})

	drv.mu.Lock()
	drv.panicSub = true
	drv.mu.Unlock()
	drv.states <- errors.New("session closed") // ends nothing; forces a state change
	testkit.WaitFor(t, waitTimeout, "second device_down", func() bool { return len(eventsOf(sink, "device_down", "oven")) >= 2 })
}

func TestFailBackoff(t *testing.T) {
	tests := []struct {
		n        int
		interval time.Duration
		want     time.Duration
	}{
		{1, 10 * time.Millisecond, time.Second},
		{2, 10 * time.Millisecond, 2 * time.Second},
		{1, 5 * time.Second, 5 * time.Second},
		{4, 5 * time.Second, 40 * time.Second},
		{20, time.Second, 5 * time.Minute},
		{1, time.Hour, 5 * time.Minute},
	}
	for _, tt := range tests {
		if got := failBackoff(tt.n, tt.interval); got != tt.want {
			t.Errorf("failBackoff(%d, %s) = %s, want %s", tt.n, tt.interval, got, tt.want)
		}
	}
}
