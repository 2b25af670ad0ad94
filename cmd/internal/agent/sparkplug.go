package agent

import (
	"github.com/linegate/linegate/configs"
	"github.com/linegate/linegate/uplink"
)

// sparkplugDevices is the configured tag list the Sparkplug uplink births
// before the first read. Kind is set only where the config settles the
// value's type; a wrong guess would cost a second DBIRTH, not a wrong value.
func sparkplugDevices(cfg *configs.Config) []uplink.SparkplugDevice {
	if cfg.Uplink.Format != uplink.FormatSparkplugB {
		return nil
	}
	out := make([]uplink.SparkplugDevice, 0, len(cfg.Devices))
	for _, d := range cfg.Devices {
		sd := uplink.SparkplugDevice{Name: d.Name, Tags: make([]uplink.SparkplugTag, 0, len(d.Tags))}
		for _, t := range d.Tags {
			kind := ""
			switch {
			case t.IsState():
				kind = "string"
			case t.Type == "bool" || t.Type == "string":
				kind = t.Type
			}
			sd.Tags = append(sd.Tags, uplink.SparkplugTag{Name: t.Name, Unit: t.Unit, Kind: kind})
		}
		out = append(out, sd)
	}
	return out
}

// BdSeqPath is where the Sparkplug bdSeq is kept: beside the buffer file
// ("" without one: not persisted).
func BdSeqPath(bufferPath string) string {
	if bufferPath == "" {
		return ""
	}
	return bufferPath + ".sparkplug-bdseq"
}
