package collector

import (
	"fmt"
	"strings"
	"time"

	"github.com/linegate/linegate/buffer"
)

// Unknown is the state of a state tag whose value cannot be named: an
// unknown code, a bad read. Its time counts like any other state's.
const Unknown = "unknown"

// state names the equipment state: from a bit word (StateBits), a code
// (States) or the value itself (an OPC UA string). An unknown code is kept,
// never dropped: value "unknown", quality uncertain, and the raw value in an
// attribute.
func (t *Tag) state(r *buffer.Reading, v any) {
	switch {
	case len(t.StateBits) > 0:
		t.stateFromBits(r, v)
	case len(t.States) > 0:
		t.stateFromCode(r, v)
	default:
		s, ok := v.(string)
		switch {
		case ok && s != "":
			r.Value = s
		case ok:
			r.Value, r.Quality, r.Error = Unknown, buffer.Uncertain, "empty state name"
		default:
			if code, isInt := integer(v); isInt {
				r.Attrs = append(r.Attrs, buffer.Attr{Key: "code", Value: code})
			}
			r.Value, r.Quality, r.Error = Unknown, buffer.Uncertain, fmt.Sprintf("state value %v is not a name (map codes with states)", v)
		}
	}
}

func (t *Tag) stateFromCode(r *buffer.Reading, v any) {
	if s, ok := v.(string); ok {
		// An OPC UA server may publish the enumeration's text: accept a
		// configured name, in any case, and publish it as configured.
		for code, name := range t.States {
			if strings.EqualFold(name, strings.TrimSpace(s)) {
				r.Attrs = append(r.Attrs, buffer.Attr{Key: "code", Value: code})
				r.Value = name
				return
			}
		}
		r.Value, r.Quality, r.Error = Unknown, buffer.Uncertain, fmt.Sprintf("unknown state %q", s)
		return
	}
	code, ok := integer(v)
	if !ok {
		nullify(r, fmt.Sprintf("state code %v is not an integer", v))
		return
	}
	r.Attrs = append(r.Attrs, buffer.Attr{Key: "code", Value: code})
	if name, ok := t.States[code]; ok {
		r.Value = name
		return
	}
	r.Value, r.Quality, r.Error = Unknown, buffer.Uncertain, fmt.Sprintf("unknown state code %d", code)
}

func (t *Tag) stateFromBits(r *buffer.Reading, v any) {
	w, ok := word(v)
	if !ok {
		nullify(r, fmt.Sprintf("state word %v is not an integer", v))
		return
	}
	r.Attrs = append(r.Attrs, buffer.Attr{Key: "bits", Value: rawWord(v, w)})
	for _, b := range t.StateBits {
		if b.Bit >= 0 && b.Bit < 64 && w&(1<<b.Bit) != 0 {
			r.Value = b.State
			return
		}
	}
	if t.DefaultState != "" {
		r.Value = t.DefaultState
		return
	}
	r.Value, r.Quality, r.Error = Unknown, buffer.Uncertain, fmt.Sprintf("no state bit set in 0x%04X", w)
}

// stateOf is the state a reading stands for; a bad or null one is Unknown.
func stateOf(r *buffer.Reading) string {
	if s, ok := r.Value.(string); ok && r.Quality != buffer.Bad {
		return s
	}
	return Unknown
}

// trackState adds "previous" and "previous_duration_s" to the first reading
// of a new state, so that the MES gets the transition and the length of the
// state that ended in one message, without keeping history itself. Time is
// the readings' sample time.
func (t *Tag) trackState(r *buffer.Reading, st *tagState) {
	x := st.ext()
	name := stateOf(r)
	if !x.stateKnown {
		x.stateKnown, x.stateName, x.stateSince = true, name, r.TS
		return
	}
	if name == x.stateName {
		return
	}
	r.Attrs = append(r.Attrs,
		buffer.Attr{Key: "previous", Value: x.stateName},
		buffer.Attr{Key: "previous_duration_s", Value: seconds(r.TS.Sub(x.stateSince))})
	x.stateName, x.stateSince = name, r.TS
}

// seconds is d in seconds, rounded to milliseconds (never negative: a
// source clock that stepped back yields 0).
func seconds(d time.Duration) float64 {
	if d < 0 {
		return 0
	}
	return float64(d.Round(time.Millisecond)/time.Millisecond) / 1000
}

// alarms publishes the number of active alarms, with the bit word and the
// active texts as attributes, and queues an alarm_active or alarm_cleared
// event for each edge since the last good read. On the first read every
// active alarm is announced: the MES cannot know what was active before the
// gateway started. A read error changes nothing: the alarms stay as last
// known until a good read says otherwise.
func (t *Tag) alarms(r *buffer.Reading, v any, st *tagState) {
	w, ok := word(v)
	if !ok {
		nullify(r, fmt.Sprintf("alarm word %v is not an integer", v))
		return
	}
	x := st.ext()
	if len(x.alarmSince) != len(t.Alarms) {
		x.alarmSince = make([]time.Time, len(t.Alarms))
	}
	var active []string
	for i, a := range t.Alarms {
		on := a.Bit >= 0 && a.Bit < 64 && w&(1<<a.Bit) != 0
		was := x.alarmKnown && x.alarmWord&(1<<a.Bit) != 0
		if on {
			active = append(active, a.Text)
		}
		switch {
		case on && !was:
			x.alarmSince[i] = r.TS
			x.events = append(x.events, alarmEvent("alarm_active", r, a))
		case !on && was:
			e := alarmEvent("alarm_cleared", r, a)
			e.Attrs = append(e.Attrs, buffer.Attr{Key: "duration_s", Value: seconds(r.TS.Sub(x.alarmSince[i]))})
			x.events = append(x.events, e)
		}
	}
	x.alarmKnown, x.alarmWord = true, w
	r.Value = int64(len(active))
	r.Attrs = append(r.Attrs, buffer.Attr{Key: "bits", Value: rawWord(v, w)}, buffer.Attr{Key: "active", Value: strings.Join(active, "; ")})
}

func alarmEvent(typ string, r *buffer.Reading, a Alarm) buffer.Event {
	return buffer.Event{Type: typ, TS: r.TS, Attrs: []buffer.Attr{
		{Key: "tag", Value: r.Tag}, {Key: "bit", Value: int64(a.Bit)}, {Key: "text", Value: a.Text}}}
}

// rawWord is the bit word as the driver gave it (an int16 status word stays
// negative, as the PLC shows it), for the "bits" attribute.
func rawWord(v any, w uint64) any {
	switch v.(type) {
	case int64, uint64:
		return v
	}
	return int64(w)
}
