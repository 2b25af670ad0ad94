package commands

import (
	"encoding/json"
	"fmt"
	"math"
	"strconv"
)

// Kinds of value a tag takes.
const (
	KindNumber = "number" // a Modbus register of a numeric type
	KindBool   = "bool"   // a coil or a bit
	KindString = "string" // a Modbus string
	KindAny    = "any"    // OPC UA: the node's data type decides (the driver refuses what does not fit)
)

// Device is what the checks know of one device.
type Device struct {
	Name string
	// Enabled: uplink.commands and the device's commands.
	Enabled bool
	// Rate is max_commands_per_s.
	Rate float64
	Tags []Tag
}

// Tag is one tag of a device, writable or not (an unknown tag and a
// read-only one are rejected with different reasons).
type Tag struct {
	Name     string
	Index    int // in the driver's tag order
	Writable bool
	Kind     string
	// Integer: the raw value must be whole (a Modbus integer type);
	// Float32 compares the read-back at float32 precision.
	Integer, Float32 bool
	// Range is write_range, in published units.
	Range *[2]float64
	// The tag's normalization, reversed for the raw value: published =
	// raw*Scale + Offset (Scale 0 = 1), or Map; then × ToSeconds.
	Scale, Offset float64
	Map           *[4]float64 // raw lo, raw hi, lo, hi
	ToSeconds     float64
}

func (t *Tag) transforms() bool {
	return t.Map != nil || (t.Scale != 0 && t.Scale != 1) || t.Offset != 0 || (t.ToSeconds != 0 && t.ToSeconds != 1)
}

// rawValue checks the requested value against the tag's kind and
// write_range and reverses the normalization: the value the driver
// writes. The error is the rejection's reason.
func (t *Tag) rawValue(v any) (any, error) {
	switch x := v.(type) {
	case bool:
		if t.Kind != KindBool && t.Kind != KindAny {
			return nil, fmt.Errorf("tag %s takes a %s, not true/false", t.Name, t.Kind)
		}
		return x, nil
	case string:
		if t.Kind != KindString && t.Kind != KindAny {
			return nil, fmt.Errorf("tag %s takes a %s, not a string", t.Name, t.Kind)
		}
		return x, nil
	case json.Number:
		if t.Kind != KindNumber && t.Kind != KindAny {
			return nil, fmt.Errorf("tag %s takes %s, not a number", t.Name, kindText(t.Kind))
		}
		return t.rawNumber(x)
	}
	return nil, fmt.Errorf("value %v is not a number, true/false or a string", v)
}

func kindText(kind string) string {
	if kind == KindBool {
		return "true/false"
	}
	return "a " + kind
}

func (t *Tag) rawNumber(n json.Number) (any, error) {
	f, err := strconv.ParseFloat(string(n), 64)
	if err != nil || math.IsInf(f, 0) {
		return nil, fmt.Errorf("value %s is not a finite number", n)
	}
	if r := t.Range; r != nil && (f < r[0] || f > r[1]) {
		return nil, fmt.Errorf("value %s is outside write_range [%v, %v]", n, r[0], r[1])
	}
	if !t.transforms() {
		// Exact: 18446744073709551615 must not pass through a float64.
		if i, err := strconv.ParseInt(string(n), 10, 64); err == nil {
			return i, nil
		}
		if u, err := strconv.ParseUint(string(n), 10, 64); err == nil {
			return u, nil
		}
		if t.Integer {
			if f != math.Trunc(f) {
				return nil, fmt.Errorf("value %s: tag %s takes a whole number", n, t.Name)
			}
			if f >= -(1<<63) && f < 1<<63 {
				return int64(f), nil // 5.0, 1e3
			}
			return nil, fmt.Errorf("value %s is out of the tag's range", n)
		}
		return f, nil
	}
	raw := f
	if t.ToSeconds != 0 {
		raw /= t.ToSeconds
	}
	switch {
	case t.Map != nil:
		m := t.Map
		raw = m[0] + (raw-m[2])*(m[1]-m[0])/(m[3]-m[2])
	default:
		scale := t.Scale
		if scale == 0 {
			scale = 1
		}
		raw = (raw - t.Offset) / scale
	}
	if math.IsNaN(raw) || math.IsInf(raw, 0) {
		return nil, fmt.Errorf("value %s has no raw value", n)
	}
	if !t.Integer {
		return raw, nil
	}
	// 52.3 / 0.1 is 522.9999999999999: a whole raw value within rounding.
	r := math.Round(raw)
	if math.Abs(raw-r) > 1e-6*math.Max(1, math.Abs(r)) {
		return nil, fmt.Errorf("value %s is raw %v, which tag %s cannot hold (a whole number)", n, raw, t.Name)
	}
	if r < -(1<<63) || r >= 1<<63 {
		return nil, fmt.Errorf("value %s is out of the tag's range", n)
	}
	return int64(r), nil
}

// published applies the tag's normalization to a raw read-back, for the
// result's readback field.
func (t *Tag) published(raw any) any {
	f, ok := number(raw)
	if !ok {
		return raw
	}
	if t.Float32 {
		f, _ = strconv.ParseFloat(strconv.FormatFloat(f, 'g', -1, 32), 64)
	}
	if !t.transforms() {
		if t.Float32 {
			return f
		}
		return raw
	}
	switch {
	case t.Map != nil:
		m := t.Map
		f = m[2] + (f-m[0])*(m[3]-m[2])/(m[1]-m[0])
	default:
		scale := t.Scale
		if scale == 0 {
			scale = 1
		}
		f = f*scale + t.Offset
	}
	if t.ToSeconds != 0 {
		f *= t.ToSeconds
	}
	return f
}

// sameRaw says whether the read-back holds what was written. Numbers
// compare by value whatever their Go type (an OPC UA UInt16 reads back as
// uint64); a float32 register, or an OPC UA Float node (which reads back
// as the shortest decimal of the float32), at float32 precision.
func (t *Tag) sameRaw(written, back any) bool {
	switch written.(type) {
	case bool, string:
		return written == back
	}
	if isInt(written) && isInt(back) {
		return sameInt(written, back)
	}
	a, ok1 := number(written)
	b, ok2 := number(back)
	if !ok1 || !ok2 {
		return false
	}
	if a == b {
		return true
	}
	if t.Float32 || t.Kind == KindAny {
		f32 := func(f float64) float64 {
			g, _ := strconv.ParseFloat(strconv.FormatFloat(float64(float32(f)), 'g', -1, 32), 64)
			return g
		}
		return f32(a) == f32(b) && (t.Float32 || f32(a) == b)
	}
	return false
}

func isInt(v any) bool {
	switch v.(type) {
	case int64, uint64:
		return true
	}
	return false
}

func sameInt(a, b any) bool {
	ai, aSigned := a.(int64)
	bi, bSigned := b.(int64)
	au, _ := a.(uint64)
	bu, _ := b.(uint64)
	switch {
	case aSigned && bSigned:
		return ai == bi
	case !aSigned && !bSigned:
		return au == bu
	case aSigned:
		return ai >= 0 && uint64(ai) == bu
	default:
		return bi >= 0 && uint64(bi) == au
	}
}

func number(v any) (float64, bool) {
	switch x := v.(type) {
	case int64:
		return float64(x), true
	case uint64:
		return float64(x), true
	case float64:
		return x, true
	}
	return 0, false
}
