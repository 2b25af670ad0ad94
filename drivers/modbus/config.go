package modbus

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
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
}

// Config of one Modbus TCP device.
type Config struct {
	Device       string        // device name, for error context and logs
	Address      string        // tcp://host:port (port default 502)
	UnitID       byte          // used as given: 0 is a valid unit id on TCP
	Timeout      time.Duration // per request and per dial; default 1s
	ByteOrder    string        // default ABCD
	MaxGap       int           // registers (bits) bridged to merge reads; 0 = default 10, <0 = none
	MaxRegisters int           // per read, default and max 125
	MaxBits      int           // per read, default and max 2000
	Tags         []Tag
	Logger       *slog.Logger // nil = discard; the caller scopes it (device=...)
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
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return nil
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
