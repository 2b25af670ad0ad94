package configs

import (
	"math"

	"go.yaml.in/yaml/v3"
)

// Commands from the MES (commands/README.md): off unless uplink.commands,
// the device's commands and the tag's writable all say so.
const (
	DefaultMaxCommandsPerS = 5
	MaxMaxCommandsPerS     = 100
)

// MaxCommandsPerSValue is the effective max_commands_per_s.
func (d Device) MaxCommandsPerSValue() float64 {
	if d.MaxCommandsPerS == 0 {
		return DefaultMaxCommandsPerS
	}
	return d.MaxCommandsPerS
}

// commands checks a device's command keys and its tags' writable,
// write_range and read_modify_write.
func (v *validator) commands(i int, where string) {
	d := &v.cfg.Devices[i]
	n := v.nodes.device(i)
	if r := d.MaxCommandsPerS; r < 0 || r > MaxMaxCommandsPerS || math.IsNaN(r) {
		v.addf(keyLine(n, "max_commands_per_s"), where, "max_commands_per_s %g must be 0 (default %d) up to %d", r, DefaultMaxCommandsPerS, MaxMaxCommandsPerS)
	}
	if d.Commands && !v.cfg.Uplink.Commands {
		v.warnf(keyLine(n, "commands"), where, "commands: true has no effect while uplink.commands is false")
	}
	anyWritable := false
	for j := range d.Tags {
		t := &d.Tags[j]
		tn := v.nodes.tag(i, j)
		tw := where + ", tag " + t.Name
		if !t.Writable {
			for _, k := range []string{"write_range", "read_modify_write"} {
				if valueOf(tn, k) != nil {
					v.addf(keyLine(tn, k), tw, "%s needs writable: true", k)
				}
			}
			continue
		}
		anyWritable = true
		v.writableTag(d, t, tn, tw)
	}
	if anyWritable && !d.Commands {
		v.warnf(keyLine(n, "tags"), where, "a tag is writable but the device has no commands: true, so it accepts no writes")
	}
}

func (v *validator) writableTag(d *Device, t *Tag, n *yaml.Node, where string) {
	switch {
	case t.Counter, len(t.StateBits) > 0, len(t.Alarms) > 0, t.Timestamp != "", t.State, len(t.States) > 0:
		// What the MES sees is derived from the raw value in a way that
		// has no single inverse (a delta, a first set bit, a name).
		v.addf(keyLine(n, "writable"), where, "writable is for plain values: not with counter, states, state, state_bits, alarms or timestamp")
	}
	if d.Driver == "modbus" {
		switch {
		case t.Register == "input" || t.Register == "discrete":
			v.addf(keyLine(n, "writable"), where, "%s registers are read-only in Modbus: writable needs holding or coil", t.Register)
		case t.Bit != nil && !t.ReadModifyWrite:
			v.addf(keyLine(n, "writable"), where, "writing bit %d reads the register, sets the bit and writes the whole register back, which undoes a change the PLC made in between: add read_modify_write: true only if linegate is the only writer of this register", *t.Bit)
		case t.ReadModifyWrite && t.Bit == nil:
			v.addf(keyLine(n, "read_modify_write"), where, "read_modify_write is for a tag with bit:")
		}
	} else if t.ReadModifyWrite {
		v.addf(keyLine(n, "read_modify_write"), where, "read_modify_write is for Modbus bit: tags")
	}
	if t.WriteRange == nil {
		return
	}
	r := t.WriteRange
	switch {
	case d.Driver == "modbus" && (t.Type == "bool" || t.Type == "string"):
		v.addf(keyLine(n, "write_range"), where, "write_range needs a numeric type, not %s", t.Type)
	case len(r) != 2 || math.IsNaN(r[0]) || math.IsNaN(r[1]) || math.IsInf(r[0], 0) || math.IsInf(r[1], 0):
		v.addf(keyLine(n, "write_range"), where, "write_range must be two finite numbers [low, high]")
	case r[0] > r[1]:
		v.addf(keyLine(n, "write_range"), where, "write_range [%v, %v]: low must not be above high", r[0], r[1])
	}
}
