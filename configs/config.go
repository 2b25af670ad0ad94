// Package configs holds linegate's configuration schema, its loader and its
// validation, and the embedded example files.
//
// The loader is strict: an unknown key is an error, so that a typo
// ("pol_interval") never silently falls back to a default on a line PC.
// Every validation message names the file and line, and the device and tag.
package configs

import "time"

// Config is one linegate.yaml.
type Config struct {
	Gateway Gateway  `yaml:"gateway"`
	Buffer  Buffer   `yaml:"buffer"`
	Uplink  Uplink   `yaml:"uplink"`
	HTTP    HTTP     `yaml:"http"`
	Log     Log      `yaml:"log"`
	Devices []Device `yaml:"devices"`
	// Templates are devices' common settings and tags (templates.go).
	Templates []Device `yaml:"templates"`

	// File is the path the config was loaded from ("" for in-memory).
	File string `yaml:"-"`
	// Warnings are things allowed but unsafe ("file:line: msg"): a secret
	// file every user can read, a certificate about to expire. The agent
	// logs them at every start; check prints them.
	Warnings []string `yaml:"-"`
}

// Gateway identifies this agent; the four names build the MQTT topics.
type Gateway struct {
	ID   string `yaml:"id"`
	Site string `yaml:"site"`
	Area string `yaml:"area"`
	Line string `yaml:"line"`
}

// Buffer configures the bbolt store-and-forward file.
type Buffer struct {
	Path           string   `yaml:"path"`
	MaxSize        ByteSize `yaml:"max_size"`
	OnFull         string   `yaml:"on_full"`
	CommitInterval Duration `yaml:"commit_interval"`
	// MaxAge drops messages older than this, oldest first, with a
	// buffer_expired event; 0 (default) keeps them until the size cap.
	MaxAge Duration `yaml:"max_age"`
}

// Uplink configures the MQTT session.
type Uplink struct {
	Brokers      []string `yaml:"brokers"`
	ClientID     string   `yaml:"client_id"`
	Username     string   `yaml:"username"`
	Password     Secret   `yaml:"password"`
	PasswordFile string   `yaml:"password_file"`
	TLS          TLS      `yaml:"tls"`
	QoS          *int     `yaml:"qos"`
	TopicPrefix  string   `yaml:"topic_prefix"`
	Format       string   `yaml:"format"`
	MaxInflight  int      `yaml:"max_inflight"`
	// ReplayRate caps the historical backlog, in messages per second, so
	// that a shift of buffered readings does not flood the MES; live
	// readings are not throttled. 0 = unlimited (README: Store and forward).
	ReplayRate float64 `yaml:"replay_rate"`
	// AckTimeout is how long a publish may wait for its PUBACK before the
	// connection is dropped and resumed from the oldest unacknowledged
	// message; ReconnectMax caps the reconnect backoff.
	AckTimeout   Duration `yaml:"ack_timeout"`
	ReconnectMax Duration `yaml:"reconnect_max"`
	// MaxMessageSize bounds every data PUBLISH packet (topic and header
	// included): a cycle's readings are split across messages to stay under
	// it, since a broker refuses or silently drops a bigger one.
	MaxMessageSize ByteSize `yaml:"max_message_size"`
	// GroupID and EdgeNode name the Sparkplug B edge node (format
	// sparkplugb only); defaults: <site>_<line> and gateway.id (sparkplug.go).
	GroupID  string `yaml:"group_id"`
	EdgeNode string `yaml:"edge_node"`
	// Commands turns on writes from the MES (commands/README.md); each
	// device and tag must opt in as well.
	Commands bool `yaml:"commands"`
	// PrimaryHost is the Sparkplug host application whose STATE gates the
	// births (format sparkplugb only; "" = none).
	PrimaryHost string `yaml:"primary_host"`
}

// TLS configures certificates for ssl:// and wss:// brokers.
type TLS struct {
	CAFile             string `yaml:"ca_file"`
	CertFile           string `yaml:"cert_file"`
	KeyFile            string `yaml:"key_file"`
	InsecureSkipVerify bool   `yaml:"insecure_skip_verify"`
}

// HTTP configures the local health and metrics endpoint.
type HTTP struct {
	// Listen is host:port; nil means the default 127.0.0.1:9870, "" disables.
	Listen *string `yaml:"listen"`
	// Token (or the first line of TokenFile) is what requests other than
	// /healthz must send as "Authorization: Bearer <token>". Required when
	// Listen is not loopback.
	Token     Secret `yaml:"token"`
	TokenFile string `yaml:"token_file"`
}

// Device is one PLC or machine.
type Device struct {
	Name         string   `yaml:"name"`
	Template     string   `yaml:"template"` // the template it was expanded from
	Driver       string   `yaml:"driver"`
	PollInterval Duration `yaml:"poll_interval"`
	Timeout      Duration `yaml:"timeout"`

	// Modbus.
	Address   string `yaml:"address"`
	UnitID    *int   `yaml:"unit_id"`
	ByteOrder string `yaml:"byte_order"`
	MaxGap    *int   `yaml:"max_gap"`
	// Modbus quirks (README: Modbus devices and their quirks).
	MaxRegistersPerRequest *int     `yaml:"max_registers_per_request"`
	PauseBetweenRequests   Duration `yaml:"pause_between_requests"`
	CloseAfterPoll         bool     `yaml:"close_after_poll"`
	// AddressBase 1: numeric tag addresses count from 1 (the manual's
	// "register 1" is protocol address 0). Modicon strings are always 1-based.
	AddressBase int `yaml:"address_base"`
	// MaxConnections: how many TCP connections the devices on this address
	// (a gateway) may open together; default 1.
	MaxConnections int `yaml:"max_connections"`
	// UnitIDCheck false: a TCP gateway's reply may carry another unit id
	// (0 or 1); the transaction id still ties it to its request.
	UnitIDCheck *bool `yaml:"unit_id_check"`
	// FirstReadDelay: silence after a TCP connection is made, for devices
	// that drop a request sent right after connect.
	FirstReadDelay Duration `yaml:"first_read_delay"`

	// OPC UA.
	Endpoint       string `yaml:"endpoint"`
	SecurityPolicy string `yaml:"security_policy"`
	SecurityMode   string `yaml:"security_mode"`
	Auth           *Auth  `yaml:"auth"`
	PKIDir         string `yaml:"pki_dir"`
	Mode           string `yaml:"mode"`
	// SamplingInterval and QueueSize of the monitored items (subscribe
	// mode); 0 = poll_interval and 1.
	SamplingInterval Duration `yaml:"sampling_interval"`
	QueueSize        int      `yaml:"queue_size"`
	// KeepAlive is the keep-alive period asked for (subscribe mode); a
	// subscription silent for 2.5 periods is created again. 0 = 10s.
	KeepAlive Duration `yaml:"keep_alive"`
	// MaxClockSkew: a SourceTimestamp further ahead of the gateway's clock
	// makes the reading uncertain, timed by the gateway (default 5s).
	MaxClockSkew Duration `yaml:"max_clock_skew"`
	// AllowPlainPassword lets auth's password go over an endpoint that
	// would carry it unencrypted; without it linegate refuses to log in.
	AllowPlainPassword bool `yaml:"allow_plain_password"`

	// Normalization of every tag of the device (README: Normalization).
	// Timezone is the zone of the plant's wall clock: of the shift starts
	// and of PLC clocks without a zone (timestamp: s7_dt); default UTC.
	Timezone string `yaml:"timezone"`
	// Shifts are the wall-clock starts ("06:00") of the periods of the
	// state times every state tag publishes; none = no state times.
	Shifts []string `yaml:"shifts"`
	// StateTimesEvery is how often the running state times are published
	// when the state does not change (default 1m).
	StateTimesEvery Duration `yaml:"state_times_every"`
	// StaleAfter is the default of the tags' stale_after.
	StaleAfter Duration `yaml:"stale_after"`
	// OEE computes availability, performance and quality per shift from a
	// state tag and part counters (oee.go).
	OEE *OEE `yaml:"oee"`

	// Commands lets the MES write this device's writable tags (with
	// uplink.commands); MaxCommandsPerS caps them (default 5).
	Commands        bool    `yaml:"commands"`
	MaxCommandsPerS float64 `yaml:"max_commands_per_s"`

	Tags []Tag `yaml:"tags"`

	// Location is Timezone, loaded by validation.
	Location *time.Location `yaml:"-"`

	// Line is the line of the device in the file, for messages.
	Line int `yaml:"-"`
}

// Auth is an OPC UA user login.
type Auth struct {
	Username     string `yaml:"username"`
	Password     Secret `yaml:"password"`
	PasswordFile string `yaml:"password_file"`
	// CertFile and KeyFile, instead of username, log in with an X.509
	// user certificate (PEM or DER) and its PEM RSA key.
	CertFile string `yaml:"cert_file"`
	KeyFile  string `yaml:"key_file"`
}

// Tag is one value of a device and how to normalize it.
type Tag struct {
	Name  string `yaml:"name"`
	Class string `yaml:"class"`

	// Modbus.
	Register  string         `yaml:"register"`
	Address   *ModbusAddress `yaml:"address"`
	Type      string         `yaml:"type"`
	Length    int            `yaml:"length"`
	Bit       *int           `yaml:"bit"`
	ByteOrder string         `yaml:"byte_order"`

	// OPC UA: a node id, or a browse path from the Objects folder
	// ("Objects/Line1/Press01/Temperature", names may be "2:Press01").
	Node       string `yaml:"node"`
	BrowsePath string `yaml:"browse_path"`

	// Normalization.
	Unit        string           `yaml:"unit"`
	Scale       *float64         `yaml:"scale"`
	Offset      float64          `yaml:"offset"`
	Deadband    float64          `yaml:"deadband"`
	ReportEvery Duration         `yaml:"report_every"`
	States      map[int64]string `yaml:"states"`
	Counter     bool             `yaml:"counter"`

	// Linear mapping raw_range → range (S7 analog: [0, 27648] → [0, 100]);
	// limits mark a value outside them uncertain (sensor fault).
	RawRange        []float64 `yaml:"raw_range"`
	Range           []float64 `yaml:"range"`
	Limits          []float64 `yaml:"limits"`
	DeadbandPercent float64   `yaml:"deadband_percent"`
	// State marks a state tag whose string value is the state (OPC UA);
	// state_bits derive it from a bit word, first set bit wins.
	State        bool       `yaml:"state"`
	StateBits    []StateBit `yaml:"state_bits"`
	DefaultState string     `yaml:"default_state"`
	// Alarms name the bits of an alarm word: {0: motor overload}.
	Alarms map[int]string `yaml:"alarms"`
	// Timestamp decodes a point in time: unix_s | unix_ms | s7_dt | opcua.
	Timestamp  string   `yaml:"timestamp"`
	StaleAfter Duration `yaml:"stale_after"`

	// Writable lets a command from the MES write the tag; WriteRange
	// [lo, hi] bounds the value (in published units). ReadModifyWrite lets
	// a bit of a holding register be written by reading the register and
	// writing it back: only safe when linegate is its only writer.
	Writable        bool      `yaml:"writable"`
	WriteRange      []float64 `yaml:"write_range"`
	ReadModifyWrite bool      `yaml:"read_modify_write"`

	// Line is the line of the tag in the file, for messages.
	Line int `yaml:"-"`
}

// StateBit is one entry of state_bits: the state a set bit means.
type StateBit struct {
	Bit   int    `yaml:"bit"`
	State string `yaml:"state"`
}

// IsState says whether the tag is an equipment state.
func (t Tag) IsState() bool { return t.State || len(t.States) > 0 || len(t.StateBits) > 0 }

// Secret is a string that never prints: a config dumped into a log, an
// error or /status shows "***".
type Secret string

func (s Secret) String() string {
	if s == "" {
		return ""
	}
	return "***"
}

// GoString keeps %#v from printing it either.
func (s Secret) GoString() string { return `configs.Secret("***")` }

// MarshalText keeps JSON and YAML dumps from printing it.
func (s Secret) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// Reveal returns the secret itself, for the one place that must use it.
func (s Secret) Reveal() string { return string(s) }

// ListenAddr is the effective http.listen ("" = disabled).
func (h HTTP) ListenAddr() string {
	if h.Listen == nil {
		return DefaultHTTPListen
	}
	return *h.Listen
}

// QoSLevel is the effective uplink QoS.
func (u Uplink) QoSLevel() byte {
	if u.QoS == nil {
		return 1
	}
	return byte(*u.QoS)
}

// UnitIDValue is the effective Modbus unit id.
func (d Device) UnitIDValue() byte {
	if d.UnitID == nil {
		return 1
	}
	return byte(*d.UnitID)
}

// UnitIDCheckValue is the effective Modbus unit_id_check (default true).
func (d Device) UnitIDCheckValue() bool { return d.UnitIDCheck == nil || *d.UnitIDCheck }

// MaxGapValue is the effective Modbus max_gap.
func (d Device) MaxGapValue() int {
	if d.MaxGap == nil {
		return DefaultMaxGap
	}
	return *d.MaxGap
}

// ScaleValue is the effective scale factor.
func (t Tag) ScaleValue() float64 {
	if t.Scale == nil {
		return 1
	}
	return *t.Scale
}

// BitValue is the selected bit, or -1.
func (t Tag) BitValue() int {
	if t.Bit == nil {
		return -1
	}
	return *t.Bit
}

// AddressValue is the Modbus address (validation makes sure it is set).
func (t Tag) AddressValue() uint16 {
	if t.Address == nil {
		return 0
	}
	return uint16(t.Address.Protocol)
}
