package agent

import (
	"fmt"
	"log/slog"
	"maps"
	"slices"

	"github.com/linegate/linegate/collector"
	"github.com/linegate/linegate/configs"
	"github.com/linegate/linegate/drivers"
	"github.com/linegate/linegate/drivers/modbus"
)

// BuildDevices turns the config's devices into collector devices with
// their drivers (the agent, `linegate tags`, `linegate check --connect`).
//
// Modbus devices on one serial port or one TCP address share its link
// through one pool: it holds no goroutine, and a link's connection closes
// when the last of its drivers closes (the collector closes them all when
// it stops).
func BuildDevices(cfg *configs.Config, log *slog.Logger) ([]collector.Device, error) {
	return buildDevicesIn(modbus.NewPool(), cfg.Devices, log, false)
}

// buildDevicesIn builds devs with their Modbus links in pool (a reload
// reuses the running agent's, so that a restarted device shares its port
// with the devices that keep running). On an error the drivers already made
// are closed. compact compacts each device's tags as it is built
// (collector.Device.Compact), for the collector: the full tags of all
// devices are then never live at once.
func buildDevicesIn(pool *modbus.Pool, devs []configs.Device, log *slog.Logger, compact bool) (_ []collector.Device, err error) {
	var out []collector.Device
	defer func() {
		if err != nil {
			for _, d := range out {
				d.Driver.Close()
			}
		}
	}()
	for _, d := range devs {
		var drv drivers.Driver
		switch d.Driver {
		case "modbus":
			m, err := newModbusIn(pool, d, log)
			if err != nil {
				return nil, err
			}
			drv = m
		case "opcua":
			o, err := NewOPCUADriver(d, log)
			if err != nil {
				return nil, err
			}
			drv = o
		default:
			return nil, fmt.Errorf("device %s: driver %s is not available in this version", d.Name, d.Driver)
		}
		shifts, err := shiftPlan(d)
		if err != nil {
			drv.Close()
			return nil, err
		}
		cd := collector.Device{
			Name:      d.Name,
			Interval:  d.PollInterval.D(),
			Driver:    drv,
			Tags:      collectorTags(d),
			Shifts:    shifts,
			OEE:       oeePlan(d),
			Subscribe: d.Subscribes(),
		}
		if compact {
			cd.Compact()
		}
		out = append(out, cd)
	}
	return out, nil
}

func collectorTags(d configs.Device) []collector.Tag {
	tags := make([]collector.Tag, 0, len(d.Tags))
	for _, t := range d.Tags {
		ct := collector.Tag{
			Name:        t.Name,
			Class:       t.Class,
			Unit:        t.Unit,
			Scale:       t.ScaleValue(),
			Offset:      t.Offset,
			Float32:     t.Type == "float32",
			Deadband:    t.Deadband,
			ReportEvery: t.ReportEvery.D(),
			States:      t.States,
			Counter:     t.Counter,
			CounterBits: t.CounterBits(d.Driver),
			ToSeconds:   t.SecondsFactor(),
		}
		normalizationRules(&ct, t, d)
		tags = append(tags, ct)
	}
	return tags
}

// normalizationRules copies the normalization keys (maps, limits, state
// and alarm bits, timestamps, staleness) into a collector tag;
// collectorTags does scale, offset, deadband and counters.
func normalizationRules(ct *collector.Tag, t configs.Tag, d configs.Device) {
	if rawLo, rawHi, lo, hi, ok := t.LinearMap(); ok {
		ct.Map = &collector.LinearMap{RawLo: rawLo, RawHi: rawHi, Lo: lo, Hi: hi}
	}
	if len(t.Limits) == 2 {
		ct.Limits = &[2]float64{t.Limits[0], t.Limits[1]}
	}
	ct.DeadbandPercent = t.DeadbandPercent
	ct.State = t.State
	for _, b := range t.StateBits {
		ct.StateBits = append(ct.StateBits, collector.StateBit{Bit: b.Bit, State: b.State})
	}
	ct.DefaultState = t.DefaultState
	for _, bit := range slices.Sorted(maps.Keys(t.Alarms)) {
		ct.Alarms = append(ct.Alarms, collector.Alarm{Bit: bit, Text: t.Alarms[bit]})
	}
	ct.Timestamp = t.Timestamp
	ct.Location = d.Location
	ct.StaleAfter = t.StaleAfter.D()
}

// shiftPlan is the device's plan for the state times: its shifts, or
// calendar days when it has none; nil without a state tag.
func shiftPlan(d configs.Device) (*collector.ShiftPlan, error) {
	starts := d.PeriodStarts()
	if starts == nil {
		return nil, nil
	}
	p, err := collector.NewShiftPlan(starts, d.Location, d.StateTimesEvery.D())
	if err != nil {
		return nil, fmt.Errorf("device %s: %w", d.Name, err)
	}
	return p, nil
}
