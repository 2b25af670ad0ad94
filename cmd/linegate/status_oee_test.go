package main

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/linegate/linegate/collector"
)

// TestStatusPrintsOEE: `linegate status` shows each OEE device's current
// shift with its factors, the last shifts' OEE, and why figures are
// uncertain; nothing without OEE devices.
func TestStatusPrintsOEE(t *testing.T) {
	v := func(f float64) *float64 { return &f }
	start := time.Date(2026, 11, 27, 5, 0, 0, 0, time.UTC)
	list := []collector.OEEStatus{{
		Device: "press01",
		Current: collector.OEEFigures{Shift: "14:00", ShiftStart: start.Add(8 * time.Hour),
			Availability: v(0.9), Performance: v(0.8), Quality: v(0.99), OEE: v(0.9 * 0.8 * 0.99),
			Uncertain: "600 s of the shift in no known state"},
		Last: []collector.OEEFigures{
			{Shift: "22:00", ShiftStart: start.Add(-8 * time.Hour), Final: true, OEE: v(0.625)},
			{Shift: "06:00", ShiftStart: start, Final: true},
		},
	}}
	var out bytes.Buffer
	printOEE(&out, list)
	for _, want := range []string{
		"OEE (current shift):",
		"press01  14:00 (uncertain)  71.3%  90.0%         80.0%        99.0%    22:00 62.5%, 06:00 -",
		"press01: 600 s of the shift in no known state",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
	out.Reset()
	printOEE(&out, nil)
	if out.Len() != 0 {
		t.Errorf("output without OEE devices: %q", out.String())
	}
}
