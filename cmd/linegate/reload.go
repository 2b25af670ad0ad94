package main

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"reflect"
	"runtime/debug"
	"sync"
	"time"

	"github.com/spf13/cobra"

	"github.com/linegate/linegate/buffer"
	"github.com/linegate/linegate/collector"
	"github.com/linegate/linegate/configs"
	"github.com/linegate/linegate/drivers/modbus"
)

// Live reload (SIGHUP, `linegate reload`, `systemctl reload linegate`):
// the new file is loaded and validated first, and a bad one is refused
// while the old config keeps running. Only devices are reloaded: a device
// whose config changed restarts with a new driver, a new one starts, a
// missing one stops, and the others, the buffer and the MQTT session keep
// running untouched. A change to gateway, buffer, uplink, http or log
// (other than log.level) is refused with "restart needed": those are the
// gateway's identity and its delivery guarantees, which a restart changes
// safely (the buffer keeps every reading across it).

// deviceSet is what reload needs to know about the running devices: their
// configs (to compare), their collector devices (to keep the unchanged
// ones' drivers) and the Modbus link pool they share.
type deviceSet struct {
	mu      sync.Mutex
	pool    *modbus.Pool
	digest  map[string][sha256.Size]byte // deviceDigest of each running device's config
	running map[string]collector.Device
}

func newDeviceSet(pool *modbus.Pool, cfgs []configs.Device, devs []collector.Device) *deviceSet {
	s := &deviceSet{pool: pool}
	s.set(cfgs, devs)
	return s
}

func (s *deviceSet) set(cfgs []configs.Device, devs []collector.Device) {
	s.digest = make(map[string][sha256.Size]byte, len(cfgs))
	s.running = make(map[string]collector.Device, len(cfgs))
	for i, d := range cfgs {
		s.digest[d.Name] = deviceDigest(d)
		s.running[d.Name] = devs[i]
	}
}

// reloadOptions are the parts of the agent besides the pipeline a reload
// may change.
type reloadOptions struct {
	// level is the agent's log level; nil when --log-level fixed it.
	level *slog.LevelVar
	// logCfg is the log section the agent started with.
	logCfg configs.Log
}

// errRestartNeeded marks a refused reload that a restart would apply.
var errRestartNeeded = errors.New("restart linegate to apply it")

// reload applies next to the running pipeline, or refuses it and changes
// nothing. It publishes a config_reload event either way.
func (p *pipeline) reload(next *configs.Config, opts reloadOptions) (collector.ReplaceResult, error) {
	res, err := p.applyReload(next, opts)
	p.reloadEvent(res, err)
	return res, err
}

// reloadEvent tells the MES that the config was reloaded, and which devices
// it touched, or that a reload was refused.
func (p *pipeline) reloadEvent(res collector.ReplaceResult, err error) {
	ev := buffer.Event{Type: "config_reload", TS: time.Now().UTC(), Attrs: []buffer.Attr{
		{Key: "result", Value: "ok"},
		{Key: "added", Value: anyList(res.Added)},
		{Key: "removed", Value: anyList(res.Removed)},
		{Key: "restarted", Value: anyList(res.Restarted)},
	}}
	if err != nil {
		// The reason goes to the log only: a YAML error may quote a value
		// of the file, and the MES topic is no place for a secret.
		ev.Attrs = ev.Attrs[:1]
		ev.Attrs[0].Value = "refused"
	}
	if aerr := p.queue.AppendEvent(ev); aerr != nil {
		p.log.Error("buffer append event failed", "event", ev.Type, "err", aerr)
	}
}

func (p *pipeline) applyReload(next *configs.Config, opts reloadOptions) (collector.ReplaceResult, error) {
	if err := sameAgent(p.cfg, next, opts.logCfg); err != nil {
		return collector.ReplaceResult{}, err
	}
	s := p.devs
	s.mu.Lock()
	defer s.mu.Unlock()

	var changed []configs.Device
	for _, d := range next.Devices {
		if old, ok := s.digest[d.Name]; !ok || old != deviceDigest(d) {
			changed = append(changed, d)
		}
	}
	built, err := buildDevicesIn(s.pool, changed, p.log)
	if err != nil {
		return collector.ReplaceResult{}, err
	}
	fresh := map[string]collector.Device{}
	for _, d := range built {
		fresh[d.Name] = d
	}
	list := make([]collector.Device, 0, len(next.Devices))
	for _, d := range next.Devices {
		if nd, ok := fresh[d.Name]; ok {
			list = append(list, nd)
		} else {
			list = append(list, s.running[d.Name])
		}
	}
	res, err := p.col.Replace(list)
	if err != nil {
		for _, d := range built {
			d.Driver.Close()
		}
		return res, err
	}
	s.set(next.Devices, list)
	if opts.level != nil {
		var l slog.Level
		if l.UnmarshalText([]byte(next.Log.Level)) == nil {
			opts.level.Set(l)
		}
	}
	return res, nil
}

// sameAgent refuses a reload that changes more than devices (and the log
// level).
func sameAgent(cur, next *configs.Config, curLog configs.Log) error {
	nextLog := next.Log
	nextLog.Level = curLog.Level
	for _, s := range []struct {
		name      string
		cur, next any
	}{
		{"gateway", cur.Gateway, next.Gateway},
		{"buffer", cur.Buffer, next.Buffer},
		{"uplink", cur.Uplink, next.Uplink},
		{"http", cur.HTTP, next.HTTP},
		{"log", curLog, nextLog},
	} {
		if !reflect.DeepEqual(s.cur, s.next) {
			return fmt.Errorf("the %s section changed: %w", s.name, errRestartNeeded)
		}
	}
	return nil
}

func anyList(names []string) []any {
	out := make([]any, len(names))
	for i, n := range names {
		out[i] = n
	}
	return out
}

// watchReload reloads path on every signal from hup until ctx is done.
func (p *pipeline) watchReload(ctx context.Context, path string, hup <-chan os.Signal, opts reloadOptions) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-hup:
		}
		p.log.Info("reloading config", "file", path)
		next, err := loadLean(path)
		if err != nil {
			p.log.Error("config reload refused: the old config keeps running", "err", err)
			p.reloadEvent(collector.ReplaceResult{}, err)
			continue
		}
		for _, w := range next.Warnings {
			p.log.Warn("config: " + w)
		}
		res, err := p.reload(next, opts)
		debug.FreeOSMemory() // the load's memory, as at start (run.go)
		if err != nil {
			p.log.Error("config reload refused: the old config keeps running", "err", err)
			continue
		}
		p.log.Info("config reloaded", "added", res.Added, "removed", res.Removed, "restarted", res.Restarted)
	}
}

func newReloadCmd(g *globals) *cobra.Command {
	var path string
	cmd := &cobra.Command{
		Use:   "reload [-c FILE]",
		Short: "Make the running agent reload its config (SIGHUP)",
		Long: `Reload validates the config file and, when it is good, sends SIGHUP to the
agent running with it (found through linegate.pid beside its buffer file). The
agent loads the file again: only devices that changed restart; the buffer and
the MQTT session are kept. A change to gateway, buffer, uplink, http or log
(other than log.level) is refused: restart the agent for those. The agent's log
and its config_reload event say what was applied. Under systemd,
"systemctl reload linegate" does the same. Not available on Windows.`,
		Example: `  linegate reload                       # the service's config (` + configs.DefaultConfigPath() + `)
  linegate reload -c /etc/linegate/linegate.yaml`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if path == "" {
				path = configs.DefaultConfigPath()
			}
			cfg, err := loadConfig(path) // a bad file is shown here, not only in the agent's log
			if err != nil {
				return err
			}
			pid, err := readPIDFile(pidFilePath(cfg.Buffer.Path))
			if err != nil {
				return err
			}
			if err := signalReload(pid); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "asked linegate (pid %d) to reload %s; its log says what changed\n", pid, path)
			return nil
		},
	}
	cmd.Flags().StringVarP(&path, "config", "c", "", "config file (YAML); default "+configs.DefaultConfigPath())
	return cmd
}
