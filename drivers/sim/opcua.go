package sim

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"math/big"
	"net"
	"net/url"
	"strconv"
	"sync"
	"time"

	"github.com/gopcua/opcua/id"
	"github.com/gopcua/opcua/server"
	"github.com/gopcua/opcua/server/attrs"
	"github.com/gopcua/opcua/ua"
)

// OvenOptions configure a simulated OPC UA oven.
type OvenOptions struct {
	Addr string // listen address, default "127.0.0.1:0" (a free port)
	// Tick is how often the process moves, default 100ms.
	Tick time.Duration
	// Secure also offers every security policy (Sign and SignAndEncrypt)
	// with a self-signed server certificate, and username and X.509 user
	// logins (which this simulator does not check).
	Secure bool
	// LoadVariables adds that many Double variables Oven01.Load.N that all
	// change every tick: a load for measuring subscriptions.
	LoadVariables int
	Logger        *slog.Logger
}

// OvenNamespace is the namespace URI of the oven's nodes (index 1).
const OvenNamespace = "urn:linegate:sim:oven"

// Oven is a simulated reflow oven behind a gopcua OPC UA server, with one
// variable of each common type:
//
//	ns=1;s=Oven01.Zone1.Temperature  Double    degC (also Zone2, Zone3)
//	ns=1;s=Oven01.Setpoint           Float     degC
//	ns=1;s=Oven01.State              Int32     enum 0 stopped 1 heating 2 running 3 fault
//	ns=1;s=Oven01.Heater             Boolean
//	ns=1;s=Oven01.Parts              UInt32    counter
//	ns=1;s=Oven01.Recipe             String
//	ns=1;s=Oven01.LastCycle          DateTime  end of the last cycle
//	ns=1;s=Oven01.CycleTime          UInt16    ms
//	ns=1;s=Oven01.ZoneTemperatures   Double[3]
//	ns=1;s=Oven01.Mode               LocalizedText
//	ns=1;s=Oven01.Draft              Int16     Pa
//	ns=1;s=Oven01.AlarmCode          Byte
//	ns=1;s=Oven01.Trim               SByte
//	ns=1;s=Oven01.Energy             Int64     Wh
//	ns=1;s=Oven01.RunSeconds         UInt64    s
//	ns=1;s=Oven01.Humidity           Double    status UncertainLastUsableValue
//	ns=1;s=Oven01.Sensor4            Double    status BadSensorFailure
//
// Browse paths: Objects/Oven01/Zone1/Temperature, Objects/Oven01/Setpoint, ...
type Oven struct {
	opts OvenOptions
	log  *slog.Logger
	host string
	port int

	mu     sync.Mutex // guards vals, status, t
	vals   map[string]any
	status map[string]ua.StatusCode
	ts     map[string]time.Time
	t      float64 // simulated seconds

	cert []byte
	key  *rsa.PrivateKey

	life   sync.Mutex // guards srv, px, cancel, done, prefix
	prefix string     // of the node ids, see Renumber
	srv    *server.Server
	px     *proxy
	ns     *server.NodeNameSpace
	cancel context.CancelFunc
	done   chan struct{}
}

// NewOven builds the oven; nothing runs until Start.
func NewOven(opts OvenOptions) *Oven {
	if opts.Addr == "" {
		opts.Addr = "127.0.0.1:0"
	}
	if opts.Tick <= 0 {
		opts.Tick = 100 * time.Millisecond
	}
	o := &Oven{opts: opts, log: opts.Logger, status: map[string]ua.StatusCode{}, ts: map[string]time.Time{}}
	if o.log == nil {
		o.log = slog.New(slog.DiscardHandler)
	}
	o.status["Humidity"] = ua.StatusUncertainLastUsableValue
	o.status["Sensor4"] = ua.StatusBadSensorFailure
	o.vals = o.model(0)
	now := time.Now()
	for k := range o.vals {
		o.ts[k] = now
	}
	return o
}

// ovenVars are the variables in browse order: name under Oven01 (a dot
// makes a folder), and the node id suffix.
var ovenVars = []string{
	"Zone1.Temperature", "Zone2.Temperature", "Zone3.Temperature",
	"Setpoint", "State", "Heater", "Parts", "Recipe", "LastCycle", "CycleTime",
	"ZoneTemperatures", "Mode", "Draft", "AlarmCode", "Trim", "Energy", "RunSeconds",
	"Humidity", "Sensor4",
}

// model is the oven's state at simulated time t (seconds): a cycle every
// 6 s, zones oscillating around the set point.
func (o *Oven) model(t float64) map[string]any {
	cycle := int64(t / 6)
	phase := math.Mod(t, 6)
	state := int32(2)
	switch {
	case t < 1:
		state = 1
	case phase > 5.5:
		state = 0
	}
	round := func(v float64) float64 { return math.Round(v*100) / 100 }
	z := []float64{
		round(245 + 2*math.Sin(t/3)),
		round(250 + 1.5*math.Sin(t/4+1)),
		round(255 + 1*math.Sin(t/5+2)),
	}
	m := map[string]any{
		"Zone1.Temperature": z[0], "Zone2.Temperature": z[1], "Zone3.Temperature": z[2],
		"Setpoint":         float32(250.5),
		"State":            state,
		"Heater":           phase < 4,
		"Parts":            uint32(cycle),
		"Recipe":           "PCB-4711",
		"LastCycle":        time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).Add(time.Duration(cycle) * 6 * time.Second),
		"CycleTime":        uint16(5800 + cycle%7*10),
		"ZoneTemperatures": z,
		"Mode":             &ua.LocalizedText{EncodingMask: ua.LocalizedTextText | ua.LocalizedTextLocale, Locale: "en", Text: "Automatic"},
		"Draft":            int16(-12 + cycle%3),
		"AlarmCode":        uint8(0),
		"Trim":             int8(-3),
		"Energy":           int64(1_000_000 + cycle*125),
		"RunSeconds":       uint64(t),
		"Humidity":         41.5,
		"Sensor4":          0.0,
	}
	for i := 0; i < o.opts.LoadVariables; i++ {
		m["Load."+strconv.Itoa(i)] = round(t*10 + float64(i))
	}
	return m
}

// NodeID is the node id of a variable: "Zone1.Temperature" → ns=1;s=Oven01.Zone1.Temperature.
func (o *Oven) NodeID(name string) string {
	o.life.Lock()
	defer o.life.Unlock()
	return "ns=1;s=" + o.prefix + "Oven01." + name
}

// Renumber gives every node a new id from the next Start on, with the
// same browse names: what a PLC program download does to numeric ids.
func (o *Oven) Renumber(prefix string) {
	o.life.Lock()
	o.prefix = prefix
	o.life.Unlock()
}

// Endpoint is opc.tcp://host:port, valid after Start.
func (o *Oven) Endpoint() string {
	o.life.Lock()
	defer o.life.Unlock()
	return fmt.Sprintf("opc.tcp://%s", net.JoinHostPort(o.host, strconv.Itoa(o.port)))
}

// Certificate is the server certificate (DER), nil unless Secure.
func (o *Oven) Certificate() []byte { return o.cert }

// SetStatus makes a variable report status s (StatusOK to clear).
func (o *Oven) SetStatus(name string, s ua.StatusCode) {
	o.mu.Lock()
	o.status[name] = s
	o.ts[name] = time.Now()
	o.mu.Unlock()
	o.life.Lock()
	srv, ns, prefix := o.srv, o.ns, o.prefix
	o.life.Unlock()
	if srv != nil {
		notify(srv, ns.ID(), prefix, []string{name})
	}
}

// Start listens and runs the process. After Stop, Start serves again on
// the same port (a PLC restart): sessions and subscriptions are gone.
func (o *Oven) Start(ctx context.Context) error {
	o.life.Lock()
	defer o.life.Unlock()
	if o.srv != nil {
		return errors.New("oven: already started")
	}
	if o.port == 0 {
		host, port, err := freeAddr(o.opts.Addr)
		if err != nil {
			return fmt.Errorf("oven: %w", err)
		}
		o.host, o.port = host, port
	}
	if o.opts.Secure && o.cert == nil {
		cert, key, err := selfSigned("urn:linegate:sim:oven")
		if err != nil {
			return fmt.Errorf("oven: certificate: %w", err)
		}
		o.cert, o.key = cert, key
	}
	// The gopcua server listens on an inner port; clients reach it through
	// the proxy on the public one (see proxy).
	_, inner, err := freeAddr(net.JoinHostPort(o.host, "0"))
	if err != nil {
		return fmt.Errorf("oven: %w", err)
	}
	srv, ns := o.build(inner)
	sctx, cancel := context.WithCancel(ctx)
	if err := srv.Start(sctx); err != nil {
		cancel()
		srv.Close()
		return fmt.Errorf("oven: %w", err)
	}
	px, err := newProxy(net.JoinHostPort(o.host, strconv.Itoa(o.port)), net.JoinHostPort(o.host, strconv.Itoa(inner)))
	if err != nil {
		cancel()
		srv.Close()
		return fmt.Errorf("oven: %w", err)
	}
	o.srv, o.px, o.ns, o.cancel, o.done = srv, px, ns, cancel, make(chan struct{})
	go o.run(sctx, o.done, srv, ns.ID(), o.prefix)
	o.log.Debug("oven: OPC UA server started", "endpoint", fmt.Sprintf("opc.tcp://%s:%d", o.host, o.port))
	return nil
}

// Stop closes every connection and stops listening.
func (o *Oven) Stop() {
	o.life.Lock()
	defer o.life.Unlock()
	if o.srv == nil {
		return
	}
	o.px.close()
	o.cancel()
	select {
	case <-o.done:
	case <-time.After(5 * time.Second):
		// gopcua's server can block a change notification for good when
		// a subscription ends at the wrong moment; do not hang on it.
		o.log.Warn("oven: simulation stuck in the OPC UA server; leaving it behind")
	}
	o.srv.Close()
	o.srv, o.px, o.ns = nil, nil, nil
}

// Cut stops (true) or resumes (false) the bytes between the server and its
// clients without closing a connection: a pulled cable.
func (o *Oven) Cut(on bool) {
	o.life.Lock()
	defer o.life.Unlock()
	if o.px != nil {
		o.px.setCut(on)
	}
}

func freeAddr(addr string) (string, int, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "", 0, err
	}
	if port != "0" && port != "" {
		p, err := strconv.Atoi(port)
		return host, p, err
	}
	// gopcua's server advertises the port it was given: find a free one
	// first (the race with another process is tolerable in a simulator).
	for range 10 {
		l, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
		if err != nil {
			return "", 0, err
		}
		p := l.Addr().(*net.TCPAddr).Port
		l.Close()
		if p != 1883 {
			return host, p, nil
		}
	}
	return "", 0, errors.New("no free port")
}

func (o *Oven) build(inner int) (*server.Server, *server.NodeNameSpace) {
	opts := []server.Option{
		// The first endpoint is where gopcua listens; the second is the
		// one clients use.
		server.EndPoint(o.host, inner),
		server.EndPoint(o.host, o.port),
		server.ServerName("linegate simulated oven"),
		server.EnableSecurity("None", ua.MessageSecurityModeNone),
		server.EnableAuthMode(ua.UserTokenTypeAnonymous),
	}
	if o.opts.Secure {
		opts = append(opts, server.PrivateKey(o.key), server.Certificate(o.cert),
			server.EnableAuthMode(ua.UserTokenTypeUserName), server.EnableAuthMode(ua.UserTokenTypeCertificate))
		for _, p := range []string{"Basic128Rsa15", "Basic256", "Basic256Sha256", "Aes128_Sha256_RsaOaep", "Aes256_Sha256_RsaPss"} {
			opts = append(opts,
				server.EnableSecurity(p, ua.MessageSecurityModeSign),
				server.EnableSecurity(p, ua.MessageSecurityModeSignAndEncrypt))
		}
	}
	srv := server.New(opts...)
	ns := server.NewNodeNameSpace(srv, OvenNamespace)
	root, _ := srv.Namespace(0)
	objects := root.Objects()

	folders := map[string]*server.Node{}
	folder := func(path, name string, parent *server.Node) *server.Node {
		if f, ok := folders[path]; ok {
			return f
		}
		f := server.NewFolderNode(ua.NewStringNodeID(ns.ID(), o.prefix+path), name)
		// NewFolderNode's only reference points at the Objects folder's id
		// in our namespace; drop it, so browsing shows the real children.
		f = server.NewNode(f.ID(), map[ua.AttributeID]*ua.DataValue{
			ua.AttributeIDNodeClass:   server.DataValueFromValue(uint32(ua.NodeClassObject)),
			ua.AttributeIDBrowseName:  server.DataValueFromValue(&ua.QualifiedName{NamespaceIndex: ns.ID(), Name: name}),
			ua.AttributeIDDisplayName: server.DataValueFromValue(attrs.DisplayName(name, name)),
			ua.AttributeIDDescription: server.DataValueFromValue(attrs.DisplayName(name, name)),
		}, nil, nil)
		ns.AddNode(f)
		parent.AddRef(f, id.Organizes, true)
		folders[path] = f
		return f
	}
	oven := folder("Oven01", "Oven01", objects)
	names := append([]string(nil), ovenVars...)
	for i := 0; i < o.opts.LoadVariables; i++ {
		names = append(names, "Load."+strconv.Itoa(i))
	}
	for _, name := range names {
		parent, leaf := oven, name
		for j := 0; j < len(leaf); j++ {
			if leaf[j] == '.' {
				parent = folder("Oven01."+name[:j], leaf[:j], parent)
				leaf = leaf[j+1:]
				break
			}
		}
		key := name
		n := server.NewVariableNode(ua.NewStringNodeID(ns.ID(), o.prefix+"Oven01."+name), leaf, func() *ua.DataValue { return o.value(key) })
		_ = n.SetAttribute(ua.AttributeIDBrowseName, server.DataValueFromValue(&ua.QualifiedName{NamespaceIndex: ns.ID(), Name: leaf}))
		ns.AddNode(n)
		parent.AddRef(n, id.HasComponent, true)
	}
	return srv, ns
}

// value is a variable's current DataValue.
func (o *Oven) value(name string) *ua.DataValue {
	o.mu.Lock()
	v, st, ts := o.vals[name], o.status[name], o.ts[name]
	o.mu.Unlock()
	dv := &ua.DataValue{
		EncodingMask:    ua.DataValueValue | ua.DataValueSourceTimestamp | ua.DataValueServerTimestamp,
		Value:           ua.MustVariant(v),
		SourceTimestamp: ts,
		ServerTimestamp: time.Now(),
	}
	if st != ua.StatusOK {
		dv.EncodingMask |= ua.DataValueStatusCode
		dv.Status = st
		if quality := uint32(st) >> 30; quality >= 2 {
			dv.EncodingMask &^= ua.DataValueValue
			dv.Value = nil
		}
	}
	return dv
}

// run moves the process and notifies srv (its own server: Stop waits for
// run under the life lock, so run must not take it).
func (o *Oven) run(ctx context.Context, done chan struct{}, srv *server.Server, nsID uint16, prefix string) {
	defer close(done)
	t := time.NewTicker(o.opts.Tick)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		o.mu.Lock()
		o.t += o.opts.Tick.Seconds()
		next := o.model(o.t)
		now := time.Now()
		var changed []string
		for k, v := range next {
			if !equalValue(o.vals[k], v) {
				o.vals[k], o.ts[k] = v, now
				changed = append(changed, k)
			}
		}
		o.mu.Unlock()
		notify(srv, nsID, prefix, changed)
	}
}

// notify tells srv's subscriptions that the variables changed.
func notify(srv *server.Server, nsID uint16, prefix string, names []string) {
	for _, n := range names {
		srv.ChangeNotification(ua.NewStringNodeID(nsID, prefix+"Oven01."+n))
	}
}

func equalValue(a, b any) bool {
	switch x := a.(type) {
	case []float64:
		y, ok := b.([]float64)
		if !ok || len(x) != len(y) {
			return false
		}
		for i := range x {
			if x[i] != y[i] {
				return false
			}
		}
		return true
	case *ua.LocalizedText:
		y, ok := b.(*ua.LocalizedText)
		return ok && x != nil && y != nil && *x == *y
	case time.Time:
		y, ok := b.(time.Time)
		return ok && x.Equal(y)
	}
	return a == b
}

// selfSigned makes a server certificate for 127.0.0.1 and localhost.
func selfSigned(uri string) ([]byte, *rsa.PrivateKey, error) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, nil, err
	}
	u, err := url.Parse(uri)
	if err != nil {
		return nil, nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: "linegate simulated oven", Organization: []string{"linegate"}},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().AddDate(1, 0, 0),
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageContentCommitment |
			x509.KeyUsageKeyEncipherment | x509.KeyUsageDataEncipherment | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		BasicConstraintsValid: true,
		URIs:                  []*url.URL{u},
		DNSNames:              []string{"localhost"},
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1)},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	return der, key, err
}
