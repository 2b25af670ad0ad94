package collector

import (
	"testing"
	"time"
)

// TestDailyPlan: without shifts, the periods are calendar days in the
// device's zone: 23 hours on the spring DST change, 25 in autumn.
func TestDailyPlan(t *testing.T) {
	p := DailyPlan(berlin, time.Minute)
	tests := []struct {
		at    time.Time
		start string
		hours float64
	}{
		{time.Date(2026, 11, 27, 10, 15, 0, 0, berlin), "2026-11-27T00:00:00+01:00", 24},
		{time.Date(2026, 3, 29, 12, 0, 0, 0, berlin), "2026-03-29T00:00:00+01:00", 23},
		{time.Date(2026, 10, 25, 2, 30, 0, 0, berlin), "2026-10-25T00:00:00+02:00", 25},
		{time.Date(2026, 11, 27, 0, 0, 0, 0, berlin), "2026-11-27T00:00:00+01:00", 24},
	}
	for _, tt := range tests {
		start, end, name := p.shiftAt(tt.at)
		if got := start.In(berlin).Format(time.RFC3339); got != tt.start || end.Sub(start).Hours() != tt.hours || name != "00:00" {
			t.Errorf("%v: period %s for %v h (%s); want %s for %v h", tt.at, got, end.Sub(start).Hours(), name, tt.start, tt.hours)
		}
	}
	if DailyPlan(nil, 0).loc != time.UTC {
		t.Error("nil zone is not UTC")
	}
}
