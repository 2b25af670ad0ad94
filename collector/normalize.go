package collector

import (
	"fmt"
	"math"
	"strconv"
	"time"

	"github.com/linegate/linegate/buffer"
	"github.com/linegate/linegate/drivers"
)

// tagState is what normalization remembers of one tag between cycles. It is
// owned by the device's goroutine. A plain numeric tag needs only the first
// fields; what counters, states and alarms remember is in tagExt, allocated
// the first time such a tag needs it: a gateway has thousands of plain tags
// and few others. The one-byte fields come last, sharing one word.
type tagState struct {
	lastValue any
	lastNum   float64
	lastError string
	// lastReportAt stays a time.Time: its monotonic reading keeps the
	// report_every heartbeat steady when the wall clock is stepped.
	lastReportAt time.Time
	// *tagExt is embedded so that its fields read as the tag's own, but it
	// is nil for a plain tag: the collector reaches it only through ext()
	// or after a nil check.
	*tagExt
	lastQuality buffer.Quality
	reported    bool
}

// tagExt is the state of counter, state and alarm tags.
type tagExt struct {
	// lastAttrs are the last reported reading's: only these tags have any.
	lastAttrs []buffer.Attr

	counterValid bool
	counterPrev  uint64

	// Equipment state: the state held since stateSince.
	stateKnown bool
	stateName  string
	stateSince time.Time
	times      *stateTimes // per shift, when the device has a shift plan

	// Alarms: the last known bit word and when each alarm became active.
	alarmKnown bool
	alarmWord  uint64
	alarmSince []time.Time

	// events found while normalizing (alarm edges), taken by emit.
	events []buffer.Event
}

// ext returns the tag's tagExt, allocating it on first use.
func (st *tagState) ext() *tagExt {
	if st.tagExt == nil {
		st.tagExt = &tagExt{}
	}
	return st.tagExt
}

// lastAttrsOf is the last reported reading's attributes.
func (st *tagState) lastAttrsOf() []buffer.Attr {
	if st.tagExt == nil {
		return nil
	}
	return st.tagExt.lastAttrs
}

// normalize turns one raw sample into a reading. ok is false when the
// deadband or report-by-exception suppresses it; r is still the full
// reading (state times need it).
func (t *Tag) normalize(s drivers.Sample, st *tagState, now time.Time) (r buffer.Reading, ok bool) {
	r = buffer.Reading{Tag: t.Name, Unit: t.unit(), TS: s.TS}
	if r.TS.IsZero() {
		r.TS = now
	}
	r.TS = r.TS.UTC()
	switch s.Quality {
	case drivers.Good:
		r.Quality = buffer.Good
	case drivers.Uncertain:
		r.Quality = buffer.Uncertain
	default:
		r.Quality = buffer.Bad
	}
	if s.Err != nil && r.Quality != buffer.Good {
		r.Error = s.Err.Error()
	}
	if r.Quality != buffer.Bad && t.StaleAfter > 0 && !s.TS.IsZero() && now.Sub(s.TS) > t.StaleAfter {
		degrade(&r, fmt.Sprintf("stale: source timestamp %s is older than stale_after %s", formatTime(s.TS), t.StaleAfter))
		// The reason keeps the source's time; the reading (and the state
		// durations counted from it) take the gateway's.
		r.TS = now.UTC()
	}
	num := math.NaN()
	if r.Quality == buffer.Bad {
		if st.tagExt != nil {
			st.tagExt.counterValid = false // a gap: the next delta would span it
		}
	} else {
		num = t.value(&r, s.Value, s.Bits, st)
	}
	if t.isState() {
		t.trackState(&r, st)
	}
	ok = t.report(&r, st, now, num)
	return r, ok
}

// value sets r.Value from a good or uncertain raw value and returns the
// number the deadband compares (NaN for non-numeric readings). bits is the
// source type's width when the driver knows it (Sample.Bits).
func (t *Tag) value(r *buffer.Reading, v any, bits uint8, st *tagState) float64 {
	switch {
	case t.Timestamp != "":
		t.timestamp(r, v)
		return math.NaN()
	case t.isState():
		t.state(r, v)
		return math.NaN()
	case len(t.Alarms) > 0:
		t.alarms(r, v, st)
		return math.NaN()
	case t.Counter:
		t.counter(r, v, bits, st)
		return math.NaN()
	}
	num, isNum := number(v)
	if !isNum {
		r.Value = v
		if arr, isArr := v.([]any); isArr {
			// JSON has no NaN: such elements go out as null, and the
			// reading says so rather than passing for good.
			if clean, reason := finiteArray(arr); reason != "" {
				r.Value = clean
				degrade(r, reason)
			}
		}
		return math.NaN()
	}
	if math.IsNaN(num) || math.IsInf(num, 0) {
		// JSON has no NaN: publish null and say why.
		nullify(r, "value is "+strconv.FormatFloat(num, 'g', -1, 64))
		return math.NaN()
	}
	if t.Float32 {
		num, _ = strconv.ParseFloat(strconv.FormatFloat(num, 'g', -1, 32), 64)
	}
	if t.transforms() {
		num = t.scaled(num)
		if t.ToSeconds != 0 {
			num = mul(num, t.ToSeconds)
		}
		r.Value = num
	} else if _, isFloat := v.(float64); isFloat {
		r.Value = num
	} else {
		r.Value = v // integers stay exact
	}
	if math.IsNaN(num) || math.IsInf(num, 0) {
		// Scaling overflowed (or a float64 beyond float32's range).
		nullify(r, "value is "+strconv.FormatFloat(num, 'g', -1, 64)+" after scaling")
		return math.NaN()
	}
	// The reason names the limit, not the value (which is published): a
	// reason that changed every cycle would defeat the deadband.
	if l := t.Limits; l != nil && num < l[0] {
		degrade(r, "below low limit "+fmtNum(l[0])+" (sensor fault?)")
	} else if l != nil && num > l[1] {
		degrade(r, "above high limit "+fmtNum(l[1])+" (sensor fault?)")
	}
	return num
}

// degrade makes a good reading uncertain for reason; a reading that is
// already uncertain keeps the first reason.
func degrade(r *buffer.Reading, reason string) {
	if r.Quality == buffer.Good {
		r.Quality, r.Error = buffer.Uncertain, reason
	}
}

// nullify publishes null, uncertain, because the value cannot be
// published; the reason replaces any earlier one, since it explains the
// null.
func nullify(r *buffer.Reading, reason string) {
	r.Value, r.Quality, r.Error = nil, buffer.Uncertain, reason
}

func fmtNum(f float64) string { return strconv.FormatFloat(f, 'g', -1, 64) }

// report applies the deadband or report-by-exception and remembers what
// was reported. A change of quality or error is always reported; so is a
// value that moved by the deadband or more (with no deadband: any change)
// and, every ReportEvery, the unchanged value (the heartbeat that tells the
// MES the tag is alive). Without a deadband and ReportEvery every cycle is
// reported.
func (t *Tag) report(r *buffer.Reading, st *tagState, now time.Time, num float64) bool {
	db := t.deadband()
	if (db > 0 || t.ReportEvery > 0) && st.reported && r.Quality == st.lastQuality && r.Error == st.lastError &&
		(t.ReportEvery <= 0 || now.Sub(st.lastReportAt) < t.ReportEvery) {
		same := false
		switch {
		case !math.IsNaN(num) && !math.IsNaN(st.lastNum):
			same = num == st.lastNum || math.Abs(num-st.lastNum) < db
		case math.IsNaN(num) && math.IsNaN(st.lastNum):
			same = sameValue(r.Value, st.lastValue) && sameAttrs(lasting(r.Attrs), lasting(st.lastAttrsOf()))
		}
		if same {
			return false
		}
	}
	st.reported = true
	st.lastValue, st.lastNum = r.Value, num
	if st.tagExt != nil || len(r.Attrs) > 0 {
		st.ext().lastAttrs = r.Attrs
	}
	st.lastQuality, st.lastError = r.Quality, r.Error
	st.lastReportAt = now
	return true
}

// lasting is the attributes that describe the value; a state's
// transition attributes come with a new value anyway.
func lasting(attrs []buffer.Attr) []buffer.Attr {
	for i, a := range attrs {
		if a.Key == "previous" {
			return attrs[:i] // transition attributes come last
		}
	}
	return attrs
}

// counter publishes the value and its delta since the previous good
// reading. The PLC's counter rolls over at its width, or is reset to zero
// by an operator: a rollover counts the wrap, a reset counts from zero, and
// neither ever yields a huge or negative delta. The width is the source
// type's when the driver reports it (an OPC UA UInt16 node), else the
// tag's CounterBits.
func (t *Tag) counter(r *buffer.Reading, v any, srcBits uint8, st *tagState) {
	u, isU := v.(uint64)
	raw, ok := integer(v)
	if !ok && !isU {
		nullify(r, fmt.Sprintf("counter value %v is not an integer", v))
		return
	}
	r.Value = v
	bits := t.CounterBits
	if srcBits > 0 {
		bits = int(srcBits)
	}
	if bits <= 0 || bits > 64 {
		bits = 64
	}
	mask := uint64(math.MaxUint64)
	if bits < 64 {
		mask = 1<<bits - 1
	}
	var cur uint64
	if isU {
		cur = u & mask
	} else {
		cur = uint64(raw) & mask
	}
	x := st.ext()
	if x.counterValid {
		r.Attrs = append(r.Attrs, buffer.Attr{Key: "delta", Value: counterDelta(x.counterPrev, cur, mask)})
	}
	x.counterValid, x.counterPrev = true, cur
}

// counterDelta is the count from prev to cur. Backwards is a wrap when prev
// was in the top quarter of the range and cur is in the bottom quarter (a
// delta below half the range), otherwise a reset: the count from zero. So a
// delta is never negative and never larger than cur or than half the range.
func counterDelta(prev, cur, mask uint64) uint64 {
	if cur >= prev {
		return cur - prev
	}
	quarter := mask/4 + 1
	if prev >= mask-quarter && cur < quarter {
		return (cur - prev) & mask
	}
	return cur
}

func number(v any) (float64, bool) {
	switch x := v.(type) {
	case float64:
		return x, true
	case int64:
		return float64(x), true
	case uint64:
		return float64(x), true
	}
	return 0, false
}

func integer(v any) (int64, bool) {
	switch x := v.(type) {
	case int64:
		return x, true
	case uint64:
		if x > math.MaxInt64 {
			return 0, false
		}
		return int64(x), true
	case float64:
		if x == math.Trunc(x) && math.Abs(x) < 1<<53 {
			return int64(x), true
		}
	case bool:
		if x {
			return 1, true
		}
		return 0, true
	}
	return 0, false
}

// word reads an integer as a bit word: a negative int16 status word keeps
// its bits.
func word(v any) (uint64, bool) {
	switch x := v.(type) {
	case uint64:
		return x, true
	case int64:
		return uint64(x), true
	case bool:
		if x {
			return 1, true
		}
		return 0, true
	case float64:
		if x == math.Trunc(x) && x >= 0 && x < 1<<53 {
			return uint64(x), true
		}
	}
	return 0, false
}
