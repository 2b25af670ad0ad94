package configs

import (
	"fmt"
	"math"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// Defaults that the README documents.
const (
	DefaultHTTPListen     = "127.0.0.1:9870"
	DefaultBufferPath     = "/var/lib/linegate/buffer.db"
	DefaultMaxSize        = ByteSize(1 << 30)
	MinMaxSize            = ByteSize(256 << 10)
	DefaultCommitInterval = Duration(50 * time.Millisecond)
	DefaultTopicPrefix    = "linegate"
	DefaultMaxInflight    = 64
	DefaultAckTimeout     = Duration(30 * time.Second)
	DefaultReconnectMax   = Duration(30 * time.Second)
	// DefaultMaxMessageSize is uplink.DefaultMaxMessageSize (configs does
	// not import uplink); MinMaxMessageSize and MaxMaxMessageSize bound it.
	DefaultMaxMessageSize = ByteSize(256 << 10)
	MinMaxMessageSize     = ByteSize(1 << 10)
	MaxMaxMessageSize     = ByteSize(268435455 + 5)
	MaxReplayRate         = 1000000 // uplink.replay_rate, messages/s
	DefaultPollInterval   = Duration(time.Second)
	DefaultTimeout        = Duration(time.Second)
	DefaultMaxGap         = 10
	DefaultReportEvery    = Duration(time.Minute)
)

// Enumerations of the schema.
var (
	Classes          = []string{"process", "equipment", "time"}
	Registers        = []string{"holding", "input", "coil", "discrete"}
	Types            = []string{"bool", "int16", "uint16", "int32", "uint32", "int64", "uint64", "float32", "float64", "string"}
	ByteOrders       = []string{"ABCD", "CDAB", "BADC", "DCBA"}
	SecurityPolicies = []string{"None", "Basic128Rsa15", "Basic256", "Basic256Sha256", "Aes128_Sha256_RsaOaep", "Aes256_Sha256_RsaPss", "auto"}
	SecurityModes    = []string{"None", "Sign", "SignAndEncrypt"}
	// DurationUnits are the units a time-class value may carry; it is
	// published in seconds.
	DurationUnits = map[string]float64{"ms": 1e-3, "s": 1, "min": 60, "h": 3600}
)

// RegisterWidth is how many 16-bit registers a type takes (strings: length).
func RegisterWidth(typ string, length int) int {
	switch typ {
	case "int32", "uint32", "float32":
		return 2
	case "int64", "uint64", "float64":
		return 4
	case "string":
		return length
	default:
		return 1
	}
}

func isInteger(typ string) bool {
	switch typ {
	case "int16", "uint16", "int32", "uint32", "int64", "uint64":
		return true
	}
	return false
}

func oneOf(v string, list []string) bool {
	for _, s := range list {
		if v == s {
			return true
		}
	}
	return false
}

func quoteList(list []string) string { return strings.Join(list, " | ") }

type validator struct {
	cfg      *Config
	nodes    nodeIndex
	dir      string
	problems []Problem
	warnings []Problem // see Config.Warnings
}

func (v *validator) addf(line int, where, format string, args ...any) {
	v.problems = append(v.problems, Problem{Line: line, Msg: prefix(where) + fmt.Sprintf(format, args...)})
}

// top checks everything but the devices.
func (v *validator) top() {
	c := v.cfg
	v.gateway()
	v.buffer()
	v.uplink()
	if l := c.HTTP.ListenAddr(); l != "" {
		if _, _, err := net.SplitHostPort(l); err != nil {
			v.addf(keyLine(v.nodes.section("http"), "listen"), "http", "listen %q is not host:port", l)
		}
	}
	v.httpAccess()
	v.log()
	if len(c.Devices) == 0 {
		v.addf(keyLine(v.nodes.root, "devices"), "", "no devices: add at least one under devices:")
	}
}

// deviceAt checks device i; seen holds the lines of the names before it.
func (v *validator) deviceAt(i int, seen map[string]int) {
	d := &v.cfg.Devices[i]
	n := v.nodes.device(i)
	where := "device " + d.Name
	if d.Name == "" {
		where = fmt.Sprintf("device #%d", i+1)
		v.addf(n.Line, where, "name is required")
	} else if !topicSafe(d.Name) {
		v.addf(keyLine(n, "name"), where, "name %q may only hold letters, digits, '-', '_' and '.' (it is an MQTT topic level)", d.Name)
	}
	if prev, dup := seen[d.Name]; dup && d.Name != "" {
		v.addf(n.Line, where, "duplicate device name (first defined at line %d)", prev)
	}
	seen[d.Name] = n.Line
	v.device(i, where)
	if d.Driver == "modbus" {
		v.overlaps(i, where)
	}
}

// crossDevice runs the checks that compare devices, after each was checked.
func (v *validator) crossDevice() {
	v.modbusLinks()
	v.secretFiles()
}

func topicSafe(s string) bool {
	if s == "" {
		return false
	}
	for _, r := range s {
		if r == '-' || r == '_' || r == '.' || r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' {
			continue
		}
		return false
	}
	return true
}

func (v *validator) gateway() {
	g := &v.cfg.Gateway
	n := v.nodes.section("gateway")
	for _, f := range []struct{ key, val string }{{"id", g.ID}, {"site", g.Site}, {"area", g.Area}, {"line", g.Line}} {
		switch {
		case f.val == "":
			v.addf(keyLine(n, f.key), "gateway", "%s is required (it is part of every MQTT topic)", f.key)
		case !topicSafe(f.val):
			v.addf(keyLine(n, f.key), "gateway", "%s %q may only hold letters, digits, '-', '_' and '.'", f.key, f.val)
		}
	}
}

func (v *validator) buffer() {
	b := &v.cfg.Buffer
	n := v.nodes.section("buffer")
	if b.Path == "" {
		b.Path = Paths().Buffer // per OS (paths.go)
	} else {
		b.Path = v.resolve(b.Path)
	}
	switch {
	case b.MaxSize == 0:
		b.MaxSize = DefaultMaxSize
	case b.MaxSize < MinMaxSize:
		v.addf(keyLine(n, "max_size"), "buffer", "max_size %s is below the minimum %s", b.MaxSize, MinMaxSize)
	}
	if b.OnFull == "" {
		b.OnFull = "drop_oldest"
	} else if b.OnFull != "drop_oldest" {
		v.addf(keyLine(n, "on_full"), "buffer", "on_full %q is not supported (drop_oldest)", b.OnFull)
	}
	switch {
	case b.CommitInterval == 0:
		b.CommitInterval = DefaultCommitInterval
	case b.CommitInterval < Duration(time.Millisecond) || b.CommitInterval > Duration(10*time.Second):
		v.addf(keyLine(n, "commit_interval"), "buffer", "commit_interval %s must be between 1ms and 10s", b.CommitInterval)
	}
	if b.MaxAge != 0 && b.MaxAge < Duration(time.Minute) {
		v.addf(keyLine(n, "max_age"), "buffer", "max_age %s must be 0 (keep until the size cap) or at least 1m", b.MaxAge)
	}
}

func (v *validator) uplink() {
	u := &v.cfg.Uplink
	n := v.nodes.section("uplink")
	if len(u.Brokers) == 0 {
		v.addf(keyLine(n, "brokers"), "uplink", "brokers: at least one broker URL is required (tcp://host:1883)")
	}
	for i, b := range u.Brokers {
		b = NormalizeBroker(b)
		u.Brokers[i] = b
		pu, err := url.Parse(b)
		shown := RedactURL(b) // messages never show a password in the URL
		switch {
		case err != nil:
			v.addf(keyLine(n, "brokers"), "uplink", "broker %q: not a URL", shown)
		case !oneOf(pu.Scheme, []string{"tcp", "ssl", "ws", "wss"}):
			v.addf(keyLine(n, "brokers"), "uplink", "broker %q: scheme must be tcp://, ssl://, ws:// or wss://", shown)
		case pu.Host == "":
			v.addf(keyLine(n, "brokers"), "uplink", "broker %q has no host", shown)
		}
	}
	if u.ClientID == "" {
		u.ClientID = "linegate-" + v.cfg.Gateway.ID
	}
	if u.Password != "" && u.PasswordFile != "" {
		v.addf(keyLine(n, "password_file"), "uplink", "password and password_file are exclusive")
	}
	if u.PasswordFile != "" {
		u.PasswordFile = v.resolve(u.PasswordFile)
		if p, err := readSecret(u.PasswordFile); err != nil {
			v.addf(keyLine(n, "password_file"), "uplink", "%v", err)
		} else {
			u.Password = p
		}
	}
	tn := valueOf(n, "tls")
	for _, f := range []*string{&u.TLS.CAFile, &u.TLS.CertFile, &u.TLS.KeyFile} {
		if *f != "" {
			*f = v.resolve(*f)
		}
	}
	if (u.TLS.CertFile == "") != (u.TLS.KeyFile == "") {
		v.addf(keyLine(tn, "cert_file"), "uplink", "tls: cert_file and key_file go together")
	}
	if u.QoS != nil && (*u.QoS < 0 || *u.QoS > 1) {
		v.addf(keyLine(n, "qos"), "uplink", "qos %d is not supported (0 or 1)", *u.QoS)
	}
	if u.TopicPrefix == "" {
		u.TopicPrefix = DefaultTopicPrefix
	} else if strings.ContainsAny(u.TopicPrefix, "+#") || strings.HasPrefix(u.TopicPrefix, "/") || strings.HasSuffix(u.TopicPrefix, "/") {
		v.addf(keyLine(n, "topic_prefix"), "uplink", "topic_prefix %q must not hold + or # nor start or end with /", u.TopicPrefix)
	}
	if u.Format == "" {
		u.Format = "json"
	} else if u.Format != "json" && u.Format != "sparkplugb" {
		v.addf(keyLine(n, "format"), "uplink", "format %q is not supported (json, sparkplugb)", u.Format)
	}
	v.sparkplug(n)
	switch {
	case u.MaxInflight == 0:
		u.MaxInflight = DefaultMaxInflight
	case u.MaxInflight < 1 || u.MaxInflight > 65535:
		v.addf(keyLine(n, "max_inflight"), "uplink", "max_inflight %d must be between 1 and 65535", u.MaxInflight)
	}
	if u.ReplayRate < 0 || u.ReplayRate > MaxReplayRate || math.IsNaN(u.ReplayRate) {
		v.addf(keyLine(n, "replay_rate"), "uplink", "replay_rate %g must be between 0 (unlimited) and %d messages/s", u.ReplayRate, MaxReplayRate)
	}
	switch {
	case u.AckTimeout == 0:
		u.AckTimeout = DefaultAckTimeout
	case u.AckTimeout < Duration(time.Second) || u.AckTimeout > Duration(10*time.Minute):
		v.addf(keyLine(n, "ack_timeout"), "uplink", "ack_timeout %s must be between 1s and 10m", u.AckTimeout)
	}
	switch {
	case u.ReconnectMax == 0:
		u.ReconnectMax = DefaultReconnectMax
	case u.ReconnectMax < Duration(time.Second) || u.ReconnectMax > Duration(time.Hour):
		v.addf(keyLine(n, "reconnect_max"), "uplink", "reconnect_max %s must be between 1s and 1h", u.ReconnectMax)
	}
	switch {
	case u.MaxMessageSize == 0:
		u.MaxMessageSize = DefaultMaxMessageSize
	case u.MaxMessageSize < MinMaxMessageSize || u.MaxMessageSize > MaxMaxMessageSize:
		v.addf(keyLine(n, "max_message_size"), "uplink", "max_message_size %d must be between 1KiB and 256MiB (MQTT's largest packet)", int64(u.MaxMessageSize))
	}
}

// resolve makes a relative path relative to the config file's folder, which
// is what an engineer who writes "password_file: mqtt.pass" means.
func (v *validator) resolve(p string) string {
	if p == "" || filepath.IsAbs(p) || v.dir == "" {
		return p
	}
	return filepath.Join(v.dir, p)
}

func readSecret(path string) (Secret, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("password_file: %w", err)
	}
	s := strings.TrimRight(string(b), "\r\n")
	if s == "" {
		return "", fmt.Errorf("password_file %s is empty", path)
	}
	return Secret(s), nil
}

func (v *validator) device(i int, where string) {
	d := &v.cfg.Devices[i]
	n := v.nodes.device(i)
	switch {
	case d.PollInterval == 0:
		d.PollInterval = DefaultPollInterval
	case d.PollInterval < Duration(10*time.Millisecond):
		v.addf(keyLine(n, "poll_interval"), where, "poll_interval %s is below 10ms", d.PollInterval)
	}
	switch {
	case d.Timeout == 0:
		d.Timeout = min(DefaultTimeout, d.PollInterval)
	case d.Timeout < 0:
		v.addf(keyLine(n, "timeout"), where, "timeout %s must be positive", d.Timeout)
	}
	switch d.Driver {
	case "modbus":
		v.modbusDevice(i, where)
	case "opcua":
		v.opcuaDevice(i, where)
	case "":
		v.addf(n.Line, where, "driver is required (modbus | opcua)")
	default:
		v.addf(keyLine(n, "driver"), where, "unknown driver %q (modbus | opcua)", d.Driver)
	}
	if len(d.Tags) == 0 {
		v.addf(keyLine(n, "tags"), where, "no tags")
	}
	seen := map[string]int{}
	for j := range d.Tags {
		t := &d.Tags[j]
		tn := v.nodes.tag(i, j)
		tw := where + ", tag " + t.Name
		if t.Name == "" {
			tw = fmt.Sprintf("%s, tag #%d", where, j+1)
			v.addf(tn.Line, tw, "name is required")
		}
		if prev, dup := seen[t.Name]; dup && t.Name != "" {
			v.addf(tn.Line, tw, "duplicate tag name (first defined at line %d)", prev)
		}
		seen[t.Name] = tn.Line
		v.normalization(t, tn, tw, d.Driver)
		v.tagNormalization(t, tn, tw, d.Driver, d)
	}
	v.oee(i, where)
	v.deviceNormalization(i, where)
	v.commands(i, where)
}

func (v *validator) modbusDevice(i int, where string) {
	d := &v.cfg.Devices[i]
	n := v.nodes.device(i)
	for _, k := range []string{"endpoint", "security_policy", "security_mode", "auth", "pki_dir", "mode", "sampling_interval", "queue_size",
		"keep_alive", "max_clock_skew", "allow_plain_password"} {
		if valueOf(n, k) != nil {
			v.addf(keyLine(n, k), where, "%s is an OPC UA setting; this device has driver modbus", k)
		}
	}
	if d.Address == "" {
		v.addf(n.Line, where, "address is required (tcp://host:502)")
	} else if u, err := url.Parse(d.Address); err != nil {
		v.addf(keyLine(n, "address"), where, "address %q: %v", d.Address, err)
	} else {
		switch u.Scheme {
		case "tcp":
			if u.Hostname() == "" {
				v.addf(keyLine(n, "address"), where, "address %q has no host", d.Address)
			}
			if p := u.Port(); p != "" {
				if pn, err := strconv.Atoi(p); err != nil || pn < 1 || pn > 65535 {
					v.addf(keyLine(n, "address"), where, "address %q: bad port", d.Address)
				}
			}
		case "rtu", "ascii":
			if _, err := ParseSerialAddress(d.Address); err != nil {
				v.addf(keyLine(n, "address"), where, "address %q: %v", d.Address, err)
			}
			if d.UnitID != nil && (*d.UnitID < 1 || *d.UnitID > 247) {
				v.addf(keyLine(n, "unit_id"), where, "unit_id %d must be 1..247 on a serial line (0 is broadcast: no reply)", *d.UnitID)
			}
			if d.CloseAfterPoll {
				v.addf(keyLine(n, "close_after_poll"), where, "close_after_poll is for tcp:// devices; a serial port stays open")
			}
			if d.MaxConnections != 0 {
				v.addf(keyLine(n, "max_connections"), where, "max_connections is for tcp:// devices; a serial port carries one request at a time")
			}
			if d.UnitIDCheck != nil {
				v.addf(keyLine(n, "unit_id_check"), where, "unit_id_check is for tcp:// devices: on a serial line the unit id is what tells the replies apart")
			}
			if d.FirstReadDelay != 0 {
				v.addf(keyLine(n, "first_read_delay"), where, "first_read_delay is for tcp:// devices (after each connect)")
			}
		default:
			v.addf(keyLine(n, "address"), where, "address %q: scheme must be tcp://, rtu:// or ascii://", d.Address)
		}
	}
	if d.UnitID != nil && (*d.UnitID < 0 || *d.UnitID > 255) {
		v.addf(keyLine(n, "unit_id"), where, "unit_id %d must be 0..255", *d.UnitID)
	}
	if m := d.MaxRegistersPerRequest; m != nil && (*m < 1 || *m > 125) {
		v.addf(keyLine(n, "max_registers_per_request"), where, "max_registers_per_request %d must be 1..125", *m)
	}
	if d.PauseBetweenRequests < 0 || d.PauseBetweenRequests > Duration(10*time.Second) {
		v.addf(keyLine(n, "pause_between_requests"), where, "pause_between_requests %s must be 0..10s", d.PauseBetweenRequests)
	}
	if d.AddressBase != 0 && d.AddressBase != 1 {
		v.addf(keyLine(n, "address_base"), where, "address_base %d must be 0 (protocol addresses) or 1 (register numbers from 1)", d.AddressBase)
	}
	if d.FirstReadDelay < 0 || d.FirstReadDelay > Duration(10*time.Second) {
		v.addf(keyLine(n, "first_read_delay"), where, "first_read_delay %s must be 0..10s", d.FirstReadDelay)
	}
	if d.MaxConnections < 0 || d.MaxConnections > 64 {
		v.addf(keyLine(n, "max_connections"), where, "max_connections %d must be 1..64", d.MaxConnections)
	}
	if d.ByteOrder == "" {
		d.ByteOrder = "ABCD"
	} else if !oneOf(d.ByteOrder, ByteOrders) {
		v.addf(keyLine(n, "byte_order"), where, "unknown byte_order %q (%s)", d.ByteOrder, quoteList(ByteOrders))
	}
	if d.MaxGap != nil && (*d.MaxGap < 0 || *d.MaxGap > 124) {
		v.addf(keyLine(n, "max_gap"), where, "max_gap %d must be 0..124 registers", *d.MaxGap)
	}
	for j := range d.Tags {
		v.modbusTag(d, &d.Tags[j], v.nodes.tag(i, j), where+", tag "+d.Tags[j].Name)
	}
}

func (v *validator) modbusTag(d *Device, t *Tag, n *yaml.Node, where string) {
	for _, k := range []string{"node", "browse_path"} {
		if valueOf(n, k) != nil {
			v.addf(keyLine(n, k), where, "%s is an OPC UA setting; this device has driver modbus", k)
		}
	}
	if !v.modbusAddress(d, t, n, where) {
		return
	}
	if !oneOf(t.Register, Registers) {
		if t.Register == "" {
			v.addf(n.Line, where, "register is required (%s)", quoteList(Registers))
		} else {
			v.addf(keyLine(n, "register"), where, "unknown register %q (%s)", t.Register, quoteList(Registers))
		}
		return
	}
	if t.Type == "" {
		if t.Register == "coil" || t.Register == "discrete" || t.Bit != nil {
			t.Type = "bool"
		} else {
			v.addf(n.Line, where, "type is required (%s)", quoteList(Types))
			return
		}
	}
	if !oneOf(t.Type, Types) {
		v.addf(keyLine(n, "type"), where, "unknown type %q (%s)", t.Type, quoteList(Types))
		return
	}
	bits := t.Register == "coil" || t.Register == "discrete"
	switch {
	case bits && t.Type != "bool":
		v.addf(keyLine(n, "type"), where, "a %s is one bit: type must be bool, not %s", t.Register, t.Type)
	case !bits && t.Type == "bool" && t.Bit == nil:
		v.addf(keyLine(n, "type"), where, "type bool on a %s register needs bit: 0..15", t.Register)
	case t.Bit != nil && (bits || t.Type != "bool"):
		v.addf(keyLine(n, "bit"), where, "bit picks one bit of a holding or input register and needs type bool")
	case t.Bit != nil && (*t.Bit < 0 || *t.Bit > 15):
		v.addf(keyLine(n, "bit"), where, "bit %d must be 0..15", *t.Bit)
	}
	if t.Type == "string" {
		if t.Length < 1 || t.Length > 125 {
			v.addf(keyLine(n, "length"), where, "type string needs length: 1..125 registers")
		}
	} else if t.Length != 0 {
		v.addf(keyLine(n, "length"), where, "length is only for type string")
	}
	width := RegisterWidth(t.Type, t.Length)
	if a := t.Address.Protocol; a < 0 || a+width-1 > 65535 {
		v.addf(keyLine(n, "address"), where, "address %s (+%d registers) is outside 0..65535", t.Address, width)
	}
	if t.ByteOrder != "" && !oneOf(t.ByteOrder, ByteOrders) {
		v.addf(keyLine(n, "byte_order"), where, "unknown byte_order %q (%s)", t.ByteOrder, quoteList(ByteOrders))
	}
}

func (v *validator) opcuaDevice(i int, where string) {
	d := &v.cfg.Devices[i]
	n := v.nodes.device(i)
	for _, k := range []string{"address", "unit_id", "byte_order", "max_gap", "max_registers_per_request", "pause_between_requests", "close_after_poll", "address_base", "max_connections", "unit_id_check", "first_read_delay"} {
		if valueOf(n, k) != nil {
			v.addf(keyLine(n, k), where, "%s is a Modbus setting; this device has driver opcua", k)
		}
	}
	if u, err := url.Parse(d.Endpoint); d.Endpoint == "" || err != nil || u.Scheme != "opc.tcp" || u.Host == "" {
		v.addf(keyLine(n, "endpoint"), where, "endpoint %q must be opc.tcp://host:port", d.Endpoint)
	}
	if d.SecurityPolicy == "" {
		d.SecurityPolicy = "None"
	} else if !oneOf(d.SecurityPolicy, SecurityPolicies) {
		v.addf(keyLine(n, "security_policy"), where, "unknown security_policy %q (%s)", d.SecurityPolicy, quoteList(SecurityPolicies))
	}
	if d.SecurityMode == "" {
		d.SecurityMode = "None"
		if d.SecurityPolicy != "None" {
			d.SecurityMode = "SignAndEncrypt"
		}
	} else if !oneOf(d.SecurityMode, SecurityModes) {
		v.addf(keyLine(n, "security_mode"), where, "unknown security_mode %q (%s)", d.SecurityMode, quoteList(SecurityModes))
	}
	if (d.SecurityPolicy == "None") != (d.SecurityMode == "None") && d.SecurityPolicy != "auto" {
		v.addf(keyLine(n, "security_mode"), where, "security_policy %s and security_mode %s do not go together", d.SecurityPolicy, d.SecurityMode)
	}
	if d.Mode == "" {
		d.Mode = "subscribe"
	} else if d.Mode != "subscribe" && d.Mode != "poll" {
		v.addf(keyLine(n, "mode"), where, "unknown mode %q (subscribe | poll)", d.Mode)
	}
	v.opcuaAuth(d, n, where)
	if d.PKIDir != "" {
		d.PKIDir = v.resolve(d.PKIDir)
	} else {
		// Beside the buffer file: both are the agent's state.
		d.PKIDir = filepath.Join(filepath.Dir(v.cfg.Buffer.Path), "pki")
	}
	if d.SamplingInterval < 0 {
		v.addf(keyLine(n, "sampling_interval"), where, "sampling_interval %s must be positive", d.SamplingInterval)
	}
	if d.QueueSize < 0 || d.QueueSize > 10000 {
		v.addf(keyLine(n, "queue_size"), where, "queue_size %d must be 1..10000", d.QueueSize)
	}
	switch {
	case d.KeepAlive < 0:
		v.addf(keyLine(n, "keep_alive"), where, "keep_alive %s must be positive", d.KeepAlive)
	case d.KeepAlive > 0 && d.KeepAlive < 3*d.PollInterval:
		v.addf(keyLine(n, "keep_alive"), where, "keep_alive %s must be at least 3 publishing intervals (poll_interval %s)", d.KeepAlive, d.PollInterval)
	}
	switch {
	case d.MaxClockSkew < 0:
		v.addf(keyLine(n, "max_clock_skew"), where, "max_clock_skew %s must be positive", d.MaxClockSkew)
	case d.MaxClockSkew == 0:
		d.MaxClockSkew = DefaultMaxClockSkew
	}
	if d.AllowPlainPassword && (d.Auth == nil || d.Auth.Username == "") {
		v.addf(keyLine(n, "allow_plain_password"), where, "allow_plain_password is for a login with auth.username and a password")
	}
	if d.Mode == "poll" {
		for _, k := range []string{"sampling_interval", "queue_size", "keep_alive"} {
			if valueOf(n, k) != nil {
				v.addf(keyLine(n, k), where, "%s is for mode subscribe; this device has mode poll", k)
			}
		}
	}
	for j := range d.Tags {
		t := &d.Tags[j]
		tn := v.nodes.tag(i, j)
		tw := where + ", tag " + t.Name
		for _, k := range []string{"register", "address", "length", "bit", "byte_order"} {
			if valueOf(tn, k) != nil {
				v.addf(keyLine(tn, k), tw, "%s is a Modbus setting; this device has driver opcua", k)
			}
		}
		v.opcuaSource(t, tn, tw)
	}
}

// normalization checks the rules that apply to every driver.
func (v *validator) normalization(t *Tag, n *yaml.Node, where, driver string) {
	if !oneOf(t.Class, Classes) {
		if t.Class == "" {
			v.addf(n.Line, where, "class is required (%s)", quoteList(Classes))
		} else {
			v.addf(keyLine(n, "class"), where, "unknown class %q (%s)", t.Class, quoteList(Classes))
		}
	}
	numeric := t.Type != "bool" && t.Type != "string"
	if driver == "modbus" && !numeric {
		for _, k := range []string{"scale", "offset", "deadband"} {
			if valueOf(n, k) != nil {
				v.addf(keyLine(n, k), where, "%s needs a numeric type, not %s", k, t.Type)
			}
		}
	}
	if t.Scale != nil && (*t.Scale == 0 || math.IsNaN(*t.Scale) || math.IsInf(*t.Scale, 0)) {
		v.addf(keyLine(n, "scale"), where, "scale %v would erase the value", *t.Scale)
	}
	if math.IsNaN(t.Offset) || math.IsInf(t.Offset, 0) {
		v.addf(keyLine(n, "offset"), where, "offset must be a finite number")
	}
	if t.Deadband < 0 || math.IsNaN(t.Deadband) {
		v.addf(keyLine(n, "deadband"), where, "deadband %v must be zero or positive", t.Deadband)
	}
	switch {
	case t.ReportEvery < 0:
		v.addf(keyLine(n, "report_every"), where, "report_every %s must be positive", t.ReportEvery)
	case t.ReportEvery == 0 && t.Deadband > 0:
		t.ReportEvery = DefaultReportEvery
	}
	if len(t.States) > 0 {
		if driver == "modbus" && !isInteger(t.Type) {
			v.addf(keyLine(n, "states"), where, "states map integer codes: type must be an integer, not %s", t.Type)
		}
		if t.Scale != nil || t.Offset != 0 || t.Deadband != 0 || t.Counter {
			v.addf(keyLine(n, "states"), where, "states cannot be combined with scale, offset, deadband or counter")
		}
		for code, name := range t.States {
			if name == "" {
				v.addf(keyLine(n, "states"), where, "state %d has an empty name", code)
			}
		}
	}
	if t.Counter {
		if driver == "modbus" && !isInteger(t.Type) {
			v.addf(keyLine(n, "counter"), where, "counter needs an integer type, not %s", t.Type)
		}
		if t.Scale != nil || t.Offset != 0 || t.Deadband != 0 {
			v.addf(keyLine(n, "counter"), where, "counter cannot be combined with scale, offset or deadband")
		}
	}
	if t.Class == "time" && t.Unit != "" && numeric {
		if _, ok := DurationUnits[t.Unit]; !ok {
			v.addf(keyLine(n, "unit"), where, "a time-class value is a duration: unit must be ms, s, min or h (published in seconds), not %q", t.Unit)
		}
	}
}
