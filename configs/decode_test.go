package configs

import (
	"errors"
	"strings"
	"testing"
)

// Devices are decoded one by one and their tag nodes released (load.go);
// anchors, aliases, lines and errors across devices must come out as if
// the file were decoded at once.
func TestDevicesDecodedOneByOne(t *testing.T) {
	const head = "gateway: {id: gw1, site: s, area: a, line: l}\nbuffer: {path: /tmp/x.db}\nuplink: {brokers: [tcp://127.0.0.1:1884]}\n"
	tests := []struct {
		name string
		devs string
		want map[string][]string // device → tag names
		line map[string]int      // "device/tag" → line
	}{
		{
			name: "tag list anchored in one device, aliased by the next",
			devs: `devices:
  - name: p1
    driver: modbus
    address: tcp://127.0.0.1:502
    tags: &common
      - {name: temp, class: process, register: holding, address: 0, type: uint16}
      - {name: rpm, class: process, register: holding, address: 1, type: uint16}
  - name: p2
    driver: modbus
    address: tcp://127.0.0.1:503
    tags: *common
`,
			want: map[string][]string{"p1": {"temp", "rpm"}, "p2": {"temp", "rpm"}},
			line: map[string]int{"p1/temp": 9, "p1/rpm": 10, "p2/temp": 9},
		},
		{
			name: "one tag anchored, aliased inside a later list",
			devs: `devices:
  - name: p1
    driver: modbus
    address: tcp://127.0.0.1:502
    tags:
      - &t {name: temp, class: process, register: holding, address: 0, type: uint16}
  - name: p2
    driver: modbus
    address: tcp://127.0.0.1:503
    tags:
      - *t
      - {name: rpm, class: process, register: holding, address: 1, type: uint16}
`,
			want: map[string][]string{"p1": {"temp"}, "p2": {"temp", "rpm"}},
			line: map[string]int{"p1/temp": 9, "p2/temp": 14, "p2/rpm": 15},
		},
		{
			name: "plain lists",
			devs: `devices:
  - {name: p1, driver: modbus, address: tcp://127.0.0.1:502, tags: [{name: a, class: process, register: holding, address: 0, type: uint16}]}
  - {name: p2, driver: modbus, address: tcp://127.0.0.1:503, tags: [
      {name: b, class: process, register: holding, address: 0, type: uint16},
      {name: c, class: process, register: input, address: 0, type: uint16}]}
`,
			want: map[string][]string{"p1": {"a"}, "p2": {"b", "c"}},
			line: map[string]int{"p1/a": 5, "p2/b": 7, "p2/c": 8},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := Parse("x.yaml", []byte(head+tt.devs), env(nil))
			if err != nil {
				t.Fatal(err)
			}
			got := map[string][]string{}
			lines := map[string]int{}
			for _, d := range cfg.Devices {
				for _, tg := range d.Tags {
					got[d.Name] = append(got[d.Name], tg.Name)
					lines[d.Name+"/"+tg.Name] = tg.Line
				}
			}
			for dev, names := range tt.want {
				if strings.Join(got[dev], ",") != strings.Join(names, ",") {
					t.Errorf("device %s tags = %v, want %v", dev, got[dev], names)
				}
			}
			for k, l := range tt.line {
				if lines[k] != l {
					t.Errorf("%s on line %d, want %d", k, lines[k], l)
				}
			}
		})
	}
}

// Type errors in several devices and in the sections are all reported, in
// one error, with their lines and key paths, and with the validation
// problems of the other lines.
func TestDecodeErrorsAcrossDevices(t *testing.T) {
	src := `gateway: {id: gw1, site: s, area: a, line: l}
buffer: {path: /tmp/x.db}
uplink: {brokers: [tcp://127.0.0.1:1884], max_inflight: many}
devices:
  - name: p1
    driver: modbus
    address: tcp://127.0.0.1:502
    unit_id: one
    tags: [{name: a, class: process, register: holding, address: 0, type: uint16}]
  - name: p2
    driver: nosuch
    address: tcp://127.0.0.1:503
    tags: [{name: b, class: process, register: holding, address: 0, type: uint16, length: x}]
`
	_, err := Parse("x.yaml", []byte(src), env(nil))
	var ce *Error
	if !errors.As(err, &ce) {
		t.Fatalf("err = %v, want *Error", err)
	}
	want := []string{
		`x.yaml:3: uplink: max_inflight "many" is not a whole number`,
		`x.yaml:8: device p1: unit_id "one" is not a whole number`,
		`x.yaml:11: device p2: unknown driver "nosuch"`,
		`x.yaml:13: device p2, tag b: length "x" is not a whole number`,
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
