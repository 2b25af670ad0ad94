package main

import (
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"

	"github.com/linegate/linegate/configs"
)

// rules describes a tag's normalization (maps, limits, deadbands, state
// and alarm bits, timestamps, staleness) for `linegate check`.
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
	periods := d.StatePeriods()
	if periods == "" {
		return ""
	}
	var tags []string
	for _, t := range d.Tags {
		if t.IsState() {
			tags = append(tags, t.Name+"_time_<state>")
		}
	}
	out := fmt.Sprintf("  state times: %s per %s, class time, every %s and at each period end\n",
		strings.Join(tags, ", "), periods, d.StateTimesEvery)
	if d.OEE != nil {
		out += fmt.Sprintf("  oee: %s per %s, class time (%s)\n", strings.Join(configs.OEEReadings, ", "), periods, d.OEE)
	}
	return out
}
