package tagimport

import (
	"fmt"
	"strconv"
	"strings"
	"unicode"

	"github.com/linegate/linegate/configs"
)

// Device is what the written device block says besides its tags.
type Device struct {
	Name     string
	Address  string // Modbus: tcp://host:port, rtu://...
	UnitID   int
	Endpoint string // OPC UA: opc.tcp://host:port
	// ByteOrder of 32/64-bit values (ABCD, CDAB, ...); "" = the format's:
	// Kepware's driver default (first word low, CDAB), else the config's.
	ByteOrder string
}

// YAML writes the device as an item of a config's devices: list, indented
// to be pasted under "devices:" (or appended to a file that ends with it).
func (r *Result) YAML(d Device) []byte {
	var b strings.Builder
	fmt.Fprintf(&b, "  # from a %s: %d tag(s)", formatName[r.Format], len(r.Tags))
	if len(r.Skipped) > 0 {
		fmt.Fprintf(&b, ", %d row(s) not imported (see the import's report)", len(r.Skipped))
	}
	b.WriteString("\n")
	fmt.Fprintf(&b, "  - name: %s\n", d.Name)
	fmt.Fprintf(&b, "    driver: %s\n", r.Driver)
	if r.Driver == "modbus" {
		fmt.Fprintf(&b, "    address: %s\n", quote(d.Address))
		fmt.Fprintf(&b, "    unit_id: %d\n", d.UnitID)
		switch {
		case d.ByteOrder != "":
			fmt.Fprintf(&b, "    byte_order: %s\n", quote(d.ByteOrder))
		case r.Format == Kepware && r.wide():
			// Kepware reads a 32-bit value's first register as the low word
			// unless the device's "First word low" setting is off.
			b.WriteString("    byte_order: CDAB                # Kepware's default (First word low); ABCD if that device setting is off\n")
		}
	} else {
		fmt.Fprintf(&b, "    endpoint: %s\n", quote(d.Endpoint))
	}
	b.WriteString("    tags:\n")
	for _, t := range r.Tags {
		b.WriteString("      - {name: ")
		b.WriteString(t.Name)
		b.WriteString(", class: ")
		b.WriteString(t.Class)
		if t.Node != "" {
			b.WriteString(", node: ")
			b.WriteString(quote(t.Node))
		} else {
			fmt.Fprintf(&b, ", register: %s, address: %d", t.Register, t.Address)
			if t.Bit >= 0 {
				fmt.Fprintf(&b, ", bit: %d", t.Bit)
			}
			if t.Type != "" {
				b.WriteString(", type: " + t.Type)
			}
			if t.Length > 0 {
				fmt.Fprintf(&b, ", length: %d", t.Length)
			}
		}
		if t.Scale != 0 && t.Scale != 1 {
			b.WriteString(", scale: " + strconv.FormatFloat(t.Scale, 'g', -1, 64))
		}
		if t.Offset != 0 {
			b.WriteString(", offset: " + strconv.FormatFloat(t.Offset, 'g', -1, 64))
		}
		if t.Unit != "" {
			b.WriteString(", unit: " + quote(t.Unit))
		}
		b.WriteString("}")
		if c := oneLine(t.Comment); c != "" {
			b.WriteString("   # " + c)
		}
		b.WriteString("\n")
	}
	return []byte(b.String())
}

var formatName = map[string]string{Generic: "CSV tag list", TIA: "TIA Portal tag table", Studio5000: "Studio 5000 tag export", Kepware: "Kepware tag export", "browse": "browse of the OPC UA server", "scan": "Modbus scan"}

// wide: a tag of 32 or 64 bits, for which the word order matters.
func (r *Result) wide() bool {
	for _, t := range r.Tags {
		if configs.RegisterWidth(t.Type, 0) > 1 && t.Type != "string" {
			return true
		}
	}
	return false
}

// quote writes s as a YAML scalar: plain when that is safe, else double
// quoted (Go's escapes are YAML's).
func quote(s string) string {
	if s != "" && strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_./:-") == "" &&
		!strings.HasPrefix(s, "-") && !strings.ContainsAny(s[:1], "0123456789.") && s != "true" && s != "false" && s != "null" && s != "yes" && s != "no" {
		return s
	}
	return strconv.Quote(s)
}

// oneLine keeps a comment on its line.
func oneLine(s string) string {
	// A YAML file may hold no control character, not even in a comment:
	// a Latin-1 export's 0x80..0x9F bytes decode to C1 controls.
	s = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return ' '
		}
		return r
	}, s)
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > 120 {
		s = s[:strings.LastIndex(s[:120], " ")+1] + "…"
	}
	return s
}
