package collector

import (
	"sync"
	"time"

	"github.com/linegate/linegate/buffer"
)

// HistoryLen is how many points Live keeps per tag: at one point per
// HistoryStep, the last five minutes.
const HistoryLen = 300

// HistoryStep is the finest spacing of history points: a tag polled faster
// keeps the latest reading of each step, so the history always spans
// minutes whatever the poll interval.
const HistoryStep = time.Second

// A tag records history only while someone looks at it: from its first
// History call until watchTTL after the last one, and for at most
// maxWatched tags at once. Keeping five minutes of every tag would cost
// 10 kB per tag, 100 MB for a 10,000-tag gateway that should fit in 40.
const (
	watchTTL   = 10 * time.Minute
	maxWatched = 32
)

// TagLive is the last reading of one tag, as the status page shows it:
// also what the deadband held back, since a technician wants the value
// the PLC has now, not the last one the MES was sent.
type TagLive struct {
	Device  string
	Tag     string
	Class   string
	Unit    string
	Value   any // nil, bool, int64, uint64, float64 or string; nil before the first read
	Quality string
	Error   string
	TS      time.Time // sample time; zero before the first read
}

// Point is one history sample of a numeric tag.
type Point struct {
	TS    time.Time
	Value float64
}

// live holds the history rings of the watched tags. The last readings are
// each device's (device.last), so that a reading costs one uncontended
// lock and no map lookup; a reading goes here only for a watched tag.
type live struct {
	mu sync.Mutex
	// tags holds only the watched tags: at most maxWatched. Keyed by name,
	// so a ring outlives a restart of its device.
	tags map[liveKey]*liveTag
}

type liveKey struct{ device, tag string }

// liveTag is the history of one watched tag.
type liveTag struct {
	ring []Point // HistoryLen slots
	head int     // next slot to write
	n    int     // points held
	// lastWatch is when History last asked for this tag.
	lastWatch time.Time
}

// lastReadings is what the status page shows of one device: the last
// reading of each tag, index-aligned with device.Tags. The device's
// goroutine writes it, Live reads it.
type lastReadings struct {
	mu    sync.Mutex
	slots []lastReading
}

// lastReading is one tag's last reading, as compact as Live allows: the
// unit and class follow from the Tag, the sample time is kept as seconds
// and nanoseconds (the reading's TS is UTC, without a monotonic reading).
type lastReading struct {
	value   any
	err     string
	sec     int64
	nsec    int32
	quality buffer.Quality
	seen    bool
	// watched says the tag has a ring in live.tags: a hint that spares
	// the other tags the global lock.
	watched bool
}

// observe records r, read at now, as the latest reading of d's tag i.
func (c *Collector) observe(d *device, i int, r *buffer.Reading, now time.Time) {
	d.last.mu.Lock()
	s := &d.last.slots[i]
	s.value, s.err, s.quality, s.seen = r.Value, r.Error, r.Quality, true
	s.sec, s.nsec = r.TS.Unix(), int32(r.TS.Nanosecond())
	watched := s.watched
	d.last.mu.Unlock()
	if watched {
		c.live.record(d, i, r, now)
	}
}

// record adds r to the history of d's tag i, or stops recording it
// watchTTL after the last look.
func (l *live) record(d *device, i int, r *buffer.Reading, now time.Time) {
	v, chart := chartValue(*r)
	l.mu.Lock()
	defer l.mu.Unlock()
	k := liveKey{d.Name, d.Tags[i].Name}
	lt := l.tags[k]
	if lt != nil && now.Sub(lt.lastWatch) > watchTTL {
		delete(l.tags, k)
		lt = nil
	}
	if lt == nil {
		// Unwatched (here, or evicted by History): stop asking.
		d.last.setWatched(i, false)
		return
	}
	if chart {
		lt.add(Point{TS: r.TS, Value: v})
	}
}

func (lr *lastReadings) setWatched(i int, on bool) {
	lr.mu.Lock()
	lr.slots[i].watched = on
	lr.mu.Unlock()
}

// watch starts (or extends) recording the history of d's tag i, making
// room by dropping the history of the tag looked at least recently. The
// caller holds l.mu; devs is the current device list.
func (l *live) watch(devs []*device, d *device, i int, now time.Time) *liveTag {
	k := liveKey{d.Name, d.Tags[i].Name}
	lt := l.tags[k]
	if lt == nil {
		if len(l.tags) >= maxWatched {
			var oldest liveKey
			var oldestTag *liveTag
			for ok, o := range l.tags {
				if oldestTag == nil || o.lastWatch.Before(oldestTag.lastWatch) {
					oldest, oldestTag = ok, o
				}
			}
			delete(l.tags, oldest)
			if od, oi := findTag(devs, oldest.device, oldest.tag); od != nil {
				od.last.setWatched(oi, false)
			}
		}
		if l.tags == nil {
			l.tags = map[liveKey]*liveTag{}
		}
		lt = &liveTag{ring: make([]Point, HistoryLen)}
		l.tags[k] = lt
	}
	// Set on every look, not only the first: a device restarted since has
	// the flag only if it was carried over in time.
	d.last.setWatched(i, true)
	lt.lastWatch = now
	return lt
}

// forgetGone drops the history of tags that are no longer configured;
// Replace calls it after swapping the device list.
func (l *live) forgetGone(devs []*device) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for k := range l.tags {
		if d, _ := findTag(devs, k.device, k.tag); d == nil {
			delete(l.tags, k)
		}
	}
}

// findTag returns the device named device and the index of its tag, or nil.
func findTag(devs []*device, device, tag string) (*device, int) {
	for _, d := range devs {
		if d.Name != device {
			continue
		}
		for i := range d.Tags {
			if d.Tags[i].Name == tag {
				return d, i
			}
		}
		return nil, 0
	}
	return nil, 0
}

// carryLast gives a restarted device the last readings (and watched
// flags) of the tags its predecessor had, by name, as the status page
// showed them before; from must be stopped and to not started.
func carryLast(from, to *device) {
	idx := make(map[string]int, len(from.Tags))
	for i := range from.Tags {
		idx[from.Tags[i].Name] = i
	}
	from.last.mu.Lock()
	defer from.last.mu.Unlock()
	to.last.mu.Lock()
	defer to.last.mu.Unlock()
	for i := range to.Tags {
		if j, ok := idx[to.Tags[i].Name]; ok {
			to.last.slots[i] = from.last.slots[j]
		}
	}
}

// add appends p, or replaces the last point when both fall in the same
// HistoryStep. A point older than the last one (a clock step back) starts
// the history again rather than drawing a line backwards in time.
func (lt *liveTag) add(p Point) {
	if lt.n > 0 {
		last := &lt.ring[(lt.head+HistoryLen-1)%HistoryLen]
		switch {
		case p.TS.Before(last.TS):
			lt.n, lt.head = 0, 0
		case p.TS.Truncate(HistoryStep).Equal(last.TS.Truncate(HistoryStep)):
			*last = p
			return
		}
	}
	lt.ring[lt.head] = p
	lt.head = (lt.head + 1) % HistoryLen
	lt.n = min(lt.n+1, HistoryLen)
}

func (lt *liveTag) points() []Point {
	out := make([]Point, 0, lt.n)
	for i := lt.n; i > 0; i-- {
		out = append(out, lt.ring[(lt.head+HistoryLen-i)%HistoryLen])
	}
	return out
}

// chartValue is the number a reading draws: numbers as they are, booleans
// as 0 and 1, alarm words as the count of active alarms, states as their
// code. Other strings and bad readings have none.
func chartValue(r buffer.Reading) (float64, bool) {
	if r.Quality == buffer.Bad {
		return 0, false
	}
	if _, ok := r.Value.(string); ok {
		for _, a := range r.Attrs {
			if a.Key == "code" {
				return chartValue(buffer.Reading{Value: a.Value})
			}
		}
		return 0, false
	}
	switch v := r.Value.(type) {
	case float64:
		return v, true
	case int64:
		return float64(v), true
	case uint64:
		return float64(v), true
	case bool:
		if v {
			return 1, true
		}
		return 0, true
	}
	return 0, false
}

// Live returns the latest reading of every tag, devices and tags in
// config order; a tag not read yet has a nil Value and a zero TS.
func (c *Collector) Live() []TagLive {
	devs := c.snapshot()
	n := 0
	for _, d := range devs {
		n += len(d.Tags)
	}
	var out []TagLive
	if n > 0 {
		out = make([]TagLive, 0, n)
	}
	for _, d := range devs {
		d.last.mu.Lock()
		for i := range d.Tags {
			t := &d.Tags[i]
			tl := TagLive{Device: d.Name, Tag: t.Name, Class: t.Class, Unit: t.unit()}
			if s := &d.last.slots[i]; s.seen {
				tl.Value, tl.Quality, tl.Error = s.value, s.quality.String(), s.err
				tl.TS = time.Unix(s.sec, int64(s.nsec)).UTC()
			}
			out = append(out, tl)
		}
		d.last.mu.Unlock()
	}
	return out
}

// History returns the numeric history of one tag, oldest first, and
// keeps recording it for the next watchTTL: the first call for a tag
// starts its history. nil when the tag is unknown or has no points yet.
func (c *Collector) History(device, tag string) []Point {
	c.live.mu.Lock()
	defer c.live.mu.Unlock()
	// The device list is taken under live.mu: Replace swaps it and then
	// drops the rings of removed tags under live.mu, so no ring of a
	// removed tag survives.
	devs := c.snapshot()
	d, i := findTag(devs, device, tag)
	if d == nil {
		return nil
	}
	d.last.mu.Lock()
	seen := d.last.slots[i].seen
	d.last.mu.Unlock()
	if !seen {
		return nil // as before the first reading: nothing to watch yet
	}
	lt := c.live.watch(devs, d, i, c.now())
	if lt.n == 0 {
		return nil
	}
	return lt.points()
}
