package main

import (
	"path/filepath"
	"strings"
	"testing"
)

// scan --yaml prints a device block per unit that check accepts.
func TestModbusScanYAML(t *testing.T) {
	line := frozenLine(t, 1, 2)
	addr := line.Addr()
	out, _ := runCLI(t, []string{"modbus", "scan", addr, "--units", "1-3", "--addresses", "0-9", "--tables", "holding,coil", "--timeout", "100ms", "--yaml", "--name", "press"}, exitOK,
		[]string{"devices:\n", "  - name: press_u1\n", "    unit_id: 2\n", "{name: holding_9, class: process, register: holding, address: 9, type: uint16}", "{name: coil_0, class: equipment, register: coil, address: 0, type: bool}"}, nil)
	if strings.Count(out, "  - name: ") != 2 || strings.Contains(out, "press_u3") {
		t.Errorf("want a block for units 1 and 2 only:\n%s", out)
	}
	cfg := "gateway: {id: g, site: s, area: a, line: l}\nbuffer: {path: " + filepath.Join(t.TempDir(), "b.db") + "}\nuplink: {brokers: [tcp://127.0.0.1:1884]}\n" + out
	runCLI(t, []string{"check", "-c", writeFile(t, "scanned.yaml", cfg)}, exitOK, []string{"2 device(s), 40 tag(s)"}, nil)

	out, _ = runCLI(t, []string{"modbus", "scan", addr, "--units", "1", "--addresses", "0-999", "--tables", "holding,input", "--timeout", "100ms", "--yaml"}, exitOK,
		[]string{"  - name: plc\n", "more readable address(es) left out (at most 250 per unit)"}, nil)
	if n := strings.Count(out, ", class: process, register: "); n != 250 {
		t.Errorf("%d tags, want 250", n)
	}
}
