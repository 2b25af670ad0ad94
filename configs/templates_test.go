package configs

import (
	"strings"
	"testing"
)

const templatesBase = `gateway: {id: gw1, site: s, area: a, line: l}
buffer: {path: /tmp/x.db}
uplink: {brokers: [tcp://127.0.0.1:1884]}
templates:
  - name: press
    driver: modbus
    poll_interval: 2s
    byte_order: CDAB
    tags:
      - {name: temperature, class: process, register: holding, address: 0, type: float32, unit: degC}
      - {name: state, class: equipment, register: holding, address: 10, type: uint16}
devices:
  - {name: press01, template: press, address: tcp://10.0.0.21:502, unit_id: 1}
  - name: press02
    template: press
    address: tcp://10.0.0.22:502
    unit_id: 7
    byte_order: ABCD
    tags:
      - {name: temperature, address: 2}
      - {name: extra, class: process, register: input, address: 0, type: int16}
`

func TestTemplates(t *testing.T) {
	cfg, err := Parse("linegate.yaml", []byte(templatesBase), env(nil))
	if err != nil {
		t.Fatal(err)
	}
	p1, p2 := cfg.Devices[0], cfg.Devices[1]
	if p1.Template != "press" || p1.Driver != "modbus" || p1.PollInterval.String() != "2s" || p1.ByteOrder != "CDAB" || p1.UnitIDValue() != 1 || len(p1.Tags) != 2 {
		t.Errorf("press01 not expanded: %+v", p1)
	}
	if p1.Tags[0].Line != 10 {
		t.Errorf("press01's temperature at line %d, want the template's 10", p1.Tags[0].Line)
	}
	if p2.ByteOrder != "ABCD" || p2.UnitIDValue() != 7 || len(p2.Tags) != 3 {
		t.Fatalf("press02: byte order %s unit %d, %d tags", p2.ByteOrder, p2.UnitIDValue(), len(p2.Tags))
	}
	if tg := p2.Tags[0]; tg.Name != "temperature" || tg.AddressValue() != 2 || tg.Type != "float32" || tg.Unit != "degC" {
		t.Errorf("press02's temperature override: %+v", tg)
	}
	if p2.Tags[2].Name != "extra" {
		t.Errorf("press02's own tag: %+v", p2.Tags[2])
	}
	if p1.Tags[0].AddressValue() != 0 {
		t.Error("an override of press02 changed press01")
	}
}

func TestTemplateProblems(t *testing.T) {
	tests := []struct {
		name    string
		replace [2]string
		want    string
	}{
		{"unknown template", [2]string{"{name: press01, template: press,", "{name: press01, template: presss,"}, `linegate.yaml:13: device press01: template "presss" is not defined (templates: press)`},
		{"bad key in template", [2]string{"    poll_interval: 2s", "    pol_interval: 2s"}, `linegate.yaml:7: template press: unknown key "pol_interval" (did you mean "poll_interval"?)`},
		{"template tag problem names the device", [2]string{"type: uint16}", "type: uint61}"}, `linegate.yaml:11: device press01, tag state: unknown type "uint61"`},
		{"bad value in template", [2]string{"    poll_interval: 2s", "    poll_interval: 2"}, `linegate.yaml:7: template press: poll_interval: invalid duration "2"`},
		{"duplicate template", [2]string{"devices:\n", "  - {name: press, driver: modbus}\ndevices:\n"}, `template press: duplicate template name (first at line 5)`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			text := strings.Replace(templatesBase, tt.replace[0], tt.replace[1], 1)
			if text == templatesBase {
				t.Fatal("replacement not found")
			}
			_, err := Parse("linegate.yaml", []byte(text), env(nil))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %v\nwant %s", err, tt.want)
			}
			if strings.Count(err.Error(), "\n") != 0 {
				t.Errorf("one problem, reported once (not per device using the template):\n%v", err)
			}
		})
	}
}
