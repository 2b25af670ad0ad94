package collector

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"slices"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/linegate/linegate/internal/testkit"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/linegate/linegate/buffer"
	"github.com/linegate/linegate/drivers"
)

// waitTimeout bounds the waits for conditions that normally hold in
// milliseconds.
const waitTimeout = 10 * time.Second

// scriptDriver returns values from a function; it stands for a PLC in the
// collector's own unit tests (the Modbus driver has its own, against a real
// server).
type scriptDriver struct {
	mu     sync.Mutex
	down   error
	reads  int
	closed int
}

func (d *scriptDriver) Read(ctx context.Context, out []drivers.Sample) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.reads++
	if d.down != nil {
		for i := range out {
			out[i] = drivers.Sample{Quality: drivers.Bad, Err: d.down}
		}
		return d.down
	}
	out[0] = drivers.Sample{Value: 20.0 + float64(d.reads)}
	out[1] = drivers.Sample{Value: int64(1)}
	out[2] = drivers.Sample{Value: int64(4500)}
	return nil
}

func (d *scriptDriver) Close() error {
	d.mu.Lock()
	d.closed++
	d.mu.Unlock()
	return nil
}

func (d *scriptDriver) setDown(err error) {
	d.mu.Lock()
	d.down = err
	d.mu.Unlock()
}

type memSink struct {
	mu     sync.Mutex
	seq    uint64
	msgs   []buffer.Message
	events []buffer.Event
}

func (s *memSink) Append(m buffer.Message) (uint64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.seq++
	m.Seq = s.seq
	m.Readings = slices.Clone(m.Readings) // the collector reuses the slice (Sink)
	s.msgs = append(s.msgs, m)
	return s.seq, nil
}

func (s *memSink) AppendEvent(e buffer.Event) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.events = append(s.events, e)
	return nil
}

func (s *memSink) snapshot() ([]buffer.Message, []buffer.Event) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]buffer.Message(nil), s.msgs...), append([]buffer.Event(nil), s.events...)
}

func TestCollectorGroupsByClassAndTracksDevice(t *testing.T) {
	drv := &scriptDriver{}
	sink := &memSink{}
	reg := prometheus.NewRegistry()
	c, err := New(Options{
		Devices: []Device{{Name: "press01", Interval: 20 * time.Millisecond, Driver: drv, Tags: []Tag{
			{Name: "temperature", Class: "process", Unit: "degC"},
			{Name: "state", Class: "equipment", States: map[int64]string{1: "running"}},
			{Name: "cycle_time", Class: "time", Unit: "ms", ToSeconds: 1e-3},
		}}},
		Sink: sink, Registerer: reg,
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = c.Run(ctx); close(done) }()

	testkit.WaitFor(t, waitTimeout, "three cycles", func() bool { m, _ := sink.snapshot(); return len(m) >= 9 })
	msgs, _ := sink.snapshot()
	for i, m := range msgs[:9] {
		want := classNames[i%3]
		if m.Class != want || m.Equipment != "press01" || len(m.Readings) != 1 {
			t.Fatalf("message %d: %s/%s with %d readings, want class %s", i, m.Equipment, m.Class, len(m.Readings), want)
		}
	}
	if r := msgs[2].Readings[0]; r.Value != 4.5 || r.Unit != "s" {
		t.Fatalf("cycle time reading %+v", r)
	}
	if r := msgs[1].Readings[0]; r.Value != "running" {
		t.Fatalf("state reading %+v", r)
	}

	drv.setDown(errors.New("dial tcp 127.0.0.1:502: connect: connection refused"))
	testkit.WaitFor(t, waitTimeout, "device_down event", func() bool { _, e := sink.snapshot(); return len(e) >= 1 })
	testkit.WaitFor(t, waitTimeout, "status down", func() bool { return !c.Status()[0].Up })
	drv.setDown(nil)
	testkit.WaitFor(t, waitTimeout, "device_up event", func() bool { _, e := sink.snapshot(); return len(e) >= 2 })
	_, events := sink.snapshot()
	if events[0].Type != "device_down" || events[1].Type != "device_up" || len(events) != 2 {
		t.Fatalf("events %+v", events)
	}
	if st := c.Status()[0]; !st.Up || st.LastGoodRead.IsZero() || st.Polls < 4 {
		t.Fatalf("status %+v", st)
	}
	if n := testutil.ToFloat64(c.m.readErrors.WithLabelValues("press01", "refused")); n < 1 {
		t.Fatalf("read errors metric %v", n)
	}

	cancel()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after cancel")
	}
	if drv.closed != 1 {
		t.Fatalf("driver closed %d times", drv.closed)
	}
}

// slowDriver takes longer than the interval: ticks are skipped and counted.
type slowDriver struct{ scriptDriver }

func (d *slowDriver) Read(ctx context.Context, out []drivers.Sample) error {
	select {
	case <-time.After(35 * time.Millisecond):
	case <-ctx.Done():
	}
	return d.scriptDriver.Read(ctx, out)
}

func TestOverrunsCountedNotQueued(t *testing.T) {
	drv := &slowDriver{}
	sink := &memSink{}
	c, err := New(Options{
		Devices: []Device{{Name: "slow", Interval: 10 * time.Millisecond, Driver: drv,
			Tags: []Tag{{Name: "a", Class: "process"}, {Name: "b", Class: "process"}, {Name: "c", Class: "process"}}}},
		Sink: sink,
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { _ = c.Run(ctx) }()
	testkit.WaitFor(t, waitTimeout, "overruns", func() bool { return c.Status()[0].Overruns >= 4 })
	st := c.Status()[0]
	// Each poll overruns; the polls that did run are one message each, never a
	// catch-up burst: polls + overruns account for the ticks.
	msgs, _ := sink.snapshot()
	if uint64(len(msgs)) > st.Polls+1 {
		t.Fatalf("%d messages for %d polls", len(msgs), st.Polls)
	}
}

func TestNewRejects(t *testing.T) {
	drv := &scriptDriver{}
	tests := []struct {
		name string
		opts Options
	}{
		{"no sink", Options{}},
		{"duplicate", Options{Sink: &memSink{}, Devices: []Device{{Name: "a", Interval: time.Second, Driver: drv}, {Name: "a", Interval: time.Second, Driver: drv}}}},
		{"no interval", Options{Sink: &memSink{}, Devices: []Device{{Name: "a", Driver: drv}}}},
		{"no driver", Options{Sink: &memSink{}, Devices: []Device{{Name: "a", Interval: time.Second}}}},
	}
	for _, tt := range tests {
		if _, err := New(tt.opts); err == nil {
			t.Errorf("%s: accepted", tt.name)
		}
	}
}

func TestErrorReason(t *testing.T) {
	tests := []struct {
		err  error
		want string
	}{
		{context.DeadlineExceeded, "timeout"},
		{fmt.Errorf("read holding 0x0000+2: %w", os.ErrDeadlineExceeded), "timeout"},
		{&net.OpError{Op: "dial", Err: syscall.ECONNREFUSED}, "refused"},
		{fmt.Errorf("read: %w", io.EOF), "closed"},
		{errors.New("reconnect in 2s: dial tcp: connection refused"), "backoff"},
		{errors.New("read holding 0x0004+2: modbus exception 2 (illegal data address)"), "exception"},
		{errors.New("something else"), "other"},
	}
	for _, tt := range tests {
		if got := errorReason(tt.err); got != tt.want {
			t.Errorf("errorReason(%v) = %s, want %s", tt.err, got, tt.want)
		}
	}
}
