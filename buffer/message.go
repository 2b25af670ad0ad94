package buffer

import "time"

// Quality of a normalized reading.
type Quality uint8

const (
	Good Quality = iota
	Uncertain
	Bad
)

func (q Quality) String() string {
	switch q {
	case Good:
		return "good"
	case Uncertain:
		return "uncertain"
	default:
		return "bad"
	}
}

// Message is the readings of one equipment and one class from one collection
// cycle: the unit the buffer stores and the uplink publishes.
type Message struct {
	Seq       uint64    // assigned by Queue.Append
	Created   time.Time // when the collector built it (UTC)
	Equipment string
	Class     string // process | equipment | time
	Readings  []Reading
}

// Reading is one normalized tag value.
type Reading struct {
	Tag string
	// Value is nil, bool, int64, uint64, float64 or string.
	Value   any
	Unit    string
	Quality Quality
	Error   string // only when Quality is not Good
	TS      time.Time
	// Attrs are extra fields of the reading in the payload, in order
	// (a counter's "delta", a state's "previous" ...). Values as for Value.
	Attrs []Attr
}

// Attr is one extra named field of a reading or an event.
type Attr struct {
	Key   string
	Value any
}

// Event is something the MES must hear about that is not a reading
// (buffer_overflow, device_down, device_up, config_reload). Events are kept
// in the buffer like messages, so that a loss is never silent even when the
// broker is down, and deleted once the broker acknowledged them.
type Event struct {
	ID    uint64 // assigned by Queue.AppendEvent
	Type  string
	TS    time.Time
	Attrs []Attr
}
