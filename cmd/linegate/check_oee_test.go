package main

import (
	"strings"
	"testing"
)

// TestCheckPrintsOEE: `linegate check` says what an oee: block publishes
// and from which tags.
func TestCheckPrintsOEE(t *testing.T) {
	cfg := writeFile(t, "o.yaml", `gateway: {id: gw1, site: s, area: a, line: l}
buffer: {path: /tmp/x.db}
uplink: {brokers: [tcp://127.0.0.1:1884]}
devices:
  - name: press01
    driver: modbus
    address: tcp://127.0.0.1:502
    oee: {state_tag: state, run: [running], unplanned_stop: [stopped], total_counter: strokes, rejects_counter: rejects, ideal_rate_per_min: 30}
    tags:
      - {name: state, class: equipment, register: holding, address: 10, type: uint16, states: {0: stopped, 1: running}}
      - {name: strokes, class: equipment, register: holding, address: 11, type: uint16, counter: true}
      - {name: rejects, class: equipment, register: holding, address: 12, type: uint16, counter: true}
`)
	code, out, errOut := run(t, "check", "-c", cfg)
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	for _, want := range []string{
		"state times: state_time_<state> per calendar day in UTC, class time, every 1m0s and at each period end",
		"oee: oee, oee_availability, oee_performance, oee_quality per calendar day in UTC, class time (state state, total strokes, rejects rejects, ideal 2s)",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("check output lacks %q:\n%s", want, out)
		}
	}
}
