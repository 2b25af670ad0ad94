package configs

import (
	"strings"
	"testing"
)

const cmdBase = `gateway: {id: gw1, site: s, area: a, line: l}
buffer: {path: /tmp/x.db}
uplink: {brokers: [tcp://127.0.0.1:1884], commands: true}
devices:
  - name: press01
    driver: modbus
    address: tcp://127.0.0.1:502
    commands: true
    max_commands_per_s: 2
    tags:
      - {name: setpoint, class: process, register: holding, address: 0, type: float32, writable: true, write_range: [0, 100]}
      - {name: reset, class: equipment, register: coil, address: 1, writable: true}
      - {name: enable, class: equipment, register: holding, address: 2, bit: 3, writable: true, read_modify_write: true}
      - {name: speed, class: process, register: input, address: 4, type: int16}
`

func TestCommandKeys(t *testing.T) {
	cfg, err := Parse("linegate.yaml", []byte(cmdBase), env(nil))
	if err != nil {
		t.Fatal(err)
	}
	d := cfg.Devices[0]
	checks := []struct {
		name      string
		got, want any
	}{
		{"uplink.commands", cfg.Uplink.Commands, true},
		{"device commands", d.Commands, true},
		{"max_commands_per_s", d.MaxCommandsPerSValue(), 2.0},
		{"writable", d.Tags[0].Writable, true},
		{"write_range", d.Tags[0].WriteRange[1], 100.0},
		{"read_modify_write", d.Tags[2].ReadModifyWrite, true},
		{"not writable", d.Tags[3].Writable, false},
		{"rate default", Device{}.MaxCommandsPerSValue(), float64(DefaultMaxCommandsPerS)},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s = %v, want %v", c.name, c.got, c.want)
		}
	}
	if len(cfg.Warnings) != 0 {
		t.Errorf("warnings: %v", cfg.Warnings)
	}
}

func TestCommandKeyErrors(t *testing.T) {
	tests := []struct {
		name     string
		from, to string
		want     string
	}{
		{"input register", "type: int16}", "type: int16, writable: true}", `linegate.yaml:14: device press01, tag speed: input registers are read-only`},
		{"bit without rmw", "writable: true, read_modify_write: true", "writable: true", `add read_modify_write: true only if linegate is the only writer`},
		{"rmw without bit", "type: float32, writable: true,", "type: float32, writable: true, read_modify_write: true,", `read_modify_write is for a tag with bit:`},
		{"range without writable", "type: int16}", "type: int16, write_range: [0, 1]}", `write_range needs writable: true`},
		{"range reversed", "write_range: [0, 100]", "write_range: [100, 0]", `write_range [100, 0]: low must not be above high`},
		{"range one number", "write_range: [0, 100]", "write_range: [100]", `write_range must be two finite numbers`},
		{"range on bool", "address: 1, writable: true}", "address: 1, writable: true, write_range: [0, 1]}", `write_range needs a numeric type, not bool`},
		{"counter", "type: float32, writable: true", "type: uint32, counter: true, writable: true", `writable is for plain values`},
		{"rate negative", "max_commands_per_s: 2", "max_commands_per_s: -1", `max_commands_per_s -1 must be 0`},
		{"rate too high", "max_commands_per_s: 2", "max_commands_per_s: 1000", `up to 100`},
		{"unknown key", "writable: true, write_range", "writeable: true, write_range", `unknown key "writeable"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			text := strings.Replace(cmdBase, tt.from, tt.to, 1)
			if text == cmdBase {
				t.Fatalf("replacement %q not found", tt.from)
			}
			_, err := Parse("linegate.yaml", []byte(text), env(nil))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error:\n%v\nwant it to contain:\n%s", err, tt.want)
			}
		})
	}
}

// TestCommandsSparkplug: Sparkplug B takes commands too (DCMD metric writes).
func TestCommandsSparkplug(t *testing.T) {
	cfg, err := Parse("linegate.yaml", []byte(strings.Replace(cmdBase, "commands: true}", "commands: true, format: sparkplugb}", 1)), env(nil))
	if err != nil {
		t.Fatal(err)
	}
	if !cfg.Uplink.Commands || cfg.Uplink.Format != "sparkplugb" {
		t.Fatalf("uplink commands %v format %q", cfg.Uplink.Commands, cfg.Uplink.Format)
	}
}

func TestCommandWarnings(t *testing.T) {
	for _, tt := range []struct{ from, to, want string }{
		{"commands: true}", "}", "commands: true has no effect while uplink.commands is false"},
		{"    commands: true\n", "", "a tag is writable but the device has no commands: true"},
	} {
		cfg, err := Parse("linegate.yaml", []byte(strings.Replace(cmdBase, tt.from, tt.to, 1)), env(nil))
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(strings.Join(cfg.Warnings, "\n"), tt.want) {
			t.Errorf("warnings %q, want %q", cfg.Warnings, tt.want)
		}
	}
}
