package main

import (
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"

	"github.com/linegate/linegate/collector"
	"github.com/linegate/linegate/configs"
)

// normalizationRules copies the normalization keys of issue 6 from the
// config into a collector tag (collectorTags does the older ones).
func normalizationRules(ct *collector.Tag, t configs.Tag, d configs.Device) {
	if len(t.RawRange) == 2 && len(t.Range) == 2 {
		ct.Map = &collector.LinearMap{RawLo: t.RawRange[0], RawHi: t.RawRange[1], Lo: t.Range[0], Hi: t.Range[1]}
		ct.Scale, ct.Offset = 0, 0
	}
	if len(t.Limits) == 2 {
		ct.Limits = &[2]float64{t.Limits[0], t.Limits[1]}
	}
	ct.DeadbandPercent = t.DeadbandPercent
	ct.State = t.State
	for _, b := range t.StateBits {
		ct.StateBits = append(ct.StateBits, collector.StateBit{Bit: b.Bit, State: b.State})
	}
	ct.DefaultState = t.DefaultState
	for _, bit := range slices.Sorted(maps.Keys(t.Alarms)) {
		ct.Alarms = append(ct.Alarms, collector.Alarm{Bit: bit, Text: t.Alarms[bit]})
	}
	ct.Timestamp = t.Timestamp
	ct.Location = d.Location
	ct.StaleAfter = t.StaleAfter.D()
	if t.Timestamp != "" {
		ct.ToSeconds = 0 // a point in time, not a duration
	}
}

// shiftPlan is the device's shift plan for the state times, nil without
// shifts.
func shiftPlan(d configs.Device) (*collector.ShiftPlan, error) {
	if len(d.Shifts) == 0 {
		return nil, nil
	}
	p, err := collector.NewShiftPlan(d.Shifts, d.Location, d.StateTimesEvery.D())
	if err != nil {
		return nil, fmt.Errorf("device %s: %w", d.Name, err)
	}
	return p, nil
}

// rules describes the normalization keys of issue 6 for `linegate check`.
func rules(t configs.Tag) []string {
	num := func(f float64) string { return strconv.FormatFloat(f, 'g', -1, 64) }
	var parts []string
	if len(t.RawRange) == 2 && len(t.Range) == 2 {
		parts = append(parts, fmt.Sprintf("map %s..%s → %s..%s", num(t.RawRange[0]), num(t.RawRange[1]), num(t.Range[0]), num(t.Range[1])))
	}
	if len(t.Limits) == 2 {
		parts = append(parts, fmt.Sprintf("limits %s..%s (outside: uncertain)", num(t.Limits[0]), num(t.Limits[1])))
	}
	if t.DeadbandPercent != 0 {
		parts = append(parts, fmt.Sprintf("deadband %s%%, every %s", num(t.DeadbandPercent), t.ReportEvery))
	} else if t.Deadband == 0 && t.ReportEvery != 0 {
		parts = append(parts, fmt.Sprintf("on change, every %s", t.ReportEvery))
	}
	if len(t.StateBits) > 0 {
		var s []string
		for _, b := range t.StateBits {
			s = append(s, fmt.Sprintf("bit%d=%s", b.Bit, b.State))
		}
		def := t.DefaultState
		if def == "" {
			def = "unknown"
		}
		parts = append(parts, fmt.Sprintf("state bits %s else %s", strings.Join(s, " > "), def))
	} else if t.State && len(t.States) == 0 {
		parts = append(parts, "state (name passed through)")
	}
	if len(t.Alarms) > 0 {
		var s []string
		for _, bit := range slices.Sorted(maps.Keys(t.Alarms)) {
			s = append(s, fmt.Sprintf("bit%d=%s", bit, t.Alarms[bit]))
		}
		parts = append(parts, "alarms "+strings.Join(s, ", ")+" (events)")
	}
	if t.Timestamp != "" {
		parts = append(parts, "timestamp "+t.Timestamp+" → RFC 3339 UTC")
	}
	if t.StaleAfter != 0 {
		parts = append(parts, fmt.Sprintf("stale after %s", t.StaleAfter))
	}
	return parts
}

// shiftLine describes a device's state times for `linegate check`, "" when
// it has none.
func shiftLine(d configs.Device) string {
	if len(d.Shifts) == 0 {
		return ""
	}
	var tags []string
	for _, t := range d.Tags {
		if t.IsState() {
			tags = append(tags, t.Name+"_time_<state>")
		}
	}
	return fmt.Sprintf("  state times: %s per shift from %s, class time, every %s and at each shift end\n",
		strings.Join(tags, ", "), d.ShiftStarts(), d.StateTimesEvery)
}
