package collector

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/linegate/linegate/internal/testkit"
)

func TestFirstTickKeepsMonotonicClock(t *testing.T) {
	for _, interval := range []time.Duration{100 * time.Millisecond, time.Second, time.Minute} {
		now := time.Now()
		first := firstTick(now, interval)
		if !strings.Contains(first.String(), "m=+") {
			t.Fatalf("%s: first tick %s has no monotonic reading: a wall-clock step would move the schedule", interval, first)
		}
		wall := first.Round(0)
		if !wall.Equal(wall.Truncate(interval)) || !first.After(now) || first.Sub(now) > interval {
			t.Fatalf("%s: first tick %s is not the next grid point after %s", interval, wall, now)
		}
		next, _ := nextTick(first, first, interval)
		if !strings.Contains(next.String(), "m=+") {
			t.Fatalf("%s: next tick %s lost the monotonic reading", interval, next)
		}
	}
}

// steppedClock is a wall clock an operator or NTP steps: the time the
// collector stamps with, not the one it schedules on.
type steppedClock struct {
	mu     sync.Mutex
	offset time.Duration
}

func (c *steppedClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return time.Now().Round(0).Add(c.offset) // wall only, like a stepped clock
}

func (c *steppedClock) step(d time.Duration) {
	c.mu.Lock()
	c.offset += d
	c.mu.Unlock()
}

// TestPollingSurvivesClockSteps: the wall clock stepped back and forward by
// an hour while polling. Polls go on at their interval (the schedule waited
// out the hour before), and the stamps follow the clock.
func TestPollingSurvivesClockSteps(t *testing.T) {
	clock := &steppedClock{}
	sink := &memSink{}
	c, err := New(Options{Sink: sink, Clock: clock.now, Devices: []Device{
		{Name: "press01", Interval: 20 * time.Millisecond, Driver: &scriptDriver{}, Tags: threeTags()}}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = c.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()

	polls := func() uint64 { return c.Status()[0].Polls }
	testkit.WaitFor(t, waitTimeout, "polls before the step", func() bool { return polls() >= 3 })
	for _, step := range []time.Duration{-time.Hour, 2 * time.Hour} {
		clock.step(step)
		stepped := clock.now()
		n := polls()
		testkit.WaitFor(t, waitTimeout, "polls after a step of "+step.String(), func() bool { return polls() >= n+5 })
		msgs, _ := sink.snapshot()
		last := msgs[len(msgs)-1].Readings[0].TS
		if d := last.Sub(stepped); d < -time.Minute || d > time.Minute {
			t.Fatalf("after a step of %s the readings are stamped %s, want about %s", step, last, stepped)
		}
	}
}
