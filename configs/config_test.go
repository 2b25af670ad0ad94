package configs

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func env(m map[string]string) LookupEnv {
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

var exampleEnv = env(map[string]string{
	"OPCUA_PASSWORD": "secret",
	"DEMO_MODBUS":    "127.0.0.1:5020",
	"DEMO_OPCUA":     "127.0.0.1:4840",
	"DEMO_BROKER":    "127.0.0.1:18830",
	"DEMO_BUFFER":    "/tmp/demo.db",
})

func TestExamplesValidate(t *testing.T) {
	names := ExampleNames()
	if len(names) < 2 {
		t.Fatalf("embedded examples: %v", names)
	}
	for _, name := range names {
		t.Run(name, func(t *testing.T) {
			data, err := Example(name)
			if err != nil {
				t.Fatal(err)
			}
			cfg, err := Parse(name, data, exampleEnv)
			if err != nil {
				t.Fatalf("example does not validate:\n%v", err)
			}
			if len(cfg.Devices) == 0 {
				t.Fatal("no devices")
			}
			// The files on disk are the embedded ones.
			disk, err := os.ReadFile(name)
			if err != nil || string(disk) != string(data) {
				t.Fatalf("embedded %s differs from the file (%v)", name, err)
			}
		})
	}
}

const base = `gateway: {id: gw1, site: s, area: a, line: l}
buffer: {path: /tmp/x.db}
uplink: {brokers: [tcp://127.0.0.1:1884]}
devices:
  - name: press01
    driver: modbus
    address: tcp://127.0.0.1:502
    tags:
      - {name: temp, class: process, register: holding, address: 0, type: float32}
`

func TestDefaults(t *testing.T) {
	cfg, err := Parse("linegate.yaml", []byte(base), env(nil))
	if err != nil {
		t.Fatal(err)
	}
	d := cfg.Devices[0]
	checks := []struct {
		name      string
		got, want any
	}{
		{"max_size", cfg.Buffer.MaxSize, DefaultMaxSize},
		{"commit_interval", cfg.Buffer.CommitInterval.D(), 50 * time.Millisecond},
		{"client_id", cfg.Uplink.ClientID, "linegate-gw1"},
		{"qos", cfg.Uplink.QoSLevel(), byte(1)},
		{"topic_prefix", cfg.Uplink.TopicPrefix, "linegate"},
		{"max_inflight", cfg.Uplink.MaxInflight, 64},
		{"ack_timeout", cfg.Uplink.AckTimeout.D(), 30 * time.Second},
		{"reconnect_max", cfg.Uplink.ReconnectMax.D(), 30 * time.Second},
		{"max_message_size", cfg.Uplink.MaxMessageSize, ByteSize(256 << 10)},
		{"http", cfg.HTTP.ListenAddr(), "127.0.0.1:9870"},
		{"poll", d.PollInterval.D(), time.Second},
		{"timeout", d.Timeout.D(), time.Second},
		{"unit", d.UnitIDValue(), byte(1)},
		{"byte_order", d.ByteOrder, "ABCD"},
		{"max_gap", d.MaxGapValue(), DefaultMaxGap},
		{"scale", d.Tags[0].ScaleValue(), 1.0},
		{"bit", d.Tags[0].BitValue(), -1},
		{"device line", d.Line, 5},
		{"tag line", d.Tags[0].Line, 9},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s = %v, want %v", c.name, c.got, c.want)
		}
	}
}

func TestErrors(t *testing.T) {
	tests := []struct {
		name    string
		replace [2]string // applied to base
		want    string
	}{
		{"max_age", [2]string{"buffer: {path: /tmp/x.db}", "buffer: {path: /tmp/x.db, max_age: 10s}"}, `linegate.yaml:2: buffer: max_age 10s must be 0 (keep until the size cap) or at least 1m`},
		{"ack_timeout", [2]string{"brokers: [tcp://127.0.0.1:1884]", "brokers: [tcp://127.0.0.1:1884], ack_timeout: 100ms"}, `linegate.yaml:3: uplink: ack_timeout 100ms must be between 1s and 10m`},
		{"reconnect_max", [2]string{"brokers: [tcp://127.0.0.1:1884]", "brokers: [tcp://127.0.0.1:1884], reconnect_max: 2h"}, `linegate.yaml:3: uplink: reconnect_max 2h0m0s must be between 1s and 1h`},
		{"max_message_size", [2]string{"brokers: [tcp://127.0.0.1:1884]", "brokers: [tcp://127.0.0.1:1884], max_message_size: 512"}, `linegate.yaml:3: uplink: max_message_size 512 must be between 1KiB and 256MiB (MQTT's largest packet)`},
		{"unknown type", [2]string{"type: float32", "type: float"}, `linegate.yaml:9: device press01, tag temp: unknown type "float"`},
		{"unknown key with suggestion", [2]string{"    driver: modbus", "    driver: modbus\n    pol_interval: 1s"}, `linegate.yaml:7: device press01: unknown key "pol_interval" (did you mean "poll_interval"?)`},
		{"unknown top key", [2]string{"buffer:", "bufer: {}\nbuffer:"}, `linegate.yaml:2: unknown key "bufer" (did you mean "buffer"?)`},
		{"unknown tag key", [2]string{"type: float32}", "type: float32, scael: 2}"}, `linegate.yaml:9: device press01, tag temp: unknown key "scael" (did you mean "scale"?)`},
		{"duplicate tag", [2]string{"type: float32}\n", "type: float32}\n      - {name: temp, class: process, register: holding, address: 2, type: int16}\n"}, `linegate.yaml:10: device press01, tag temp: duplicate tag name (first defined at line 9)`},
		{"duplicate device", [2]string{"devices:\n", "devices:\n  - {name: press01, driver: modbus, address: tcp://h:502, tags: [{name: a, class: process, register: coil, address: 1}]}\n"}, `duplicate device name (first defined at line 5)`},
		{"bad class", [2]string{"class: process", "class: proces"}, `linegate.yaml:9: device press01, tag temp: unknown class "proces"`},
		{"bad duration", [2]string{"    driver: modbus", "    driver: modbus\n    poll_interval: 1"}, `linegate.yaml:7: device press01: poll_interval: invalid duration "1"`},
		{"bad yaml", [2]string{"devices:", "devices: ["}, `linegate.yaml:`},
		{"address range", [2]string{"address: 0, type: float32", "address: 65535, type: float32"}, `address 65535 (+2 registers) is outside 0..65535`},
		{"coil not bool", [2]string{"register: holding, address: 0, type: float32", "register: coil, address: 0, type: int16"}, `a coil is one bit: type must be bool`},
		{"bit out of range", [2]string{"type: float32}", "type: bool, bit: 16}"}, `bit 16 must be 0..15`},
		{"string without length", [2]string{"type: float32}", "type: string}"}, `type string needs length`},
		{"scale zero", [2]string{"type: float32}", "type: float32, scale: 0}"}, `scale 0 would erase the value`},
		{"states on float", [2]string{"type: float32}", "type: float32, states: {0: a}}"}, `states map integer codes`},
		{"counter on float", [2]string{"type: float32}", "type: float32, counter: true}"}, `counter needs an integer type`},
		{"time unit", [2]string{"class: process, register: holding, address: 0, type: float32", "class: time, register: holding, address: 0, type: float32, unit: days"}, `unit must be ms, s, min or h`},
		{"unit id", [2]string{"    driver: modbus", "    driver: modbus\n    unit_id: 300"}, `linegate.yaml:7: device press01: unit_id 300 must be 0..255`},
		{"rtu baud", [2]string{"tcp://127.0.0.1:502", "rtu:///dev/ttyUSB0?baud=12345"}, `linegate.yaml:7: device press01: address "rtu:///dev/ttyUSB0?baud=12345": baud "12345": want one of`},
		{"rtu parity", [2]string{"tcp://127.0.0.1:502", "rtu:///dev/ttyUSB0?parity=M"}, `parity "M": want N, E or O`},
		{"rtu data bits", [2]string{"tcp://127.0.0.1:502", "rtu:///dev/ttyUSB0?data_bits=7"}, `RTU needs data_bits 8`},
		{"rtu stop bits", [2]string{"tcp://127.0.0.1:502", "rtu:///dev/ttyUSB0?stop_bits=0"}, `stop_bits "0": want 1 or 2`},
		{"rtu option", [2]string{"tcp://127.0.0.1:502", "rtu:///dev/ttyUSB0?speed=9600"}, `unknown option "speed"`},
		{"rtu two slashes", [2]string{"tcp://127.0.0.1:502", "rtu://dev/ttyUSB0"}, `three slashes`},
		{"rtu unit 0", [2]string{"address: tcp://127.0.0.1:502", "address: rtu:///dev/ttyUSB0\n    unit_id: 0"}, `linegate.yaml:8: device press01: unit_id 0 must be 1..247 on a serial line`},
		{"rtu close_after_poll", [2]string{"address: tcp://127.0.0.1:502", "address: rtu:///dev/ttyUSB0\n    close_after_poll: true"}, `linegate.yaml:8: device press01: close_after_poll is for tcp:// devices`},
		{"rtu max_connections", [2]string{"address: tcp://127.0.0.1:502", "address: ascii:///dev/ttyUSB0\n    max_connections: 2"}, `linegate.yaml:8: device press01: max_connections is for tcp:// devices`},
		{"scheme", [2]string{"tcp://127.0.0.1:502", "udp://127.0.0.1:502"}, `scheme must be tcp://, rtu:// or ascii://`},
		{"max registers", [2]string{"    driver: modbus", "    driver: modbus\n    max_registers_per_request: 126"}, `linegate.yaml:7: device press01: max_registers_per_request 126 must be 1..125`},
		{"pause", [2]string{"    driver: modbus", "    driver: modbus\n    pause_between_requests: 11s"}, `linegate.yaml:7: device press01: pause_between_requests 11s must be 0..10s`},
		{"address base", [2]string{"    driver: modbus", "    driver: modbus\n    address_base: 2"}, `linegate.yaml:7: device press01: address_base 2 must be 0`},
		{"address base 1 and 0", [2]string{"    driver: modbus", "    driver: modbus\n    address_base: 1"}, `linegate.yaml:10: device press01, tag temp: address 0: with address_base 1, addresses start at 1`},
		{"max connections", [2]string{"    driver: modbus", "    driver: modbus\n    max_connections: 65"}, `max_connections 65 must be 1..64`},
		{"rtu unit_id_check", [2]string{"address: tcp://127.0.0.1:502", "address: rtu:///dev/ttyUSB0\n    unit_id_check: false"}, `linegate.yaml:8: device press01: unit_id_check is for tcp:// devices`},
		{"rtu first_read_delay", [2]string{"address: tcp://127.0.0.1:502", "address: rtu:///dev/ttyUSB0\n    first_read_delay: 1s"}, `linegate.yaml:8: device press01: first_read_delay is for tcp:// devices`},
		{"first_read_delay range", [2]string{"    driver: modbus", "    driver: modbus\n    first_read_delay: 11s"}, `first_read_delay 11s must be 0..10s`},
		{"unit_id_check not bool", [2]string{"    driver: modbus", "    driver: modbus\n    unit_id_check: maybe"}, `linegate.yaml:7: device press01: unit_id_check "maybe" is not true or false`},
		{"rs485 bad", [2]string{"address: tcp://127.0.0.1:502", "address: rtu:///dev/ttyS1?rs485=maybe"}, `rs485 "maybe": want true or false`},
		{"rts_toggle", [2]string{"address: tcp://127.0.0.1:502", "address: rtu:///dev/ttyS1?rts_toggle=1"}, `rts_toggle is not supported`},
		{"shared first_read_delay", [2]string{"    tags:\n      - {name: temp, class: process, register: holding, address: 0, type: float32}\n", "    first_read_delay: 200ms\n    tags:\n      - {name: temp, class: process, register: holding, address: 0, type: float32}\n  - {name: press02, driver: modbus, address: tcp://127.0.0.1:502, unit_id: 2, tags: [{name: a, class: process, register: coil, address: 1}]}\n"}, `device press02: shares tcp://127.0.0.1:502 with device press01 (line 5), so its first_read_delay must be the same: 0s here, 200ms there`},
		{"modicon digits", [2]string{"register: holding, address: 0", "address: \"4001\""}, `linegate.yaml:9: device press01, tag temp: address "4001": a Modicon reference has 5 or 6 digits`},
		{"modicon table", [2]string{"register: holding, address: 0", "address: \"20001\""}, `address "20001": a Modicon reference starts with 0 (coil), 1 (discrete), 3 (input) or 4 (holding)`},
		{"modicon zero", [2]string{"register: holding, address: 0", "address: \"40000\""}, `address "40000": the offset after the first digit must be 1..9999`},
		{"modicon register clash", [2]string{"register: holding, address: 0", "register: input, address: \"40001\""}, `address "40001" is a holding reference, but register is input`},
		{"modicon end", [2]string{"register: holding, address: 0", "address: \"465536\""}, `address "465536" (+2 registers) is outside 0..65535`},
		{"address list", [2]string{"address: 0, type", "address: [1], type"}, `linegate.yaml:9: device press01, tag temp: address must be a number or a Modicon reference`},
		{"shared port settings", [2]string{"address: tcp://127.0.0.1:502\n    tags:\n      - {name: temp, class: process, register: holding, address: 0, type: float32}\n", "address: rtu:///dev/ttyUSB0?baud=9600\n    tags:\n      - {name: temp, class: process, register: holding, address: 0, type: float32}\n  - {name: press02, driver: modbus, address: rtu:///dev/ttyUSB0, unit_id: 2, tags: [{name: a, class: process, register: coil, address: 1}]}\n"}, `linegate.yaml:10: device press02: shares /dev/ttyUSB0 with device press01 (line 5), so its protocol and line settings must be the same: rtu 19200 8E1 here, rtu 9600 8E1 there`},
		{"shared gateway connections", [2]string{"    tags:\n      - {name: temp, class: process, register: holding, address: 0, type: float32}\n", "    max_connections: 2\n    tags:\n      - {name: temp, class: process, register: holding, address: 0, type: float32}\n  - {name: press02, driver: modbus, address: tcp://127.0.0.1:502, unit_id: 2, tags: [{name: a, class: process, register: coil, address: 1}]}\n"}, `device press02: shares tcp://127.0.0.1:502 with device press01 (line 5), so its max_connections must be the same: 1 here, 2 there`},
		{"broker scheme", [2]string{"tcp://127.0.0.1:1884", "http://127.0.0.1:1884"}, `linegate.yaml:3: uplink: broker "http://127.0.0.1:1884": scheme must be`},
		{"gateway id", [2]string{"id: gw1", "id: gw/1"}, `linegate.yaml:1: gateway: id "gw/1" may only hold`},
		{"missing site", [2]string{"site: s, ", ""}, `gateway: site is required`},
		{"qos 2", [2]string{"brokers: [tcp://127.0.0.1:1884]", "brokers: [tcp://127.0.0.1:1884], qos: 2"}, `qos 2 is not supported`},
		{"max_size small", [2]string{"path: /tmp/x.db", "path: /tmp/x.db, max_size: 1KiB"}, `max_size 1KiB is below the minimum`},
		{"env unset", [2]string{"tcp://127.0.0.1:502", "tcp://${PLC_IP}:502"}, `linegate.yaml:7: environment variable PLC_IP is not set`},
		{"opcua key on modbus", [2]string{"    driver: modbus", "    driver: modbus\n    mode: poll"}, `mode is an OPC UA setting`},
		{"no tags", [2]string{"    tags:\n      - {name: temp, class: process, register: holding, address: 0, type: float32}\n", "    tags: []\n"}, `device press01: no tags`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			text := strings.Replace(base, tt.replace[0], tt.replace[1], 1)
			if text == base {
				t.Fatalf("replacement %q not found", tt.replace[0])
			}
			_, err := Parse("/etc/linegate/linegate.yaml", []byte(text), env(nil))
			if err == nil {
				t.Fatalf("no error for:\n%s", text)
			}
			var ce *Error
			if !errors.As(err, &ce) {
				t.Fatalf("error %T is not *configs.Error: %v", err, err)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error:\n%v\nwant it to contain:\n%s", err, tt.want)
			}
		})
	}
}

func TestEnvExpansion(t *testing.T) {
	text := strings.Replace(base, "brokers: [tcp://127.0.0.1:1884]", "brokers: [tcp://127.0.0.1:1884], password: ${PW}", 1)
	text = strings.Replace(text, "tcp://127.0.0.1:502", "tcp://${PLC}:502", 1)
	cfg, err := Parse("x.yaml", []byte(text), env(map[string]string{"PW": "a #b: $$c", "PLC": "10.0.0.21"}))
	if err != nil {
		t.Fatal(err)
	}
	// The value is taken verbatim, not re-read as YAML.
	if got := cfg.Uplink.Password.Reveal(); got != "a #b: $$c" {
		t.Errorf("password = %q", got)
	}
	if cfg.Devices[0].Address != "tcp://10.0.0.21:502" {
		t.Errorf("address = %q", cfg.Devices[0].Address)
	}
	lit := strings.Replace(base, "id: gw1", "id: gw$$1", 1)
	if _, err := Parse("x.yaml", []byte(lit), env(nil)); err == nil || !strings.Contains(err.Error(), `id "gw$1"`) {
		t.Errorf("$$ is not a literal $: %v", err)
	}
}

func TestPasswordFileAndSecret(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "mqtt.pass"), []byte("hunter2\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	text := strings.Replace(base, "brokers: [tcp://127.0.0.1:1884]", "brokers: [tcp://127.0.0.1:1884], username: gw, password_file: mqtt.pass", 1)
	cfg, err := Parse(filepath.Join(dir, "linegate.yaml"), []byte(text), env(nil))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Uplink.Password.Reveal() != "hunter2" {
		t.Fatalf("password from file = %q", cfg.Uplink.Password.Reveal())
	}
	for _, s := range []string{cfg.Uplink.Password.String(), strings.Join([]string{"%v", "%s", "%#v"}, "")} {
		if strings.Contains(s, "hunter2") {
			t.Fatalf("secret printed: %s", s)
		}
	}
	if _, err := Parse(filepath.Join(dir, "linegate.yaml"), []byte(strings.Replace(text, "mqtt.pass", "missing.pass", 1)), env(nil)); err == nil {
		t.Fatal("missing password_file accepted")
	}
}

func TestByteSize(t *testing.T) {
	for in, want := range map[string]ByteSize{"1GiB": 1 << 30, "512MiB": 512 << 20, "64 KiB": 64 << 10, "1.5GB": 1.5e9, "4096": 4096} {
		got, err := ParseByteSize(in)
		if err != nil || got != want {
			t.Errorf("ParseByteSize(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"", "abc", "-1MiB", "1XB"} {
		if _, err := ParseByteSize(in); err == nil {
			t.Errorf("ParseByteSize(%q) accepted", in)
		}
	}
}

func TestModbusAddressesAndQuirks(t *testing.T) {
	const cfgText = `gateway: {id: gw1, site: s, area: a, line: l}
buffer: {path: /tmp/x.db}
uplink: {brokers: [tcp://127.0.0.1:1884]}
devices:
  - name: press01
    driver: modbus
    address: rtu:///dev/ttyUSB0?baud=9600&parity=N&stop_bits=2
    unit_id: 3
    address_base: 1
    max_registers_per_request: 32
    pause_between_requests: 20ms
    tags:
      - {name: based, class: process, register: holding, address: 1, type: uint16}
      - {name: hr, class: process, address: "40001", type: float32}
      - {name: ir, class: process, address: "30010", type: int16}
      - {name: co, class: equipment, address: "00001"}
      - {name: di, class: equipment, address: "10002"}
      - {name: hr6, class: process, address: "465535", type: uint16}
      - {name: text, class: equipment, register: holding, address: 20, type: string, length: 4, byte_order: BADC}
  - name: press02
    driver: modbus
    address: rtu:///dev/ttyUSB0?baud=9600&parity=N&stop_bits=2
    unit_id: 4
    tags:
      - {name: plain, class: process, register: input, address: 7, type: uint16}
  - name: gw-unit5
    driver: modbus
    address: tcp://127.0.0.1:502
    unit_id: 5
    max_connections: 2
    close_after_poll: true
    unit_id_check: false
    first_read_delay: 250ms
    tags:
      - {name: t, class: process, register: holding, address: 0, type: uint16}
`
	cfg, err := Parse("linegate.yaml", []byte(cfgText), env(nil))
	if err != nil {
		t.Fatal(err)
	}
	want := []struct {
		register string
		addr     uint16
		typ      string
	}{
		{"holding", 0, "uint16"}, {"holding", 0, "float32"}, {"input", 9, "int16"},
		{"coil", 0, "bool"}, {"discrete", 1, "bool"}, {"holding", 65534, "uint16"}, {"holding", 19, "string"}, // address_base 1: 20 is 19
	}
	for i, w := range want {
		tag := cfg.Devices[0].Tags[i]
		if tag.Register != w.register || tag.AddressValue() != w.addr || tag.Type != w.typ {
			t.Errorf("%s: %s %d %s, want %s %d %s", tag.Name, tag.Register, tag.AddressValue(), tag.Type, w.register, w.addr, w.typ)
		}
	}
	if got := cfg.Devices[1].Tags[0].AddressValue(); got != 7 {
		t.Errorf("address_base is per device: press02 address %d, want 7", got)
	}
	d := cfg.Devices[0]
	if *d.MaxRegistersPerRequest != 32 || d.PauseBetweenRequests.D() != 20*time.Millisecond || d.AddressBase != 1 {
		t.Errorf("quirks: %+v", d)
	}
	g := cfg.Devices[2]
	if g.MaxConnections != 2 || !g.CloseAfterPoll || g.UnitIDCheckValue() || g.FirstReadDelay.D() != 250*time.Millisecond {
		t.Errorf("gateway options: %+v", g)
	}
	if !cfg.Devices[1].UnitIDCheckValue() {
		t.Errorf("unit_id_check defaults to true")
	}
	if s, err := ParseSerialAddress("rtu:///dev/ttyS1?rs485=true"); err != nil || !s.RS485 || s.String() != "19200 8E1 rs485" {
		t.Errorf("rs485: %+v %v", s, err)
	}
	s, err := ParseSerialAddress(d.Address)
	if err != nil || s != (SerialSettings{"/dev/ttyUSB0", 9600, "N", 8, 2, false}) {
		t.Errorf("serial settings %+v, %v", s, err)
	}
}
