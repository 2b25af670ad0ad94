// Package uplink forwards the buffered messages to the MES over MQTT.
//
// It reads the buffer at its own pace and never makes the collector wait on
// the network: messages are deleted from the buffer only after the broker's
// PUBACK, so a broker outage only makes the buffer grow. Delivery is
// at-least-once and in seq order (README.md, "Topics and payload").
package uplink

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/linegate/linegate/buffer"
)

// Source is what the uplink needs of the buffer; *buffer.Queue implements it.
type Source interface {
	// ReadBatch reads into b the committed messages with seq > after,
	// ascending, at most max. The messages b held before are no longer
	// used: the uplink has encoded them (see buffer.Queue.ReadBatch).
	ReadBatch(b *buffer.Batch, after uint64, max int) error
	// Ack deletes messages the broker has acknowledged.
	Ack(seqs ...uint64) error
	// Events returns committed events, oldest first, at most max.
	Events(max int) ([]buffer.Event, error)
	// AckEvents deletes events the broker has acknowledged.
	AckEvents(ids ...uint64) error
	// Committed signals after each commit that added data.
	Committed() <-chan struct{}
	// Stats gives NextSeq: the seqs appended before a connection came up
	// are its replay lane (replay.go).
	Stats() buffer.Stats
}

// Config of an Uplink. Zero values take the defaults noted.
type Config struct {
	Brokers            []string // tcp:// ssl:// ws:// wss://; more than one = failover in order
	ClientID           string   // default "linegate-<GatewayID>"
	Username, Password string
	TLS                *tls.Config // nil = system defaults for ssl:// wss://
	// QoS of data messages, 0 or 1, taken as given (the config file defaults
	// to 1, to 0 for Sparkplug). With QoS 0 a message is deleted once written
	// to the connection. JSON status and events always use QoS 1.
	QoS                    byte
	TopicPrefix            string // default "linegate"
	GatewayID              string // required
	Site, Area, Line       string
	MaxInflight            int           // default 64
	Version                string        // for the status payload
	ConnectTimeout         time.Duration // default 10s; also bounds a blocked write
	BackoffMin, BackoffMax time.Duration // reconnect backoff, default 1s, 30s
	// AckTimeout is how long the oldest publish may wait for its PUBACK
	// before the connection is dropped and the next one resends from it
	// (default 30s): a broker that answers PINGREQ but withholds one PUBACK
	// would otherwise stall delivery for ever while "connected".
	AckTimeout time.Duration
	// MaxPacket bounds every data PUBLISH packet, topic and header
	// included: uplink.max_message_size (default DefaultMaxMessageSize).
	// The Splitter keeps new messages under it; a buffered message over it
	// (stored before the limit was lowered) is not sent but dropped with a
	// buffer_dropped event.
	MaxPacket  int
	Logger     *slog.Logger // nil = discard
	Registerer prometheus.Registerer
	Clock      func() time.Time // default time.Now
	// ReplayRate caps the backlog found at each connection, in messages per
	// second, while newer messages go unthrottled (replay.go); 0 = no cap,
	// one lane in seq order.
	ReplayRate float64
	// Format of the data: FormatJSON (default) or FormatSparkplugB
	// (sparkplug.go). GroupID (default DefaultGroupID(Site, Line)) and
	// EdgeNode (default GatewayID) name the Sparkplug edge node.
	Format, GroupID, EdgeNode string
	// Commands, when set, gets the commands the MES publishes on
	// <prefix>/<site>/<area>/<line>/<equipment>/cmd (commands.go).
	// With FormatSparkplugB, DCMD metric writes go to it too when it is a
	// WriteHandler (sparkplug_dcmd.go); DCMDMaxAge (default
	// DefaultDCMDMaxAge) bounds a DCMD's age when its write runs.
	Commands   CommandHandler
	DCMDMaxAge time.Duration
	// Sparkplug only (sparkplug.go): the primary host, where bdSeq is kept,
	// and the configured devices and tags, born before their first read.
	PrimaryHost string
	BdSeqFile   string
	Devices     []SparkplugDevice
}

// Status is a snapshot for /status and diagnostics.
type Status struct {
	Connected   bool
	Broker      string // the broker of the current or last connection, without credentials
	Inflight    int
	LastPublish time.Time // last broker acknowledgement of a data message
	LastError   string
	Reconnects  uint64
	Published   uint64 // data messages acknowledged since start
}

// shutdownGrace bounds how long Run waits, once its context is done, for
// the broker to acknowledge the retained offline status.
const shutdownGrace = 2 * time.Second

// DefaultAckTimeout is Config.AckTimeout's default.
const DefaultAckTimeout = 30 * time.Second

// errorGrace bounds the wait for the offline status's PUBACK when a
// connection ends for an error: that broker may be the one not answering.
const errorGrace = time.Second

// Uplink publishes what a Source holds to an MQTT broker. Create with New,
// start with Run.
type Uplink struct {
	cfg     Config
	src     Source
	gw      Gateway
	brokers []*url.URL
	log     *slog.Logger
	met     *metrics
	now     func() time.Time

	statusTopic, eventsTopic string
	sp                       *sparkplug // nil for FormatJSON

	payloads payloadPool         // payloads.go
	topics   map[topicKey]string // data topics; Run's goroutine only
	batch    buffer.Batch        // the last read's messages; Run's goroutine only

	running  atomic.Bool
	gen      atomic.Uint64 // connection generation, see connect
	inflight atomic.Int64

	mu sync.Mutex
	st Status
}

// New checks cfg, applies its defaults and registers the metrics.
func New(cfg Config, src Source) (*Uplink, error) {
	if src == nil {
		return nil, errors.New("uplink: no source")
	}
	if cfg.GatewayID == "" {
		return nil, errors.New("uplink: gateway id is empty")
	}
	if len(cfg.Brokers) == 0 {
		return nil, errors.New("uplink: no broker")
	}
	brokers := make([]*url.URL, 0, len(cfg.Brokers))
	for _, b := range cfg.Brokers {
		u, err := parseBroker(b)
		if err != nil {
			return nil, err
		}
		brokers = append(brokers, u)
	}
	if cfg.QoS > 1 {
		return nil, fmt.Errorf("uplink: qos %d: want 0 or 1", cfg.QoS)
	}
	if cfg.ClientID == "" {
		cfg.ClientID = "linegate-" + cfg.GatewayID
	}
	if cfg.TopicPrefix == "" {
		cfg.TopicPrefix = "linegate"
	}
	if !validPrefix(cfg.TopicPrefix) {
		return nil, fmt.Errorf("uplink: topic prefix %q: must be UTF-8 without + # or NUL", cfg.TopicPrefix)
	}
	switch {
	case cfg.MaxInflight == 0:
		cfg.MaxInflight = 64
	case cfg.MaxInflight < 0 || cfg.MaxInflight > 65000:
		// MQTT packet ids are 16 bits; status and events need a few too.
		return nil, fmt.Errorf("uplink: max inflight %d: want 1..65000", cfg.MaxInflight)
	}
	if cfg.ReplayRate < 0 || math.IsNaN(cfg.ReplayRate) || math.IsInf(cfg.ReplayRate, 0) {
		return nil, fmt.Errorf("uplink: replay rate %g: want 0 (unlimited) or more", cfg.ReplayRate)
	}
	if cfg.ConnectTimeout <= 0 {
		cfg.ConnectTimeout = 10 * time.Second
	}
	if cfg.BackoffMin <= 0 {
		cfg.BackoffMin = time.Second
	}
	if cfg.BackoffMax <= 0 {
		cfg.BackoffMax = 30 * time.Second
	}
	if cfg.AckTimeout <= 0 {
		cfg.AckTimeout = DefaultAckTimeout
	}
	if cfg.MaxPacket == 0 {
		cfg.MaxPacket = DefaultMaxMessageSize
	}
	if cfg.MaxPacket < minMaxMessageSize || cfg.MaxPacket > MaxMessageSizeLimit {
		return nil, fmt.Errorf("uplink: max message size %d: want %d..%d bytes", cfg.MaxPacket, minMaxMessageSize, MaxMessageSizeLimit)
	}
	if cfg.BackoffMax < cfg.BackoffMin {
		return nil, fmt.Errorf("uplink: backoff max %v is below min %v", cfg.BackoffMax, cfg.BackoffMin)
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Clock == nil {
		cfg.Clock = time.Now
	}
	met, err := newMetrics(cfg.Registerer)
	if err != nil {
		return nil, err
	}
	sp, err := newSparkplug(&cfg)
	if err != nil {
		return nil, err
	}
	gw := Gateway{ID: cfg.GatewayID, Site: cfg.Site, Area: cfg.Area, Line: cfg.Line}
	return &Uplink{
		cfg:         cfg,
		src:         src,
		gw:          gw,
		brokers:     brokers,
		log:         cfg.Logger,
		met:         met,
		now:         cfg.Clock,
		statusTopic: gatewayTopic(cfg.TopicPrefix, gw, "status"),
		eventsTopic: gatewayTopic(cfg.TopicPrefix, gw, "events"),
		sp:          sp,
		payloads:    newPayloadPool(cfg.MaxInflight),
		topics:      map[topicKey]string{},
	}, nil
}

// parseBroker checks a broker URL and adds the scheme's default port.
func parseBroker(s string) (*url.URL, error) {
	u, err := url.Parse(s)
	if err != nil {
		// url's error quotes the input, which may hold a password.
		return nil, errors.New("uplink: broker: invalid URL")
	}
	port := ""
	switch u.Scheme {
	case "tcp":
		port = "1883"
	case "ssl":
		port = "8883"
	case "ws", "wss":
	default:
		return nil, fmt.Errorf("uplink: broker %s: scheme must be tcp, ssl, ws or wss", u.Redacted())
	}
	if u.Hostname() == "" {
		return nil, fmt.Errorf("uplink: broker %s: no host", u.Redacted())
	}
	if port != "" && u.Port() == "" {
		u.Host = net.JoinHostPort(u.Hostname(), port)
	}
	return u, nil
}

// Status returns a snapshot of the connection state.
func (u *Uplink) Status() Status {
	u.mu.Lock()
	st := u.st
	u.mu.Unlock()
	st.Inflight = int(u.inflight.Load())
	return st
}

// Run publishes until ctx is done, reconnecting with capped exponential
// backoff. When ctx is done it publishes the retained offline status (waiting
// at most shutdownGrace for the broker), disconnects cleanly and returns nil.
// Messages still in flight then stay in the buffer and are sent again on the
// next run. Run returns an error only if called while already running.
//
// There is exactly one reconnect path, this loop: paho's own auto-reconnect
// is off, and each connection gets a new paho client (see connect).
func (u *Uplink) Run(ctx context.Context) error {
	if !u.running.CompareAndSwap(false, true) {
		return errors.New("uplink: Run is already running")
	}
	defer u.running.Store(false)

	bo := backoff{min: u.cfg.BackoffMin, max: u.cfg.BackoffMax}
	var (
		everConnected bool
		outageSince   time.Time // zero while no outage is known
	)
	for ctx.Err() == nil {
		s, err := u.connect(ctx)
		if err != nil {
			if ctx.Err() != nil {
				break
			}
			u.setError(err)
			wait := bo.next()
			if outageSince.IsZero() {
				// Once per outage: the warning and when the tries go on
				// (every attempt after it at debug, so the log stays quiet).
				outageSince = time.Now()
				u.log.Warn("mqtt connect failed", "brokers", u.brokerList(), "error", err)
				u.log.Info("mqtt retrying with backoff", "next_try_in", wait.Round(time.Millisecond), "reconnect_max", u.cfg.BackoffMax)
			} else {
				u.log.Debug("mqtt connect failed", "brokers", u.brokerList(), "error", err, "next_try_in", wait.Round(time.Millisecond))
			}
			if !sleep(ctx, wait) {
				break
			}
			continue
		}

		u.setConnected(s, everConnected)
		switch {
		case everConnected:
			u.log.Info("mqtt reconnected", "broker", s.broker, "outage", time.Since(outageSince).Round(time.Millisecond))
		case !outageSince.IsZero():
			u.log.Info("mqtt connected", "broker", s.broker, "outage", time.Since(outageSince).Round(time.Millisecond))
		default:
			u.log.Info("mqtt connected", "broker", s.broker)
		}
		everConnected = true
		outageSince = time.Time{}

		start := time.Now()
		err = u.serve(ctx, s)
		if ctx.Err() == nil && u.sp == nil && s.client.IsConnectionOpen() {
			// Ended for an error on a connection that still works (a
			// PUBACK that never came): the DISCONNECT below drops the will.
			u.sayOffline(s, errorGrace)
		}
		// Disconnect stops paho's workers for this client (the last of them
		// end shortly after). The quiesce lets a clean shutdown's DISCONNECT
		// go out, so that the broker drops the last will: the offline status
		// is already there, with the shutdown time.
		s.client.Disconnect(250)
		u.setDisconnected(s.gen)
		if ctx.Err() != nil {
			break
		}
		u.setError(err)
		outageSince = time.Now()
		u.log.Warn("mqtt connection lost", "broker", s.broker, "error", err)
		// A connection that dropped soon after it came up (a broker that
		// accepts and then refuses us) must not make the loop spin, so the
		// backoff only starts over after a connection that lasted.
		if time.Since(start) >= u.cfg.BackoffMax {
			bo.reset()
		}
		if !sleep(ctx, bo.next()) {
			break
		}
	}
	return nil
}

// sleep waits d or until ctx is done; it reports whether ctx is still live.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// session is one MQTT connection, from CONNACK until it is lost or closed.
type session struct {
	gen    uint64
	client mqtt.Client
	broker string    // the broker that accepted us, without credentials
	up     time.Time // when the connection came up, by Config.Clock
	// upSeq is the last seq appended when the connection came up: the
	// messages up to it waited in the buffer (historical).
	upSeq uint64

	sp      *spSession    // FormatSparkplugB only
	lost    chan struct{} // closed by fail
	once    sync.Once
	errMu   sync.Mutex
	lostErr error
}

// fail ends the session with err; the first error wins.
func (s *session) fail(err error) {
	s.once.Do(func() {
		s.errMu.Lock()
		s.lostErr = err
		s.errMu.Unlock()
		close(s.lost)
	})
}

func (s *session) err() error {
	s.errMu.Lock()
	defer s.errMu.Unlock()
	return s.lostErr
}

// connect makes one attempt on each broker, in order, and returns the first
// connection that came up.
//
// How paho v1.5.1 behaves decided the options (see its issues #563, #555,
// #195 and client.go internalConnLost): with AutoReconnect on, a lost
// connection completes the tokens of unacknowledged publishes *without*
// error and resends them from paho's own store, so a caller cannot tell what
// was delivered. With CleanSession(true) and AutoReconnect(false) the loss
// completes every outstanding token with "connection lost before Publish
// completed" and nothing is resent behind our back; the buffer is the only
// store and Run the only reconnect path. A publish stuck on a dead writer
// completes with an error after WriteTimeout, so no token waits forever.
// The reuse of payload buffers (payloads.go) relies on these options too.
//
// Each connection gets a new paho client: paho warns that a client may still
// have goroutines running after Disconnect returns, and a fresh client per
// generation keeps the callbacks of an old connection (tagged with its
// generation number) from touching the current one.
func (u *Uplink) connect(ctx context.Context) (*session, error) {
	s := &session{gen: u.gen.Add(1), lost: make(chan struct{})}
	d := &dialer{ctx: ctx, u: u}

	opts := mqtt.NewClientOptions()
	for _, b := range u.brokerOrder() {
		opts.AddBroker(b.String())
	}
	opts.SetClientID(u.cfg.ClientID)
	opts.SetUsername(u.cfg.Username)
	opts.SetPassword(u.cfg.Password)
	opts.SetCustomOpenConnectionFn(d.open)
	opts.SetProtocolVersion(4) // MQTT 3.1.1; no silent fallback to 3.1 doubling each attempt
	opts.SetCleanSession(true)
	opts.SetAutoReconnect(false)
	opts.SetConnectRetry(false)
	opts.SetConnectTimeout(u.cfg.ConnectTimeout)
	opts.SetWriteTimeout(u.cfg.ConnectTimeout)
	opts.SetKeepAlive(30 * time.Second)
	// The will's ts is the connect time: the broker cannot know a later one.
	if u.sp != nil {
		u.sp.setWill(opts, s)
	} else {
		opts.SetBinaryWill(u.statusTopic, StatusJSON(u.gw, "offline", u.now(), u.cfg.Version), 1, true)
	}
	opts.SetConnectionLostHandler(func(_ mqtt.Client, err error) {
		s.fail(fmt.Errorf("connection lost: %w", err))
		u.setDisconnected(s.gen)
	})

	c := mqtt.NewClient(opts)
	tok := c.Connect()
	// When ctx is done the dialer closes the connection being set up, so
	// the token completes soon; waiting for it keeps paho's connect
	// goroutine from outliving Run.
	<-tok.Done()
	broker := d.release()
	if err := tok.Error(); err != nil {
		target := u.brokerList()
		if broker != nil {
			target = broker.Redacted()
		}
		return nil, fmt.Errorf("connect to %s: %w", target, u.connectError(DialError(err), broker))
	}
	if ctx.Err() != nil {
		c.Disconnect(0)
		return nil, ctx.Err()
	}
	s.client = c
	s.up = u.now()
	if next := u.src.Stats().NextSeq; next > 0 {
		s.upSeq = next - 1
	}
	if broker != nil {
		s.broker = broker.Redacted()
	}
	return s, nil
}

func (u *Uplink) brokerList() string {
	names := make([]string, len(u.brokers))
	for i, b := range u.brokers {
		names[i] = b.Redacted()
	}
	return strings.Join(names, ",")
}

func (u *Uplink) setConnected(s *session, reconnect bool) {
	u.mu.Lock()
	u.st.Connected = true
	u.st.Broker = s.broker
	if reconnect {
		u.st.Reconnects++
	}
	u.mu.Unlock()
	u.met.connected.Set(1)
	if reconnect {
		u.met.reconnects.Inc()
	}
}

// setDisconnected marks the uplink down unless a newer connection has
// already replaced generation gen.
func (u *Uplink) setDisconnected(gen uint64) {
	if u.gen.Load() != gen {
		return
	}
	u.mu.Lock()
	u.st.Connected = false
	u.mu.Unlock()
	u.met.connected.Set(0)
}

func (u *Uplink) setError(err error) {
	if err == nil {
		return
	}
	u.mu.Lock()
	u.st.LastError = err.Error()
	u.mu.Unlock()
}
