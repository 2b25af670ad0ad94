package sim

import (
	"encoding/binary"
	"math"
)

// table is one Modbus data table of a unit. pinned addresses keep what
// Set wrote: the simulation leaves them alone.
type table struct {
	words  [tableSize]uint16 // bit tables use 0/1
	pinned [tableSize]bool
}

// put writes words from addr on, except pinned ones; past the end is cut.
func (t *table) put(addr int, words ...uint16) {
	for i, w := range words {
		if a := addr + i; a < tableSize && !t.pinned[a] {
			t.words[a] = w
		}
	}
}

func (t *table) putBool(addr int, v bool) {
	var w uint16
	if v {
		w = 1
	}
	t.put(addr, w)
}

// putImage writes a big-endian value image in the given byte order: CDAB
// and DCBA reverse the words, BADC and DCBA swap the bytes of each word.
func (t *table) putImage(addr int, img []byte, order string) {
	swapWords := order == "CDAB" || order == "DCBA"
	swapBytes := order == "BADC" || order == "DCBA"
	n := len(img) / 2
	var words [lenStatusText]uint16
	for i := range n {
		j := i
		if swapWords {
			j = n - 1 - i
		}
		w := binary.BigEndian.Uint16(img[2*j:])
		if swapBytes {
			w = w<<8 | w>>8
		}
		words[i] = w
	}
	t.put(addr, words[:n]...)
}

func (t *table) putFloat32(addr int, v float64, order string) {
	var b [4]byte
	binary.BigEndian.PutUint32(b[:], math.Float32bits(float32(v)))
	t.putImage(addr, b[:], order)
}

func (t *table) putUint32(addr int, v uint32) {
	t.put(addr, uint16(v>>16), uint16(v))
}

func (t *table) putUint64(addr int, v uint64) {
	t.put(addr, uint16(v>>48), uint16(v>>32), uint16(v>>16), uint16(v))
}

func (t *table) putFloat64(addr int, v float64) {
	t.putUint64(addr, math.Float64bits(v))
}

// putString writes s two characters per register, high byte first,
// NUL padded to regs registers.
func (t *table) putString(addr, regs int, s string) {
	var b [2 * lenStatusText]byte
	regs = min(regs, lenStatusText)
	copy(b[:2*regs], s)
	t.putImage(addr, b[:2*regs], "ABCD")
}

// unit is one simulated press.
type unit struct {
	id                             byte
	holding, input, coil, discrete table
	model                          model
}

// table returns the data table named reg, or nil.
func (u *unit) table(reg string) *table {
	switch reg {
	case "holding":
		return &u.holding
	case "input":
		return &u.input
	case "coil":
		return &u.coil
	case "discrete":
		return &u.discrete
	}
	return nil
}
