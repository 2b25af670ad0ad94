package configs

import (
	"strings"
	"testing"
)

// TestStateTimesWithoutShifts: a device with a state tag and no shifts
// runs its state times per calendar day, with the default heartbeat; a
// state_times_every on a device without state tags is an error.
func TestStateTimesWithoutShifts(t *testing.T) {
	text := strings.Replace(normBase, "    shifts: [\"06:00\", \"14:00\", \"22:00\"]\n", "", 1)
	cfg, err := Parse("linegate.yaml", []byte(text), env(nil))
	if err != nil {
		t.Fatal(err)
	}
	d := cfg.Devices[0]
	if d.StateTimesEvery != DefaultStateTimesEvery || d.StatePeriods() != "calendar day in Europe/Berlin" {
		t.Errorf("state_times_every %s, periods %q; want the default and calendar days", d.StateTimesEvery, d.StatePeriods())
	}
	if s := d.PeriodStarts(); len(s) != 1 || s[0] != "00:00" {
		t.Errorf("period starts %v, want [00:00]", s)
	}

	noState := strings.Replace(text, "default_state: stopped,\n         state_bits: [{bit: 1, state: fault}, {bit: 0, state: running}]}", "scale: 2}", 1)
	noState = strings.Replace(noState, "    timezone: Europe/Berlin\n", "    timezone: Europe/Berlin\n    state_times_every: 5m\n", 1)
	_, err = Parse("linegate.yaml", []byte(noState), env(nil))
	if want := "linegate.yaml:9: device press01: state_times_every times the states of state tags, and this device has none"; err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("error:\n%v\nwant it to contain:\n%s", err, want)
	}
}
