package sim

// failAt is one register that answers reads with an exception.
type failAt struct {
	unit byte
	reg  string
	addr uint16
}

// Fail makes reads of unit's table reg that cover addr answer exception 4
// (server device failure) while on: a PLC whose data block is being
// downloaded, a sensor module that dropped out. Tests use it for bad-read
// periods of single tags.
func (p *PressLine) Fail(unit byte, reg string, addr uint16, on bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	k := failAt{unit, reg, addr}
	if !on {
		delete(p.failing, k)
		return
	}
	if p.failing == nil {
		p.failing = map[failAt]bool{}
	}
	p.failing[k] = true
}

// fails says whether a read of qty from addr hits a failing register;
// p.mu is held.
func (p *PressLine) fails(unit byte, reg string, addr, qty uint16) bool {
	for k := range p.failing {
		if k.unit == unit && k.reg == reg && k.addr >= addr && int(k.addr) < int(addr)+int(qty) {
			return true
		}
	}
	return false
}
