package collector

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/linegate/linegate/drivers"
)

// writeDriver is a polled device with one value that records the order
// of reads and writes.
type writeDriver struct {
	mu    sync.Mutex
	value any
	log   []string
}

func (w *writeDriver) Read(_ context.Context, out []drivers.Sample) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.log = append(w.log, "read")
	for i := range out {
		out[i] = drivers.Sample{Value: w.value}
	}
	return nil
}

func (w *writeDriver) Write(_ context.Context, index int, v any) (any, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.log = append(w.log, "write")
	w.value = v
	return v, nil
}

func (w *writeDriver) Close() error { return nil }

func (w *writeDriver) reads() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	n := 0
	for _, s := range w.log {
		if s == "read" {
			n++
		}
	}
	return n
}

func TestCommandsRunInOrderBetweenPolls(t *testing.T) {
	drv := &writeDriver{value: int64(0)}
	sink := &memSink{}
	col, err := New(Options{Sink: sink, Devices: []Device{{Name: "press01", Interval: 20 * time.Millisecond, Driver: drv,
		Tags: []Tag{{Name: "setpoint", Class: "process"}}}}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = col.Run(ctx) }()
	defer func() { cancel(); <-done }()
	waitUntil(t, "device up", func() bool { up, _ := col.DeviceUp("press01"); return up })

	var mu sync.Mutex
	var got []any
	finished := make(chan struct{}, 5)
	for i := range 5 {
		err := col.Submit("press01", 0, int64(i+1), time.Now().Add(time.Minute), func(back any, err error) {
			mu.Lock()
			got = append(got, back)
			mu.Unlock()
			if err != nil {
				t.Error(err)
			}
			finished <- struct{}{}
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	for range 5 {
		<-finished
	}
	mu.Lock()
	for i, v := range got {
		if v != int64(i+1) {
			t.Errorf("command %d read back %v: out of order", i, v)
		}
	}
	mu.Unlock()

	// A command that expired in the queue is not written; polls go on.
	err = col.Submit("press01", 0, int64(9), time.Now().Add(-time.Second), func(_ any, err error) {
		var e interface{ Expired() bool }
		if !errors.As(err, &e) {
			t.Errorf("expired command: %v", err)
		}
		finished <- struct{}{}
	})
	if err != nil {
		t.Fatal(err)
	}
	<-finished
	drv.mu.Lock()
	if drv.value != int64(5) {
		t.Errorf("value %v after the expired command, want 5", drv.value)
	}
	drv.mu.Unlock()
	before := drv.reads()
	waitUntil(t, "polls go on", func() bool { return drv.reads() > before+2 })
	if err := col.Submit("nope", 0, 1, time.Now(), nil); err == nil {
		t.Error("unknown device accepted")
	}
	if err := col.Submit("press01", 3, 1, time.Now(), nil); err == nil {
		t.Error("unknown tag index accepted")
	}
}

func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// stuckDriver never finishes a read until ctx ends.
type stuckDriver struct {
	writeDriver
	reading chan struct{} // closed when the first read began
	once    sync.Once
}

func (s *stuckDriver) Read(ctx context.Context, _ []drivers.Sample) error {
	s.once.Do(func() { close(s.reading) })
	<-ctx.Done()
	return ctx.Err()
}

// TestCommandsAnsweredWhenDeviceStops: every queued command gets its
// answer when the device stops, and later ones are refused, so none is
// left without a result.
func TestCommandsAnsweredWhenDeviceStops(t *testing.T) {
	drv := &stuckDriver{reading: make(chan struct{})}
	col, err := New(Options{Sink: &memSink{}, Devices: []Device{{Name: "press01", Interval: 10 * time.Millisecond, Driver: drv,
		Tags: []Tag{{Name: "setpoint", Class: "process"}}}}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = col.Run(ctx) }()
	<-drv.reading // the device goroutine is busy: the commands queue
	answers := make(chan error, 3)
	for range 3 {
		if err := col.Submit("press01", 0, int64(1), time.Now().Add(time.Minute), func(_ any, err error) { answers <- err }); err != nil {
			t.Fatal(err)
		}
	}
	cancel()
	<-done
	for range 3 {
		var r *drivers.RefusedError
		if err := <-answers; !errors.As(err, &r) {
			t.Errorf("queued command answered %v, want refused", err)
		}
	}
	err = col.Submit("press01", 0, int64(1), time.Now().Add(time.Minute), func(any, error) { t.Error("ran after stop") })
	var r *drivers.RefusedError
	if !errors.As(err, &r) {
		t.Errorf("submit after stop: %v", err)
	}
	drv.mu.Lock()
	defer drv.mu.Unlock()
	if len(drv.log) != 0 {
		t.Errorf("driver calls %v", drv.log)
	}
}
