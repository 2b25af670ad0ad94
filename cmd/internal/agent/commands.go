package agent

import (
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/linegate/linegate/commands"
	"github.com/linegate/linegate/configs"
	"github.com/linegate/linegate/uplink"
)

// openCommands builds the command service when uplink.commands is on: its
// ledger sits beside the buffer file (both are the agent's state).
func openCommands(cfg *configs.Config, exec commands.Executor, events commands.EventSink, reg prometheus.Registerer, log *slog.Logger) (*commands.Service, *commands.Ledger, error) {
	if !cfg.Uplink.Commands {
		return nil, nil, nil
	}
	l, err := commands.OpenLedger(filepath.Join(filepath.Dir(cfg.Buffer.Path), commands.LedgerFile), 0)
	if err != nil {
		return nil, nil, err
	}
	// Once at start: who reads the log should know the MES can write.
	for _, d := range cfg.Devices {
		var tags []string
		for _, t := range d.Tags {
			if t.Writable {
				tags = append(tags, t.Name)
			}
		}
		if d.Commands && len(tags) > 0 {
			log.Info("commands from the MES can write", "device", d.Name, "tags", strings.Join(tags, ","), "max_commands_per_s", d.MaxCommandsPerSValue())
		}
	}
	svc, err := commands.New(commands.Options{
		Devices:    commandDevices(cfg.Devices, true),
		Executor:   exec,
		Ledger:     l,
		Events:     events,
		Logger:     log,
		Registerer: reg,
	})
	if err != nil {
		l.Close()
		return nil, nil, fmt.Errorf("commands: %w", err)
	}
	return svc, l, nil
}

// commandDevices is what the command checks know of each device.
func commandDevices(devs []configs.Device, on bool) []commands.Device {
	out := make([]commands.Device, 0, len(devs))
	for _, d := range devs {
		cd := commands.Device{Name: d.Name, Enabled: on && d.Commands, Rate: d.MaxCommandsPerSValue()}
		for i, t := range d.Tags {
			cd.Tags = append(cd.Tags, commandTag(d, t, i))
		}
		out = append(out, cd)
	}
	return out
}

func commandTag(d configs.Device, t configs.Tag, i int) commands.Tag {
	ct := commands.Tag{Name: t.Name, Index: i, Writable: t.Writable, Scale: t.ScaleValue(), Offset: t.Offset}
	switch {
	case d.Driver == "opcua":
		ct.Kind = commands.KindAny
	case t.Register == "coil" || t.Type == "bool":
		ct.Kind = commands.KindBool
	case t.Type == "string":
		ct.Kind = commands.KindString
	default:
		ct.Kind = commands.KindNumber
		ct.Float32 = t.Type == "float32"
		ct.Integer = t.Type != "float32" && t.Type != "float64"
	}
	if len(t.WriteRange) == 2 {
		ct.Range = &[2]float64{t.WriteRange[0], t.WriteRange[1]}
	}
	// The collector's normalization (devices.go), to be reversed.
	if len(t.RawRange) == 2 && len(t.Range) == 2 {
		ct.Map = &[4]float64{t.RawRange[0], t.RawRange[1], t.Range[0], t.Range[1]}
		ct.Scale, ct.Offset = 0, 0
	}
	if f, ok := configs.DurationUnits[t.Unit]; ok && t.Class == "time" && t.Timestamp == "" {
		ct.ToSeconds = f
	}
	return ct
}

// CommandStatus is one recent command of a device, in /status.
type CommandStatus struct {
	ID       string    `json:"id"`
	Tag      string    `json:"tag"`
	Result   string    `json:"result"`
	Error    string    `json:"error,omitempty"`
	Value    any       `json:"value,omitempty"`
	Readback any       `json:"readback,omitempty"`
	Topic    string    `json:"topic"`
	TS       time.Time `json:"ts"`
}

// recentCommands is the last commands of each device, newest first.
func (a *Agent) recentCommands() map[string][]CommandStatus {
	if a.cmds == nil {
		return nil
	}
	out := map[string][]CommandStatus{}
	for dev, rs := range a.cmds.Recent() {
		for i := len(rs) - 1; i >= 0; i-- {
			r := rs[i]
			out[dev] = append(out[dev], CommandStatus{ID: r.ID, Tag: r.Tag, Result: r.Result, Error: r.Error,
				Value: r.Value, Readback: r.Readback, Topic: r.Topic, TS: r.TS.UTC()})
		}
	}
	return out
}

// dcmdWriter is the command service as the uplink's handler of both doors:
// the JSON cmd topics and the Sparkplug DCMD metric writes.
type dcmdWriter struct{ *commands.Service }

func (d dcmdWriter) HandleWrite(topic, equipment string, w uplink.MetricWrite, malformed error, retained bool, done func(bool, any)) {
	req := commands.Request{ID: w.ID, Tag: w.Tag, Value: w.Value, Expires: w.Expires}
	d.HandleRequest(topic, equipment, req, malformed, retained, func(r commands.Result) {
		done(r.Result == commands.OK, r.Readback)
	})
}
