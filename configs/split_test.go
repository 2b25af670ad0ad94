package configs

import (
	"fmt"
	"reflect"
	"strings"
	"testing"
)

// parseBothWays parses data split into parts (when it splits) and whole,
// and fails the test when the two differ in config or error.
func parseBothWays(t testing.TB, data []byte, env LookupEnv) (split bool) {
	t.Helper()
	marked := markEnvRefs(data)
	whole, werr := parseWhole("/cfg/linegate.yaml", marked, env)
	parts, ok := splitDevices(marked)
	if !ok {
		return false
	}
	cfg, err, ok := parseParts("/cfg/linegate.yaml", parts, env)
	if !ok {
		return false
	}
	if (err == nil) != (werr == nil) || err != nil && err.Error() != werr.Error() {
		t.Fatalf("split error:\n%v\nwhole error:\n%v\n--- file:\n%s", err, werr, data)
	}
	if err == nil {
		for _, c := range []*Config{cfg, whole} {
			for i := range c.Devices {
				c.Devices[i].Location = nil // loaded twice: other pointers
			}
		}
		if !reflect.DeepEqual(cfg, whole) {
			t.Fatalf("split config:\n%+v\nwhole config:\n%+v\n--- file:\n%s", cfg, whole, data)
		}
	}
	return true
}

func TestSplitParseMatchesWhole(t *testing.T) {
	const head = "gateway: {id: gw1, site: s, area: a, line: l}\nbuffer: {path: /tmp/x.db}\nuplink: {brokers: [tcp://127.0.0.1:1884]}\n"
	dev := func(name, port string) string {
		return fmt.Sprintf("  - name: %s\n    driver: modbus\n    address: tcp://127.0.0.1:%s\n    tags:\n      - {name: temp, class: process, register: holding, address: 0, type: uint16}\n", name, port)
	}
	tests := []struct {
		name  string
		text  string
		split bool
	}{
		{"block list", head + "devices:\n" + dev("p1", "502") + dev("p2", "503"), true},
		{"comments and blank lines", head + "devices: # the presses\n\n# first\n" + dev("p1", "502") + "\n  # second\n" + dev("p2", "503") + "# end\n", true},
		{"items at the key's indentation", head + "devices:\n- name: p1\n  driver: modbus\n  address: tcp://127.0.0.1:502\n  tags: [{name: t, class: process, register: holding, address: 0, type: uint16}]\nhttp: {listen: \"127.0.0.1:9100\"}\n", true},
		{"sections after the devices", "devices:\n" + dev("p1", "502") + head, true},
		{"crlf", strings.ReplaceAll(head+"devices:\n"+dev("p1", "502")+dev("p2", "503"), "\n", "\r\n"), true},
		{"env reference in a device", head + "devices:\n  - name: p1\n    driver: modbus\n    address: tcp://${PLC}\n    tags: [{name: t, class: process, register: holding, address: 0, type: uint16}]\n", true},
		{"unset env in a device", head + "devices:\n  - name: p1\n    driver: modbus\n    address: tcp://${NOPE}\n    tags: [{name: t, class: process, register: holding, address: 0, type: uint16}]\n", true},
		{"unknown keys in two devices and a section", head + "gatway: x\ndevices:\n" + dev("p1", "502") + "    adress: 1\n" + dev("p2", "503") + "    colour: red\n", true},
		{"type errors in two devices", head + "devices:\n" + dev("p1", "502") + "    unit_id: one\n" + dev("p2", "503") + "    max_gap: lots\n", true},
		{"type error and unknown key", head + "devices:\n" + dev("p1", "502") + "    unit_id: one\n" + dev("p2", "503") + "    colour: red\n", true},
		{"validation problems", head + "devices:\n" + dev("p1", "502") + dev("p1", "503") + "  - name: p3\n    driver: nosuch\n    tags: []\n", true},
		{"anchor across devices", head + "devices:\n  - name: p1\n    driver: modbus\n    address: tcp://127.0.0.1:502\n    tags: &t [{name: a, class: process, register: holding, address: 0, type: uint16}]\n  - name: p2\n    driver: modbus\n    address: tcp://127.0.0.1:503\n    tags: *t\n", false},
		{"anchor in the sections", "x-plc: &plc tcp://127.0.0.1:502\n" + head + "devices:\n  - name: p1\n    driver: modbus\n    address: *plc\n    tags: [{name: a, class: process, register: holding, address: 0, type: uint16}]\n", false},
		{"flow list", head + "devices: [{name: p1, driver: modbus, address: tcp://127.0.0.1:502, tags: [{name: a, class: process, register: holding, address: 0, type: uint16}]}]\n", false},
		{"quoted value across items", head + "devices:\n  - name: \"p1\n  - x\"\n    driver: modbus\n", false},
		{"two documents", head + "devices:\n" + dev("p1", "502") + "---\nfoo: 1\n", false},
		{"mapping instead of list", head + "devices:\n  p1: {driver: modbus}\n", false},
		{"lone CR ends a value's line", "y: 1\ndevices:\n  - name: \r\"p1\"\n", false},
		{"NEL ends a value's line", "y: 1\ndevices:\n  - name: \u0085\"p1\"\n", false},
		{"LS ends a value's line", "y: 1\ndevices:\n  - name: \u2028\"p1\"\n", false},
		{"PS ends a value's line", "y: 1\ndevices:\n  - name: \u2029\"p1\"\n", false},
		{"UTF-16", "\xff\xfed\x00e\x00v\x00:\x00\ndevices:\n" + dev("p1", "502"), false},
		{"anchor redefined in a device, aliased after it", "gateway: {id: &a gw1, site: s, area: a, line: l}\nbuffer: {path: /tmp/x.db}\nuplink: {brokers: [tcp://127.0.0.1:1884]}\ndevices:\n  - name: &a p1\n    driver: modbus\n    address: tcp://127.0.0.1:502\n    tags: [{name: a, class: process, register: holding, address: 0, type: uint16}]\nhttp: {listen: \"127.0.0.1:9100\", token: *a}\n", false},
		{"duplicate devices key", head + "devices:\n" + dev("p1", "502") + "devices:\n" + dev("p2", "503"), false},
	}
	env := env(map[string]string{"PLC": "127.0.0.1:502"})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := parseBothWays(t, []byte(tt.text), env); got != tt.split {
				t.Fatalf("split = %v, want %v", got, tt.split)
			}
		})
	}
	for _, name := range ExampleNames() {
		t.Run(name, func(t *testing.T) {
			data, _ := Example(name)
			if !parseBothWays(t, data, exampleEnv) {
				t.Fatal("the example was not split")
			}
		})
	}
}
