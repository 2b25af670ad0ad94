package uplink

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	mqtt "github.com/eclipse/paho.mqtt.golang"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/protobuf/proto"

	"github.com/linegate/linegate/buffer"
	pb "github.com/linegate/linegate/uplink/sparkplugb"
)

// Sparkplug B output (Config.Format == FormatSparkplugB).
//
// linegate is one Sparkplug edge node: group Config.GroupID, edge node
// Config.EdgeNode, and one Sparkplug device per equipment (Message.Equipment).
// Every buffer.Message becomes one DDATA, through the same in-flight window
// and acker as JSON: it leaves the buffer after its PUBACK, so
// store-and-forward and at-least-once are unchanged. The births, deaths and
// node data around it are extra publishes on the same connection.
//
// The decisions:
//
//   - bdSeq counts MQTT connects, 0..255, and rises across restarts when
//     Config.BdSeqFile is set (sparkplug_bdseq.go): a host that saw the
//     NBIRTH of the last process must not take the new one's for it. The
//     will of every CONNECT carries the bdSeq of the NBIRTH that follows.
//   - seq is per connection: NBIRTH 0, then +1 (mod 256) for every NDATA,
//     DBIRTH, DDATA and DDEATH, all published by the serve goroutine, so seq
//     order is wire order. A rebirth restarts it at 0 with the same bdSeq.
//   - The configured devices and tags (Config.Devices) are known from the
//     start: the first DBIRTH of a device lists all its tags, a tag not read
//     yet as null and bad, so a host can build its tag tree at once. Tags
//     seen in the data beyond those are learned: a DBIRTH, with every metric
//     known and its last value, goes out before a device's first DDATA on a
//     connection, and again before a DDATA that brings a new tag or needs a
//     wider datatype.
//   - Aliases are unique across the edge node and stable for the process's
//     life; DDATA carries aliases only, plus the datatype, which the spec
//     allows and which lets generic decoders (sparkplug-payload, MQTT
//     Explorer) read a DDATA without the birth.
//   - device_down → DDEATH, device_up → DBIRTH. While a device is dead,
//     messages with no good reading are acknowledged without a DDATA (the
//     DDEATH already marks its metrics stale; a DDATA would break the
//     DDEATH/DBIRTH rule), counted in linegate_uplink_sparkplug_suppressed_total.
//     A good reading of a dead device gives it a DBIRTH first.
//   - Every event (buffer_overflow, device_down, ...) is also an NDATA of the
//     node metric "Gateway/Event", the event's linegate/v1 JSON, so a loss is
//     never silent here either.
//   - QoS: births and DDEATH use QoS 0, as the specification requires; DDATA
//     and NDATA use Config.QoS (0 by default for Sparkplug in the config
//     file; 1 is the "lossless" deviation: a message leaves the buffer only
//     after its PUBACK). NDEATH and the will use QoS 1. Nothing is retained.
//   - DCMD of every device is subscribed before its DBIRTH; each metric is
//     a write through the command path, confirmed by a DDATA
//     (sparkplug_dcmd.go).
//   - Primary host: sparkplug_host.go.
//   - No JSON status or events topics: the will of a connection is its NDEATH.

// Formats of Config.Format.
const (
	FormatJSON       = "json"
	FormatSparkplugB = "sparkplugb"
)

// spNamespace is the first topic level of every Sparkplug B topic.
const spNamespace = "spBv1.0"

// spBirthQoS is the QoS of NBIRTH, DBIRTH and DDEATH: 0, as the
// specification requires whatever Config.QoS says.
const spBirthQoS = 0

// Node metrics: names (what NCMD and NBIRTH use) and their fixed aliases.
// Device metrics get aliases from spFirstDeviceAlias on.
const (
	spRebirthMetric    = "Node Control/Rebirth"
	spVersionMetric    = "Gateway/Version"
	spEventMetric      = "Gateway/Event"
	spBdSeqMetric      = "bdSeq"
	spRebirthAlias     = 1 // accepted in NCMD, never declared: the NBIRTH must not alias Rebirth
	spVersionAlias     = 2
	spEventAlias       = 3
	spFirstDeviceAlias = 10
)

// Metric property keys.
const (
	spQualityProperty = "Quality" // int32, OPC DA quality: 192 good, 64 uncertain, 0 bad
	spErrorProperty   = "error"   // string, the reason when not good
	spUnitProperty    = "engUnit" // string, in births
)

// DefaultGroupID is the Sparkplug group of a gateway: its site and line
// joined by "_" (empty parts skipped), "linegate" when both are empty.
// Characters a Sparkplug ID cannot hold (/ + # NUL, invalid UTF-8) become "_".
func DefaultGroupID(site, line string) string {
	var parts []string
	for _, p := range []string{site, line} {
		if p != "" {
			parts = append(parts, spID(p))
		}
	}
	if len(parts) == 0 {
		return "linegate"
	}
	return strings.Join(parts, "_")
}

// ValidSparkplugID reports whether s can be a Sparkplug group or edge node
// id: non-empty UTF-8 without / + # or NUL.
func ValidSparkplugID(s string) bool {
	return s != "" && utf8.ValidString(s) && !strings.ContainsAny(s, "/+#\x00")
}

// spID makes s a valid topic level.
func spID(s string) string {
	var b strings.Builder
	writeLevel(&b, s, false)
	return b.String()
}

// sparkplug is the edge node state that outlives connections; only the
// goroutine of Run uses it (connect and serve run there in turn).
type sparkplug struct {
	group, node string
	host        string // primary host id, "" = none
	qos         byte   // of DDATA and NDATA
	version     string
	now         func() time.Time
	log         *slog.Logger

	bdSeq     uint64 // of the next connect, 0..255
	bdSeqFile string // "" = not persisted
	bdSeqErr  bool   // saving failed: logged once

	brokerStart int // index of the broker the next connect tries first (walk)

	// stateTS is the timestamp of the last STATE accepted, per broker; the
	// STATE handlers of paho's goroutines write it.
	stateMu sync.Mutex
	stateTS map[string]int64

	nextAlias uint64
	devices   map[string]*spDevice
	cmd       map[string]*spCmdDevice // by topic level, fixed after newSparkplug (DCMD handlers read it)
	order     []*spDevice             // first seen first: births in a stable order

	suppressed prometheus.Counter
	births     prometheus.Counter
	hostUp     prometheus.Gauge
}

// spDevice is one equipment and the metrics learned from its messages.
type spDevice struct {
	name      string // as in the messages
	level     string // as in topics
	dataTopic string // of its DDATA, built once: one per message otherwise
	metrics   []*spMetric
	byTag     map[string]*spMetric
	down      bool // a device_down came, and no device_up or good reading since
}

// spMetric is one tag of a device and its last value, for births.
type spMetric struct {
	name        string
	alias       uint64
	dt          pb.DataType
	provisional bool // only nulls seen: dt is a guess
	value       any  // normalized (spValue), nil = null
	ts          time.Time
	quality     buffer.Quality
	err, unit   string
}

// spSession is the Sparkplug state of one connection.
type spSession struct {
	bdSeq   uint64
	seq     uint8 // of the next message; uint8 wraps at 256 as Sparkplug wants
	born    map[*spDevice]bool
	dcmd    map[*spDevice]bool // DCMD subscribed
	rebirth chan struct{}      // the NCMD handler asks serve for a rebirth
	confirm chan spConfirm     // ok DCMD writes, for serve to confirm with a DDATA

	hostOnline  atomic.Bool   // the primary host's last STATE (sparkplug_host.go)
	hostChanged chan struct{} // a STATE was accepted; nil without a primary host
}

// SparkplugDevice is a configured device and its tags (Config.Devices).
type SparkplugDevice struct {
	Name string
	Tags []SparkplugTag
}

// SparkplugTag is a configured tag. Kind is the datatype its values will
// have, when the config says: "bool", "int", "uint", "float", "string";
// "" = learned from the first value (born Double until then).
type SparkplugTag struct {
	Name, Unit, Kind string
}

func kindType(kind string) (pb.DataType, bool) {
	switch kind {
	case "bool":
		return pb.DataType_Boolean, true
	case "int":
		return pb.DataType_Int64, true
	case "uint":
		return pb.DataType_UInt64, true
	case "float":
		return pb.DataType_Double, true
	case "string":
		return pb.DataType_String, true
	}
	return pb.DataType_Double, false
}

// spNotRead is the error property of a configured tag with no reading yet.
const spNotRead = "not read yet"

func newSparkplug(cfg *Config) (*sparkplug, error) {
	switch cfg.Format {
	case "", FormatJSON:
		cfg.Format = FormatJSON
		if cfg.GroupID != "" || cfg.EdgeNode != "" || cfg.PrimaryHost != "" {
			return nil, fmt.Errorf("uplink: group id, edge node and primary host are for format %s", FormatSparkplugB)
		}
		return nil, nil
	case FormatSparkplugB:
	default:
		return nil, fmt.Errorf("uplink: format %q: want %s or %s", cfg.Format, FormatJSON, FormatSparkplugB)
	}
	if cfg.GroupID == "" {
		cfg.GroupID = DefaultGroupID(cfg.Site, cfg.Line)
	}
	if cfg.EdgeNode == "" {
		cfg.EdgeNode = spID(cfg.GatewayID)
	}
	if !ValidSparkplugID(cfg.GroupID) {
		return nil, fmt.Errorf("uplink: sparkplug group id %q: must be UTF-8 without / + # or NUL", cfg.GroupID)
	}
	if !ValidSparkplugID(cfg.EdgeNode) {
		return nil, fmt.Errorf("uplink: sparkplug edge node %q: must be UTF-8 without / + # or NUL", cfg.EdgeNode)
	}
	if cfg.PrimaryHost != "" && !ValidSparkplugID(cfg.PrimaryHost) {
		return nil, fmt.Errorf("uplink: sparkplug primary host %q: must be UTF-8 without / + # or NUL", cfg.PrimaryHost)
	}
	sp := &sparkplug{
		group: cfg.GroupID, node: cfg.EdgeNode, host: cfg.PrimaryHost, qos: cfg.QoS, version: cfg.Version,
		now: cfg.Clock, log: cfg.Logger,
		bdSeqFile: cfg.BdSeqFile,
		stateTS:   map[string]int64{},
		nextAlias: spFirstDeviceAlias,
		devices:   map[string]*spDevice{},
		suppressed: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "linegate", Subsystem: "uplink", Name: "sparkplug_suppressed_total",
			Help: "Messages of a dead Sparkplug device with no good reading, acknowledged without a DDATA (its DDEATH marks them stale).",
		}),
		births: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "linegate", Subsystem: "uplink", Name: "sparkplug_births_total",
			Help: "Sparkplug NBIRTH and DBIRTH messages published.",
		}),
		hostUp: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: "linegate", Subsystem: "uplink", Name: "sparkplug_primary_host_online",
			Help: "1 while the Sparkplug primary host's STATE on the current broker is online; 0 otherwise (nothing is published, the buffer grows).",
		}),
	}
	if sp.bdSeqFile != "" {
		next, err := loadBdSeq(sp.bdSeqFile)
		if err != nil {
			// Not fatal: a host then may take one NDEATH for the last
			// process's, which a rebirth request repairs.
			cfg.Logger.Warn("sparkplug: bdSeq starts at 0", "error", err)
		}
		sp.bdSeq = next
	}
	sp.declare(cfg.Devices)
	sp.cmdDevices(cfg.Devices)
	if cfg.Registerer != nil {
		cs := []prometheus.Collector{sp.suppressed, sp.births}
		if sp.host != "" {
			cs = append(cs, sp.hostUp)
		}
		for _, c := range cs {
			if err := cfg.Registerer.Register(c); err != nil {
				return nil, fmt.Errorf("uplink: register metrics: %w", err)
			}
		}
	}
	return sp, nil
}

// declare creates the configured devices and their tags, in config order,
// before any reading: null and bad until read.
func (sp *sparkplug) declare(devs []SparkplugDevice) {
	for _, cd := range devs {
		d := sp.device(cd.Name)
		for _, t := range cd.Tags {
			if d.byTag[t.Name] != nil {
				continue
			}
			dt, known := kindType(t.Kind)
			mt := &spMetric{name: t.Name, alias: sp.nextAlias, dt: dt, provisional: !known,
				quality: buffer.Bad, err: spNotRead, unit: t.Unit}
			sp.nextAlias++
			d.byTag[t.Name] = mt
			d.metrics = append(d.metrics, mt)
		}
	}
}

// nodeTopic is spBv1.0/<group>/<typ>/<edge node>.
func (sp *sparkplug) nodeTopic(typ string) string {
	return spNamespace + "/" + sp.group + "/" + typ + "/" + sp.node
}

func (sp *sparkplug) deviceTopic(typ string, d *spDevice) string {
	return sp.nodeTopic(typ) + "/" + d.level
}

// device returns the state of equipment name, created on first use.
func (sp *sparkplug) device(name string) *spDevice {
	if d := sp.devices[name]; d != nil {
		return d
	}
	d := &spDevice{name: name, level: spID(name), byTag: map[string]*spMetric{}}
	if d.level == "" {
		d.level = "_"
	}
	d.dataTopic = sp.deviceTopic("DDATA", d)
	sp.devices[name] = d
	sp.order = append(sp.order, d)
	return d
}

// setWill starts the Sparkplug state of session s and makes its NDEATH the
// connection's last will.
func (sp *sparkplug) setWill(opts *mqtt.ClientOptions, s *session) {
	s.sp = &spSession{bdSeq: sp.bdSeq, born: map[*spDevice]bool{}, dcmd: map[*spDevice]bool{},
		rebirth: make(chan struct{}, 1), confirm: make(chan spConfirm, 64)}
	if sp.host != "" {
		s.sp.hostChanged = make(chan struct{}, 1)
		sp.hostUp.Set(0) // unknown until this connection's STATE
	}
	if sp.bdSeqFile != "" {
		if err := saveBdSeq(sp.bdSeqFile, sp.bdSeq); err != nil && !sp.bdSeqErr {
			sp.log.Warn("sparkplug: bdSeq not persisted; after a restart it may repeat", "error", err)
			sp.bdSeqErr = true
		} else if err == nil {
			sp.bdSeqErr = false
		}
	}
	sp.bdSeq = (sp.bdSeq + 1) % 256
	opts.SetBinaryWill(sp.nodeTopic("NDEATH"), sp.ndeath(s.sp), 1, false)
}

// spRebirth is the session's rebirth request channel; nil (never ready) for JSON.
func (s *session) spRebirth() <-chan struct{} {
	if s.sp == nil {
		return nil
	}
	return s.sp.rebirth
}

// announceSparkplug subscribes to the node's NCMD topic, publishes NBIRTH
// and the DBIRTHs of the devices known alive. Like the JSON online status
// (selfcheck.go), the NBIRTH must come back to us before any data goes
// out, or the broker is dropping what it acknowledges.
func (u *Uplink) announceSparkplug(ctx context.Context, s *session) error {
	sp, ss := u.sp, s.sp
	ncmd := sp.nodeTopic("NCMD")
	tok := s.client.Subscribe(ncmd, 1, func(_ mqtt.Client, m mqtt.Message) {
		if isRebirth(m.Payload()) {
			select {
			case ss.rebirth <- struct{}{}:
			default: // one pending request is enough
			}
		}
	})
	if err := waitToken(ctx, s, tok); err != nil {
		return fmt.Errorf("subscribe %s: %w", ncmd, err)
	}
	if st, ok := tok.(*mqtt.SubscribeToken); ok && st.Result()[ncmd] == subackFailure {
		u.log.Warn("mqtt: the broker refuses the subscription to the node's NCMD topic, so hosts cannot ask for a rebirth; grant the user read on it",
			"topic", ncmd)
	}
	if err := u.subscribeDCMD(ctx, s, sp.order); err != nil {
		return err
	}
	if sp.host != "" {
		if err := u.subscribeState(ctx, s); err != nil {
			return err
		}
		if err := u.waitHost(ctx, s); err != nil {
			return err
		}
		// The session starts now for the host: what was buffered while it
		// was away is history.
		if next := u.src.Stats().NextSeq; next > 0 {
			s.upSeq = next - 1
		}
	}

	birthTopic := sp.nodeTopic("NBIRTH")
	nbirth := sp.nbirth(ss)
	echo := make(chan struct{}, 1)
	sub := s.client.Subscribe(birthTopic, 1, func(_ mqtt.Client, m mqtt.Message) {
		if string(m.Payload()) == string(nbirth) {
			select {
			case echo <- struct{}{}:
			default:
			}
		}
	})
	if err := waitToken(ctx, s, sub); err != nil {
		return fmt.Errorf("subscribe %s: %w", birthTopic, err)
	}
	verify := true
	if st, ok := sub.(*mqtt.SubscribeToken); ok && st.Result()[birthTopic] == subackFailure {
		verify = false
		u.log.Warn("mqtt: the broker refuses a subscription to the node's own NBIRTH topic, so delivery cannot be verified; grant the user read on it",
			"topic", birthTopic)
	}
	if err := u.spPublish(s, birthTopic, spBirthQoS, nbirth); err != nil {
		return err
	}
	sp.births.Inc()
	if verify {
		t := time.NewTimer(u.cfg.ConnectTimeout)
		defer t.Stop()
		select {
		case <-echo:
			s.client.Unsubscribe(birthTopic)
		case <-t.C:
			u.met.notDelivered.Inc()
			return fmt.Errorf("%w (sparkplug: the NBIRTH on %s never came back; allow readwrite on %s/%s/#)",
				ErrNotDelivered, birthTopic, spNamespace, sp.group)
		case <-s.lost:
			return s.err()
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	if err := u.birthDevices(s); err != nil {
		return err
	}
	// A rebirth asked while waiting for the host is answered by these births.
	select {
	case <-ss.rebirth:
	default:
	}
	return nil
}

// rebirth answers an NCMD Node Control/Rebirth: a new NBIRTH (seq 0, same
// bdSeq) and the DBIRTHs of every device alive.
func (u *Uplink) rebirth(s *session) error {
	u.log.Info("sparkplug: rebirth requested by NCMD")
	clear(s.sp.born)
	if err := u.spPublish(s, u.sp.nodeTopic("NBIRTH"), spBirthQoS, u.sp.nbirth(s.sp)); err != nil {
		return err
	}
	u.sp.births.Inc()
	return u.birthDevices(s)
}

// birthDevices publishes a DBIRTH for each device alive with metrics.
func (u *Uplink) birthDevices(s *session) error {
	for _, d := range u.sp.order {
		if d.down || len(d.metrics) == 0 {
			continue
		}
		if err := u.dbirth(s, d); err != nil {
			return err
		}
	}
	return nil
}

func (u *Uplink) dbirth(s *session, d *spDevice) error {
	if !s.sp.dcmd[d] {
		// A device learned from the data: subscribed without waiting (the
		// SUBSCRIBE still goes out before the DBIRTH).
		u.subscribeDCMDAsync(s, d)
	}
	if err := u.spPublish(s, u.sp.deviceTopic("DBIRTH", d), spBirthQoS, u.sp.dbirthPayload(s.sp, d)); err != nil {
		return err
	}
	u.sp.births.Inc()
	s.sp.born[d] = true
	return nil
}

// spPublish publishes a message that is not a buffer message (births,
// deaths, node data) without waiting for it: the data after it on the same
// connection is what the acker waits for, and a failure ends the connection.
func (u *Uplink) spPublish(s *session, topic string, qos byte, payload []byte) error {
	tok := s.client.Publish(topic, qos, false, payload)
	select {
	case <-tok.Done():
		if err := tok.Error(); err != nil {
			return fmt.Errorf("publish %s: %w", topic, err)
		}
	default:
	}
	return nil
}

// publishSparkplug is publish for FormatSparkplugB: m becomes one DDATA,
// after a DBIRTH when the device needs one.
func (u *Uplink) publishSparkplug(s *session, a *acker, m *buffer.Message, historical bool) error {
	d := u.sp.device(m.Equipment)
	changed := u.sp.learn(d, m)
	var (
		tok     mqtt.Token
		payload []byte // reused once acknowledged, as for JSON (payloads.go)
	)
	if d.down && !anyGood(m.Readings) {
		u.sp.suppressed.Inc()
		tok = doneToken{done: closedChan()}
	} else {
		if d.down || changed || !s.sp.born[d] {
			d.down = false
			if err := u.dbirth(s, d); err != nil {
				return err
			}
		}
		payload = u.sp.ddata(u.payloads.get(0), s.sp, d, m, historical)
		tok = s.client.Publish(d.dataTopic, u.cfg.QoS, false, payload)
		u.met.published.Inc()
	}
	u.inflight.Add(1)
	u.met.inflight.Inc()
	// Never blocks: see publish.
	a.in <- pending{seq: m.Seq, tok: tok, sent: time.Now(), payload: payload}
	select {
	case <-tok.Done():
		if err := tok.Error(); err != nil {
			return fmt.Errorf("publish seq %d: %w", m.Seq, err)
		}
	default:
	}
	return nil
}

// publishEvent publishes one event and returns the token that says it was
// delivered: the JSON event, or for Sparkplug the NDATA Gateway/Event after
// the DDEATH or DBIRTH the event calls for.
func (u *Uplink) publishEvent(s *session, e buffer.Event) mqtt.Token {
	payload := AppendEventJSON(make([]byte, 0, 256), e, u.gw)
	if u.sp == nil {
		return s.client.Publish(u.eventsTopic, 1, false, payload)
	}
	sp, ss := u.sp, s.sp
	if name, ok := eventDevice(e); ok {
		d := sp.device(name)
		switch e.Type {
		case "device_down":
			if ss.born[d] {
				if err := u.spPublish(s, sp.deviceTopic("DDEATH", d), spBirthQoS, sp.ddeath(ss)); err != nil {
					return doneToken{done: closedChan(), err: err}
				}
				delete(ss.born, d)
			}
			d.down = true
		case "device_up":
			d.down = false
			if len(d.metrics) > 0 {
				if err := u.dbirth(s, d); err != nil {
					return doneToken{done: closedChan(), err: err}
				}
			}
		}
	}
	return s.client.Publish(sp.nodeTopic("NDATA"), sp.qos, false, sp.eventData(ss, e, payload))
}

// endSparkplug publishes the NDEATH on a clean shutdown: the broker drops
// the will of a client that disconnects cleanly.
func (u *Uplink) endSparkplug(s *session) {
	tctx, cancel := context.WithTimeout(context.Background(), shutdownGrace)
	defer cancel()
	if err := u.publishWait(tctx, s, u.sp.nodeTopic("NDEATH"), u.sp.ndeath(s.sp), false); err != nil {
		u.log.Warn("sparkplug NDEATH not acknowledged", "broker", s.broker, "error", err)
	}
}

func eventDevice(e buffer.Event) (string, bool) {
	for _, a := range e.Attrs {
		if a.Key == "device" {
			name, ok := a.Value.(string)
			return name, ok
		}
	}
	return "", false
}

func anyGood(rs []buffer.Reading) bool {
	for i := range rs {
		if rs[i].Quality == buffer.Good {
			return true
		}
	}
	return false
}

// isRebirth reports whether an NCMD payload asks for a rebirth.
func isRebirth(payload []byte) bool {
	var p pb.Payload
	if proto.Unmarshal(payload, &p) != nil {
		return false
	}
	for _, m := range p.GetMetrics() {
		named := m.GetName() == spRebirthMetric || (m.Name == nil && m.GetAlias() == spRebirthAlias)
		if named && m.GetBooleanValue() {
			return true
		}
	}
	return false
}

// doneToken is the completed token of a message acknowledged without a
// publish (a suppressed DDATA), or of a publish that failed before it began.
type doneToken struct {
	done chan struct{}
	err  error
}

func (t doneToken) Wait() bool                     { return true }
func (t doneToken) WaitTimeout(time.Duration) bool { return true }
func (t doneToken) Done() <-chan struct{}          { return t.done }
func (t doneToken) Error() error                   { return t.err }

func closedChan() chan struct{} {
	c := make(chan struct{})
	close(c)
	return c
}
