package agent

import (
	"github.com/linegate/linegate/collector"
	"github.com/linegate/linegate/configs"
)

// oeePlan is the collector's form of a device's oee: block, nil without one.
func oeePlan(d configs.Device) *collector.OEE {
	o := d.OEE
	if o == nil {
		return nil
	}
	cats := make(map[string]collector.Category, len(o.Categories))
	for k, c := range o.Categories {
		switch c {
		case configs.OEERun:
			cats[k] = collector.OEERun
		case configs.OEEPlannedStop:
			cats[k] = collector.OEEPlannedStop
		case configs.OEEUnplannedStop:
			cats[k] = collector.OEEUnplannedStop
		default:
			cats[k] = collector.OEEUnknown
		}
	}
	return &collector.OEE{
		StateTag:       o.StateTag,
		Categories:     cats,
		TotalCounter:   o.TotalCounter,
		GoodCounter:    o.GoodCounter,
		RejectsCounter: o.RejectsCounter,
		IdealCycle:     o.IdealCycleSeconds,
	}
}
