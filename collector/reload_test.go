package collector

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/linegate/linegate/internal/testkit"

	"github.com/linegate/linegate/drivers"
)

// portLog records, across drivers, when each read and close happens, so a
// test can tell that a restarted device's old driver let go of its port
// before the new one used it.
type portLog struct {
	mu  sync.Mutex
	ops []string
}

func (l *portLog) add(op string) {
	l.mu.Lock()
	l.ops = append(l.ops, op)
	l.mu.Unlock()
}

func (l *portLog) index(op string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Index(l.ops, op)
}

// loggedDriver is a scriptDriver that writes its reads and close to a log.
type loggedDriver struct {
	scriptDriver
	id  string
	log *portLog
}

func (d *loggedDriver) Read(ctx context.Context, out []drivers.Sample) error {
	d.log.add("read " + d.id)
	return d.scriptDriver.Read(ctx, out)
}

func (d *loggedDriver) Close() error {
	d.log.add("close " + d.id)
	return d.scriptDriver.Close()
}

func (d *loggedDriver) counts() (reads, closed int) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.reads, d.closed
}

func threeTags() []Tag {
	return []Tag{{Name: "temperature", Class: "process"}, {Name: "state", Class: "equipment"}, {Name: "cycle", Class: "time"}}
}

func TestReloadReplaceAddsRemovesRestarts(t *testing.T) {
	plog := &portLog{}
	drv := func(id string) *loggedDriver { return &loggedDriver{id: id, log: plog} }
	dev := func(name string, d drivers.Driver) Device {
		return Device{Name: name, Interval: 10 * time.Millisecond, Driver: d, Tags: threeTags()}
	}
	a, b1, c := drv("a"), drv("b1"), drv("c")
	sink := &memSink{}
	col, err := New(Options{Devices: []Device{dev("a", a), dev("b", b1), dev("c", c)}, Sink: sink})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = col.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()
	testkit.WaitFor(t, waitTimeout, "every device read", func() bool {
		return plog.index("read a") >= 0 && plog.index("read b1") >= 0 && plog.index("read c") >= 0
	})

	b2, d := drv("b2"), drv("d")
	res, err := col.Replace([]Device{dev("d", d), dev("a", a), dev("b", b2)})
	if err != nil {
		t.Fatal(err)
	}
	want := ReplaceResult{Added: []string{"d"}, Removed: []string{"c"}, Restarted: []string{"b"}}
	if !slices.Equal(res.Added, want.Added) || !slices.Equal(res.Removed, want.Removed) || !slices.Equal(res.Restarted, want.Restarted) {
		t.Fatalf("result %+v, want %+v", res, want)
	}
	testkit.WaitFor(t, waitTimeout, "new drivers read", func() bool {
		r2, _ := b2.counts()
		rd, _ := d.counts()
		return r2 > 0 && rd > 0
	})
	if ci, ri := plog.index("close b1"), plog.index("read b2"); ci < 0 || ci > ri {
		t.Fatalf("old driver of b closed at %d, new one first read at %d: must close first (%v)", ci, ri, plog.ops)
	}
	for _, tc := range []struct {
		name       string
		d          *loggedDriver
		wantClosed int
	}{{"a kept", a, 0}, {"b1 replaced", b1, 1}, {"c removed", c, 1}, {"b2 new", b2, 0}, {"d new", d, 0}} {
		if _, closed := tc.d.counts(); closed != tc.wantClosed {
			t.Errorf("%s: closed %d times, want %d", tc.name, closed, tc.wantClosed)
		}
	}
	var names []string
	for _, s := range col.Status() {
		names = append(names, s.Name)
	}
	if !slices.Equal(names, []string{"d", "a", "b"}) {
		t.Fatalf("status devices %v, want the new order d a b", names)
	}
	// a keeps being polled: it was not restarted.
	ra, _ := a.counts()
	testkit.WaitFor(t, waitTimeout, "a polled on", func() bool { n, _ := a.counts(); return n > ra+2 })
	// c is gone from the live view.
	for _, tl := range col.Live() {
		if tl.Device == "c" {
			t.Fatalf("removed device still live: %+v", tl)
		}
	}

	cancel()
	<-done
	for _, x := range []*loggedDriver{a, b2, d} {
		if _, closed := x.counts(); closed != 1 {
			t.Errorf("%s closed %d times at stop, want 1", x.id, closed)
		}
	}
	if _, err := col.Replace([]Device{dev("a", a)}); !errors.Is(err, ErrStopped) {
		t.Fatalf("Replace after Run: %v, want ErrStopped", err)
	}
}

func TestReloadReplaceRefusesBadListAndChangesNothing(t *testing.T) {
	good := &scriptDriver{}
	base := []Device{{Name: "a", Interval: time.Second, Driver: good, Tags: threeTags()}}
	for _, tc := range []struct {
		name    string
		devices []Device
	}{
		{"duplicate", []Device{{Name: "a", Interval: time.Second, Driver: good}, {Name: "a", Interval: time.Second, Driver: &scriptDriver{}}}},
		{"empty name", []Device{{Interval: time.Second, Driver: good}}},
		{"no interval", []Device{{Name: "b", Driver: &scriptDriver{}}}},
		{"no driver", []Device{{Name: "b", Interval: time.Second}}},
		{"cannot subscribe", []Device{{Name: "b", Interval: time.Second, Driver: &scriptDriver{}, Subscribe: true}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			col, err := New(Options{Devices: base, Sink: &memSink{}})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := col.Replace(tc.devices); err == nil {
				t.Fatal("Replace accepted a bad device list")
			}
			if st := col.Status(); len(st) != 1 || st[0].Name != "a" {
				t.Fatalf("devices changed after a refused Replace: %+v", st)
			}
		})
	}
}

func TestReloadReplaceBeforeRunClosesReplacedDrivers(t *testing.T) {
	old, repl := &scriptDriver{}, &scriptDriver{}
	col, err := New(Options{Devices: []Device{{Name: "a", Interval: 10 * time.Millisecond, Driver: old, Tags: threeTags()}}, Sink: &memSink{}})
	if err != nil {
		t.Fatal(err)
	}
	res, err := col.Replace([]Device{{Name: "a", Interval: 10 * time.Millisecond, Driver: repl, Tags: threeTags()}})
	if err != nil || !slices.Equal(res.Restarted, []string{"a"}) {
		t.Fatalf("Replace: %+v, %v", res, err)
	}
	if old.closed != 1 {
		t.Fatalf("old driver closed %d times, want 1", old.closed)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = col.Run(ctx); close(done) }()
	testkit.WaitFor(t, waitTimeout, "the replacement polled", func() bool { repl.mu.Lock(); defer repl.mu.Unlock(); return repl.reads > 0 })
	cancel()
	<-done
	if old.reads != 0 {
		t.Fatalf("replaced driver read %d times", old.reads)
	}
}
