package configs

import (
	"fmt"
	"net/url"
	"runtime"
	"slices"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// ModbusAddress is a tag's address as written: a number (the protocol
// address, or 1-based with the device's address_base: 1), or a Modicon
// reference string that also names the table: "40001" is holding 0,
// "30001" input 0, "00001" coil 0, "10001" discrete input 0 (six digits,
// "400001", reach 65535).
type ModbusAddress struct {
	Number int    // the number written, or the reference's offset (1-based)
	Text   string // the Modicon reference as written; "" for a number
	// Protocol is the 0-based protocol address; validation sets it.
	Protocol int
}

// UnmarshalYAML takes an integer, or a quoted Modicon reference.
func (a *ModbusAddress) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return valueError(n, "address must be a number or a Modicon reference like \"40001\"")
	}
	if n.Tag == "!!str" || n.Style&(yaml.DoubleQuotedStyle|yaml.SingleQuotedStyle) != 0 {
		a.Text = n.Value
		return nil
	}
	v, err := strconv.Atoi(n.Value)
	if err != nil {
		return valueError(n, "address %q must be a number or a Modicon reference like \"40001\"", n.Value)
	}
	a.Number = v
	return nil
}

// String gives the address as written.
func (a ModbusAddress) String() string {
	if a.Text != "" {
		return strconv.Quote(a.Text)
	}
	return strconv.Itoa(a.Number)
}

// modiconTables maps a reference's leading digit to its table.
var modiconTables = map[byte]string{'0': "coil", '1': "discrete", '3': "input", '4': "holding"}

// parseModicon reads "40001" (five digits, 1..9999) or "400001" (six,
// 1..65536) into its table and 0-based protocol address.
func parseModicon(s string) (register string, addr int, err error) {
	if (len(s) != 5 && len(s) != 6) || strings.Trim(s, "0123456789") != "" {
		return "", 0, fmt.Errorf("address %q: a Modicon reference has 5 or 6 digits, like \"40001\" (write protocol addresses as plain numbers)", s)
	}
	register, ok := modiconTables[s[0]]
	if !ok {
		return "", 0, fmt.Errorf("address %q: a Modicon reference starts with 0 (coil), 1 (discrete), 3 (input) or 4 (holding)", s)
	}
	n, _ := strconv.Atoi(s[1:])
	limit := 9999
	if len(s) == 6 {
		limit = 65536
	}
	if n < 1 || n > limit {
		return "", 0, fmt.Errorf("address %q: the offset after the first digit must be 1..%d", s, limit)
	}
	return register, n - 1, nil
}

// Serial line settings a modbus rtu:// or ascii:// address may carry.
var (
	BaudRates = []int{1200, 2400, 4800, 9600, 19200, 38400, 57600, 115200, 230400, 460800, 921600}
	Parities  = []string{"N", "E", "O"}
)

// SerialSettings is a serial address's line: the path and the settings
// every device on that port shares.
type SerialSettings struct {
	Path     string
	Baud     int
	Parity   string
	DataBits int
	StopBits int
	// RS485: the kernel's RS-485 mode (Linux), which drives RTS around
	// each frame for adapters without automatic direction control.
	RS485 bool
}

func (s SerialSettings) String() string {
	r := fmt.Sprintf("%d %d%s%d", s.Baud, s.DataBits, s.Parity, s.StopBits)
	if s.RS485 {
		r += " rs485"
	}
	return r
}

// ParseSerialAddress reads rtu:///dev/ttyUSB0?baud=19200&parity=E&data_bits=8&stop_bits=1
// (or ascii://, or rtu://COM3 on Windows); defaults 19200 8E1.
func ParseSerialAddress(address string) (SerialSettings, error) {
	s := SerialSettings{Baud: 19200, Parity: "E", DataBits: 8, StopBits: 1}
	u, err := url.Parse(address)
	if err != nil {
		return s, err
	}
	switch {
	case u.User != nil || u.Fragment != "" || u.Port() != "":
		return s, fmt.Errorf("want %s:///dev/ttyUSB0?baud=19200&parity=E", u.Scheme)
	case u.Host == "" && u.Path != "":
		s.Path = u.Path
	case u.Host != "" && (u.Path == "" || u.Path == "/"):
		s.Path = u.Host
	default:
		return s, fmt.Errorf("want %s:///dev/ttyUSB0 (three slashes) or %s://COM3", u.Scheme, u.Scheme)
	}
	keys := make([]string, 0, len(u.Query()))
	for k := range u.Query() {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		v := u.Query().Get(k)
		n, nerr := strconv.Atoi(v)
		switch k {
		case "baud":
			if nerr != nil || !slices.Contains(BaudRates, n) {
				return s, fmt.Errorf("baud %q: want one of %v", v, BaudRates)
			}
			s.Baud = n
		case "parity":
			if !oneOf(strings.ToUpper(v), Parities) {
				return s, fmt.Errorf("parity %q: want N, E or O", v)
			}
			s.Parity = strings.ToUpper(v)
		case "data_bits":
			if nerr != nil || (n != 7 && n != 8) {
				return s, fmt.Errorf("data_bits %q: want 8 (or 7 for ascii://)", v)
			}
			s.DataBits = n
		case "stop_bits":
			if nerr != nil || (n != 1 && n != 2) {
				return s, fmt.Errorf("stop_bits %q: want 1 or 2", v)
			}
			s.StopBits = n
		case "rs485":
			on, err := strconv.ParseBool(v)
			if err != nil {
				return s, fmt.Errorf("rs485 %q: want true or false", v)
			}
			if on && runtime.GOOS != "linux" {
				return s, fmt.Errorf("rs485 needs Linux's RS-485 mode; on %s use an adapter with automatic direction control", runtime.GOOS)
			}
			s.RS485 = on
		case "rts_toggle":
			return s, fmt.Errorf("rts_toggle is not supported: toggling RTS from user space misses the line turnaround; use rs485=true (the kernel's RS-485 mode, Linux) or an adapter with automatic direction control")
		default:
			return s, fmt.Errorf("unknown option %q (baud, parity, data_bits, stop_bits, rs485)", k)
		}
	}
	if u.Scheme == "rtu" && s.DataBits != 8 {
		return s, fmt.Errorf("RTU needs data_bits 8 (7 is for ascii://)")
	}
	return s, nil
}

// modbusLinks checks what devices sharing a serial port or a TCP address
// must agree on: one protocol and line settings per port, one connection
// limit per address.
func (v *validator) modbusLinks() {
	type first struct {
		name string
		line int
		sig  string
	}
	seen := map[string]first{}
	delays := map[string]first{} // first_read_delay, per TCP address
	for i := range v.cfg.Devices {
		d := &v.cfg.Devices[i]
		if d.Driver != "modbus" {
			continue
		}
		u, err := url.Parse(d.Address)
		if err != nil {
			continue // reported by modbusDevice
		}
		n := v.nodes.device(i)
		var key, sig, what string
		switch u.Scheme {
		case "tcp":
			key, what = "tcp://"+u.Host, "max_connections"
			sig = strconv.Itoa(max(d.MaxConnections, 1))
			// The delay follows each connect, which the devices share.
			if f, ok := delays[key]; !ok {
				delays[key] = first{d.Name, n.Line, d.FirstReadDelay.String()}
			} else if f.sig != d.FirstReadDelay.String() {
				v.addf(keyLine(n, "address"), "device "+d.Name, "shares %s with device %s (line %d), so its first_read_delay must be the same: %s here, %s there",
					key, f.name, f.line, d.FirstReadDelay, f.sig)
			}
		case "rtu", "ascii":
			s, err := ParseSerialAddress(d.Address)
			if err != nil {
				continue
			}
			key, what = "serial "+s.Path, "protocol and line settings"
			sig = u.Scheme + " " + s.String()
		default:
			continue
		}
		if f, ok := seen[key]; ok {
			if f.sig != sig {
				v.addf(keyLine(n, "address"), "device "+d.Name, "shares %s with device %s (line %d), so its %s must be the same: %s here, %s there",
					strings.TrimPrefix(key, "serial "), f.name, f.line, what, sig, f.sig)
			}
			continue
		}
		seen[key] = first{d.Name, n.Line, sig}
	}
}

// modbusAddress resolves the tag's address to a protocol address, and a
// Modicon reference to its table too. It returns false when the tag
// cannot be checked further.
func (v *validator) modbusAddress(d *Device, t *Tag, n *yaml.Node, where string) bool {
	a := t.Address
	if a == nil {
		v.addf(n.Line, where, "address is required (0-based protocol address, or a Modicon reference like \"40001\")")
		return false
	}
	if a.Text != "" {
		reg, addr, err := parseModicon(a.Text)
		if err != nil {
			v.addf(keyLine(n, "address"), where, "%v", err)
			return false
		}
		if t.Register != "" && t.Register != reg {
			v.addf(keyLine(n, "register"), where, "address %q is a %s reference, but register is %s (omit register with Modicon addresses)", a.Text, reg, t.Register)
			return false
		}
		t.Register, a.Protocol = reg, addr
		return true
	}
	a.Protocol = a.Number
	if d.AddressBase == 1 {
		if a.Number < 1 {
			v.addf(keyLine(n, "address"), where, "address %d: with address_base 1, addresses start at 1", a.Number)
			return false
		}
		a.Protocol = a.Number - 1
	}
	return true
}
