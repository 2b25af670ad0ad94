package modbus

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Tag is one value to read from the device.
type Tag struct {
	Name     string
	Register string // holding | input | coil | discrete
	Address  uint16 // 0-based protocol address
	// Type is bool int16 uint16 int32 uint32 int64 uint64 float32 float64
	// or string. Coils and discrete inputs are bool only. A bool on a
	// register without Bit is true when the register is not zero.
	Type   string
	Length int // registers, for string (2 characters per register)
	// Bit is -1 for none, or 0..15 to pick one bit (0 = least significant)
	// of a holding or input register, after the byte order is applied; the
	// tag's Type must then be bool. Bit 0 on other tags is ignored, so a
	// zero Tag needs no care.
	Bit       int
	ByteOrder string // "" = the device's; ABCD | CDAB | BADC | DCBA
	// ReadModifyWrite lets Write change a Bit tag by rewriting its whole
	// register; only safe when nothing else writes that register.
	ReadModifyWrite bool
}

// Config of one Modbus device (one unit id).
type Config struct {
	Device string // device name, for error context and logs
	// Address is tcp://host[:port] (port default 502), or a serial port:
	// rtu:///dev/ttyUSB0?baud=19200&parity=E&data_bits=8&stop_bits=1 or
	// ascii://... with the same options (defaults 19200, E, 8, 1; on
	// Windows rtu://COM3).
	Address      string
	UnitID       byte          // used as given: 0 is a valid unit id on TCP; 1..247 on serial
	Timeout      time.Duration // per request and per dial; default 1s
	ByteOrder    string        // default ABCD
	MaxGap       int           // registers (bits) bridged to merge reads; 0 = default 10, <0 = none
	MaxRegisters int           // per read, default and max 125
	MaxBits      int           // per read, default and max 2000
	// Pause is a silence kept between two requests of one poll, for
	// devices that drop a request that follows the previous reply too
	// closely. The bus or connection is free for other devices meanwhile.
	Pause time.Duration
	// CloseAfterPoll drops the TCP connection after every poll, for
	// devices that hold only a few connections or hang on idle ones.
	CloseAfterPoll bool
	// MaxConnections is how many TCP connections the devices that share
	// Address may open together (a gateway's limit); default 1: every
	// unit id behind a gateway shares one connection, one request at a
	// time. Serial ports always carry one request at a time.
	MaxConnections int
	// AnyUnitID accepts a TCP reply whose unit id differs from the
	// request's (unit_id_check: false), for gateways that answer with 0
	// or 1 whatever unit was asked; the transaction id still ties each
	// reply to its request. TCP only.
	AnyUnitID bool
	// FirstReadDelay is a silence after each TCP connect before the first
	// request, for devices that drop a request sent right after it. The
	// devices on one address must agree. TCP only.
	FirstReadDelay time.Duration
	// Pool shares connections and serial ports between the devices on one
	// address; nil = this driver has its own.
	Pool *Pool
	Tags []Tag
	// Logger: nil = discard; the caller scopes it (device=...).
	Logger *slog.Logger
}

const (
	defaultPort         = "502"
	defaultTimeout      = time.Second
	defaultMaxGap       = 10
	maxRegistersPerRead = 125  // Modbus limit for function codes 3 and 4
	maxBitsPerRead      = 2000 // Modbus limit for function codes 1 and 2
)

// normalize fills defaults and checks everything but the tags.
func (c *Config) normalize() error {
	if c.Timeout == 0 {
		c.Timeout = defaultTimeout
	}
	if c.Timeout < 0 {
		return fmt.Errorf("timeout %v is negative", c.Timeout)
	}
	if c.ByteOrder == "" {
		c.ByteOrder = "ABCD"
	}
	if _, ok := parseByteOrder(c.ByteOrder); !ok {
		return fmt.Errorf("byte order %q: want ABCD, CDAB, BADC or DCBA", c.ByteOrder)
	}
	switch {
	case c.MaxGap == 0:
		c.MaxGap = defaultMaxGap
	case c.MaxGap < 0:
		c.MaxGap = 0
	}
	if c.MaxRegisters == 0 {
		c.MaxRegisters = maxRegistersPerRead
	}
	if c.MaxRegisters < 1 || c.MaxRegisters > maxRegistersPerRead {
		return fmt.Errorf("max registers %d: want 1..%d", c.MaxRegisters, maxRegistersPerRead)
	}
	if c.MaxBits == 0 {
		c.MaxBits = maxBitsPerRead
	}
	if c.MaxBits < 1 || c.MaxBits > maxBitsPerRead {
		return fmt.Errorf("max bits %d: want 1..%d", c.MaxBits, maxBitsPerRead)
	}
	if c.FirstReadDelay < 0 {
		return fmt.Errorf("first read delay %v is negative", c.FirstReadDelay)
	}
	if c.Pause < 0 {
		return fmt.Errorf("pause between requests %v is negative", c.Pause)
	}
	if c.MaxConnections == 0 {
		c.MaxConnections = 1
	}
	if c.MaxConnections < 1 || c.MaxConnections > maxConnections {
		return fmt.Errorf("max connections %d: want 1..%d", c.MaxConnections, maxConnections)
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return nil
}

// maxConnections bounds MaxConnections: gateways allow a handful.
const maxConnections = 64

// endpoint is a parsed Config.Address: a TCP host:port or a serial port.
type endpoint struct {
	scheme string // tcp | rtu | ascii
	tcp    string // host:port, for tcp
	serial serialConfig
}

// key names the connection or port that devices share.
func (e endpoint) key() string {
	if e.scheme == "tcp" {
		return "tcp://" + e.tcp
	}
	return "serial:" + e.serial.Path
}

func parseEndpoint(address string) (endpoint, error) {
	scheme, _, _ := strings.Cut(address, "://")
	switch scheme {
	case "rtu", "ascii":
		sc, err := parseSerial(address)
		return endpoint{scheme: scheme, serial: sc}, err
	}
	addr, err := dialAddress(address)
	return endpoint{scheme: "tcp", tcp: addr}, err
}

// serialConfig is a serial line's settings.
type serialConfig struct {
	Path     string
	Baud     int
	Parity   string // N | E | O
	DataBits int    // 7 | 8
	StopBits int    // 1 | 2
	// RS485 turns on the kernel's RS-485 mode (Linux TIOCSRS485): the
	// UART driver raises RTS for each frame it sends, for transceivers
	// without automatic direction control.
	RS485 bool
}

// String gives e.g. "/dev/ttyUSB0 19200 8E1" ("... rs485").
func (c serialConfig) String() string {
	s := fmt.Sprintf("%s %d %d%s%d", c.Path, c.Baud, c.DataBits, c.Parity, c.StopBits)
	if c.RS485 {
		s += " rs485"
	}
	return s
}

// Baud rates a serial port may be set to.
var baudRates = []int{1200, 2400, 4800, 9600, 19200, 38400, 57600, 115200, 230400, 460800, 921600}

// parseSerial reads rtu:///dev/ttyUSB0?baud=19200&parity=E&data_bits=8&stop_bits=1
// (or rtu://COM3?... on Windows). Defaults are the Modbus serial line
// specification's: 19200 baud, even parity, 8 data bits, 1 stop bit.
func parseSerial(address string) (serialConfig, error) {
	c := serialConfig{Baud: 19200, Parity: "E", DataBits: 8, StopBits: 1}
	u, err := url.Parse(address)
	if err != nil || u.User != nil || u.Fragment != "" || u.Port() != "" {
		return c, fmt.Errorf("address %q: want rtu:///dev/ttyUSB0?baud=19200&parity=E", address)
	}
	switch {
	case u.Host == "" && u.Path != "":
		c.Path = u.Path
	case u.Host != "" && (u.Path == "" || u.Path == "/"):
		c.Path = u.Host // rtu://COM3
	default:
		return c, fmt.Errorf("address %q: want %s:///dev/ttyUSB0 (three slashes) or %s://COM3", address, u.Scheme, u.Scheme)
	}
	for k, vs := range u.Query() {
		v := vs[len(vs)-1]
		n, nerr := strconv.Atoi(v)
		switch k {
		case "baud":
			if nerr != nil || !slices.Contains(baudRates, n) {
				return c, fmt.Errorf("address %q: baud %q: want one of %v", address, v, baudRates)
			}
			c.Baud = n
		case "parity":
			p := strings.ToUpper(v)
			if p != "N" && p != "E" && p != "O" {
				return c, fmt.Errorf("address %q: parity %q: want N, E or O", address, v)
			}
			c.Parity = p
		case "data_bits":
			if nerr != nil || (n != 7 && n != 8) {
				return c, fmt.Errorf("address %q: data_bits %q: want 7 or 8", address, v)
			}
			c.DataBits = n
		case "stop_bits":
			if nerr != nil || (n != 1 && n != 2) {
				return c, fmt.Errorf("address %q: stop_bits %q: want 1 or 2", address, v)
			}
			c.StopBits = n
		case "rs485":
			on, err := strconv.ParseBool(v)
			if err != nil {
				return c, fmt.Errorf("address %q: rs485 %q: want true or false", address, v)
			}
			if on && runtime.GOOS != "linux" {
				return c, fmt.Errorf("address %q: rs485 needs Linux's RS-485 mode; on %s use an adapter with automatic direction control", address, runtime.GOOS)
			}
			c.RS485 = on
		default:
			return c, fmt.Errorf("address %q: unknown option %q (baud, parity, data_bits, stop_bits, rs485)", address, k)
		}
	}
	if u.Scheme == "rtu" && c.DataBits != 8 {
		return c, fmt.Errorf("address %q: RTU needs data_bits 8 (7 is for ascii://)", address)
	}
	return c, nil
}

// dialAddress turns tcp://host[:port] into host:port.
func dialAddress(address string) (string, error) {
	u, err := url.Parse(address)
	if err != nil || u.Scheme != "tcp" || u.Hostname() == "" || u.User != nil || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" {
		return "", fmt.Errorf("address %q: want tcp://host:port", address)
	}
	port := u.Port()
	if port == "" {
		port = defaultPort
	}
	return net.JoinHostPort(u.Hostname(), port), nil
}

// compile checks one tag and resolves its register kind, type, width and
// byte order.
func compile(t Tag, deviceOrder byteOrder, maxRegs int) (field, error) {
	f := field{addr: t.Address, bit: -1, order: deviceOrder}
	kind, ok := parseRegisterKind(t.Register)
	if !ok {
		return f, fmt.Errorf("register %q: want holding, input, coil or discrete", t.Register)
	}
	f.kind = kind
	typ, ok := lookupType(t.Type)
	if !ok {
		return f, fmt.Errorf("type %q: want bool, int16, uint16, int32, uint32, int64, uint64, float32, float64 or string", t.Type)
	}
	f.typ = typ
	if t.ByteOrder != "" {
		if f.order, ok = parseByteOrder(t.ByteOrder); !ok {
			return f, fmt.Errorf("byte order %q: want ABCD, CDAB, BADC or DCBA", t.ByteOrder)
		}
	}
	if t.Length != 0 && typ.name != "string" {
		return f, errors.New("length applies to string tags only")
	}
	if t.Bit < -1 || t.Bit > 15 {
		return f, fmt.Errorf("bit %d: want 0..15", t.Bit)
	}
	if t.Bit > 0 && (typ.name != "bool" || kind.isBit()) {
		return f, errors.New("bit applies to bool tags on holding or input registers only")
	}

	if kind.isBit() {
		if typ.name != "bool" {
			return f, fmt.Errorf("type %s: %s is bool only", t.Type, kind)
		}
		f.width = 1
		return f, nil
	}
	switch {
	case typ.name == "string":
		if t.Length < 1 || t.Length > maxRegs {
			return f, fmt.Errorf("string length %d: want 1..%d registers", t.Length, maxRegs)
		}
		f.width = uint16(t.Length)
	case typ.name == "bool" && t.Bit >= 0:
		f.bit = t.Bit
		f.width = 1
	default:
		if typ.regs > maxRegs {
			return f, fmt.Errorf("type %s needs %d registers, more than max registers %d", t.Type, typ.regs, maxRegs)
		}
		f.width = uint16(typ.regs)
	}
	if int(t.Address)+int(f.width) > 1<<16 {
		return f, fmt.Errorf("address 0x%04X+%d runs past 0xFFFF", t.Address, f.width)
	}
	return f, nil
}
