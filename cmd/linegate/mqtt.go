package main

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/linegate/linegate/cmd/internal/agent"
	"github.com/linegate/linegate/configs"
	"github.com/linegate/linegate/uplink"
)

func newMQTTCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "mqtt",
		Short: "Check a broker (connect, round trip, TLS) and watch what linegate publishes",
		Args:  cobra.NoArgs,
		RunE:  needSubcommand("mqtt: name a subcommand: check or tail"),
	}
	cmd.AddCommand(newMQTTCheckCmd(g), newMQTTTailCmd(g))
	return cmd
}

// mqttFlags are how to reach a broker.
type mqttFlags struct {
	username     string
	passwordFile string
	caFile       string
	certFile     string
	keyFile      string
	insecure     bool
	timeout      time.Duration
}

func (f *mqttFlags) addFlags(fs *pflag.FlagSet) {
	fs.StringVar(&f.username, "username", "", "MQTT user name")
	fs.StringVar(&f.passwordFile, "password-file", "", "file holding the MQTT password (never shown)")
	fs.StringVar(&f.caFile, "ca-file", "", "PEM CA certificate(s) to verify the broker with (default: system roots)")
	fs.StringVar(&f.certFile, "cert-file", "", "PEM client certificate, for mutual TLS")
	fs.StringVar(&f.keyFile, "key-file", "", "PEM client key, for mutual TLS")
	fs.BoolVar(&f.insecure, "insecure", false, "do not verify the broker's certificate (diagnostics only)")
	fs.DurationVar(&f.timeout, "timeout", 5*time.Second, "connect and round-trip timeout")
}

// dialOptions resolves the flags; bad files are usage errors.
func (f *mqttFlags) dialOptions() (mqttDial, error) {
	d := mqttDial{username: f.username, timeout: f.timeout}
	if f.passwordFile != "" {
		b, err := os.ReadFile(f.passwordFile)
		if err != nil {
			return d, usageError(fmt.Errorf("--password-file: %w", err))
		}
		d.password = strings.TrimRight(string(b), "\r\n")
	}
	t, err := agent.BrokerTLS(configs.TLS{CAFile: f.caFile, CertFile: f.certFile, KeyFile: f.keyFile, InsecureSkipVerify: f.insecure})
	if err != nil {
		return d, usageError(err)
	}
	d.tls = t
	if f.timeout <= 0 {
		return d, usageError(fmt.Errorf("--timeout %v: want more than 0", f.timeout))
	}
	return d, nil
}

// mqttDial is everything needed to connect to one broker.
type mqttDial struct {
	username, password string
	tls                *tls.Config
	timeout            time.Duration
}

// brokerURL accepts host:port (tcp) and the mqtt:// and mqtts:// spellings,
// and adds the default port.
func brokerURL(s string) (*url.URL, error) {
	if !strings.Contains(s, "://") {
		s = "tcp://" + s
	}
	u, err := url.Parse(s)
	if err != nil || u.Hostname() == "" {
		return nil, fmt.Errorf("broker %q: want tcp://host:port, ssl://host:port, ws:// or wss://", s)
	}
	switch u.Scheme {
	case "mqtt":
		u.Scheme = "tcp"
	case "mqtts", "tls":
		u.Scheme = "ssl"
	}
	switch u.Scheme {
	case "tcp":
		if u.Port() == "" {
			u.Host = net.JoinHostPort(u.Hostname(), "1883")
		}
	case "ssl":
		if u.Port() == "" {
			u.Host = net.JoinHostPort(u.Hostname(), "8883")
		}
	case "ws", "wss":
	default:
		return nil, fmt.Errorf("broker %s: scheme must be tcp, ssl, ws or wss", u.Redacted())
	}
	u.User = nil
	return u, nil
}

// mqttConn is a connected diagnostic client.
type mqttConn struct {
	client   paho.Client
	broker   *url.URL
	clientID string
	connect  time.Duration
	tls      *tls.ConnectionState // nil without TLS
}

func randomID(prefix string) string {
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	return prefix + hex.EncodeToString(b)
}

// connectMQTT connects once (no retries) and reports how long it took and
// what TLS was negotiated.
// lost, when not nil, hears of a connection lost later.
func connectMQTT(ctx context.Context, broker string, d mqttDial, lost func(error)) (*mqttConn, error) {
	u, err := brokerURL(broker)
	if err != nil {
		return nil, usageError(err)
	}
	c := &mqttConn{broker: u, clientID: randomID("linegate-diag-")}
	var mu sync.Mutex
	open := func(uri *url.URL, _ paho.ClientOptions) (net.Conn, error) {
		nd := &net.Dialer{Timeout: d.timeout}
		switch uri.Scheme {
		case "tcp":
			return nd.DialContext(ctx, "tcp", uri.Host)
		case "ssl":
			conn, err := (&tls.Dialer{NetDialer: nd, Config: d.tls}).DialContext(ctx, "tcp", uri.Host)
			if err != nil {
				return nil, err
			}
			st := conn.(*tls.Conn).ConnectionState()
			mu.Lock()
			c.tls = &st
			mu.Unlock()
			return conn, nil
		}
		return paho.NewWebsocket(uri.String(), d.tls, d.timeout, nil, nil)
	}
	opts := paho.NewClientOptions().AddBroker(u.String()).SetClientID(c.clientID).
		SetUsername(d.username).SetPassword(d.password).SetCleanSession(true).
		SetAutoReconnect(false).SetConnectRetry(false).SetConnectTimeout(d.timeout).
		SetCustomOpenConnectionFn(open).SetConnectionLostHandler(func(_ paho.Client, err error) {
		if lost != nil {
			lost(err)
		}
	})
	c.client = paho.NewClient(opts)
	start := time.Now()
	tok := c.client.Connect()
	if !tok.WaitTimeout(d.timeout + time.Second) {
		c.client.Disconnect(0)
		return c, fmt.Errorf("connect %s: no CONNACK within %v", u.Redacted(), d.timeout)
	}
	if err := tok.Error(); err != nil {
		err = uplink.DialError(err)
		if (u.Scheme == "ssl" || u.Scheme == "wss") && uplink.ClosedInHandshake(err) {
			err = fmt.Errorf("%s: %w", uplink.NotTLSHint, err)
		}
		return c, fmt.Errorf("connect to %s: %w", u.Redacted(), err)
	}
	c.connect = time.Since(start)
	mu.Lock()
	defer mu.Unlock()
	return c, nil
}

type mqttCheckDoc struct {
	Broker    string      `json:"broker"`
	OK        bool        `json:"ok"`
	ConnectMS float64     `json:"connect_ms,omitempty"`
	TLS       *mqttTLSDoc `json:"tls,omitempty"`
	Topic     string      `json:"topic,omitempty"`
	RoundTrip float64     `json:"round_trip_ms,omitempty"`
	Error     string      `json:"error,omitempty"`
	Step      string      `json:"failed_step,omitempty"` // connect | subscribe | publish | receive
}

type mqttTLSDoc struct {
	Version     string    `json:"version"`
	Cipher      string    `json:"cipher"`
	Verified    bool      `json:"verified"`
	PeerSubject string    `json:"peer_subject,omitempty"`
	PeerIssuer  string    `json:"peer_issuer,omitempty"`
	NotAfter    time.Time `json:"peer_not_after,omitzero"`
}

func tlsDoc(st *tls.ConnectionState, insecure bool) *mqttTLSDoc {
	if st == nil {
		return nil
	}
	d := &mqttTLSDoc{Version: tls.VersionName(st.Version), Cipher: tls.CipherSuiteName(st.CipherSuite), Verified: !insecure}
	if len(st.PeerCertificates) > 0 {
		pc := st.PeerCertificates[0]
		d.PeerSubject, d.PeerIssuer, d.NotAfter = pc.Subject.String(), pc.Issuer.String(), pc.NotAfter.UTC()
	}
	return d
}

// checkBroker connects, subscribes to a topic of its own, publishes to it
// at QoS 1 and waits for the message to come back.
func checkBroker(ctx context.Context, broker string, d mqttDial, insecure bool) mqttCheckDoc {
	doc := mqttCheckDoc{Broker: broker}
	if u, err := brokerURL(broker); err == nil {
		doc.Broker = u.Redacted()
	}
	c, err := connectMQTT(ctx, broker, d, nil)
	if err != nil {
		doc.Step, doc.Error = "connect", err.Error()
		return doc
	}
	defer c.client.Disconnect(250)
	doc.ConnectMS = ms(c.connect)
	doc.TLS = tlsDoc(c.tls, insecure)
	doc.Topic = "linegate/_check/" + c.clientID
	got := make(chan struct{}, 1)
	tok := c.client.Subscribe(doc.Topic, 1, func(paho.Client, paho.Message) {
		select {
		case got <- struct{}{}:
		default:
		}
	})
	if err := waitToken(tok, d.timeout); err != nil {
		doc.Step, doc.Error = "subscribe", err.Error()
		return doc
	}
	start := time.Now()
	if err := waitToken(c.client.Publish(doc.Topic, 1, false, "linegate mqtt check"), d.timeout); err != nil {
		doc.Step, doc.Error = "publish", err.Error()
		return doc
	}
	select {
	case <-got:
		doc.RoundTrip = ms(time.Since(start))
		doc.OK = true
	case <-time.After(d.timeout):
		doc.Step, doc.Error = "receive", fmt.Sprintf("own message not received within %v (does the broker's ACL allow linegate/_check/#?)", d.timeout)
	case <-ctx.Done():
		doc.Step, doc.Error = "receive", ctx.Err().Error()
	}
	_ = waitToken(c.client.Unsubscribe(doc.Topic), d.timeout)
	return doc
}

func waitToken(tok paho.Token, timeout time.Duration) error {
	if !tok.WaitTimeout(timeout) {
		return fmt.Errorf("no answer within %v", timeout)
	}
	if st, ok := tok.(*paho.SubscribeToken); ok && tok.Error() == nil {
		for topic, code := range st.Result() {
			if code == 0x80 {
				return fmt.Errorf("subscription to %s refused", topic)
			}
		}
	}
	return tok.Error()
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

func printMQTTCheck(w io.Writer, doc mqttCheckDoc, now time.Time) {
	fmt.Fprintf(w, "broker      %s\n", doc.Broker)
	if doc.Step == "connect" {
		fmt.Fprintf(w, "connect     FAIL  %s\n", doc.Error)
		return
	}
	fmt.Fprintf(w, "connect     ok    %.1f ms\n", doc.ConnectMS)
	if t := doc.TLS; t != nil {
		verified := "verified"
		if !t.Verified {
			verified = "NOT verified (--insecure)"
		}
		fmt.Fprintf(w, "tls         %s, %s, certificate %s\n", t.Version, t.Cipher, verified)
		if t.PeerSubject != "" {
			fmt.Fprintf(w, "peer        %s (issuer %s), expires %s (in %d days)\n",
				t.PeerSubject, t.PeerIssuer, t.NotAfter.Format("2006-01-02"), int(t.NotAfter.Sub(now).Hours()/24))
		}
	} else if u, err := url.Parse(doc.Broker); err == nil && (u.Scheme == "tcp" || u.Scheme == "ws") {
		fmt.Fprintln(w, "tls         none (plain "+u.Scheme+")")
	}
	if doc.OK {
		fmt.Fprintf(w, "round trip  ok    %.1f ms (qos 1 on %s)\n", doc.RoundTrip, doc.Topic)
		return
	}
	fmt.Fprintf(w, "%-11s FAIL  %s\n", doc.Step, doc.Error)
}

// mqttCheckOptions are the flags of `linegate mqtt check`.
type mqttCheckOptions struct {
	g      *globals
	f      mqttFlags
	asJSON bool
}

func newMQTTCheckCmd(g *globals) *cobra.Command {
	o := &mqttCheckOptions{g: g}
	cmd := &cobra.Command{
		Use:   "check BROKER",
		Short: "Connect, publish and receive a message, and show latency and TLS details",
		Long: `Check connects to the broker once (no retries), subscribes to a topic of its
own (linegate/_check/<client id>), publishes one QoS 1 message to it and waits
for it to come back. It prints the connect time, the round-trip time and, for
ssl:// and wss://, the TLS version, cipher, and the broker certificate's
subject, issuer and expiry. The password is read from --password-file and
never printed. Exit 0 when the round trip worked, 1 when a step failed,
2 on a bad flag.`,
		Example: `  linegate mqtt check tcp://mes-broker:1883
  linegate mqtt check ssl://mes-broker:8883 --ca-file ca.pem --username line1 --password-file pw.txt
  linegate mqtt check ssl://10.0.0.9:8883 --ca-file ca.pem --cert-file gw.pem --key-file gw.key --json`,
		Args: exactArgs(1, "BROKER (tcp://host:port, ssl://host:port, ws:// or wss://)"),
		RunE: o.run,
	}
	o.f.addFlags(cmd.Flags())
	cmd.Flags().BoolVar(&o.asJSON, "json", false, "print JSON")
	return cmd
}

func (o *mqttCheckOptions) run(cmd *cobra.Command, args []string) error {
	d, err := o.f.dialOptions()
	if err != nil {
		return err
	}
	if _, err := brokerURL(args[0]); err != nil {
		return usageError(err)
	}
	doc := checkBroker(cmd.Context(), args[0], d, o.f.insecure)
	if o.asJSON {
		if err := writeJSON(o.g.stdout, doc); err != nil {
			return err
		}
	} else {
		printMQTTCheck(o.g.stdout, doc, time.Now())
	}
	if !doc.OK {
		return &exitError{exitFailed, fmt.Errorf("mqtt check %s: %s failed", doc.Broker, doc.Step)}
	}
	return nil
}

// mqttTailOptions are the flags of `linegate mqtt tail`.
type mqttTailOptions struct {
	g      *globals
	f      mqttFlags
	broker string
	config string
	raw    bool
	asJSON bool
	count  int
}

func newMQTTTailCmd(g *globals) *cobra.Command {
	o := &mqttTailOptions{g: g}
	cmd := &cobra.Command{
		Use:   "tail [TOPIC]",
		Short: "Subscribe and pretty-print linegate payloads as they arrive",
		Long: `Tail subscribes to TOPIC (default: <topic_prefix>/#, i.e. linegate/#) and
prints every message: linegate payloads as one readable line each (seq,
equipment, class, every reading with its unit, bad readings with their
error; status and events), anything else as it is. Retained messages (the
gateways' status) come first. Ctrl-C stops it.
Exit 0 after Ctrl-C or --count, 1 when the broker cannot be reached, 2 on a
bad flag.`,
		Example: `  linegate mqtt tail --broker tcp://mes-broker:1883
  linegate mqtt tail 'linegate/plant-a/+/+/press01/#' --broker tcp://mes-broker:1883 --raw
  linegate mqtt tail -c /etc/linegate/linegate.yaml      # broker, credentials and TLS of the config`,
		Args: cobra.MaximumNArgs(1),
		RunE: o.run,
	}
	o.f.addFlags(cmd.Flags())
	cmd.Flags().StringVar(&o.broker, "broker", "", "broker URL (tcp://host:port, ssl://, ws://, wss://)")
	cmd.Flags().StringVarP(&o.config, "config", "c", "", "take broker, credentials, TLS and topic prefix from this config")
	cmd.Flags().BoolVar(&o.raw, "raw", false, "print topic and payload as they are")
	cmd.Flags().BoolVar(&o.asJSON, "json", false, "print one JSON object per message")
	cmd.Flags().IntVarP(&o.count, "count", "n", 0, "stop after this many messages (0 = until Ctrl-C)")
	return cmd
}

func (o *mqttTailOptions) run(cmd *cobra.Command, args []string) error {
	d, err := o.f.dialOptions()
	if err != nil {
		return err
	}
	topic := "linegate/#"
	if o.config != "" {
		cfg, err := loadConfig(o.config)
		if err != nil {
			return err
		}
		if o.broker == "" && len(cfg.Uplink.Brokers) > 0 {
			o.broker = cfg.Uplink.Brokers[0]
		}
		if d.username == "" {
			d.username, d.password = cfg.Uplink.Username, cfg.Uplink.Password.Reveal()
		}
		if d.tls == nil {
			if d.tls, err = agent.BrokerTLS(cfg.Uplink.TLS); err != nil {
				return usageError(err)
			}
		}
		topic = cfg.Uplink.TopicPrefix + "/#"
	}
	if len(args) == 1 {
		topic = args[0]
	}
	if o.broker == "" {
		return usageError(errors.New("--broker URL (or -c FILE) is required"))
	}
	ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	var mu sync.Mutex
	n := 0
	handler := func(_ paho.Client, m paho.Message) {
		mu.Lock()
		defer mu.Unlock()
		if o.count > 0 && n >= o.count {
			return
		}
		n++
		switch {
		case o.asJSON:
			var payload any = json.RawMessage(m.Payload())
			if !json.Valid(m.Payload()) {
				payload = string(m.Payload())
			}
			b, _ := json.Marshal(struct {
				Topic    string `json:"topic"`
				Retained bool   `json:"retained"`
				Payload  any    `json:"payload"`
			}{m.Topic(), m.Retained(), payload})
			fmt.Fprintf(o.g.stdout, "%s\n", b)
		case o.raw || !json.Valid(m.Payload()):
			fmt.Fprintf(o.g.stdout, "%s %s\n", m.Topic(), m.Payload())
		default:
			fmt.Fprintln(o.g.stdout, describe(m.Topic(), m.Payload()))
		}
		if o.count > 0 && n >= o.count {
			cancel()
		}
	}
	var lostErr error
	c, err := connectMQTT(ctx, o.broker, d, func(err error) {
		mu.Lock()
		lostErr = err
		mu.Unlock()
		cancel()
	})
	if err != nil {
		return &exitError{exitFailed, err}
	}
	defer c.client.Disconnect(250)
	if err := waitToken(c.client.Subscribe(topic, 1, handler), d.timeout); err != nil {
		return &exitError{exitFailed, fmt.Errorf("subscribe %s: %w", topic, err)}
	}
	if !o.asJSON && !o.raw {
		fmt.Fprintf(o.g.stderr, "tail %s on %s (Ctrl-C to stop)\n", topic, c.broker.Redacted())
	}
	<-ctx.Done()
	mu.Lock()
	defer mu.Unlock()
	if lostErr != nil {
		return &exitError{exitFailed, fmt.Errorf("connection to %s lost: %w", c.broker.Redacted(), lostErr)}
	}
	return nil
}
