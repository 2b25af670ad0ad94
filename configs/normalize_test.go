package configs

import (
	"strings"
	"testing"
	"time"
)

const normBase = `gateway: {id: gw1, site: s, area: a, line: l}
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
      - {name: status, class: equipment, register: holding, address: 60, type: uint16, default_state: stopped,
         state_bits: [{bit: 1, state: fault}, {bit: 0, state: running}]}
      - {name: alarms, class: equipment, register: holding, address: 61, type: uint16, alarms: {0: motor overload, 1: door open}}
      - {name: plc_clock, class: time, register: holding, address: 62, type: uint64, timestamp: s7_dt}
      - {name: run_time, class: time, register: holding, address: 66, type: int32, unit: ms}
`

func TestNormalizationKeys(t *testing.T) {
	cfg, err := Parse("linegate.yaml", []byte(normBase), env(nil))
	if err != nil {
		t.Fatal(err)
	}
	d := cfg.Devices[0]
	tg := d.Tags
	checks := []struct {
		name      string
		got, want any
	}{
		{"location", d.Location.String(), "Europe/Berlin"},
		{"state_times_every default", d.StateTimesEvery, DefaultStateTimesEvery},
		{"raw_range", tg[0].RawRange[1], 27648.0},
		{"range", tg[0].Range[1], 100.0},
		{"limits", tg[0].Limits[0], 0.0},
		{"deadband_percent gets a heartbeat", tg[0].ReportEvery, DefaultReportEvery},
		{"state_bits order kept", tg[1].StateBits[0], StateBit{Bit: 1, State: "fault"}},
		{"default_state", tg[1].DefaultState, "stopped"},
		{"is state", tg[1].IsState(), true},
		{"alarms", tg[2].Alarms[1], "door open"},
		{"timestamp", tg[3].Timestamp, "s7_dt"},
		{"shift display", d.ShiftStarts(), "[06:00 14:00 22:00] Europe/Berlin"},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s = %v, want %v", c.name, c.got, c.want)
		}
	}
}

func TestNormalizationErrors(t *testing.T) {
	tests := []struct {
		name     string
		from, to string
		want     string
	}{
		{"range alone", "raw_range: [0, 27648], range: [0, 100]", "range: [0, 100]", `linegate.yaml:11: device press01, tag level: range is the target of raw_range`},
		{"raw_range alone", "raw_range: [0, 27648], range: [0, 100]", "raw_range: [0, 27648]", `raw_range needs range`},
		{"raw_range one number", "raw_range: [0, 27648]", "raw_range: [27648]", `raw_range must be two finite numbers`},
		{"raw_range flat", "raw_range: [0, 27648]", "raw_range: [5, 5]", `raw_range [5, 5]: low must be below high`},
		{"raw_range with scale", "raw_range: [0, 27648]", "scale: 2, raw_range: [0, 27648]", `raw_range/range replace scale and offset`},
		{"limits reversed", "limits: [0, 100]", "limits: [100, 0]", `limits [100, 0]: low must be below high`},
		{"percent without span", "raw_range: [0, 27648], range: [0, 100], limits: [0, 100], ", "", `deadband_percent is a percent of the span`},
		{"percent too big", "deadband_percent: 0.5", "deadband_percent: 101", `deadband_percent 101 must be 0..100`},
		{"state bits and states", "default_state: stopped,", "default_state: stopped, states: {0: a},", `state_bits and states are two ways`},
		{"state bit too high", "{bit: 1, state: fault}", "{bit: 16, state: fault}", `state_bits: bit 16 must be 0..15`},
		{"state bit twice", "{bit: 0, state: running}", "{bit: 1, state: running}", `state_bits: bit 1 is listed twice`},
		{"state bit key typo", "{bit: 0, state: running}", "{bit: 0, sate: running}", `unknown key "sate" (did you mean "state"?)`},
		{"default without bits", "alarms: {0: motor overload, 1: door open}", "default_state: x", `default_state is the state when no bit`},
		{"state pass-through on integer", "alarms: {0: motor overload, 1: door open}", "state: true", `state: true passes state names through and needs type string`},
		{"alarm bit too high", "1: door open", "17: door open", `alarms: bit 17 must be 0..15`},
		{"alarm empty text", "1: door open", `1: ""`, `alarms: bit 1 has no text`},
		{"alarms on float", "address: 61, type: uint16", "address: 61, type: float32", `alarms read a bit word: type must be an integer`},
		{"alarms with counter", "alarms: {0: motor overload, 1: door open}", "counter: true, alarms: {0: motor overload}", `alarms cannot be combined`},
		{"unknown timestamp", "timestamp: s7_dt", "timestamp: s7", `unknown timestamp "s7" (unix_s | unix_ms | s7_dt | opcua)`},
		{"s7_dt needs uint64", "type: uint64, timestamp: s7_dt", "type: uint32, timestamp: s7_dt", `s7_dt is 8 bytes (4 registers): type must be uint64`},
		{"opcua timestamp on modbus", "timestamp: s7_dt", "timestamp: opcua", `timestamp opcua is an OPC UA DateTime`},
		{"timestamp with unit", "timestamp: s7_dt", "timestamp: s7_dt, unit: s", `a timestamp has no unit`},
		{"bad timezone", "timezone: Europe/Berlin", "timezone: Europe/Berlim", `linegate.yaml:8: device press01: unknown timezone "Europe/Berlim"`},
		{"bad shift", `"14:00"`, `"2pm"`, `shift start "2pm" is not HH:MM`},
		{"shift twice", `"14:00"`, `"06:00"`, `shift start 06:00 is given twice`},
		{"shifts without a state tag", "state_bits: [{bit: 1, state: fault}, {bit: 0, state: running}]", "scale: 2", `this device has none`},
		{"negative stale", "timestamp: s7_dt", "timestamp: s7_dt, stale_after: -1s", `stale_after -1s must be positive`},
		{"stale on modbus tag", "timestamp: s7_dt", "timestamp: s7_dt, stale_after: 5s", `stale_after judges source timestamps, and Modbus has none`},
		{"stale on modbus device", "    timezone: Europe/Berlin", "    timezone: Europe/Berlin\n    stale_after: 5s", `linegate.yaml:9: device press01: stale_after judges source timestamps`},
		{"state tag with deadband", "default_state: stopped,", "default_state: stopped, deadband: 1,", `a state tag cannot also scale`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			text := strings.Replace(normBase, tt.from, tt.to, 1)
			if text == normBase {
				t.Fatalf("replacement %q not found", tt.from)
			}
			_, err := Parse("linegate.yaml", []byte(text), env(nil))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error:\n%v\nwant it to contain:\n%s", err, tt.want)
			}
		})
	}
}

func TestStaleAfterOPCUA(t *testing.T) {
	text := `gateway: {id: gw1, site: s, area: a, line: l}
buffer: {path: /tmp/x.db}
uplink: {brokers: [tcp://127.0.0.1:1884]}
devices:
  - name: oven02
    driver: opcua
    endpoint: opc.tcp://127.0.0.1:4840
    stale_after: 30s
    tags:
      - {name: temp, class: process, node: "ns=2;s=T"}
      - {name: state, class: equipment, node: "ns=2;s=S", state: true, stale_after: 5s}
      - {name: clock, class: time, node: "ns=2;s=C", timestamp: opcua}
`
	cfg, err := Parse("linegate.yaml", []byte(text), env(nil))
	if err != nil {
		t.Fatal(err)
	}
	tg := cfg.Devices[0].Tags
	if tg[0].StaleAfter.D() != 30*time.Second || tg[1].StaleAfter.D() != 5*time.Second || !tg[1].IsState() {
		t.Fatalf("stale_after %v %v", tg[0].StaleAfter, tg[1].StaleAfter)
	}
}
