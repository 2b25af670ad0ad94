package collector

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/linegate/linegate/internal/testkit"

	"github.com/linegate/linegate/buffer"
	"github.com/linegate/linegate/drivers"
)

// pushDriver delivers what the test sends on its channel.
type pushDriver struct {
	scriptDriver
	changes chan []drivers.Change
	states  chan error
}

func (p *pushDriver) Subscribe(ctx context.Context, deliver func([]drivers.Change), state func(error)) error {
	for {
		select {
		case <-ctx.Done():
			return nil
		case ch := <-p.changes:
			deliver(ch)
		case err := <-p.states:
			state(err)
		}
	}
}

func TestSubscribedDevice(t *testing.T) {
	drv := &pushDriver{changes: make(chan []drivers.Change), states: make(chan error)}
	sink := &memSink{}
	c, err := New(Options{Sink: sink, Devices: []Device{{Name: "oven02", Interval: time.Second, Driver: drv, Subscribe: true,
		Tags: []Tag{{Name: "zone1", Class: "process", Unit: "degC"}, {Name: "state", Class: "equipment", States: map[int64]string{1: "heating"}}}}}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = c.Run(ctx); close(done) }()

	src := time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC)
	drv.states <- nil
	drv.changes <- []drivers.Change{{Index: 0, Sample: drivers.Sample{Value: 180.5, TS: src}}, {Index: 7, Sample: drivers.Sample{Value: 1.0}}}
	drv.changes <- []drivers.Change{{Index: 1, Sample: drivers.Sample{Value: int64(1)}}}
	testkit.WaitFor(t, waitTimeout, "two messages", func() bool { m, _ := sink.snapshot(); return len(m) == 2 })
	msgs, _ := sink.snapshot()
	if r := msgs[0].Readings; msgs[0].Class != "process" || len(r) != 1 || r[0].Value != 180.5 || !r[0].TS.Equal(src) {
		t.Fatalf("first message %+v", msgs[0])
	}
	if r := msgs[1].Readings; msgs[1].Class != "equipment" || r[0].Value != "heating" {
		t.Fatalf("second message %+v", msgs[1])
	}
	drv.states <- errors.New("session closed")
	// Up is cleared before the event is appended: wait for both.
	testkit.WaitFor(t, waitTimeout, "device down", func() bool { _, ev := sink.snapshot(); return !c.Status()[0].Up && len(ev) > 0 })
	_, events := sink.snapshot()
	if len(events) != 1 || events[0].Type != "device_down" {
		t.Fatalf("events %+v", events)
	}
	cancel()
	<-done
}

func TestSubscribeNeedsSubscriber(t *testing.T) {
	_, err := New(Options{Sink: &memSink{}, Devices: []Device{{Name: "x", Interval: time.Second, Driver: &scriptDriver{}, Subscribe: true}}})
	if err == nil {
		t.Fatal("a polling driver was accepted for subscribe")
	}
}

// TestSubscribedHeartbeat: a server sends a quiet tag's value once; with
// report_every the collector repeats it on time, stamped with the gateway's
// time, while the device is up and the tag not bad. A tag without
// report_every and a bad tag are not repeated.
func TestSubscribedHeartbeat(t *testing.T) {
	drv := &pushDriver{changes: make(chan []drivers.Change), states: make(chan error)}
	sink := &memSink{}
	c, err := New(Options{Sink: sink, Devices: []Device{{Name: "oven02", Interval: time.Second, Driver: drv, Subscribe: true,
		Tags: []Tag{
			{Name: "setpoint", Class: "process", ReportEvery: 30 * time.Millisecond},
			{Name: "recipe", Class: "equipment"},
			{Name: "broken", Class: "process", ReportEvery: 30 * time.Millisecond},
		}}}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = c.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()

	src := time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC)
	drv.states <- nil
	drv.changes <- []drivers.Change{
		{Index: 0, Sample: drivers.Sample{Value: 180.5, TS: src}},
		{Index: 1, Sample: drivers.Sample{Value: "PCB-4711", TS: src}},
		{Index: 2, Sample: drivers.Sample{Quality: drivers.Bad, Err: errors.New("BadSensorFailure")}},
	}
	count := func(tag string) (n int, last buffer.Reading) {
		msgs, _ := sink.snapshot()
		for _, m := range msgs {
			for _, r := range m.Readings {
				if r.Tag == tag {
					n++
					last = r
				}
			}
		}
		return n, last
	}
	testkit.WaitFor(t, waitTimeout, "three heartbeats of the quiet set point", func() bool { n, _ := count("setpoint"); return n >= 4 })
	_, last := count("setpoint")
	if last.Value != 180.5 || last.Quality != buffer.Good || !last.TS.After(src) {
		t.Fatalf("heartbeat %+v: want the value, good, stamped with the gateway's time", last)
	}
	if n, _ := count("recipe"); n != 1 {
		t.Fatalf("recipe (no report_every) published %d times", n)
	}
	if n, _ := count("broken"); n != 1 {
		t.Fatalf("a bad tag was repeated: %d readings", n)
	}
	// Down: no heartbeat vouches for a device that is gone.
	drv.states <- errors.New("session closed")
	testkit.WaitFor(t, waitTimeout, "device down", func() bool { return !c.Status()[0].Up })
	n, _ := count("setpoint")
	time.Sleep(150 * time.Millisecond) // five report_every periods
	if m, _ := count("setpoint"); m != n {
		t.Fatalf("%d heartbeats while the device was down", m-n)
	}
}
