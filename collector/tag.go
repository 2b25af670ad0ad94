// Package collector polls every device on its own schedule, normalizes the
// raw samples of its drivers into readings and appends them, one Message per
// equipment and class per cycle, to the buffer.
package collector

import (
	"math"
	"time"
)

// Tag says how to normalize one raw value.
type Tag struct {
	Name  string
	Class string // process | equipment | time
	Unit  string

	// Scale and Offset: value*Scale + Offset. Scale 0 means 1.
	Scale, Offset float64
	// Float32 rounds a value that came from a 32-bit float to the shortest
	// decimal that float32 holds, so 23.4 is published as 23.4 and not as
	// 23.399999618530273.
	Float32 bool

	// Deadband suppresses a numeric reading that moved less than this since
	// the last one reported, until ReportEvery has passed (the heartbeat
	// that tells the MES the tag is alive). Zero reports every cycle.
	Deadband    float64
	ReportEvery time.Duration

	// States maps integer codes to names (equipment states).
	States map[int64]string

	// Counter publishes the value with its delta since the last reading;
	// CounterBits (16, 32 or 64) is the width at which the PLC counter
	// rolls over.
	Counter     bool
	CounterBits int

	// ToSeconds, when not zero, converts a duration to seconds (ms: 0.001);
	// the reading is then published with unit "s".
	ToSeconds float64

	// Map, when set, maps the raw value linearly from RawLo..RawHi to
	// Lo..Hi instead of Scale and Offset (an S7 analog input: 0..27648 to
	// 0..100 %). Values outside the raw range are extrapolated: S7
	// overrange is still a measurement; Limits decide what is plausible.
	Map *LinearMap
	// Limits, when set, mark a value outside [Limits[0], Limits[1]] (after
	// mapping or scaling) uncertain with the reason: a sensor fault, a
	// broken wire. The value is still published.
	Limits *[2]float64
	// DeadbandPercent is a deadband in percent of the span of Map's Lo..Hi,
	// or of Limits when there is no Map (the OPC UA PercentDeadband). With
	// Deadband set too, the larger of the two applies.
	DeadbandPercent float64

	// State marks an equipment state tag whose string value is the state
	// itself (an OPC UA string or LocalizedText). States and StateBits imply
	// it.
	State bool
	// StateBits derive the state from a bit word: the first listed bit
	// that is set wins (fault before running), DefaultState when none is.
	StateBits    []StateBit
	DefaultState string

	// Alarms name bits of an integer word; each rising bit is an
	// alarm_active event, each falling one an alarm_cleared event.
	Alarms []Alarm

	// Timestamp decodes the value as a point in time, published as an
	// RFC 3339 UTC string: unix_s, unix_ms, s7_dt or opcua.
	Timestamp string
	// Location is the zone of a clock without one (s7_dt); nil is UTC.
	Location *time.Location

	// StaleAfter marks a reading uncertain when its source timestamp is
	// older than this at the gateway's read time. Zero never does.
	StaleAfter time.Duration
}

// LinearMap is a two-point linear mapping.
type LinearMap struct {
	RawLo, RawHi, Lo, Hi float64
}

// StateBit names the state that one set bit means.
type StateBit struct {
	Bit   int
	State string
}

// Alarm is one alarm bit and its text.
type Alarm struct {
	Bit  int
	Text string
}

// Timestamp encodings (Tag.Timestamp).
const (
	UnixSeconds = "unix_s"
	UnixMillis  = "unix_ms"
	S7DT        = "s7_dt" // S7 DATE_AND_TIME, 8 BCD bytes in a uint64
	OPCUATime   = "opcua" // RFC 3339 string from the OPC UA driver
)

// isState says whether the tag is an equipment state.
func (t *Tag) isState() bool {
	return t.State || len(t.States) > 0 || len(t.StateBits) > 0
}

// unit is the unit the tag's readings carry.
func (t *Tag) unit() string {
	switch {
	case t.ToSeconds != 0:
		return "s"
	case t.Timestamp != "":
		return "" // a point in time has no unit
	}
	return t.Unit
}

// deadband is the effective absolute deadband.
func (t *Tag) deadband() float64 {
	db := t.Deadband
	if t.DeadbandPercent > 0 {
		var span float64
		switch {
		case t.Map != nil:
			span = t.Map.Hi - t.Map.Lo
		case t.Limits != nil:
			span = t.Limits[1] - t.Limits[0]
		}
		db = max(db, math.Abs(span)*t.DeadbandPercent/100)
	}
	return db
}

// mapped applies Map: multiplying before dividing keeps 13824 of 0..27648
// at exactly 50 of 0..100.
func (m *LinearMap) mapped(v float64) float64 {
	return (v-m.RawLo)*(m.Hi-m.Lo)/(m.RawHi-m.RawLo) + m.Lo
}

// scaled applies Map, or Scale and Offset. Dividing by an integer reciprocal keeps
// 123 * 0.1 at 12.3 instead of 12.300000000000001.
func (t *Tag) scaled(v float64) float64 {
	if t.Map != nil {
		return t.Map.mapped(v)
	}
	if t.Scale != 0 && t.Scale != 1 {
		v = mul(v, t.Scale)
	}
	return v + t.Offset
}

// mul multiplies by f, dividing instead when f is the reciprocal of an
// integer: 5475 / 1000 is 5.475, 5475 * 0.001 is 5.4750000000000005.
func mul(v, f float64) float64 {
	if r := 1 / f; r == math.Trunc(r) && math.Abs(r) < 1e15 {
		return v / r
	}
	return v * f
}

func (t *Tag) transforms() bool {
	return (t.Scale != 0 && t.Scale != 1) || t.Offset != 0 || t.ToSeconds != 0 || t.Map != nil
}
