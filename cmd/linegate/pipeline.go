package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/linegate/linegate/buffer"
	"github.com/linegate/linegate/collector"
	"github.com/linegate/linegate/configs"
	"github.com/linegate/linegate/drivers"
	"github.com/linegate/linegate/drivers/modbus"
	"github.com/linegate/linegate/uplink"
)

// pipeline is drivers → collector → buffer → uplink, wired from a config.
type pipeline struct {
	cfg   *configs.Config
	log   *slog.Logger
	reg   *prometheus.Registry
	queue *buffer.Queue
	col   *collector.Collector
	up    *uplink.Uplink
	devs  *deviceSet // the running devices' configs and drivers, for reload (reload.go)
}

// shutdownGrace bounds how long a stopping agent keeps publishing what is
// already committed before it says offline; the rest stays in the buffer.
const shutdownGrace = 2 * time.Second

// newPipeline opens the buffer and builds every part; nothing runs yet.
func newPipeline(cfg *configs.Config, log *slog.Logger) (*pipeline, error) {
	// The pipeline keeps the sections, not the device list: the devices
	// are built below, and reload compares digests (reload.go).
	sections := *cfg
	sections.Devices = nil
	p := &pipeline{cfg: &sections, log: log, reg: prometheus.NewRegistry()}
	p.reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))

	pool := modbus.NewPool()
	devices, err := buildDevicesIn(pool, cfg.Devices, log)
	if err != nil {
		return nil, err
	}
	p.devs = newDeviceSet(pool, cfg.Devices, devices)
	tlsCfg, err := uplinkTLS(cfg.Uplink.TLS)
	if err != nil {
		return nil, err
	}
	if cfg.Uplink.TLS.InsecureSkipVerify {
		log.Warn("uplink: tls insecure_skip_verify is on: the broker's certificate is NOT verified")
	}
	for _, w := range cfg.Warnings {
		log.Warn("config: " + w)
	}
	p.queue, err = buffer.Open(buffer.Options{
		Path:           cfg.Buffer.Path,
		MaxSize:        int64(cfg.Buffer.MaxSize),
		CommitInterval: cfg.Buffer.CommitInterval.D(),
		MaxAge:         cfg.Buffer.MaxAge.D(),
		Logger:         log.With("component", "buffer"),
		Registerer:     p.reg,
	})
	if err != nil {
		return nil, err
	}
	p.col, err = collector.New(collector.Options{
		Devices:    devices,
		Sink:       p.queue,
		Logger:     log.With("component", "collector"),
		Registerer: p.reg,
	})
	if err != nil {
		p.queue.Close()
		return nil, err
	}
	u := cfg.Uplink
	p.up, err = uplink.New(uplink.Config{
		Brokers:     u.Brokers,
		ClientID:    u.ClientID,
		Username:    u.Username,
		Password:    u.Password.Reveal(),
		TLS:         tlsCfg,
		QoS:         u.QoSLevel(),
		TopicPrefix: u.TopicPrefix,
		GatewayID:   cfg.Gateway.ID,
		Site:        cfg.Gateway.Site,
		Area:        cfg.Gateway.Area,
		Line:        cfg.Gateway.Line,
		MaxInflight: u.MaxInflight,
		ReplayRate:  u.ReplayRate,
		AckTimeout:  u.AckTimeout.D(),
		BackoffMax:  u.ReconnectMax.D(),
		Format:      u.Format,
		GroupID:     u.GroupID,
		EdgeNode:    u.EdgeNode,
		Version:     version,
		Logger:      log.With("component", "uplink"),
		Registerer:  p.reg,
	}, p.queue)
	if err != nil {
		p.queue.Close()
		return nil, err
	}
	return p, nil
}

// run runs until ctx is done. Shutdown order keeps the guarantees: the
// collector stops first, the buffer commits what it holds, the uplink gets a
// short grace to publish it and then says offline, and the buffer closes.
func (p *pipeline) run(ctx context.Context) error {
	upCtx, stopUplink := context.WithCancel(context.Background())
	defer stopUplink()
	var wg sync.WaitGroup
	var upErr error
	wg.Add(1)
	go func() {
		defer wg.Done()
		upErr = p.up.Run(upCtx)
	}()

	var httpErr error
	if addr := p.cfg.HTTP.ListenAddr(); addr != "" {
		srv, err := startHTTP(addr, p)
		if err != nil {
			stopUplink()
			wg.Wait()
			p.queue.Close()
			return err
		}
		defer func() {
			sctx, cancel := context.WithTimeout(context.Background(), time.Second)
			defer cancel()
			httpErr = srv.Shutdown(sctx)
		}()
	}

	_ = p.col.Run(ctx) // returns when ctx is done

	flushErr := p.queue.Flush()
	p.drain(shutdownGrace)
	stopUplink()
	wg.Wait()
	closeErr := p.queue.Close()
	return errors.Join(upErr, flushErr, closeErr, httpErr)
}

// drain waits up to grace for the uplink to publish what is committed.
func (p *pipeline) drain(grace time.Duration) {
	if !p.up.Status().Connected {
		return
	}
	deadline := time.Now().Add(grace)
	for time.Now().Before(deadline) {
		if p.queue.Stats().Messages == 0 {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// buildDevices turns the config into collector devices with their drivers.
//
// Modbus devices on one serial port or one TCP address share its link
// through one pool: it holds no goroutine, and a link's connection closes
// when the last of its drivers closes (the collector closes them all when
// it stops).
func buildDevices(cfg *configs.Config, log *slog.Logger) ([]collector.Device, error) {
	return buildDevicesIn(modbus.NewPool(), cfg.Devices, log)
}

// buildDevicesIn builds devs with their Modbus links in pool (a reload
// reuses the running pipeline's, so that a restarted device shares its port
// with the devices that keep running). On an error the drivers already made
// are closed.
func buildDevicesIn(pool *modbus.Pool, devs []configs.Device, log *slog.Logger) (_ []collector.Device, err error) {
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
			o, err := newOPCUA(d, log)
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
		out = append(out, collector.Device{
			Name:     d.Name,
			Interval: d.PollInterval.D(),
			Driver:   drv,
			Tags:     collectorTags(d),
			Shifts:   shifts,
			// OPC UA pushes changes in subscribe mode (the default).
			Subscribe: d.Driver == "opcua" && d.Mode == "subscribe",
		})
	}
	return out, nil
}

// newModbus makes a driver with a link of its own (check, diagnostics).
func newModbus(d configs.Device, log *slog.Logger) (*modbus.Driver, error) {
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
		})
	}
	drv, err := modbus.New(mc)
	if err != nil {
		return nil, fmt.Errorf("device %s: %w", d.Name, err)
	}
	return drv, nil
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
			CounterBits: 16 * configs.RegisterWidth(t.Type, t.Length),
		}
		if d.Driver == "opcua" {
			ct.CounterBits = 64 // the node's own type sets the width; no register count to go by
		}
		if f, ok := configs.DurationUnits[t.Unit]; ok && t.Class == "time" {
			ct.ToSeconds = f
		}
		normalizationRules(&ct, t, d)
		tags = append(tags, ct)
	}
	return tags
}

// uplinkTLS builds the broker TLS config; verification stays on unless the
// config turns it off explicitly.
func uplinkTLS(t configs.TLS) (*tls.Config, error) {
	if t.CAFile == "" && t.CertFile == "" && !t.InsecureSkipVerify {
		return nil, nil
	}
	c := &tls.Config{MinVersion: tls.VersionTLS12, InsecureSkipVerify: t.InsecureSkipVerify}
	if t.CAFile != "" {
		pem, err := os.ReadFile(t.CAFile)
		if err != nil {
			return nil, fmt.Errorf("uplink tls: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("uplink tls: %s holds no PEM certificate", t.CAFile)
		}
		c.RootCAs = pool
	}
	if t.CertFile != "" {
		cert, err := tls.LoadX509KeyPair(t.CertFile, t.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("uplink tls: client certificate: %w", err)
		}
		c.Certificates = []tls.Certificate{cert}
	}
	return c, nil
}
