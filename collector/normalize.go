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
// owned by the device's goroutine.
type tagState struct {
	reported     bool
	lastValue    any
	lastNum      float64
	lastQuality  buffer.Quality
	lastError    string
	lastReportAt time.Time

	counterValid bool
	counterPrev  uint64
}

// normalize turns one raw sample into a reading. ok is false when the
// deadband suppresses it.
func (t *Tag) normalize(s drivers.Sample, st *tagState, now time.Time) (r buffer.Reading, ok bool) {
	r = buffer.Reading{Tag: t.Name, Unit: t.Unit, TS: s.TS}
	if r.TS.IsZero() {
		r.TS = now
	}
	r.TS = r.TS.UTC()
	if t.ToSeconds != 0 {
		r.Unit = "s"
	}
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
	if r.Quality == buffer.Bad {
		st.counterValid = false // a gap: the next delta would span it
		return t.report(r, st, now, math.NaN())
	}

	num, isNum := number(s.Value)
	switch {
	case len(t.States) > 0:
		t.state(&r, s.Value)
	case t.Counter:
		t.counter(&r, s.Value, st)
	case isNum:
		if math.IsNaN(num) || math.IsInf(num, 0) {
			// JSON has no NaN: publish null and say why.
			r.Quality, r.Error = buffer.Uncertain, "value is "+strconv.FormatFloat(num, 'g', -1, 64)
			return t.report(r, st, now, math.NaN())
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
		} else if _, isFloat := s.Value.(float64); isFloat {
			r.Value = num
		} else {
			r.Value = s.Value // integers stay exact
		}
		return t.report(r, st, now, num)
	default:
		r.Value = s.Value
	}
	return t.report(r, st, now, math.NaN())
}

// report applies the deadband and remembers what was reported. A change of
// quality or error is always reported; a numeric value within the deadband
// of the last reported one waits for the ReportEvery heartbeat.
func (t *Tag) report(r buffer.Reading, st *tagState, now time.Time, num float64) (buffer.Reading, bool) {
	if t.Deadband > 0 && st.reported && r.Quality == st.lastQuality && r.Error == st.lastError &&
		(t.ReportEvery <= 0 || now.Sub(st.lastReportAt) < t.ReportEvery) {
		same := false
		switch {
		case !math.IsNaN(num) && !math.IsNaN(st.lastNum):
			same = math.Abs(num-st.lastNum) < t.Deadband
		case math.IsNaN(num) && math.IsNaN(st.lastNum):
			same = r.Value == st.lastValue
		}
		if same {
			return r, false
		}
	}
	st.reported = true
	st.lastValue, st.lastNum = r.Value, num
	st.lastQuality, st.lastError = r.Quality, r.Error
	st.lastReportAt = now
	return r, true
}

// state maps a code to its name. An unknown code is kept, never dropped:
// value "unknown", quality uncertain, and the code in every case.
func (t *Tag) state(r *buffer.Reading, v any) {
	code, ok := integer(v)
	if !ok {
		r.Value, r.Quality, r.Error = nil, buffer.Uncertain, fmt.Sprintf("state code %v is not an integer", v)
		return
	}
	r.Attrs = append(r.Attrs, buffer.Attr{Key: "code", Value: code})
	if name, ok := t.States[code]; ok {
		r.Value = name
		return
	}
	r.Value, r.Quality, r.Error = "unknown", buffer.Uncertain, fmt.Sprintf("unknown state code %d", code)
}

// counter publishes the value and its delta since the previous good
// reading. The PLC's counter rolls over at its width, or is reset to zero
// by an operator: a rollover counts the wrap, a reset counts from zero, and
// neither ever yields a huge or negative delta.
func (t *Tag) counter(r *buffer.Reading, v any, st *tagState) {
	u, isU := v.(uint64)
	raw, ok := integer(v)
	if !ok && !isU {
		r.Value, r.Quality, r.Error = nil, buffer.Uncertain, fmt.Sprintf("counter value %v is not an integer", v)
		return
	}
	r.Value = v
	bits := t.CounterBits
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
	if st.counterValid {
		r.Attrs = append(r.Attrs, buffer.Attr{Key: "delta", Value: counterDelta(st.counterPrev, cur, mask)})
	}
	st.counterValid, st.counterPrev = true, cur
}

func counterDelta(prev, cur, mask uint64) uint64 {
	if cur >= prev {
		return cur - prev
	}
	// Backwards: a wrap if prev was near the top of the range and cur near
	// the bottom, otherwise a reset.
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
