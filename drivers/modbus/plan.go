package modbus

import (
	"cmp"
	"fmt"
	"slices"
)

// registerKind is one of the four Modbus data tables.
type registerKind uint8

const (
	holding registerKind = iota
	input
	coil
	discrete
	numKinds
)

var kindNames = [numKinds]string{"holding", "input", "coil", "discrete"}

func (k registerKind) String() string {
	if k < numKinds {
		return kindNames[k]
	}
	return fmt.Sprintf("register(%d)", uint8(k))
}

// isBit tells the tables read as packed bits (coils, discrete inputs).
func (k registerKind) isBit() bool { return k == coil || k == discrete }

func parseRegisterKind(s string) (registerKind, bool) {
	for k, name := range kindNames {
		if s == name {
			return registerKind(k), true
		}
	}
	return 0, false
}

// Request is one read of a cycle: Count registers (or bits) of one table
// from Address on, covering the tags at the given indexes of Config.Tags.
type Request struct {
	Register string
	Address  uint16
	Count    uint16
	Tags     []int // indexes into Config.Tags, by address
}

// String gives e.g. "holding 0x0000+14 (5 tags)".
func (r Request) String() string {
	s := "s"
	if len(r.Tags) == 1 {
		s = ""
	}
	return fmt.Sprintf("%s 0x%04X+%d (%d tag%s)", r.Register, r.Address, r.Count, len(r.Tags), s)
}

// plan coalesces the fields into the fewest reads: per table, by address,
// a field joins the current read while the hole before it is at most maxGap
// and the read stays within maxRegs registers (maxBits bits). Fields that
// overlap or share a register (bits of one status word) share the read.
// Every field must fit one read on its own (compile checks it).
func plan(fields []field, maxGap, maxRegs, maxBits int) []Request {
	var reqs []Request
	order := make([]int, 0, len(fields))
	for kind := range numKinds {
		order = order[:0]
		for i := range fields {
			if fields[i].kind == kind {
				order = append(order, i)
			}
		}
		// Stable: tags at the same address stay in configuration order.
		slices.SortStableFunc(order, func(a, b int) int { return cmp.Compare(fields[a].addr, fields[b].addr) })
		limit := maxRegs
		if kind.isBit() {
			limit = maxBits
		}
		var cur *Request
		var end int // exclusive end of cur
		for _, i := range order {
			start := int(fields[i].addr)
			fend := start + int(fields[i].width)
			if cur != nil && start-end <= maxGap && max(end, fend)-int(cur.Address) <= limit {
				end = max(end, fend)
				cur.Count = uint16(end - int(cur.Address))
				cur.Tags = append(cur.Tags, i)
				continue
			}
			reqs = append(reqs, Request{Register: kind.String(), Address: uint16(start), Count: uint16(fend - start), Tags: []int{i}})
			cur, end = &reqs[len(reqs)-1], fend
		}
	}
	return reqs
}
