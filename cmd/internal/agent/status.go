package agent

import (
	"time"

	"github.com/linegate/linegate/collector"
)

// Status is the agent's state as /status serves it (JSON), `linegate
// status` prints it and the bench reads it: the devices, the buffer, the
// uplink and the Modbus links.
type Status struct {
	Gateway string         `json:"gateway"`
	Version string         `json:"version"`
	Devices []DeviceStatus `json:"devices"`
	Buffer  BufferStatus   `json:"buffer"`
	Uplink  UplinkStatus   `json:"uplink"`
	// ModbusLinks: the load of each serial port and TCP address the
	// Modbus devices use, over the last minute.
	ModbusLinks []ModbusLinkStatus `json:"modbus_links,omitempty"`
	// OEE: the current and the last shifts of each device with an oee:
	// block (collector/OEE.md).
	OEE []collector.OEEStatus `json:"oee,omitempty"`
}

// ModbusLinkStatus is the load of one serial port or TCP address.
type ModbusLinkStatus struct {
	Link string `json:"link"`
	// Utilisation is the share of the time the line (the connections, on
	// average) was held by a poll or request: 1 is a saturated bus.
	Utilisation float64            `json:"utilisation"`
	Devices     []ModbusRateStatus `json:"devices"`
}

// ModbusRateStatus is one device's share of a Modbus link.
type ModbusRateStatus struct {
	Name           string  `json:"name"`
	Unit           int     `json:"unit"`
	PollsPerSecond float64 `json:"polls_per_second"`
}

// DeviceStatus is one device's health.
type DeviceStatus struct {
	Name         string     `json:"name"`
	Up           bool       `json:"up"`
	LastError    string     `json:"last_error,omitempty"`
	LastGoodRead *time.Time `json:"last_good_read,omitempty"`
	LastPoll     *time.Time `json:"last_poll,omitempty"`
	Polls        uint64     `json:"polls"`
	Overruns     uint64     `json:"overruns"`
	// Commands are the device's last commands from the MES, newest first.
	Commands []CommandStatus `json:"commands,omitempty"`
}

type BufferStatus struct {
	Path      string `json:"path"`
	Messages  int64  `json:"messages"`
	FileBytes int64  `json:"file_bytes"`
	MaxBytes  int64  `json:"max_bytes"`
	OldestSeq uint64 `json:"oldest_seq"`
	NextSeq   uint64 `json:"next_seq"`
	Dropped   uint64 `json:"dropped"`
	// OldestCreated is when the oldest waiting message was made: how far
	// behind the MES is.
	OldestCreated *time.Time `json:"oldest_created,omitempty"`
	Events        int        `json:"events"`
}

type UplinkStatus struct {
	Connected   bool       `json:"connected"`
	Broker      string     `json:"broker,omitempty"`
	Inflight    int        `json:"inflight"`
	Published   uint64     `json:"published"`
	Reconnects  uint64     `json:"reconnects"`
	LastPublish *time.Time `json:"last_publish,omitempty"`
	LastError   string     `json:"last_error,omitempty"`
}

func optTime(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	t = t.UTC()
	return &t
}

// Status returns the agent's state now; safe to call while it runs.
func (a *Agent) Status() Status {
	doc := Status{Gateway: a.cfg.Gateway.ID, Version: a.opts.Version}
	recent := a.recentCommands()
	for _, d := range a.col.Status() {
		doc.Devices = append(doc.Devices, DeviceStatus{
			Name: d.Name, Up: d.Up, LastError: d.LastError, LastGoodRead: optTime(d.LastGoodRead), LastPoll: optTime(d.LastPoll),
			Polls: d.Polls, Overruns: d.Overruns, Commands: recent[d.Name],
		})
	}
	doc.OEE = a.col.OEE()
	bs := a.queue.Stats()
	doc.Buffer = BufferStatus{
		Path: a.cfg.Buffer.Path, Messages: int64(bs.Messages), FileBytes: bs.FileSize, MaxBytes: int64(a.cfg.Buffer.MaxSize),
		OldestSeq: bs.OldestSeq, NextSeq: bs.NextSeq, Dropped: bs.Dropped,
		OldestCreated: optTime(bs.OldestCreated), Events: bs.Events,
	}
	if a.devs != nil && a.devs.pool != nil {
		for _, ls := range a.devs.pool.Stats() {
			st := ModbusLinkStatus{Link: ls.Link, Utilisation: ls.Utilisation}
			for _, d := range ls.Devices {
				st.Devices = append(st.Devices, ModbusRateStatus{Name: d.Device, Unit: int(d.Unit), PollsPerSecond: d.PollsPerSecond})
			}
			doc.ModbusLinks = append(doc.ModbusLinks, st)
		}
	}
	us := a.up.Status()
	doc.Uplink = UplinkStatus{
		Connected: us.Connected, Broker: us.Broker, Inflight: us.Inflight, Published: us.Published,
		Reconnects: us.Reconnects, LastPublish: optTime(us.LastPublish), LastError: us.LastError,
	}
	return doc
}
