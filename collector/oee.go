package collector

import (
	"fmt"
	"math"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/linegate/linegate/buffer"
)

// OEE says how a device's OEE is computed (OEE.md): which state tag tells
// run from stop, which counters count the parts, and the ideal cycle.
type OEE struct {
	StateTag string
	// Categories maps a state, by StateKey, to its category; a state not
	// in it counts as unknown, never as run.
	Categories map[string]Category
	// TotalCounter counts every part; GoodCounter the good ones, or
	// RejectsCounter the bad ones (one of the two). Counter tags.
	TotalCounter, GoodCounter, RejectsCounter string
	// IdealCycle is the fastest time per part, in seconds.
	IdealCycle float64
}

// Category is what the time in a state counts as for OEE.
type Category uint8

// The categories. Unknown time (before the gateway's first reading in the
// shift, bad reads, unnamed states) stays in the planned production time:
// nobody knows it was planned, and it is never run.
const (
	OEEUnknown Category = iota
	OEERun
	OEEPlannedStop
	OEEUnplannedStop
)

// StateKey is how OEE matches state names: without case, spaces, "_" or
// "-" ("Execute", "EXECUTE" and "execute" are one state). configs.StateKey
// is the same rule.
func StateKey(s string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(s) {
		if r != ' ' && r != '_' && r != '-' {
			b.WriteRune(r)
		}
	}
	return b.String()
}

// OEEFigures are one shift's OEE and its inputs. A factor is nil when it
// is not defined yet (no run time, no parts).
type OEEFigures struct {
	Shift        string    `json:"shift"`
	ShiftStart   time.Time `json:"shift_start"`
	Final        bool      `json:"final,omitempty"`
	Availability *float64  `json:"availability"`
	Performance  *float64  `json:"performance"`
	Quality      *float64  `json:"quality"`
	OEE          *float64  `json:"oee"`
	// Uncertain says why the figures may be wrong ("" when they are not).
	Uncertain      string  `json:"uncertain,omitempty"`
	RunS           float64 `json:"run_s"`
	PlannedStopS   float64 `json:"planned_stop_s"`
	UnplannedStopS float64 `json:"unplanned_stop_s"`
	UnknownS       float64 `json:"unknown_s"`
	Total          uint64  `json:"total_count"`
	Good           uint64  `json:"good_count"`

	whyA, whyP, whyQ string // why each factor may be wrong
}

// OEEStatus is a device's OEE for the status page: the current shift and
// the last closed ones, oldest first.
type OEEStatus struct {
	Device  string       `json:"device"`
	Current OEEFigures   `json:"current"`
	Last    []OEEFigures `json:"last"`
}

// oeeHistory is how many closed shifts the status keeps.
const oeeHistory = 8

// oeeCalc accounts one device's OEE inputs per shift: the time in each
// category from the state tag's readings, the parts from the counters'
// deltas (so rollovers and resets count as for the counter readings, and
// no delta spans a bad read). It is owned by the device's goroutine but
// for snap, which status readers take under mu.
type oeeCalc struct {
	cfg                        OEE
	plan                       *ShiftPlan
	state, total, good, reject int // tag indices, -1 for none

	start, end time.Time
	shift      string
	last       time.Time // accounted up to here
	cat        Category  // held since last
	secs       [4]time.Duration
	counts     [3]uint64 // total, good, rejects
	seen       [3]bool   // the counter was read before (in this run)
	gap        string    // why a count may be missing in this shift
	changed    bool      // publish at the next flush
	lastPub    time.Time
	out        []buffer.Reading // closed shifts' finals, for the next flush

	mu   sync.Mutex // guards snap
	snap OEEStatus
}

func newOEECalc(d *Device, tags []tagDesc) (*oeeCalc, error) {
	o := d.OEE
	k := &oeeCalc{cfg: *o, plan: d.Shifts, state: -1, total: -1, good: -1, reject: -1}
	if k.plan == nil {
		k.plan = DailyPlan(time.UTC, time.Minute)
	}
	for i, t := range tags {
		switch t.Name {
		case o.StateTag:
			k.state = i
		case o.TotalCounter:
			k.total = i
		case o.GoodCounter:
			k.good = i
		case o.RejectsCounter:
			k.reject = i
		}
	}
	switch {
	case k.state < 0 || !tags[k.state].isState():
		return nil, fmt.Errorf("oee: no state tag %q", o.StateTag)
	case k.total < 0 || !tags[k.total].Counter:
		return nil, fmt.Errorf("oee: no counter tag %q", o.TotalCounter)
	case (k.good < 0) == (k.reject < 0):
		return nil, fmt.Errorf("oee: one counter tag of good (%q) or rejected (%q) parts is needed", o.GoodCounter, o.RejectsCounter)
	case !(o.IdealCycle > 0) || math.IsInf(o.IdealCycle, 0):
		return nil, fmt.Errorf("oee: ideal cycle %v s", o.IdealCycle)
	}
	k.snap.Device = d.Name
	return k, nil
}

// observe takes a tag's normalized reading: the state tag moves the clock
// and the category, a counter adds its delta to the shift that holds the
// reading.
func (k *oeeCalc) observe(ti int, r *buffer.Reading) {
	j := -1
	switch ti {
	case k.state:
	case k.total:
		j = 0
	case k.good:
		j = 1
	case k.reject:
		j = 2
	default:
		return
	}
	k.advance(r.TS)
	if j < 0 {
		cat := k.category(stateOf(r))
		if cat != k.cat {
			k.changed = true
		}
		k.cat = cat
		return
	}
	delta, ok := deltaOf(r)
	switch {
	case r.Quality == buffer.Bad:
		k.noteGap(fmt.Sprintf("counter %s had bad reads: parts made meanwhile are not counted", r.Tag))
	case !ok && k.seen[j]:
		k.noteGap(fmt.Sprintf("counter %s resumed after a gap: parts made in it are not counted", r.Tag))
	case r.Quality != buffer.Good:
		k.noteGap(fmt.Sprintf("counter %s is %s", r.Tag, r.Quality))
	}
	if ok {
		k.counts[j] += delta
	}
	k.seen[j] = true
}

func (k *oeeCalc) noteGap(why string) {
	if k.gap == "" {
		k.gap = why
	}
}

func (k *oeeCalc) category(state string) Category {
	if state == Unknown {
		return OEEUnknown
	}
	return k.cfg.Categories[StateKey(state)] // absent: OEEUnknown
}

func deltaOf(r *buffer.Reading) (uint64, bool) {
	for _, a := range r.Attrs {
		if a.Key == "delta" {
			d, ok := a.Value.(uint64)
			return d, ok
		}
	}
	return 0, false
}

// advance accounts the time up to ts to the category held, closing every
// shift that ended before ts (its finals wait for the next flush).
func (k *oeeCalc) advance(ts time.Time) {
	if k.last.IsZero() {
		k.begin(ts)
		return
	}
	if ts.Before(k.last) {
		return // a source clock that stepped back: nothing to account
	}
	for i := 0; !ts.Before(k.end); i++ {
		if i == maxCatchUp {
			// The clock jumped: the shifts in between are not known.
			k.begin(ts)
			return
		}
		k.secs[k.cat] += k.end.Sub(k.last)
		f := k.figures(true)
		k.out = append(k.out, f.readings(k.cfg.IdealCycle, k.end)...)
		k.mu.Lock()
		k.snap.Last = append(k.snap.Last, f)
		if n := len(k.snap.Last); n > oeeHistory {
			k.snap.Last = append(k.snap.Last[:0], k.snap.Last[n-oeeHistory:]...)
		}
		k.mu.Unlock()
		k.last = k.end
		k.start, k.end, k.shift = k.plan.shiftAt(k.end)
		k.secs, k.counts, k.gap = [4]time.Duration{}, [3]uint64{}, ""
		k.changed = true
	}
	k.secs[k.cat] += ts.Sub(k.last)
	k.last = ts
}

// begin starts the accounting at ts: the time since the shift start is
// unknown (the gateway was not running, or the clock jumped).
func (k *oeeCalc) begin(ts time.Time) {
	k.start, k.end, k.shift = k.plan.shiftAt(ts)
	k.secs, k.counts, k.gap = [4]time.Duration{}, [3]uint64{}, ""
	k.secs[OEEUnknown] = ts.Sub(k.start)
	k.last, k.cat, k.changed = ts, OEEUnknown, true
}

// flush appends what is due: the finals of the shifts closed since the
// last flush, then the current figures on a change of category, a new
// shift, the first reading, or every plan.every.
func (k *oeeCalc) flush(out []buffer.Reading) []buffer.Reading {
	out = append(out, k.out...)
	clear(k.out)
	k.out = k.out[:0]
	if k.last.IsZero() {
		return out
	}
	f := k.figures(false)
	if k.changed || k.plan.every > 0 && k.last.Sub(k.lastPub) >= k.plan.every {
		out = append(out, f.readings(k.cfg.IdealCycle, k.last)...)
		k.changed, k.lastPub = false, k.last
	}
	k.mu.Lock()
	k.snap.Current = f
	k.mu.Unlock()
	return out
}

func (k *oeeCalc) status() OEEStatus {
	k.mu.Lock()
	defer k.mu.Unlock()
	s := k.snap
	s.Last = append([]OEEFigures(nil), s.Last...)
	return s
}

// figures computes the factors from the inputs as published (seconds to
// the millisecond), so that the MES recomputing them gets the same:
//
//	planned production time = run + unplanned stop + unknown
//	availability = run / planned production time
//	performance  = ideal cycle × total / run
//	quality      = good / total
//	OEE          = availability × performance × quality
func (k *oeeCalc) figures(final bool) OEEFigures {
	f := OEEFigures{Shift: k.shift, ShiftStart: k.start, Final: final,
		RunS: seconds(k.secs[OEERun]), PlannedStopS: seconds(k.secs[OEEPlannedStop]),
		UnplannedStopS: seconds(k.secs[OEEUnplannedStop]), UnknownS: seconds(k.secs[OEEUnknown]),
		Total: k.counts[0], Good: k.counts[1]}
	var whyA, whyP, whyQ []string
	if k.reject >= 0 {
		f.Good = 0
		if k.counts[2] <= k.counts[0] {
			f.Good = k.counts[0] - k.counts[2]
		} else {
			whyQ = append(whyQ, "more rejects than parts")
		}
	} else if f.Good > f.Total {
		whyQ = append(whyQ, "more good parts than parts")
	}
	ppt := f.RunS + f.UnplannedStopS + f.UnknownS
	if ppt > 0 {
		f.Availability = ptr(f.RunS / ppt)
	}
	if f.RunS > 0 {
		f.Performance = ptr(k.cfg.IdealCycle * float64(f.Total) / f.RunS)
		if *f.Performance > 1 {
			whyP = append(whyP, "performance above 1: is the ideal cycle too long?")
		}
	}
	if f.Total > 0 {
		f.Quality = ptr(float64(f.Good) / float64(f.Total))
	}
	if f.Availability != nil && f.Performance != nil && f.Quality != nil {
		f.OEE = ptr(*f.Availability * *f.Performance * *f.Quality)
	}
	if f.UnknownS > 0 {
		// Parts made in unknown time count while their run time does not.
		u := fmt.Sprintf("%g s of the shift in no known state", f.UnknownS)
		whyA, whyP = append(whyA, u), append(whyP, u)
	}
	if k.gap != "" {
		whyP, whyQ = append(whyP, k.gap), append(whyQ, k.gap)
	}
	f.whyA, f.whyP, f.whyQ = strings.Join(whyA, "; "), strings.Join(whyP, "; "), strings.Join(whyQ, "; ")
	var all []string
	for _, w := range [][]string{whyA, whyP, whyQ} {
		for _, x := range w {
			if !slices.Contains(all, x) {
				all = append(all, x)
			}
		}
	}
	f.Uncertain = strings.Join(all, "; ")
	return f
}

func ptr(v float64) *float64 { return &v }

// readings are the figures as the four readings of class time, stamped ts:
// oee_availability, oee_performance, oee_quality and oee, which carries the
// inputs. A factor not defined yet is null, uncertain, with the reason; the
// others are uncertain when the inputs may be incomplete.
func (f OEEFigures) readings(ideal float64, ts time.Time) []buffer.Reading {
	attrs := func(inputs bool) []buffer.Attr {
		a := []buffer.Attr{{Key: "shift", Value: f.Shift}, {Key: "shift_start", Value: formatTime(f.ShiftStart)}}
		if inputs {
			a = append(a,
				buffer.Attr{Key: "run_s", Value: f.RunS},
				buffer.Attr{Key: "planned_stop_s", Value: f.PlannedStopS},
				buffer.Attr{Key: "unplanned_stop_s", Value: f.UnplannedStopS},
				buffer.Attr{Key: "unknown_s", Value: f.UnknownS},
				buffer.Attr{Key: "total_count", Value: f.Total},
				buffer.Attr{Key: "good_count", Value: f.Good},
				buffer.Attr{Key: "ideal_cycle_s", Value: ideal})
		}
		if f.Final {
			a = append(a, buffer.Attr{Key: "final", Value: true})
		}
		return a
	}
	one := func(tag string, v *float64, undefined, why string, inputs bool) buffer.Reading {
		r := buffer.Reading{Tag: tag, Quality: buffer.Good, TS: ts.UTC(), Attrs: attrs(inputs)}
		switch {
		case v == nil:
			r.Value, r.Quality, r.Error = nil, buffer.Uncertain, undefined
		case why != "":
			r.Value, r.Quality, r.Error = *v, buffer.Uncertain, why
		default:
			r.Value = *v
		}
		return r
	}
	return []buffer.Reading{
		one("oee_availability", f.Availability, "no planned production time in the shift yet", f.whyA, false),
		one("oee_performance", f.Performance, "no run time in the shift yet", f.whyP, false),
		one("oee_quality", f.Quality, "no parts in the shift yet", f.whyQ, false),
		one("oee", f.OEE, "a factor is not defined yet", f.Uncertain, true),
	}
}

// OEE returns the OEE of every device that computes it: the current shift
// and the last closed ones.
func (c *Collector) OEE() []OEEStatus {
	var out []OEEStatus
	for _, d := range c.snapshot() {
		if d.oee != nil {
			out = append(out, d.oee.status())
		}
	}
	return out
}
