package collector

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/linegate/linegate/internal/testkit"

	"github.com/linegate/linegate/buffer"
	"github.com/linegate/linegate/drivers"
)

func TestLiveHistoryRing(t *testing.T) {
	t0 := time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC)
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	tests := []struct {
		name string
		add  []Point
		want []Point // nil: only check the length
		n    int
	}{
		{name: "one per step", add: []Point{{at(0), 1}, {at(1000), 2}, {at(2000), 3}},
			want: []Point{{at(0), 1}, {at(1000), 2}, {at(2000), 3}}},
		{name: "latest of a step wins", add: []Point{{at(0), 1}, {at(300), 2}, {at(900), 3}, {at(1100), 4}},
			want: []Point{{at(900), 3}, {at(1100), 4}}},
		{name: "clock back starts over", add: []Point{{at(5000), 1}, {at(6000), 2}, {at(1000), 3}},
			want: []Point{{at(1000), 3}}},
		{name: "wraps keeping the newest", add: func() []Point {
			var ps []Point
			for i := range HistoryLen + 50 {
				ps = append(ps, Point{at(i * 1000), float64(i)})
			}
			return ps
		}(), n: HistoryLen},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			lt := liveTag{ring: make([]Point, HistoryLen)}
			for _, p := range tc.add {
				lt.add(p)
			}
			got := lt.points()
			if tc.want == nil {
				if len(got) != tc.n {
					t.Fatalf("%d points, want %d", len(got), tc.n)
				}
				last := tc.add[len(tc.add)-1]
				if got[len(got)-1] != last || got[0] != tc.add[len(tc.add)-HistoryLen] {
					t.Fatalf("ring holds %v .. %v, want %v .. %v", got[0], got[len(got)-1], tc.add[len(tc.add)-HistoryLen], last)
				}
				for i := 1; i < len(got); i++ {
					if !got[i].TS.After(got[i-1].TS) {
						t.Fatalf("point %d at %v not after %v", i, got[i].TS, got[i-1].TS)
					}
				}
				return
			}
			if len(got) != len(tc.want) {
				t.Fatalf("points %v, want %v", got, tc.want)
			}
			for i := range got {
				if !got[i].TS.Equal(tc.want[i].TS) || got[i].Value != tc.want[i].Value {
					t.Fatalf("points %v, want %v", got, tc.want)
				}
			}
		})
	}
}

func TestChartValue(t *testing.T) {
	tests := []struct {
		name string
		r    buffer.Reading
		want float64
		ok   bool
	}{
		{"float", buffer.Reading{Value: 23.5}, 23.5, true},
		{"int", buffer.Reading{Value: int64(-4)}, -4, true},
		{"uint", buffer.Reading{Value: uint64(7)}, 7, true},
		{"true", buffer.Reading{Value: true}, 1, true},
		{"false", buffer.Reading{Value: false}, 0, true},
		{"uncertain counts", buffer.Reading{Value: 1.5, Quality: buffer.Uncertain}, 1.5, true},
		{"state by code", buffer.Reading{Value: "running", Attrs: []buffer.Attr{{Key: "code", Value: int64(1)}}}, 1, true},
		{"plain string", buffer.Reading{Value: "ABC-01"}, 0, false},
		{"null", buffer.Reading{}, 0, false},
		{"bad", buffer.Reading{Value: 3.0, Quality: buffer.Bad}, 0, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := chartValue(tc.r)
			if got != tc.want || ok != tc.ok {
				t.Fatalf("chartValue = %v, %v; want %v, %v", got, ok, tc.want, tc.ok)
			}
		})
	}
}

// TestCollectorLive runs a collector and checks what the status page gets:
// every tag in config order, values the deadband holds back, and a device
// that goes down.
func TestCollectorLive(t *testing.T) {
	drv := &scriptDriver{}
	c, err := New(Options{
		Devices: []Device{{Name: "press01", Interval: 10 * time.Millisecond, Driver: drv, Tags: []Tag{
			// The script adds 1 each read: a deadband of 1000 holds back
			// everything after the first reading.
			{Name: "temperature", Class: "process", Unit: "degC", Deadband: 1000},
			{Name: "state", Class: "equipment", States: map[int64]string{1: "running"}},
			{Name: "cycle_time", Class: "time", Unit: "ms", ToSeconds: 1e-3},
		}}},
		Sink: &memSink{},
	})
	if err != nil {
		t.Fatal(err)
	}
	if got := c.Live(); len(got) != 3 || got[0].Value != nil || !got[0].TS.IsZero() || got[2].Unit != "s" {
		t.Fatalf("before the first read: %+v", got)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = c.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()

	temp := func() float64 { v, _ := c.Live()[0].Value.(float64); return v }
	testkit.WaitFor(t, waitTimeout, "a first reading", func() bool { return temp() > 0 })
	// History records from the first look on.
	c.History("press01", "temperature")
	testkit.WaitFor(t, waitTimeout, "temperature past the deadband", func() bool { return temp() >= 25 })
	live := c.Live()
	want := []struct{ tag, unit, quality string }{{"temperature", "degC", "good"}, {"state", "", "good"}, {"cycle_time", "s", "good"}}
	for i, w := range want {
		g := live[i]
		if g.Device != "press01" || g.Tag != w.tag || g.Unit != w.unit || g.Quality != w.quality || g.TS.IsZero() {
			t.Fatalf("tag %d: %+v, want %+v", i, g, w)
		}
	}
	if live[1].Value != "running" || live[2].Value != 4.5 {
		t.Fatalf("state %v, cycle_time %v", live[1].Value, live[2].Value)
	}
	if h := c.History("press01", "temperature"); len(h) == 0 || h[len(h)-1].Value < 25 {
		t.Fatalf("temperature history %v", h)
	}
	if h := c.History("press01", "nope"); h != nil {
		t.Fatalf("unknown tag history %v", h)
	}

	drv.setDown(errors.New("i/o timeout"))
	testkit.WaitFor(t, waitTimeout, "bad readings", func() bool { return c.Live()[0].Quality == "bad" })
	if g := c.Live()[0]; g.Value != nil || g.Error != "i/o timeout" {
		t.Fatalf("down: %+v", g)
	}
	n := len(c.History("press01", "temperature"))
	if n == 0 {
		t.Fatal("a bad reading emptied the history")
	}
}

func TestLiveWatchBudget(t *testing.T) {
	now := time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC)
	clock := now
	var tags []Tag
	for i := range maxWatched + 5 {
		tags = append(tags, Tag{Name: fmt.Sprint("t", i), Class: "process"})
	}
	c, err := New(Options{Devices: []Device{{Name: "d", Interval: time.Second, Driver: &scriptDriver{}, Tags: tags}},
		Sink: &memSink{}, Clock: func() time.Time { return clock }})
	if err != nil {
		t.Fatal(err)
	}
	d, l := c.devices[0], &c.live
	read := func(tag string, at time.Time) {
		_, i := findTag(c.devices, "d", tag)
		c.emit(d, at, at, 1, func(int) (int, drivers.Sample) { return i, drivers.Sample{Value: 1.0} })
	}
	ring := func(tag string) *liveTag { return l.tags[liveKey{"d", tag}] }
	for i := range maxWatched + 5 {
		read(fmt.Sprint("t", i), now)
	}
	if len(l.tags) != 0 {
		t.Fatalf("%d rings before anyone looked", len(l.tags))
	}
	// Looking at more tags than the budget drops the least recently seen.
	for i := range maxWatched + 5 {
		clock = now.Add(time.Duration(i) * time.Second)
		c.History("d", fmt.Sprint("t", i))
	}
	last := fmt.Sprint("t", maxWatched+4)
	if len(l.tags) != maxWatched || ring("t0") != nil || ring(last) == nil || d.last.slots[0].watched || !d.last.slots[maxWatched+4].watched {
		t.Fatalf("watched %d; t0 ring %v", len(l.tags), ring("t0") != nil)
	}
	read(last, now.Add(time.Minute))
	if ring(last).n != 1 {
		t.Fatal("a watched tag did not record")
	}
	// Unwatched for longer than watchTTL: the ring goes.
	read(last, now.Add(time.Minute+watchTTL+time.Hour))
	if ring(last) != nil || len(l.tags) != maxWatched-1 || d.last.slots[maxWatched+4].watched {
		t.Fatalf("ring kept after watchTTL; watched %d", len(l.tags))
	}
}

// TestLiveAcrossReplace checks what the status page keeps over a reload: a
// kept device its last readings and history, a restarted one those of the
// tags it still has; a removed device or tag leaves nothing behind.
func TestLiveAcrossReplace(t *testing.T) {
	t1 := time.Date(2026, 11, 27, 10, 0, 0, 123456789, time.UTC)
	dev := func(name string, tags ...string) Device {
		d := Device{Name: name, Interval: time.Second, Driver: &scriptDriver{}}
		for _, tag := range tags {
			d.Tags = append(d.Tags, Tag{Name: tag, Class: "process"})
		}
		return d
	}
	keep, restart, remove := dev("keep", "a"), dev("restart", "a", "b"), dev("remove", "a")
	c, err := New(Options{Devices: []Device{keep, restart, remove}, Sink: &memSink{}, Clock: func() time.Time { return t1 }})
	if err != nil {
		t.Fatal(err)
	}
	read := func(d *device, at time.Time) {
		c.emit(d, at, at, len(d.Tags), func(i int) (int, drivers.Sample) { return i, drivers.Sample{Value: float64(i + 1)} })
	}
	for _, d := range c.devices {
		read(d, t1)
	}
	if g := c.Live()[0]; g.Value != 1.0 || g.TS != t1 || g.Quality != "good" {
		t.Fatalf("live %+v, want 1 at %v", g, t1)
	}
	for _, k := range []liveKey{{"keep", "a"}, {"restart", "a"}, {"restart", "b"}, {"remove", "a"}} {
		c.History(k.device, k.tag)
	}
	for _, d := range c.devices {
		read(d, t1.Add(time.Second))
	}

	// restart loses tag b: a new driver and tag list.
	restart2 := dev("restart", "c", "a")
	if _, err := c.Replace([]Device{keep, restart2}); err != nil {
		t.Fatal(err)
	}
	live := c.Live()
	if len(live) != 3 {
		t.Fatalf("live %+v", live)
	}
	for i, w := range []struct {
		device, tag string
		value       any
	}{{"keep", "a", 1.0}, {"restart", "c", nil}, {"restart", "a", 1.0}} {
		if g := live[i]; g.Device != w.device || g.Tag != w.tag || g.Value != w.value {
			t.Fatalf("live %d: %+v, want %s/%s = %v", i, g, w.device, w.tag, w.value)
		}
	}
	for _, k := range []liveKey{{"restart", "b"}, {"remove", "a"}} {
		if h := c.History(k.device, k.tag); h != nil {
			t.Fatalf("%s/%s: history %v after it was removed", k.device, k.tag, h)
		}
	}
	if len(c.live.tags) != 2 {
		t.Fatalf("%d rings, want the 2 of kept tags", len(c.live.tags))
	}
	// The restarted device records on into its tag's history.
	read(c.devices[1], t1.Add(2*time.Second))
	for _, w := range []struct {
		device string
		points int
	}{{"keep", 1}, {"restart", 2}} {
		if h := c.History(w.device, "a"); len(h) != w.points {
			t.Fatalf("%s/a: history %v, want %d points", w.device, h, w.points)
		}
	}
}
