package commands

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/linegate/linegate/buffer"
	"github.com/linegate/linegate/drivers"
)

// Results.
const (
	OK       = "ok"
	Rejected = "rejected"
	Failed   = "failed"
)

// MaxAhead bounds how far in the future a command may expire: a command
// lives seconds; one valid for days is a mistake or a replay kit.
const MaxAhead = time.Hour

// recentPerDevice is how many results per device the status shows.
const recentPerDevice = 10

// Executor runs accepted commands on the devices: the collector.
type Executor interface {
	// DeviceUp says whether the device answered its last poll, and if
	// not, why.
	DeviceUp(device string) (up bool, reason string)
	// Submit queues a write of value (raw) to the device's tag at index,
	// after the commands already queued for it. done is called once, from
	// the device's goroutine, with the read-back or the error; a command
	// still queued at expires is not executed (done gets ErrExpired, or an
	// error with an Expired() bool method that says true). An error means
	// it was not queued (unknown device, queue full); a RefusedError then
	// too means the driver cannot write.
	Submit(device string, index int, value any, expires time.Time, done func(readback any, err error)) error
}

// ErrExpired is what an Executor hands done for a command that expired in
// the device's queue.
var ErrExpired = errors.New("expired while queued for the device")

// EventSink is where the command events go: the buffer.
type EventSink interface {
	AppendEvent(buffer.Event) error
}

// Options configure a Service.
type Options struct {
	Devices  []Device
	Executor Executor
	Ledger   *Ledger
	Events   EventSink
	Logger   *slog.Logger
	// Registerer gets linegate_commands_total{device,result}.
	Registerer prometheus.Registerer
	// Clock is the gateway clock expires is checked against (default
	// time.Now).
	Clock func() time.Time
}

// Result is the answer to one command (the cmd_result payload).
type Result struct {
	ID        string    `json:"id"`
	Equipment string    `json:"equipment"`
	Tag       string    `json:"tag"`
	Result    string    `json:"result"`
	Error     string    `json:"error,omitempty"`
	Value     any       `json:"value,omitempty"`
	Readback  any       `json:"readback,omitempty"`
	TS        time.Time `json:"ts"`
	// Topic the command came on (in the event and the status, not in
	// the result payload).
	Topic string `json:"-"`
}

// JSON is the cmd_result payload.
func (r Result) JSON() []byte {
	type payload struct {
		Schema string `json:"schema"`
		Result
		TS string `json:"ts"`
	}
	b, err := json.Marshal(payload{Schema: Schema, Result: r, TS: r.TS.UTC().Format("2006-01-02T15:04:05.000Z07:00")})
	if err != nil { // a value that does not marshal: answer without it
		r.Value, r.Readback = nil, nil
		b, _ = json.Marshal(payload{Schema: Schema, Result: r, TS: r.TS.UTC().Format("2006-01-02T15:04:05.000Z07:00")})
	}
	return b
}

// Service checks and runs commands. Its methods are safe for concurrent
// use.
type Service struct {
	exec   Executor
	ledger *Ledger
	events EventSink
	log    *slog.Logger
	now    func() time.Time
	total  *prometheus.CounterVec

	mu      sync.Mutex // guards devices, rates, recent
	devices map[string]*Device
	rates   map[string]*window
	recent  map[string][]Result
}

// New builds a Service.
func New(opts Options) (*Service, error) {
	if opts.Executor == nil || opts.Ledger == nil || opts.Events == nil {
		return nil, errors.New("commands: executor, ledger and event sink are required")
	}
	s := &Service{exec: opts.Executor, ledger: opts.Ledger, events: opts.Events, log: opts.Logger, now: opts.Clock,
		rates: map[string]*window{}, recent: map[string][]Result{}}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.now == nil {
		s.now = time.Now
	}
	s.total = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "linegate_commands_total", Help: "Commands from the MES, by device and result (ok, rejected, failed).",
	}, []string{"device", "result"})
	if opts.Registerer != nil {
		if err := opts.Registerer.Register(s.total); err != nil {
			return nil, fmt.Errorf("commands: metrics: %w", err)
		}
	}
	s.SetDevices(opts.Devices)
	return s, nil
}

// SetDevices replaces the device list (a reload).
func (s *Service) SetDevices(devs []Device) {
	m := make(map[string]*Device, len(devs))
	for i := range devs {
		d := devs[i]
		m[d.Name] = &d
	}
	s.mu.Lock()
	s.devices = m
	s.mu.Unlock()
}

// Handle takes one command published on topic for equipment. It never
// blocks on the device: the checks run here, an accepted write is queued,
// and reply (the cmd_result publish) is called once with the result's
// payload, now or when the write is done.
func (s *Service) Handle(topic, equipment string, payload []byte, retained bool, reply func([]byte)) {
	req, err := ParseCommand(payload)
	var done func(Result)
	if reply != nil {
		done = func(r Result) { reply(r.JSON()) }
	}
	s.run(topic, equipment, req, err, retained, done)
}

// HandleRequest takes a command that another door decoded (a Sparkplug
// DCMD metric): req and the error of decoding it, as ParseCommand returns
// them. The same checks follow, from the ledger on; done gets the result
// once, now or when the write is done.
func (s *Service) HandleRequest(topic, equipment string, req Request, malformed error, retained bool, done func(Result)) {
	if malformed == nil {
		switch {
		case !validID(req.ID):
			req.ID, malformed = "", fmt.Errorf("malformed command: id must be 1..%d printable characters", MaxIDLength)
		case req.Tag == "":
			malformed = errors.New("malformed command: tag is required")
		case req.Expires.IsZero():
			malformed = errors.New("malformed command: expires is required")
		}
		switch req.Value.(type) {
		case json.Number, bool, string:
		default:
			if malformed == nil {
				malformed = errors.New("malformed command: value must be a number, true/false or a string")
			}
		}
	}
	s.run(topic, equipment, req, malformed, retained, done)
}

func (s *Service) run(topic, equipment string, req Request, err error, retained bool, reply func(Result)) {
	now := s.now()
	res := Result{Equipment: equipment, Topic: topic, TS: now}
	res.ID, res.Tag = req.ID, req.Tag
	if req.Value != nil {
		res.Value = req.Value
	}
	if err != nil {
		s.finish(res, Rejected, err.Error(), false, reply)
		return
	}
	s.mu.Lock()
	d := s.devices[equipment]
	s.mu.Unlock()
	if d == nil {
		s.finish(res, Rejected, fmt.Sprintf("unknown equipment %q", equipment), false, reply)
		return
	}
	// The id is claimed before any other check: at most once per id means
	// a second delivery is refused even when the first was rejected.
	first, prev, err := s.ledger.Claim(req.ID, equipment, req.Expires, now)
	if err != nil {
		s.log.Error("commands: ledger", "err", err)
		s.finish(res, Rejected, "command ledger unavailable: "+err.Error(), false, reply)
		return
	}
	if !first {
		why := fmt.Sprintf("duplicate id: first received at %s", prev.Seen.Format(time.RFC3339))
		if prev.Result != "" {
			why += ", result " + prev.Result
		}
		s.finish(res, Rejected, why, false, reply)
		return
	}
	tag, reason := s.check(d, req, now, retained)
	if reason != "" {
		s.finish(res, Rejected, reason, true, reply)
		return
	}
	raw, err := tag.rawValue(req.Value)
	if err != nil {
		s.finish(res, Rejected, err.Error(), true, reply)
		return
	}
	if !s.allow(d, now) {
		s.finish(res, Rejected, fmt.Sprintf("more than max_commands_per_s %g for device %s", d.Rate, d.Name), true, reply)
		return
	}
	if up, why := s.exec.DeviceUp(d.Name); !up {
		s.finish(res, Rejected, "device down: "+why, true, reply)
		return
	}
	t := *tag
	err = s.exec.Submit(d.Name, t.Index, raw, req.Expires, func(back any, err error) {
		var refused *drivers.RefusedError
		var expired interface{ Expired() bool }
		switch {
		case errors.Is(err, ErrExpired), errors.As(err, &refused), errors.As(err, &expired) && expired.Expired():
			s.finish(res, Rejected, err.Error(), true, reply)
		case err != nil:
			s.finish(res, Failed, err.Error(), true, reply)
		case !t.sameRaw(raw, back):
			res.Readback = t.published(back)
			s.finish(res, Failed, fmt.Sprintf("read back %v after writing %v (raw)", back, raw), true, reply)
		default:
			res.Readback = t.published(back)
			s.finish(res, OK, "", true, reply)
		}
	})
	if err != nil {
		s.finish(res, Rejected, err.Error(), true, reply)
	}
}

// check runs the checks that need no I/O; the reason is "" when they pass.
func (s *Service) check(d *Device, req Request, now time.Time, retained bool) (*Tag, string) {
	switch {
	case retained:
		return nil, "retained: a command is never retained (it would run again at every subscribe)"
	case !d.Enabled:
		return nil, fmt.Sprintf("commands are off for device %s", d.Name)
	}
	var tag *Tag
	for i := range d.Tags {
		if d.Tags[i].Name == req.Tag {
			tag = &d.Tags[i]
			break
		}
	}
	switch {
	case tag == nil:
		return nil, fmt.Sprintf("unknown tag %q", req.Tag)
	case !tag.Writable:
		return nil, fmt.Sprintf("tag %s is not writable", tag.Name)
	case !now.Before(req.Expires):
		return nil, fmt.Sprintf("expired at %s (gateway clock %s)", req.Expires.Format(time.RFC3339Nano), now.UTC().Format(time.RFC3339Nano))
	case req.Expires.Sub(now) > MaxAhead:
		return nil, fmt.Sprintf("expires %s is more than %s ahead of the gateway clock (%s)", req.Expires.Format(time.RFC3339), MaxAhead, now.UTC().Format(time.RFC3339))
	}
	return tag, ""
}

// allow counts a command against the device's rate.
func (s *Service) allow(d *Device, now time.Time) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	w := s.rates[d.Name]
	if w == nil {
		w = &window{}
		s.rates[d.Name] = w
	}
	return w.allow(now, d.Rate)
}

// finish records and answers one result. claimed: the id is in the ledger.
func (s *Service) finish(res Result, result, reason string, claimed bool, reply func(Result)) {
	res.Result, res.Error = result, reason
	res.TS = s.now()
	if claimed {
		if err := s.ledger.Finish(res.ID, result); err != nil {
			s.log.Error("commands: ledger", "id", res.ID, "err", err)
		}
	}
	device := res.Equipment
	s.mu.Lock()
	if _, known := s.devices[device]; !known {
		device = "_unknown" // bounded label values
	}
	r := append(s.recent[device], res)
	if len(r) > recentPerDevice {
		r = r[len(r)-recentPerDevice:]
	}
	s.recent[device] = r
	s.mu.Unlock()
	s.total.WithLabelValues(device, result).Inc()
	level := slog.LevelInfo
	if result != OK {
		level = slog.LevelWarn
	}
	s.log.Log(context.Background(), level, "command", "id", res.ID, "equipment", res.Equipment, "tag", res.Tag, "result", result, "error", reason)
	if err := s.events.AppendEvent(event(res)); err != nil {
		s.log.Error("commands: event lost", "id", res.ID, "err", err)
	}
	if reply != nil {
		reply(res)
	}
}

// event is the command event of a result: who asked (the request's id and
// topic; the MES's client id is not known to a subscriber) and what came
// of it.
func event(r Result) buffer.Event {
	attrs := []buffer.Attr{{Key: "id", Value: r.ID}, {Key: "topic", Value: r.Topic}, {Key: "equipment", Value: r.Equipment},
		{Key: "tag", Value: r.Tag}}
	if r.Value != nil {
		attrs = append(attrs, buffer.Attr{Key: "value", Value: attrValue(r.Value)})
	}
	attrs = append(attrs, buffer.Attr{Key: "result", Value: r.Result})
	if r.Error != "" {
		attrs = append(attrs, buffer.Attr{Key: "error", Value: r.Error})
	}
	if r.Readback != nil {
		attrs = append(attrs, buffer.Attr{Key: "readback", Value: attrValue(r.Readback)})
	}
	return buffer.Event{Type: "command", TS: r.TS.UTC(), Attrs: attrs}
}

// attrValue is a value the buffer's event codec takes.
func attrValue(v any) any {
	switch x := v.(type) {
	case json.Number:
		if i, err := strconv.ParseInt(string(x), 10, 64); err == nil {
			return i
		}
		if u, err := strconv.ParseUint(string(x), 10, 64); err == nil {
			return u
		}
		f, _ := strconv.ParseFloat(string(x), 64)
		return f
	case bool, string, int64, uint64, float64:
		return x
	}
	return fmt.Sprint(v)
}

// Recent is the last results per device, oldest first (the status).
func (s *Service) Recent() map[string][]Result {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[string][]Result, len(s.recent))
	for k, v := range s.recent {
		out[k] = append([]Result(nil), v...)
	}
	return out
}

// window is a token bucket: Rate commands per second, at most
// max(1, Rate) at once.
type window struct {
	tokens float64
	last   time.Time
}

func (w *window) allow(now time.Time, rate float64) bool {
	if rate <= 0 {
		rate = 5
	}
	burst := max(1, rate)
	if w.last.IsZero() {
		w.tokens = burst
	} else if dt := now.Sub(w.last).Seconds(); dt > 0 {
		w.tokens = min(burst, w.tokens+dt*rate)
	}
	if !now.Before(w.last) {
		w.last = now
	}
	if w.tokens < 1 {
		return false
	}
	w.tokens--
	return true
}
