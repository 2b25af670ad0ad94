package agent

import (
	"testing"
	"time"

	"github.com/linegate/linegate/configs"
)

func TestDeviceDigest(t *testing.T) {
	scale := 0.1
	base := func() configs.Device {
		unit := 1
		return configs.Device{
			Name: "press01", Driver: "opcua", Endpoint: "opc.tcp://127.0.0.1:4840", Line: 12,
			Auth: &configs.Auth{Username: "op", Password: "secret"},
			Tags: []configs.Tag{
				{Name: "temp", Class: "process", Node: "ns=2;s=T", Scale: &scale, Line: 14},
				{Name: "state", Class: "equipment", Node: "ns=2;s=S", States: map[int64]string{1: "running", 2: "idle"}, Line: 15},
			},
			UnitID: &unit,
		}
	}
	ref := deviceDigest(base())
	tests := []struct {
		name   string
		change func(*configs.Device)
		same   bool
	}{
		{"unchanged", func(*configs.Device) {}, true},
		{"moved lines", func(d *configs.Device) { d.Line, d.Tags[0].Line, d.Tags[1].Line = 40, 42, 43 }, true},
		{"loaded location", func(d *configs.Device) { d.Location = time.UTC }, true},
		{"states in another order", func(d *configs.Device) { d.Tags[1].States = map[int64]string{2: "idle", 1: "running"} }, true},
		{"password", func(d *configs.Device) { d.Auth.Password = "other" }, false},
		{"auth removed", func(d *configs.Device) { d.Auth = nil }, false},
		{"scale", func(d *configs.Device) { s := 0.2; d.Tags[0].Scale = &s }, false},
		{"scale removed", func(d *configs.Device) { d.Tags[0].Scale = nil }, false},
		{"state name", func(d *configs.Device) { d.Tags[1].States[2] = "stopped" }, false},
		{"tag removed", func(d *configs.Device) { d.Tags = d.Tags[:1] }, false},
		{"tags swapped", func(d *configs.Device) { d.Tags[0], d.Tags[1] = d.Tags[1], d.Tags[0] }, false},
		{"unit id", func(d *configs.Device) { u := 2; d.UnitID = &u }, false},
		{"name and node swap text", func(d *configs.Device) { d.Tags[0].Name, d.Tags[0].Class = "tempprocess", "" }, false},
		{"timezone", func(d *configs.Device) { d.Timezone = "Europe/Berlin" }, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := base()
			tt.change(&d)
			if got := deviceDigest(d) == ref; got != tt.same {
				t.Fatalf("digest equal = %v, want %v", got, tt.same)
			}
		})
	}
}
