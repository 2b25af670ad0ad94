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

// live holds the last reading and a short numeric history of every tag.
// The zero value is ready; the collector's goroutines write it and the
// HTTP handlers read it.
type live struct {
	mu      sync.Mutex
	tags    map[liveKey]*liveTag
	watched int // tags with a ring
}

type liveKey struct{ device, tag string }

type liveTag struct {
	last buffer.Reading
	seen bool
	ring []Point // HistoryLen slots while watched, else nil
	head int     // next slot to write
	n    int     // points held
	// lastWatch is when History last asked for this tag.
	lastWatch time.Time
}

// observe records r, read at now, as device's latest reading of its tag.
func (l *live) observe(device string, r buffer.Reading, now time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.tags == nil {
		l.tags = map[liveKey]*liveTag{}
	}
	k := liveKey{device, r.Tag}
	lt := l.tags[k]
	if lt == nil {
		lt = &liveTag{}
		l.tags[k] = lt
	}
	v, chart := chartValue(r)
	// Attrs may share a backing array with the message sent on; the page
	// does not show them.
	r.Attrs = nil
	lt.last, lt.seen = r, true
	if lt.ring != nil && now.Sub(lt.lastWatch) > watchTTL {
		l.unwatch(lt)
	}
	if chart && lt.ring != nil {
		lt.add(Point{TS: r.TS, Value: v})
	}
}

// watch starts (or extends) recording lt's history, making room by
// dropping the history of the tag looked at least recently.
func (l *live) watch(lt *liveTag, now time.Time) {
	lt.lastWatch = now
	if lt.ring != nil {
		return
	}
	if l.watched >= maxWatched {
		var oldest *liveTag
		for _, o := range l.tags {
			if o.ring != nil && (oldest == nil || o.lastWatch.Before(oldest.lastWatch)) {
				oldest = o
			}
		}
		if oldest != nil {
			l.unwatch(oldest)
		}
	}
	lt.ring = make([]Point, HistoryLen)
	l.watched++
}

func (l *live) unwatch(lt *liveTag) {
	lt.ring, lt.head, lt.n = nil, 0, 0
	l.watched--
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
	c.live.mu.Lock()
	defer c.live.mu.Unlock()
	var out []TagLive
	for _, d := range c.snapshot() {
		for _, t := range d.Tags {
			tl := TagLive{Device: d.Name, Tag: t.Name, Class: t.Class, Unit: t.Unit}
			switch {
			case t.ToSeconds != 0:
				tl.Unit = "s" // as normalize reports it
			case t.Timestamp != "":
				tl.Unit = ""
			}
			if lt := c.live.tags[liveKey{d.Name, t.Name}]; lt != nil && lt.seen {
				r := lt.last
				tl.Unit, tl.Value, tl.Quality, tl.Error, tl.TS = r.Unit, r.Value, r.Quality.String(), r.Error, r.TS
			}
			out = append(out, tl)
		}
	}
	return out
}

// History returns the numeric history of one tag, oldest first, and
// keeps recording it for the next watchTTL: the first call for a tag
// starts its history. nil when the tag is unknown or has no points yet.
func (c *Collector) History(device, tag string) []Point {
	c.live.mu.Lock()
	defer c.live.mu.Unlock()
	lt := c.live.tags[liveKey{device, tag}]
	if lt == nil {
		return nil
	}
	c.live.watch(lt, c.now())
	if lt.n == 0 {
		return nil
	}
	return lt.points()
}
