package opcua

import (
	"context"
	"log/slog"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/linegate/linegate/drivers"
	"github.com/linegate/linegate/drivers/sim"
)

func testLogger(t testing.TB) *slog.Logger {
	if os.Getenv("LINEGATE_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.DiscardHandler)
}

func startOven(t testing.TB, opts sim.OvenOptions) *sim.Oven {
	t.Helper()
	o := sim.NewOven(opts)
	if err := o.Start(context.Background()); err != nil {
		t.Fatalf("start oven: %v", err)
	}
	t.Cleanup(o.Stop)
	return o
}

func newDriver(t testing.TB, cfg Config) *Driver {
	t.Helper()
	if cfg.PKIDir == "" {
		cfg.PKIDir = t.TempDir()
	}
	if cfg.Device == "" {
		cfg.Device = "oven01"
	}
	if cfg.Interval == 0 {
		cfg.Interval = 100 * time.Millisecond
	}
	cfg.Logger = testLogger(t)
	d, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { d.Close() })
	return d
}

// recorder collects what Subscribe delivers.
type recorder struct {
	mu      sync.Mutex
	last    map[int]drivers.Sample
	count   int
	states  []error
	changes int
	bad     []drivers.Change // every bad or uncertain change delivered
}

func newRecorder() *recorder { return &recorder{last: map[int]drivers.Sample{}} }

func (r *recorder) deliver(cs []drivers.Change) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.count++
	r.changes += len(cs)
	for _, c := range cs {
		r.last[c.Index] = c.Sample
		if c.Sample.Quality != drivers.Good {
			r.bad = append(r.bad, c)
		}
	}
}

func (r *recorder) state(err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.states = append(r.states, err)
}

func (r *recorder) sample(i int) (drivers.Sample, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	s, ok := r.last[i]
	return s, ok
}

// lastState returns how many times state was called, and its last error.
func (r *recorder) lastState() (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.states) == 0 {
		return 0, nil
	}
	return len(r.states), r.states[len(r.states)-1]
}

// notGood returns the bad and uncertain changes delivered so far.
func (r *recorder) notGood() []drivers.Change {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]drivers.Change(nil), r.bad...)
}

// allStates returns every state reported so far.
func (r *recorder) allStates() []error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]error(nil), r.states...)
}

func (r *recorder) total() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.changes
}

// subscribe runs d.Subscribe until the test ends.
func subscribe(t testing.TB, d *Driver) *recorder {
	t.Helper()
	r := newRecorder()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Subscribe(ctx, r.deliver, r.state) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Subscribe returned %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Error("Subscribe did not return after cancel")
		}
	})
	return r
}
