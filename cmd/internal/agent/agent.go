// Package agent is the running linegate: drivers → collector → buffer →
// uplink wired from one config, with what runs beside them (the local HTTP
// endpoint with its status page, live reload on SIGHUP, the pid file that
// `linegate reload` finds).
//
// New builds every part from a config and runs nothing; Run runs them until
// its context is done and stops them in the order that keeps the buffer's
// guarantees; Reload applies a changed device list to the running agent;
// Status is the one status document that /status, `linegate status` and the
// bench read. Commands (cmd/linegate) parse flags and call this package;
// only this package and the commands wire the data-flow packages together.
package agent

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"os/signal"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/linegate/linegate/buffer"
	"github.com/linegate/linegate/collector"
	"github.com/linegate/linegate/commands"
	"github.com/linegate/linegate/configs"
	"github.com/linegate/linegate/drivers/modbus"
	"github.com/linegate/linegate/uplink"
)

// Options are what the agent takes besides its config.
type Options struct {
	// Version is this build's version, in /status and the status message.
	Version string
	// ConfigPath is the file the config came from. With it, Run writes the
	// pid file beside the buffer and reloads this file on SIGHUP; without
	// it (the demo, tests) neither happens.
	ConfigPath string
	// Load loads the config file again for a reload; nil: configs.Load.
	Load func(path string) (*configs.Config, error)
	// LogLevel is the agent's live log level, which a reload sets from
	// log.level; nil when a flag fixed the level.
	LogLevel *slog.LevelVar
}

// Agent is drivers → collector → buffer → uplink, wired from a config.
type Agent struct {
	cfg   *configs.Config // the sections; the devices live in devs
	log   *slog.Logger
	opts  Options
	reg   *prometheus.Registry
	queue *buffer.Queue
	col   *collector.Collector
	up    *uplink.Uplink
	devs  *deviceSet // the running devices' digests and drivers, for reload
	// cmds takes the MES's commands (nil unless uplink.commands); its
	// ledger is closed with the buffer.
	cmds   *commands.Service
	ledger *commands.Ledger
}

// shutdownGrace bounds how long a stopping agent keeps publishing what is
// already committed before it says offline; the rest stays in the buffer.
const shutdownGrace = 2 * time.Second

// New opens the buffer and builds every part; nothing runs yet. On an
// error nothing is left open.
func New(cfg *configs.Config, log *slog.Logger, opts Options) (*Agent, error) {
	if opts.Load == nil {
		opts.Load = configs.Load
	}
	// The agent keeps the sections, not the device list: the devices are
	// built below, and reload compares digests (reload.go). The device
	// configs (half a kB per tag) may then go.
	sections := *cfg
	sections.Devices = nil
	a := &Agent{cfg: &sections, log: log, opts: opts, reg: prometheus.NewRegistry()}
	a.reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))

	pool := modbus.NewPool()
	devices, err := buildDevicesIn(pool, cfg.Devices, log, true)
	if err != nil {
		return nil, err
	}
	closeDevices := func() {
		for _, d := range devices {
			d.Driver.Close()
		}
	}
	a.devs = newDeviceSet(pool, cfg.Devices, devices)
	tlsCfg, err := BrokerTLS(cfg.Uplink.TLS)
	if err != nil {
		closeDevices()
		return nil, err
	}
	if cfg.Uplink.TLS.InsecureSkipVerify {
		log.Warn("uplink: tls insecure_skip_verify is on: the broker's certificate is NOT verified")
	}
	for _, w := range cfg.Warnings {
		log.Warn("config: " + w)
	}
	if err := configs.CheckBufferPath(cfg.Buffer.Path); err != nil {
		closeDevices()
		return nil, err
	}
	a.queue, err = buffer.Open(buffer.Options{
		Path:           cfg.Buffer.Path,
		MaxSize:        int64(cfg.Buffer.MaxSize),
		CommitInterval: cfg.Buffer.CommitInterval.D(),
		MaxAge:         cfg.Buffer.MaxAge.D(),
		Logger:         log.With("component", "buffer"),
		Registerer:     a.reg,
	})
	if err != nil {
		closeDevices()
		return nil, err
	}
	// Cycles are split to fit uplink.max_message_size before the buffer
	// numbers them.
	split, err := uplink.NewSplitter(a.queue, uplink.SplitConfig{
		MaxMessageSize: int(cfg.Uplink.MaxMessageSize),
		TopicPrefix:    cfg.Uplink.TopicPrefix,
		Gateway:        uplink.Gateway{ID: cfg.Gateway.ID, Site: cfg.Gateway.Site, Area: cfg.Gateway.Area, Line: cfg.Gateway.Line},
		Logger:         log.With("component", "collector"),
	})
	if err != nil {
		closeDevices()
		a.queue.Close()
		return nil, err
	}
	a.col, err = collector.New(collector.Options{
		Devices:    devices,
		Sink:       split,
		Logger:     log.With("component", "collector"),
		Registerer: a.reg,
	})
	if err != nil {
		closeDevices()
		a.queue.Close()
		return nil, err
	}
	a.cmds, a.ledger, err = openCommands(cfg, a.col, a.queue, a.reg, log.With("component", "commands"))
	if err != nil {
		closeDevices()
		a.queue.Close()
		return nil, err
	}
	var cmdHandler uplink.CommandHandler
	if a.cmds != nil {
		cmdHandler = dcmdWriter{a.cmds}
	}
	u := cfg.Uplink
	a.up, err = uplink.New(uplink.Config{
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
		MaxPacket:   int(u.MaxMessageSize),
		Format:      u.Format,
		GroupID:     u.GroupID,
		EdgeNode:    u.EdgeNode,
		PrimaryHost: u.PrimaryHost,
		BdSeqFile:   BdSeqPath(cfg.Buffer.Path),
		Devices:     sparkplugDevices(cfg),
		Version:     opts.Version,
		Logger:      log.With("component", "uplink"),
		Registerer:  a.reg,
		Commands:    cmdHandler,
	}, a.queue)
	if err != nil {
		closeDevices()
		a.queue.Close()
		a.closeLedger()
		return nil, err
	}
	return a, nil
}

// Config is the agent's config without its devices (those are in Status).
func (a *Agent) Config() *configs.Config { return a.cfg }

// Run runs until ctx is done. Shutdown order keeps the guarantees: the
// collector stops first, the buffer commits what it holds, the uplink gets a
// short grace to publish it and then says offline, and the buffer closes.
// Run is called once; the buffer is closed when it returns.
func (a *Agent) Run(ctx context.Context) error {
	upCtx, stopUplink := context.WithCancel(context.Background())
	defer stopUplink()
	var wg sync.WaitGroup
	var upErr error
	wg.Add(1)
	go func() {
		defer wg.Done()
		upErr = a.up.Run(upCtx)
	}()

	var httpErr error
	if addr := a.cfg.HTTP.ListenAddr(); addr != "" {
		srv, err := a.startHTTP(addr)
		if err != nil {
			stopUplink()
			wg.Wait()
			a.queue.Close()
			return err
		}
		defer func() {
			sctx, cancel := context.WithTimeout(context.Background(), time.Second)
			defer cancel()
			httpErr = srv.Shutdown(sctx)
		}()
	}

	if a.opts.ConfigPath != "" {
		stopReload := a.watchSignals(ctx)
		defer stopReload()
	}

	_ = a.col.Run(ctx) // returns when ctx is done

	flushErr := a.queue.Flush()
	a.drain(shutdownGrace)
	stopUplink()
	wg.Wait()
	closeErr := a.queue.Close()
	a.closeLedger()
	return errors.Join(upErr, flushErr, closeErr, httpErr)
}

func (a *Agent) closeLedger() {
	if a.ledger != nil {
		if err := a.ledger.Close(); err != nil {
			a.log.Warn("commands: close ledger", "err", err)
		}
	}
}

// watchSignals writes the pid file (so that `linegate reload` finds this
// agent) and reloads the config file on SIGHUP until ctx is done; stop
// waits for the watcher and removes the pid file.
func (a *Agent) watchSignals(ctx context.Context) (stop func()) {
	removePID, err := writePIDFile(PIDFilePath(a.cfg.Buffer.Path))
	if err != nil {
		a.log.Warn("linegate reload will not find this agent (SIGHUP still works)", "err", err)
	}
	hup := make(chan os.Signal, 1)
	notifyReload(hup)
	done := make(chan struct{})
	go func() {
		defer close(done)
		a.watchReload(ctx, a.opts.ConfigPath, hup)
	}()
	return func() {
		signal.Stop(hup)
		<-done
		removePID()
	}
}

// drain waits up to grace for the uplink to publish what is committed.
func (a *Agent) drain(grace time.Duration) {
	if !a.up.Status().Connected {
		return
	}
	deadline := time.Now().Add(grace)
	for time.Now().Before(deadline) {
		if a.queue.Stats().Messages == 0 {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
}
