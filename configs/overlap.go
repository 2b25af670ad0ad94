package configs

import (
	"sort"
	"strconv"
)

// overlaps warns of a Modbus device's tags that read the same registers
// (a float32 at 0 and a uint16 at 1): most often a typo in an imported or
// copied tag list, which would publish one register as two readings. Bits
// of one register (bit: 0, bit: 1) do not overlap, nor does a bit with the
// whole word (an alarm word and its e-stop bit); the same bit twice does.
func (v *validator) overlaps(i int, where string) {
	d := &v.cfg.Devices[i]
	type span struct {
		tag        *Tag
		start, end int // registers, inclusive
		bit        int // -1: the whole register(s)
	}
	tables := map[string][]span{}
	for j := range d.Tags {
		t := &d.Tags[j]
		if t.Address == nil || !oneOf(t.Register, Registers) || !oneOf(t.Type, Types) {
			continue // reported by the tag's own checks
		}
		s := span{tag: t, start: t.Address.Protocol, bit: -1}
		s.end = s.start + max(RegisterWidth(t.Type, t.Length), 1) - 1
		if t.Bit != nil {
			s.bit = *t.Bit
		}
		tables[t.Register] = append(tables[t.Register], s)
	}
	for _, reg := range Registers {
		spans := tables[reg]
		sort.SliceStable(spans, func(a, b int) bool { return spans[a].start < spans[b].start })
		var last *span // the span reaching furthest so far
		for k := range spans {
			s := &spans[k]
			if last != nil && s.start <= last.end && s.bit == last.bit {
				v.warnf(s.tag.Line, where+", tag "+s.tag.Name, "%s overlaps tag %s (%s, line %d): both read %s",
					registerSpan(reg, s.start, s.end, s.bit), last.tag.Name, registerSpan(reg, last.start, last.end, last.bit), last.tag.Line,
					registerSpan(reg, max(s.start, last.start), min(s.end, last.end), -1))
			}
			if last == nil || s.end > last.end {
				last = s
			}
		}
	}
}

func registerSpan(reg string, start, end, bit int) string {
	s := reg + " " + strconv.Itoa(start)
	if end > start {
		s += ".." + strconv.Itoa(end)
	}
	if bit >= 0 {
		s += " bit " + strconv.Itoa(bit)
	}
	return s
}
