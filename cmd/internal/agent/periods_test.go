package agent

import (
	"log/slog"
	"testing"

	"github.com/linegate/linegate/configs"
)

// TestStateTimesWithoutShifts: a device with a state tag and no shifts
// gets a daily plan (state times per calendar day); one without a state tag
// gets none.
func TestStateTimesWithoutShifts(t *testing.T) {
	cfg, err := configs.Parse("p.yaml", []byte(`gateway: {id: gw1, site: s, area: a, line: l}
buffer: {path: /tmp/x.db}
uplink: {brokers: [tcp://127.0.0.1:1884]}
devices:
  - name: press01
    driver: modbus
    address: tcp://127.0.0.1:1502
    timezone: Europe/Berlin
    tags:
      - {name: state, class: equipment, register: holding, address: 10, type: uint16, states: {0: stopped, 1: running}}
  - name: press02
    driver: modbus
    address: tcp://127.0.0.1:1502
    tags:
      - {name: temperature, class: process, register: holding, address: 0, type: float32}
`), func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	devs, err := BuildDevices(cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		for _, d := range devs {
			d.Driver.Close()
		}
	}()
	if devs[0].Shifts == nil {
		t.Error("press01 (a state tag, no shifts) has no plan: it would publish no state times")
	}
	if devs[1].Shifts != nil {
		t.Error("press02 (no state tag) has a plan")
	}
}
