// Package configs holds linegate's configuration schema, its loader and its
// validation, and the embedded example files.
//
// The loader is strict: an unknown key is an error, so that a typo
// ("pol_interval") never silently falls back to a default on a line PC.
// Every validation message names the file and line, and the device and tag.
package configs

// Config is one linegate.yaml.
type Config struct {
	Gateway Gateway  `yaml:"gateway"`
	Buffer  Buffer   `yaml:"buffer"`
	Uplink  Uplink   `yaml:"uplink"`
	HTTP    HTTP     `yaml:"http"`
	Devices []Device `yaml:"devices"`

	// File is the path the config was loaded from ("" for in-memory).
	File string `yaml:"-"`
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
}

// Device is one PLC or machine.
type Device struct {
	Name         string   `yaml:"name"`
	Driver       string   `yaml:"driver"`
	PollInterval Duration `yaml:"poll_interval"`
	Timeout      Duration `yaml:"timeout"`

	// Modbus.
	Address   string `yaml:"address"`
	UnitID    *int   `yaml:"unit_id"`
	ByteOrder string `yaml:"byte_order"`
	MaxGap    *int   `yaml:"max_gap"`

	// OPC UA.
	Endpoint       string `yaml:"endpoint"`
	SecurityPolicy string `yaml:"security_policy"`
	SecurityMode   string `yaml:"security_mode"`
	Auth           *Auth  `yaml:"auth"`
	PKIDir         string `yaml:"pki_dir"`
	Mode           string `yaml:"mode"`

	Tags []Tag `yaml:"tags"`

	// Line is the line of the device in the file, for messages.
	Line int `yaml:"-"`
}

// Auth is an OPC UA user login.
type Auth struct {
	Username     string `yaml:"username"`
	Password     Secret `yaml:"password"`
	PasswordFile string `yaml:"password_file"`
}

// Tag is one value of a device and how to normalize it.
type Tag struct {
	Name  string `yaml:"name"`
	Class string `yaml:"class"`

	// Modbus.
	Register  string `yaml:"register"`
	Address   *int   `yaml:"address"`
	Type      string `yaml:"type"`
	Length    int    `yaml:"length"`
	Bit       *int   `yaml:"bit"`
	ByteOrder string `yaml:"byte_order"`

	// OPC UA.
	Node string `yaml:"node"`

	// Normalization.
	Unit        string           `yaml:"unit"`
	Scale       *float64         `yaml:"scale"`
	Offset      float64          `yaml:"offset"`
	Deadband    float64          `yaml:"deadband"`
	ReportEvery Duration         `yaml:"report_every"`
	States      map[int64]string `yaml:"states"`
	Counter     bool             `yaml:"counter"`

	// Line is the line of the tag in the file, for messages.
	Line int `yaml:"-"`
}

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
	return uint16(*t.Address)
}
