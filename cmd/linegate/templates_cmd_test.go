package main

import (
	"path/filepath"
	"strings"
	"testing"
)

// check shows each device of a template expanded, with its template.
func TestCheckShowsTemplatesExpanded(t *testing.T) {
	cfg := writeFile(t, "t.yaml", `gateway: {id: g, site: s, area: a, line: l}
buffer: {path: `+filepath.Join(t.TempDir(), "b.db")+`}
uplink: {brokers: [tcp://127.0.0.1:1884]}
templates:
  - name: press
    driver: modbus
    tags:
      - {name: temperature, class: process, register: holding, address: 0, type: float32, unit: degC}
      - {name: state, class: equipment, register: holding, address: 10, type: uint16}
devices:
  - {name: press01, template: press, address: tcp://10.0.0.21:502, unit_id: 1}
  - {name: press02, template: press, address: tcp://10.0.0.22:502, unit_id: 3, tags: [{name: temperature, address: 2}]}
`)
	runCLI(t, []string{"check", "-c", cfg}, exitOK, []string{
		"device press01: modbus tcp://10.0.0.21:502 unit 1, byte order ABCD, every 1s, timeout 1s, template press",
		"device press02: modbus tcp://10.0.0.22:502 unit 3",
		"  temperature  process    holding 2   float32  degC",
		"2 device(s), 4 tag(s)",
	}, nil)
}

// tags polls each device of a template, expanded.
func TestTagsShowsTemplatesExpanded(t *testing.T) {
	line := frozenLine(t, 1, 2)
	cfg := writeFile(t, "t.yaml", `gateway: {id: g, site: s, area: a, line: l}
buffer: {path: `+filepath.Join(t.TempDir(), "b.db")+`}
uplink: {brokers: [tcp://127.0.0.1:1884]}
templates:
  - name: press
    driver: modbus
    tags:
      - {name: state, class: equipment, register: holding, address: 10, type: uint16}
      - {name: cycle, class: process, register: holding, address: 14, type: uint16}
devices:
  - {name: press01, template: press, address: tcp://`+line.Addr()+`, unit_id: 1}
  - {name: press02, template: press, address: tcp://`+line.Addr()+`, unit_id: 2}
`)
	out, _ := runCLI(t, []string{"tags", "-c", cfg, "--once"}, exitOK, []string{"press01", "press02"}, nil)
	for _, row := range []string{"press01  state", "press01  cycle", "press02  state", "press02  cycle"} {
		if !strings.Contains(strings.Join(strings.Fields(out), "  "), strings.Join(strings.Fields(row), "  ")) {
			t.Errorf("tags lacks %q:\n%s", row, out)
		}
	}
}
