package configs

import "math"

// The effective values below are what the parts' own Configs take, decided
// here once: the wiring in cmd/internal/agent copies them and patches
// nothing between the layers.

// ModbusMaxGap is max_gap as the Modbus driver takes it: the config's 0
// means "never bridge", which the driver spells as a negative gap (its 0 is
// "default").
func (d Device) ModbusMaxGap() int {
	if g := d.MaxGapValue(); g > 0 {
		return g
	}
	return -1
}

// Subscribes says whether the collector is pushed changes by the driver's
// subscription instead of polling (OPC UA in subscribe mode, the default).
func (d Device) Subscribes() bool { return d.Driver == "opcua" && d.Mode == "subscribe" }

// QueueSizeValue is the monitored items' queue size (0: the server's default).
func (d Device) QueueSizeValue() uint32 { return uint32(max(d.QueueSize, 0)) }

// CounterBits is the width at which a counter tag rolls over: the
// registers it takes on Modbus; on OPC UA the node's own type sets the
// width and there is no register count to go by, so 64.
func (t Tag) CounterBits(driver string) int {
	if driver != "modbus" {
		return 64
	}
	return 16 * RegisterWidth(t.Type, t.Length)
}

// SecondsFactor turns a time-class duration into seconds (ms: 0.001); 0
// for every other tag, a time tag holding a point in time (timestamp)
// included.
func (t Tag) SecondsFactor() float64 {
	if t.Class != "time" || t.Timestamp != "" {
		return 0
	}
	return DurationUnits[t.Unit]
}

// LinearMap is raw_range → range, ok false unless both are set. With a map,
// scale and offset do not apply.
func (t Tag) LinearMap() (rawLo, rawHi, lo, hi float64, ok bool) {
	if len(t.RawRange) != 2 || len(t.Range) != 2 {
		return 0, 0, 0, 0, false
	}
	return t.RawRange[0], t.RawRange[1], t.Range[0], t.Range[1], true
}

// ServerDeadband is the deadband handed to an OPC UA server as the
// monitored item's filter. deadband is in the units of the published value
// (after scale, raw_range → range and the ms → s of a time tag); the server
// compares the node's raw values, so it gets the deadband in raw units. And
// half of it: the server reports only a change that exceeds its deadband,
// and the collector's own deadband, applied to the published value, is the
// one that decides. 0: no server filter, the collector filters alone.
func (t Tag) ServerDeadband() float64 {
	if t.Deadband <= 0 {
		return 0
	}
	factor := t.ScaleValue()
	if rawLo, rawHi, lo, hi, ok := t.LinearMap(); ok {
		factor = (hi - lo) / (rawHi - rawLo)
	}
	if f := t.SecondsFactor(); f != 0 {
		factor *= f
	}
	raw := t.Deadband / math.Abs(factor) / 2
	if math.IsNaN(raw) || math.IsInf(raw, 0) {
		return 0
	}
	return raw
}
