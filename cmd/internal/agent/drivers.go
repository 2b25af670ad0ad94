package agent

import (
	"fmt"
	"log/slog"

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
	mc := modbus.Config{
		Device:         d.Name,
		Address:        d.Address,
		UnitID:         d.UnitIDValue(),
		Timeout:        d.Timeout.D(),
		ByteOrder:      d.ByteOrder,
		MaxGap:         d.ModbusMaxGap(),
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
		QueueSize:          d.QueueSizeValue(),
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
		if d.Subscribes() {
			tag.Deadband = t.ServerDeadband()
		}
		c.Tags = append(c.Tags, tag)
	}
	drv, err := opcua.New(c)
	if err != nil {
		return nil, fmt.Errorf("device %s: %w", d.Name, err)
	}
	return drv, nil
}
