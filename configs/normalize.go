package configs

import (
	"fmt"
	"math"
	"slices"
	"time"

	// The zone database is embedded: a Windows line PC has none, and
	// timezone: Europe/Berlin must mean the same everywhere.
	_ "time/tzdata"

	"go.yaml.in/yaml/v3"
)

// Timestamps are the encodings of timestamp: (README: Normalization).
var Timestamps = []string{"unix_s", "unix_ms", "s7_dt", "opcua"}

// DefaultStateTimesEvery is the default of state_times_every.
const DefaultStateTimesEvery = Duration(time.Minute)

// deviceNormalization checks the device-level normalization keys and
// resolves the time zone.
func (v *validator) deviceNormalization(i int, where string) {
	d := &v.cfg.Devices[i]
	n := v.nodes.device(i)
	d.Location = time.UTC
	if d.Timezone != "" {
		loc, err := time.LoadLocation(d.Timezone)
		if err != nil || d.Timezone == "Local" {
			v.addf(keyLine(n, "timezone"), where, "unknown timezone %q (an IANA name such as Europe/Berlin, or UTC)", d.Timezone)
		} else {
			d.Location = loc
		}
	}
	switch {
	case d.StaleAfter < 0:
		v.addf(keyLine(n, "stale_after"), where, "stale_after %s must be positive", d.StaleAfter)
	case d.StaleAfter > 0 && d.Driver == "modbus":
		v.addf(keyLine(n, "stale_after"), where, "stale_after judges source timestamps, and Modbus has none")
	}
	if d.StateTimesEvery < 0 {
		v.addf(keyLine(n, "state_times_every"), where, "state_times_every %s must be positive", d.StateTimesEvery)
	}
	hasState := slices.ContainsFunc(d.Tags, Tag.IsState)
	if len(d.Shifts) == 0 {
		// Without a shift plan the state times run per calendar day.
		switch {
		case hasState && d.StateTimesEvery == 0:
			d.StateTimesEvery = DefaultStateTimesEvery
		case !hasState && valueOf(n, "state_times_every") != nil:
			v.addf(keyLine(n, "state_times_every"), where, "state_times_every times the states of state tags, and this device has none (states, state_bits or state: true)")
		}
		return
	}
	if d.StateTimesEvery == 0 {
		d.StateTimesEvery = DefaultStateTimesEvery
	}
	seen := map[string]bool{}
	for _, s := range d.Shifts {
		t, err := time.Parse("15:04", s)
		switch {
		case err != nil || len(s) != 5:
			v.addf(keyLine(n, "shifts"), where, "shift start %q is not HH:MM (24h, e.g. \"06:00\")", s)
		case seen[t.Format("15:04")]:
			v.addf(keyLine(n, "shifts"), where, "shift start %s is given twice", s)
		}
		seen[s] = true
	}
	if !hasState {
		v.addf(keyLine(n, "shifts"), where, "shifts time the states of state tags, and this device has none (states, state_bits or state: true)")
	}
}

// tagNormalization checks a tag's mapping, limit, state-word, alarm,
// timestamp and staleness rules (collector/README.md); normalization checks
// its class, scale, offset, deadband, states and counter.
func (v *validator) tagNormalization(t *Tag, n *yaml.Node, where, driver string, d *Device) {
	numeric := t.Type != "bool" && t.Type != "string"
	integer := driver != "modbus" || isInteger(t.Type)
	if driver == "modbus" && !numeric {
		for _, k := range []string{"raw_range", "range", "limits", "deadband_percent", "state_bits", "alarms"} {
			if valueOf(n, k) != nil {
				v.addf(keyLine(n, k), where, "%s needs a numeric type, not %s", k, t.Type)
			}
		}
	}
	pair := func(key string, p []float64, strict bool) bool {
		if p == nil {
			return false
		}
		if len(p) != 2 || math.IsNaN(p[0]) || math.IsNaN(p[1]) || math.IsInf(p[0], 0) || math.IsInf(p[1], 0) {
			v.addf(keyLine(n, key), where, "%s must be two finite numbers [low, high]", key)
			return false
		}
		if p[0] == p[1] || strict && p[0] > p[1] {
			v.addf(keyLine(n, key), where, "%s [%v, %v]: low must be below high", key, p[0], p[1])
			return false
		}
		return true
	}
	// range is only the target of raw_range: one key meaning two things
	// (a mapping target here, limits there) would be a trap.
	rawOK, rangeOK := pair("raw_range", t.RawRange, false), pair("range", t.Range, false)
	switch {
	case t.Range != nil && t.RawRange == nil:
		v.addf(keyLine(n, "range"), where, "range is the target of raw_range (raw_range: [0, 27648], range: [0, 100]); for sensor-fault limits use limits: [low, high]")
	case t.RawRange != nil && t.Range == nil:
		v.addf(keyLine(n, "raw_range"), where, "raw_range needs range: the engineering values it maps to")
	case rawOK && rangeOK && (t.Scale != nil || t.Offset != 0):
		v.addf(keyLine(n, "raw_range"), where, "raw_range/range replace scale and offset: use one or the other")
	}
	limitsOK := pair("limits", t.Limits, true)
	if t.DeadbandPercent < 0 || t.DeadbandPercent > 100 || math.IsNaN(t.DeadbandPercent) {
		v.addf(keyLine(n, "deadband_percent"), where, "deadband_percent %v must be 0..100", t.DeadbandPercent)
	} else if t.DeadbandPercent > 0 {
		if !(rawOK && rangeOK) && !limitsOK {
			v.addf(keyLine(n, "deadband_percent"), where, "deadband_percent is a percent of the span of range (or limits): set one of them")
		}
		if t.ReportEvery == 0 {
			t.ReportEvery = DefaultReportEvery
		}
	}

	width := t.CounterBits(driver)
	transforms := t.Scale != nil || t.Offset != 0 || t.Deadband != 0 || t.DeadbandPercent != 0 || t.RawRange != nil || t.Limits != nil
	if len(t.StateBits) > 0 {
		if len(t.States) > 0 {
			v.addf(keyLine(n, "state_bits"), where, "state_bits and states are two ways to name a state: use one")
		}
		if !integer {
			v.addf(keyLine(n, "state_bits"), where, "state_bits read a bit word: type must be an integer, not %s", t.Type)
		}
		bits := map[int]bool{}
		for _, b := range t.StateBits {
			switch {
			case b.Bit < 0 || b.Bit >= width:
				v.addf(keyLine(n, "state_bits"), where, "state_bits: bit %d must be 0..%d", b.Bit, width-1)
			case bits[b.Bit]:
				v.addf(keyLine(n, "state_bits"), where, "state_bits: bit %d is listed twice", b.Bit)
			case b.State == "":
				v.addf(keyLine(n, "state_bits"), where, "state_bits: bit %d has no state", b.Bit)
			}
			bits[b.Bit] = true
		}
	}
	if t.DefaultState != "" && len(t.StateBits) == 0 {
		v.addf(keyLine(n, "default_state"), where, "default_state is the state when no bit of state_bits is set: it needs state_bits")
	}
	if t.State && len(t.States) == 0 && len(t.StateBits) == 0 && driver == "modbus" && t.Type != "string" {
		v.addf(keyLine(n, "state"), where, "state: true passes state names through and needs type string; map integer codes with states or bits with state_bits")
	}
	if t.IsState() && (transforms || t.Counter || len(t.Alarms) > 0 || t.Timestamp != "") {
		v.addf(n.Line, where, "a state tag cannot also scale, map, deadband, count, raise alarms or hold a timestamp")
	}

	if len(t.Alarms) > 0 {
		if !integer {
			v.addf(keyLine(n, "alarms"), where, "alarms read a bit word: type must be an integer, not %s", t.Type)
		}
		for bit, text := range t.Alarms {
			switch {
			case bit < 0 || bit >= width:
				v.addf(keyLine(n, "alarms"), where, "alarms: bit %d must be 0..%d", bit, width-1)
			case text == "":
				v.addf(keyLine(n, "alarms"), where, "alarms: bit %d has no text", bit)
			}
		}
		if transforms || t.Counter || t.Timestamp != "" {
			v.addf(keyLine(n, "alarms"), where, "alarms cannot be combined with scale, mapping, deadband, counter or timestamp")
		}
	}

	if t.Timestamp != "" {
		switch {
		case !oneOf(t.Timestamp, Timestamps):
			v.addf(keyLine(n, "timestamp"), where, "unknown timestamp %q (%s)", t.Timestamp, quoteList(Timestamps))
		case t.Timestamp == "s7_dt" && driver == "modbus" && t.Type != "uint64" && t.Type != "int64":
			v.addf(keyLine(n, "timestamp"), where, "s7_dt is 8 bytes (4 registers): type must be uint64, not %s", t.Type)
		case t.Timestamp == "s7_dt" && driver != "modbus":
			v.addf(keyLine(n, "timestamp"), where, "s7_dt decodes Modbus registers; an OPC UA DateTime is timestamp: opcua")
		case t.Timestamp == "opcua" && driver != "opcua":
			v.addf(keyLine(n, "timestamp"), where, "timestamp opcua is an OPC UA DateTime; for registers use unix_s, unix_ms or s7_dt")
		case (t.Timestamp == "unix_s" || t.Timestamp == "unix_ms") && driver == "modbus" && !numeric:
			v.addf(keyLine(n, "timestamp"), where, "%s needs a numeric type, not %s", t.Timestamp, t.Type)
		}
		if transforms || t.Counter || t.Unit != "" {
			v.addf(keyLine(n, "timestamp"), where, "a timestamp has no unit and cannot be scaled, mapped, deadbanded or counted")
		}
	}

	switch {
	case t.StaleAfter < 0:
		v.addf(keyLine(n, "stale_after"), where, "stale_after %s must be positive", t.StaleAfter)
	case t.StaleAfter > 0 && driver == "modbus":
		// A key that silently does nothing is worse than an error.
		v.addf(keyLine(n, "stale_after"), where, "stale_after judges source timestamps, and Modbus has none")
	case t.StaleAfter == 0:
		t.StaleAfter = d.StaleAfter
	}
}

// ShiftStarts is the device's shift plan for display: "[06:00 14:00 22:00]
// Europe/Berlin", "" without shifts.
func (d Device) ShiftStarts() string {
	if len(d.Shifts) == 0 {
		return ""
	}
	return fmt.Sprintf("%v %s", d.Shifts, d.zoneName())
}

// StatePeriods says over which periods the state times run, for display:
// the shift plan, or "calendar day in UTC"; "" without a state tag.
func (d Device) StatePeriods() string {
	switch {
	case len(d.Shifts) > 0:
		return "shift from " + d.ShiftStarts()
	case slices.ContainsFunc(d.Tags, Tag.IsState):
		return "calendar day in " + d.zoneName()
	}
	return ""
}

// PeriodStarts are the wall-clock starts of the state-time periods: the
// shifts, or midnight (one period per calendar day) for a device with a
// state tag and no shifts; nil without a state tag.
func (d Device) PeriodStarts() []string {
	switch {
	case len(d.Shifts) > 0:
		return d.Shifts
	case slices.ContainsFunc(d.Tags, Tag.IsState):
		return []string{"00:00"}
	}
	return nil
}

func (d Device) zoneName() string {
	if d.Timezone != "" {
		return d.Timezone
	}
	return "UTC"
}
