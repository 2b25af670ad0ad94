package agent

import (
	"reflect"
	"testing"

	"github.com/linegate/linegate/configs"
	"github.com/linegate/linegate/uplink"
)

func TestSparkplugDevices(t *testing.T) {
	cfg := &configs.Config{
		Uplink: configs.Uplink{Format: "sparkplugb"},
		Devices: []configs.Device{
			{Name: "press01", Tags: []configs.Tag{
				{Name: "temperature", Type: "float32", Unit: "degC"},
				{Name: "door", Register: "coil", Type: "bool"},
				{Name: "mode", Type: "uint16", States: map[int64]string{0: "off", 1: "on"}},
				{Name: "recipe", Type: "string"},
			}},
			{Name: "oven02"},
		},
	}
	want := []uplink.SparkplugDevice{
		{Name: "press01", Tags: []uplink.SparkplugTag{
			{Name: "temperature", Unit: "degC"},
			{Name: "door", Kind: "bool"},
			{Name: "mode", Kind: "string"},
			{Name: "recipe", Kind: "string"},
		}},
		{Name: "oven02", Tags: []uplink.SparkplugTag{}},
	}
	if got := sparkplugDevices(cfg); !reflect.DeepEqual(got, want) {
		t.Errorf("sparkplugDevices:\n got %+v\nwant %+v", got, want)
	}
	cfg.Uplink.Format = "json"
	if got := sparkplugDevices(cfg); got != nil {
		t.Errorf("json: %+v, want nil", got)
	}
	if got := BdSeqPath("/var/lib/linegate/buffer.db"); got != "/var/lib/linegate/buffer.db.sparkplug-bdseq" {
		t.Errorf("BdSeqPath = %q", got)
	}
	if got := BdSeqPath(""); got != "" {
		t.Errorf("BdSeqPath(\"\") = %q, want none", got)
	}
}
