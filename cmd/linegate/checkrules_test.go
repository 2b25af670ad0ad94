package main

import (
	"strings"
	"testing"
)

func TestCheckPrintsNormalizationRules(t *testing.T) {
	cfg := writeFile(t, "n.yaml", `gateway: {id: gw1, site: s, area: a, line: l}
buffer: {path: /tmp/x.db}
uplink: {brokers: [tcp://127.0.0.1:1884]}
devices:
  - name: press01
    driver: modbus
    address: tcp://127.0.0.1:502
    timezone: Europe/Berlin
    shifts: ["06:00", "14:00", "22:00"]
    tags:
      - {name: level, class: process, register: input, address: 0, type: int16, unit: "%", raw_range: [0, 27648], range: [0, 100], limits: [0, 100], deadband_percent: 0.5}
      - {name: status, class: equipment, register: holding, address: 60, type: uint16, default_state: stopped, report_every: 10m,
         state_bits: [{bit: 1, state: fault}, {bit: 0, state: running}]}
      - {name: alarms, class: equipment, register: holding, address: 61, type: uint16, alarms: {1: door open, 0: motor overload}}
      - {name: plc_clock, class: time, register: holding, address: 62, type: uint64, timestamp: s7_dt}
      - {name: parts, class: equipment, register: holding, address: 70, type: uint32, counter: true}
`)
	code, out, errOut := run(t, "check", "-c", cfg)
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	for _, want := range []string{
		"state times: status_time_<state> per shift from [06:00 14:00 22:00] Europe/Berlin, class time, every 1m0s and at each period end",
		"map 0..27648 → 0..100; limits 0..100 (outside: uncertain); deadband 0.5%, every 1m0s",
		"on change, every 10m0s; state bits bit1=fault > bit0=running else stopped",
		"alarms bit0=motor overload, bit1=door open (events)",
		"timestamp s7_dt → RFC 3339 UTC",
		"counter (+delta)",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("check output lacks %q:\n%s", want, out)
		}
	}
}
