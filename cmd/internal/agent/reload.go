package agent

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
		// Replace keeps a device whose Driver is the running one as it
		// runs, tags and all, so its entry needs no tags: keeping them
		// would hold a second copy of every tag description.
		run := devs[i]
		run.Tags = nil
		s.running[d.Name] = run
	}
}

// ErrRestartNeeded marks a refused reload that a restart would apply.
var ErrRestartNeeded = errors.New("restart linegate to apply it")

// Reload applies next to the running agent, or refuses it and changes
// nothing. It publishes a config_reload event either way.
func (a *Agent) Reload(next *configs.Config) (collector.ReplaceResult, error) {
	res, err := a.applyReload(next)
	a.reloadEvent(res, err)
	return res, err
}

// reloadEvent tells the MES that the config was reloaded, and which devices
// it touched, or that a reload was refused.
func (a *Agent) reloadEvent(res collector.ReplaceResult, err error) {
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
	if aerr := a.queue.AppendEvent(ev); aerr != nil {
		a.log.Error("buffer append event failed", "event", ev.Type, "err", aerr)
	}
}

func (a *Agent) applyReload(next *configs.Config) (collector.ReplaceResult, error) {
	if err := sameAgent(a.cfg, next); err != nil {
		return collector.ReplaceResult{}, err
	}
	s := a.devs
	s.mu.Lock()
	defer s.mu.Unlock()

	var changed []configs.Device
	for _, d := range next.Devices {
		if old, ok := s.digest[d.Name]; !ok || old != deviceDigest(d) {
			changed = append(changed, d)
		}
	}
	built, err := buildDevicesIn(s.pool, changed, a.log, true)
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
	res, err := a.col.Replace(list)
	if err != nil {
		for _, d := range built {
			d.Driver.Close()
		}
		return res, err
	}
	s.set(next.Devices, list)
	if a.cmds != nil {
		a.cmds.SetDevices(commandDevices(next.Devices, true))
	}
	if a.opts.LogLevel != nil {
		var l slog.Level
		if l.UnmarshalText([]byte(next.Log.Level)) == nil {
			a.opts.LogLevel.Set(l)
		}
	}
	return res, nil
}

// sameAgent refuses a reload that changes more than devices (and the log
// level).
func sameAgent(cur, next *configs.Config) error {
	nextLog := next.Log
	nextLog.Level = cur.Log.Level
	for _, s := range []struct {
		name      string
		cur, next any
	}{
		{"gateway", cur.Gateway, next.Gateway},
		{"buffer", cur.Buffer, next.Buffer},
		{"uplink", cur.Uplink, next.Uplink},
		{"http", cur.HTTP, next.HTTP},
		{"log", cur.Log, nextLog},
	} {
		if !reflect.DeepEqual(s.cur, s.next) {
			return fmt.Errorf("the %s section changed: %w", s.name, ErrRestartNeeded)
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
func (a *Agent) watchReload(ctx context.Context, path string, hup <-chan os.Signal) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-hup:
		}
		a.log.Info("reloading config", "file", path)
		next, err := a.opts.Load(path)
		if err != nil {
			a.log.Error("config reload refused: the old config keeps running", "err", err)
			a.reloadEvent(collector.ReplaceResult{}, err)
			continue
		}
		for _, w := range next.Warnings {
			a.log.Warn("config: " + w)
		}
		res, err := a.Reload(next)
		debug.FreeOSMemory() // the load's memory, as at start
		if err != nil {
			a.log.Error("config reload refused: the old config keeps running", "err", err)
			continue
		}
		a.log.Info("config reloaded", "added", res.Added, "removed", res.Removed, "restarted", res.Restarted)
	}
}
