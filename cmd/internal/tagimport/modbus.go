package tagimport

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/linegate/linegate/configs"
)

// modiconTables are the tables of a Modicon reference's first digit.
var modiconTables = map[byte]string{'0': "coil", '1': "discrete", '3': "input", '4': "holding"}

// parseModicon reads a Modicon reference: 5 digits (40001 = holding 0) or 6
// (400001), with ".N" picking bit N of a register (40001.3).
func parseModicon(s string) (register string, address, bit int, err error) {
	bit = -1
	ref, bitText, hasBit := strings.Cut(s, ".")
	if len(ref) != 5 && len(ref) != 6 || strings.Trim(ref, "0123456789") != "" {
		return "", 0, -1, fmt.Errorf("address %q is not a Modicon reference (40001, 400001, 40001.3)", s)
	}
	register, ok := modiconTables[ref[0]]
	if !ok {
		return "", 0, -1, fmt.Errorf("address %q: a Modicon reference starts with 0, 1, 3 or 4", s)
	}
	n, _ := strconv.Atoi(ref[1:])
	if n < 1 || n > 65536 {
		return "", 0, -1, fmt.Errorf("address %q: register %d is outside 1..65536", s, n)
	}
	if hasBit {
		b, err := strconv.Atoi(bitText)
		if err != nil || b < 0 || b > 15 || register == "coil" || register == "discrete" {
			return "", 0, -1, fmt.Errorf("address %q: .N picks bit 0..15 of a holding or input register", s)
		}
		bit = b
	}
	return register, n - 1, bit, nil
}

// checkModbus finishes a Modbus tag: bit and type agree, it fits.
// atModicon sets t's register, address and bit from a Modicon address
// (40001, 40001.3, 400001, 10001, 00001) and checks the tag fits it.
func atModicon(t *Tag, addr string) error {
	reg, n, bit, err := parseModicon(addr)
	if err != nil {
		return err
	}
	t.Register, t.Address, t.Bit = reg, n, bit
	return checkModbus(t)
}

func checkModbus(t *Tag) error {
	bits := t.Register == "coil" || t.Register == "discrete"
	switch {
	case bits && t.Type == "":
		t.Type = "bool"
	case bits && t.Type != "bool":
		return fmt.Errorf("a %s is one bit, but the type is %s", t.Register, t.Type)
	case t.Bit >= 0 && t.Type == "":
		t.Type = "bool"
	case t.Bit >= 0 && t.Type != "bool":
		return fmt.Errorf("bit %d of a register must be type bool, not %s", t.Bit, t.Type)
	case !bits && t.Bit < 0 && t.Type == "bool":
		return fmt.Errorf("a bool in a %s register needs a bit (40001.3)", t.Register)
	case t.Type == "":
		return fmt.Errorf("no data type")
	}
	if t.Type == "string" && (t.Length < 1 || t.Length > 125) {
		return fmt.Errorf("a string needs its length in registers (1..125)")
	}
	if t.Address+configs.RegisterWidth(t.Type, t.Length)-1 > 65535 {
		return fmt.Errorf("address %d with %d registers runs past 65535", t.Address, configs.RegisterWidth(t.Type, t.Length))
	}
	return nil
}

// defaultClass guesses a tag's class: bools and states are equipment,
// durations time, the rest process. The imported file can say otherwise.
func defaultClass(t *Tag) string {
	switch {
	case t.Type == "bool":
		return "equipment"
	case t.Unit == "ms" || t.Unit == "s":
		return "time"
	}
	return "process"
}
