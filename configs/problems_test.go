package configs

import (
	"strings"
	"testing"
)

// An unknown key does not hide the file's other problems, and a bad value
// names its device, tag and key.
func TestAllProblemsAtOnce(t *testing.T) {
	src := `gateway: {id: gw1, site: s, area: a, line: l}
buffer: {path: /tmp/x.db}
uplink: {brokers: [tcp://127.0.0.1:1884]}
devices:
  - name: press01
    driver: modbus
    address: tcp://127.0.0.1:502
    unit_id: one
    bogus: 1
    tags:
      - {name: t1, class: process, register: holding, address: 0, type: float32}
      - {name: t2, class: proces, register: holding, address: 4, type: uint16}
      - {name: t3, class: process, register: holding, address: 6, type: uint16, scale: big}
`
	_, err := Parse("x.yaml", []byte(src), env(nil))
	if err == nil {
		t.Fatal("no error")
	}
	want := []string{
		`x.yaml:8: device press01: unit_id "one" is not a whole number`,
		`x.yaml:9: device press01: unknown key "bogus"`,
		`x.yaml:12: device press01, tag t2: unknown class "proces"`,
		`x.yaml:13: device press01, tag t3: scale "big" is not a number`,
	}
	got := strings.Split(err.Error(), "\n")
	if len(got) != len(want) {
		t.Fatalf("got %d problems, want %d:\n%v", len(got), len(want), err)
	}
	for i := range want {
		if !strings.HasPrefix(got[i], want[i]) {
			t.Errorf("problem %d:\n got %s\nwant %s", i, got[i], want[i])
		}
	}
}

// An indentation error is reported at the line that is wrong, not where
// the block around it began.
func TestIndentationErrorLine(t *testing.T) {
	head := "gateway: {id: gw1, site: s, area: a, line: l}\nbuffer: {path: /tmp/x.db}\nuplink: {brokers: [tcp://127.0.0.1:1884]}\n"
	tests := []struct {
		name, src string
		line      string
	}{
		{"tag key one column left", head + `devices:
  - name: press01
    driver: modbus
    address: tcp://127.0.0.1:502
    tags:
      - name: t1
        class: process
        register: holding
        address: 0
       type: float32
`, "x.yaml:13:"},
		{"tag key at the dash", head + `devices:
  - name: press01
    driver: modbus
    address: tcp://127.0.0.1:502
    tags:
      - name: t1
        class: process
        register: holding
        address: 0
      type: float32
`, "x.yaml:13:"},
		{"section key one column left", `gateway:
  id: gw1
  site: s
 area: a
  line: l
`, "x.yaml:4:"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse("x.yaml", []byte(tt.src), env(nil))
			if err == nil || !strings.HasPrefix(err.Error(), tt.line) {
				t.Fatalf("error %v, want it at %s", err, tt.line)
			}
		})
	}
}
