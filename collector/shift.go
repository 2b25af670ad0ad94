package collector

import (
	"fmt"
	"slices"
	"time"

	"github.com/linegate/linegate/buffer"
)

// ShiftPlan says when the periods of the derived state times start: at each
// shift start, in the plant's time zone. Every device with a plan publishes,
// for each of its state tags, the seconds spent in each state since the
// current shift began: the availability input of OEE.
type ShiftPlan struct {
	starts []clock // sorted
	loc    *time.Location
	// every is how often the running totals are published when the state
	// does not change; 0 publishes them only on changes and shift ends.
	every time.Duration
}

type clock struct{ h, m int }

func (c clock) String() string { return fmt.Sprintf("%02d:%02d", c.h, c.m) }

// NewShiftPlan parses shift starts ("06:00", "14:00", "22:00") in loc (nil
// is UTC). every is the heartbeat of the totals.
func NewShiftPlan(starts []string, loc *time.Location, every time.Duration) (*ShiftPlan, error) {
	if len(starts) == 0 {
		return nil, fmt.Errorf("shifts: at least one start time (HH:MM) is needed")
	}
	if loc == nil {
		loc = time.UTC
	}
	p := &ShiftPlan{loc: loc, every: every}
	for _, s := range starts {
		t, err := time.Parse("15:04", s)
		if err != nil || len(s) != 5 {
			return nil, fmt.Errorf("shifts: %q is not HH:MM", s)
		}
		c := clock{t.Hour(), t.Minute()}
		if slices.Contains(p.starts, c) {
			return nil, fmt.Errorf("shifts: %s given twice", s)
		}
		p.starts = append(p.starts, c)
	}
	slices.SortFunc(p.starts, func(a, b clock) int { return (a.h*60 + a.m) - (b.h*60 + b.m) })
	return p, nil
}

// DailyPlan is the plan of a device without shifts: one period per
// calendar day in loc (nil is UTC), midnight to midnight, so 23 or 25 hours
// on a DST change day. every is the heartbeat of the totals.
func DailyPlan(loc *time.Location, every time.Duration) *ShiftPlan {
	p, _ := NewShiftPlan([]string{"00:00"}, loc, every) // a valid start: no error
	return p
}

// shiftAt returns the shift that holds t: its start, its end (the next
// start) and its name (the start's wall time). Starts are wall-clock times
// of each day, so a shift across a DST change is an hour shorter or longer,
// as it is for the people working it.
func (p *ShiftPlan) shiftAt(t time.Time) (start, end time.Time, name string) {
	lt := t.In(p.loc)
	y, mo, d := lt.Date()
	for day := -1; day <= 1; day++ {
		for _, c := range p.starts {
			b := time.Date(y, mo, d+day, c.h, c.m, 0, 0, p.loc)
			if !b.After(t) && (start.IsZero() || b.After(start)) {
				start, name = b, c.String()
			}
			if b.After(t) && (end.IsZero() || b.Before(end)) {
				end = b
			}
		}
	}
	return start.UTC(), end.UTC(), name
}

// stateTimes accounts the time of one state tag per state within the
// current shift. The time from the shift start to the first reading (the
// gateway was not running) and the time of bad reads count as "unknown",
// so the states always add up to the time since the shift began.
type stateTimes struct {
	prefix     string // "<tag>_time_"
	start, end time.Time
	shift      string
	last       time.Time // time of the last observation
	state      string    // state held since last
	acc        map[string]time.Duration
	order      []string // publication order: configured states, others as seen, unknown
	lastPub    time.Time
}

func newStateTimes(t *Tag) *stateTimes {
	st := &stateTimes{prefix: t.Name + "_time_", acc: map[string]time.Duration{}}
	switch {
	case len(t.StateBits) > 0:
		for _, b := range t.StateBits {
			st.add(b.State)
		}
		st.add(t.DefaultState)
	case len(t.States) > 0:
		codes := make([]int64, 0, len(t.States))
		for c := range t.States {
			codes = append(codes, c)
		}
		slices.Sort(codes)
		for _, c := range codes {
			st.add(t.States[c])
		}
	}
	st.add(Unknown)
	return st
}

// add puts a state into the publication order, before "unknown".
func (s *stateTimes) add(name string) {
	if name == "" || slices.Contains(s.order, name) {
		return
	}
	if n := len(s.order); n > 0 && s.order[n-1] == Unknown {
		s.order = slices.Insert(s.order, n-1, name)
		return
	}
	s.order = append(s.order, name)
}

// maxStates bounds the states one tag's times are kept for.
const maxStates = 32

// maxCatchUp bounds how many shift ends one observation may close: after a
// longer gap (the clock jumped) the plan restarts at the current shift.
const maxCatchUp = 32

// observe accounts the time since the last observation to the state held
// then, and returns the readings to publish: the final totals of every shift
// that ended in between (stamped at its end, "final": true), and the current
// totals when the state changed, on the first observation, or when every
// has passed since they were last published.
func (s *stateTimes) observe(p *ShiftPlan, state string, ts time.Time) []buffer.Reading {
	if len(s.order) >= maxStates && !slices.Contains(s.order, state) {
		state = Unknown // a free-text "state" must not grow the message without end
	}
	s.add(state)
	if s.last.IsZero() {
		s.start, s.end, s.shift = p.shiftAt(ts)
		s.acc[Unknown] += ts.Sub(s.start)
		s.last, s.state, s.lastPub = ts, state, ts
		return s.readings(ts, false)
	}
	if ts.Before(s.last) {
		// A source clock that stepped back: nothing to account.
		s.state = state
		return nil
	}
	var out []buffer.Reading
	for i := 0; !ts.Before(s.end); i++ {
		if i == maxCatchUp {
			s.start, s.end, s.shift = p.shiftAt(ts)
			clear(s.acc)
			s.acc[Unknown] = ts.Sub(s.start)
			s.last = ts
			break
		}
		s.acc[s.state] += s.end.Sub(s.last)
		out = append(out, s.readings(s.end, true)...)
		s.last = s.end
		s.start, s.end, s.shift = p.shiftAt(s.end)
		clear(s.acc)
	}
	s.acc[s.state] += ts.Sub(s.last)
	changed := state != s.state
	s.last, s.state = ts, state
	if changed || len(out) > 0 || p.every > 0 && ts.Sub(s.lastPub) >= p.every {
		s.lastPub = ts
		out = append(out, s.readings(ts, false)...)
	}
	return out
}

func (s *stateTimes) readings(ts time.Time, final bool) []buffer.Reading {
	out := make([]buffer.Reading, 0, len(s.order))
	for _, name := range s.order {
		attrs := []buffer.Attr{{Key: "shift", Value: s.shift}, {Key: "shift_start", Value: formatTime(s.start)}}
		if final {
			attrs = append(attrs, buffer.Attr{Key: "final", Value: true})
		}
		out = append(out, buffer.Reading{Tag: s.prefix + name, Value: seconds(s.acc[name]), Unit: "s", Quality: buffer.Good, TS: ts, Attrs: attrs})
	}
	return out
}
