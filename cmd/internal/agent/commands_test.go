package agent

import (
	"testing"

	"github.com/linegate/linegate/commands"
	"github.com/linegate/linegate/configs"
)

func TestCommandDevices(t *testing.T) {
	cfg, err := configs.Parse("linegate.yaml", []byte(`gateway: {id: gw1, site: s, area: a, line: l}
buffer: {path: /tmp/x.db}
uplink: {brokers: [tcp://127.0.0.1:1884], commands: true}
devices:
  - name: press01
    driver: modbus
    address: tcp://127.0.0.1:502
    commands: true
    tags:
      - {name: sp, class: process, register: holding, address: 0, type: float32, writable: true, write_range: [0, 100]}
      - {name: speed, class: process, register: holding, address: 2, type: int16, scale: 0.1, writable: true}
      - {name: lvl, class: process, register: holding, address: 3, type: int16, raw_range: [0, 27648], range: [0, 100], writable: true}
      - {name: cyc, class: time, register: holding, address: 4, type: uint32, unit: ms, writable: true}
      - {name: reset, class: equipment, register: coil, address: 1, writable: true}
      - {name: temp, class: process, register: input, address: 0, type: int16}
  - name: oven02
    driver: opcua
    endpoint: opc.tcp://127.0.0.1:4840
    tags:
      - {name: zone1, class: process, node: "ns=2;s=Z", writable: true}
`), func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	devs := commandDevices(cfg.Devices, cfg.Uplink.Commands)
	p, o := devs[0], devs[1]
	if !p.Enabled || o.Enabled || p.Rate != 5 {
		t.Errorf("enabled %v %v, rate %v", p.Enabled, o.Enabled, p.Rate)
	}
	checks := []struct {
		name      string
		got, want any
	}{
		{"float32", p.Tags[0].Float32 && !p.Tags[0].Integer && p.Tags[0].Kind == commands.KindNumber, true},
		{"range", *p.Tags[0].Range, [2]float64{0, 100}},
		{"scale", p.Tags[1].Scale, 0.1},
		{"integer", p.Tags[1].Integer, true},
		{"map", *p.Tags[2].Map, [4]float64{0, 27648, 0, 100}},
		{"map drops scale", p.Tags[2].Scale, 0.0},
		{"ms", p.Tags[3].ToSeconds, 0.001},
		{"coil", p.Tags[4].Kind, commands.KindBool},
		{"index", p.Tags[5].Index, 5},
		{"read-only", p.Tags[5].Writable, false},
		{"opcua", o.Tags[0].Kind, commands.KindAny},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s = %v, want %v", c.name, c.got, c.want)
		}
	}
}
