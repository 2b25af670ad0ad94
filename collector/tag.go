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
}

// scaled applies Scale and Offset. Dividing by an integer reciprocal keeps
// 123 * 0.1 at 12.3 instead of 12.300000000000001.
func (t *Tag) scaled(v float64) float64 {
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
	return (t.Scale != 0 && t.Scale != 1) || t.Offset != 0 || t.ToSeconds != 0
}
