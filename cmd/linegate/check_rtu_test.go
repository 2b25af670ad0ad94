package main

import (
	"strings"
	"testing"
)

// TestCheckPrintsSerialPlans: RTU and ASCII devices get their request plan
// and quirks printed, and devices sharing a port or gateway are named.
func TestCheckPrintsSerialPlans(t *testing.T) {
	cfg := writeFile(t, "rtu.yaml", `gateway: {id: gw1, site: s, area: a, line: l}
buffer: {path: /tmp/linegate-check-rtu.db}
uplink: {brokers: ["tcp://127.0.0.1:1884"]}
devices:
  - name: press01
    driver: modbus
    address: rtu:///dev/ttyUSB0?baud=9600&parity=N
    unit_id: 1
    address_base: 1
    max_registers_per_request: 4
    pause_between_requests: 20ms
    tags:
      - {name: a, class: process, register: holding, address: 1, type: uint16}
      - {name: b, class: process, register: holding, address: 3, type: float32}
      - {name: c, class: process, address: "40006", type: uint32}
  - name: press02
    driver: modbus
    address: rtu:///dev/ttyUSB0?baud=9600&parity=N
    unit_id: 2
    tags:
      - {name: d, class: equipment, address: "10001"}
  - name: scale
    driver: modbus
    address: ascii:///dev/ttyS1?data_bits=7
    unit_id: 9
    tags:
      - {name: w, class: process, register: input, address: 0, type: int16}
  - name: gw1
    driver: modbus
    address: tcp://127.0.0.1:5020
    unit_id: 1
    close_after_poll: true
    unit_id_check: false
    first_read_delay: 200ms
    tags:
      - {name: x, class: process, register: coil, address: 0}
  - name: gw2
    driver: modbus
    address: tcp://127.0.0.1:5020
    unit_id: 2
    first_read_delay: 200ms
    tags:
      - {name: y, class: process, register: coil, address: 0}
`)
	code, out, errOut := run(t, "check", "-c", cfg)
	if code != exitOK {
		t.Fatalf("exit %d\n%s\n%s", code, out, errOut)
	}
	for _, want := range []string{
		"device press01: modbus rtu:///dev/ttyUSB0?baud=9600&parity=N unit 1, byte order ABCD; max 4 registers/request, pause 20ms between requests, addresses from 1",
		"holding 0 (1)",
		`holding 5 ("40006")`,
		// 0..0, 2..3, 5..6: max_registers_per_request 4 keeps 0..3 and 5..6 apart.
		"plan: 2 read(s) per cycle\n    holding 0x0000+4 (2 tags)\n    holding 0x0005+2 (1 tag)",
		"device scale: modbus ascii:///dev/ttyS1?data_bits=7 unit 9",
		"device gw1: modbus tcp://127.0.0.1:5020 unit 1, byte order ABCD; close after poll, any unit id in replies, first read 200ms after connect",
		"plan: 1 read(s) per cycle\n    input 0x0000+1 (1 tag)",
		"shared Modbus links (one request at a time per connection):\n  /dev/ttyUSB0 (rtu 9600 8N1): press01 (unit 1), press02 (unit 2)\n  tcp://127.0.0.1:5020: gw1 (unit 1), gw2 (unit 2)",
		"5 device(s), 7 tag(s), 6 Modbus read(s) per cycle",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}
