package agent

import (
	"fmt"
	"log/slog"
	"math"

	"github.com/linegate/linegate/configs"
	"github.com/linegate/linegate/drivers/modbus"
	"github.com/linegate/linegate/drivers/opcua"
)

// NewModbusDriver makes the driver of one configured Modbus device, with a
// link of its own (check, diagnostics).
func NewModbusDriver(d configs.Device, log *slog.Logger) (*modbus.Driver, error) {
	return newModbusIn(nil, d, log)
}

// newModbusIn makes a driver that shares its port or connection through
// pool (nil: its own).
func newModbusIn(pool *modbus.Pool, d configs.Device, log *slog.Logger) (*modbus.Driver, error) {
	gap := d.MaxGapValue()
	if gap == 0 {
		gap = -1 // the driver's 0 means "default"; the config's 0 means "never bridge"
	}
	mc := modbus.Config{
		Device:         d.Name,
		Address:        d.Address,
		UnitID:         d.UnitIDValue(),
		Timeout:        d.Timeout.D(),
		ByteOrder:      d.ByteOrder,
		MaxGap:         gap,
		Pause:          d.PauseBetweenRequests.D(),
		CloseAfterPoll: d.CloseAfterPoll,
		MaxConnections: d.MaxConnections,
		AnyUnitID:      !d.UnitIDCheckValue(),
		FirstReadDelay: d.FirstReadDelay.D(),
		Pool:           pool,
		Logger:         log.With("device", d.Name),
	}
	if m := d.MaxRegistersPerRequest; m != nil {
		mc.MaxRegisters = *m
	}
	for _, t := range d.Tags {
		mc.Tags = append(mc.Tags, modbus.Tag{
			Name:      t.Name,
			Register:  t.Register,
			Address:   t.AddressValue(),
			Type:      t.Type,
			Length:    t.Length,
			Bit:       t.BitValue(),
			ByteOrder: t.ByteOrder,
			// Only a writable tag's bit is ever rewritten.
			ReadModifyWrite: t.ReadModifyWrite && t.Writable,
		})
	}
	drv, err := modbus.New(mc)
	if err != nil {
		return nil, fmt.Errorf("device %s: %w", d.Name, err)
	}
	return drv, nil
}

// NewOPCUADriver builds the driver of one configured OPC UA device.
func NewOPCUADriver(d configs.Device, log *slog.Logger) (*opcua.Driver, error) {
	c := opcua.Config{
		Device:             d.Name,
		Endpoint:           d.Endpoint,
		SecurityPolicy:     d.SecurityPolicy,
		SecurityMode:       d.SecurityMode,
		PKIDir:             d.PKIDir,
		Interval:           d.PollInterval.D(),
		SamplingInterval:   d.SamplingInterval.D(),
		QueueSize:          uint32(max(d.QueueSize, 0)),
		KeepAlive:          d.KeepAlive.D(),
		MaxClockSkew:       d.MaxClockSkew.D(),
		AllowPlainPassword: d.AllowPlainPassword,
		Timeout:            d.Timeout.D(),
		Logger:             log.With("device", d.Name),
	}
	if a := d.Auth; a != nil {
		c.Username, c.Password = a.Username, a.Password.Reveal()
		c.UserCertFile, c.UserKeyFile = a.CertFile, a.KeyFile
	}
	for _, t := range d.Tags {
		tag := opcua.Tag{Name: t.Name, Node: t.Node, BrowsePath: t.BrowsePath}
		if d.Mode == "subscribe" {
			tag.Deadband = serverDeadband(t)
		}
		c.Tags = append(c.Tags, tag)
	}
	drv, err := opcua.New(c)
	if err != nil {
		return nil, fmt.Errorf("device %s: %w", d.Name, err)
	}
	return drv, nil
}

// serverDeadband is the deadband handed to the OPC UA server as the
// monitored item's filter. deadband is in the units of the published value
// (after scale, raw_range → range and the ms → s of a time tag); the server
// compares the node's raw values, so it gets the deadband in raw units. And
// half of it: the server reports only a change that exceeds its deadband,
// and the collector's own deadband, applied to the published value, is the
// one that decides.
func serverDeadband(t configs.Tag) float64 {
	if t.Deadband <= 0 {
		return 0
	}
	factor := t.ScaleValue()
	if len(t.RawRange) == 2 && len(t.Range) == 2 {
		factor = (t.Range[1] - t.Range[0]) / (t.RawRange[1] - t.RawRange[0])
	}
	if f, ok := configs.DurationUnits[t.Unit]; ok && t.Class == "time" && t.Timestamp == "" {
		factor *= f
	}
	raw := t.Deadband / math.Abs(factor) / 2
	if math.IsNaN(raw) || math.IsInf(raw, 0) {
		return 0 // no server filter: the collector filters alone
	}
	return raw
}
