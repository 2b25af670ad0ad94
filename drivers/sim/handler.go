package sim

import (
	"time"

	mbserver "github.com/simonvetter/modbus"
)

// handler serves the four tables of every unit to the Modbus server, which
// calls it from one goroutine per client connection.
type handler struct{ p *PressLine }

// lookup returns the unit, or holds the request of a unit id that is not
// served: like a gateway with nothing behind that id, the line never
// answers. The server then drops the connection without a reply.
func (h handler) lookup(id uint8) (*unit, error) {
	h.p.mu.Lock()
	u, ok := h.p.units[id]
	h.p.mu.Unlock()
	if ok {
		return u, nil
	}
	t := time.NewTimer(unknownUnitHold)
	defer t.Stop()
	select {
	case <-t.C:
	case <-h.p.quit:
	}
	// ErrProtocolError makes the server close the connection unanswered.
	return nil, mbserver.ErrProtocolError
}

// span checks that addr..addr+qty-1 exists: past 199 is exception 2.
func span(addr, qty uint16) error {
	if int(addr)+int(qty) > tableSize {
		return mbserver.ErrIllegalDataAddress
	}
	return nil
}

func (h handler) readBits(id uint8, reg string, addr, qty uint16) ([]bool, error) {
	u, err := h.lookup(id)
	if err != nil {
		return nil, err
	}
	if err := span(addr, qty); err != nil {
		return nil, err
	}
	h.p.mu.Lock()
	defer h.p.mu.Unlock()
	if h.p.fails(u.id, reg, addr, qty) {
		return nil, mbserver.ErrServerDeviceFailure
	}
	t := u.table(reg)
	res := make([]bool, qty)
	for i := range res {
		res[i] = t.words[int(addr)+i] != 0
	}
	return res, nil
}

func (h handler) readWords(id uint8, reg string, addr, qty uint16) ([]uint16, error) {
	u, err := h.lookup(id)
	if err != nil {
		return nil, err
	}
	if err := span(addr, qty); err != nil {
		return nil, err
	}
	h.p.mu.Lock()
	defer h.p.mu.Unlock()
	if h.p.fails(u.id, reg, addr, qty) {
		return nil, mbserver.ErrServerDeviceFailure
	}
	t := u.table(reg)
	return append([]uint16(nil), t.words[addr:addr+qty]...), nil
}

// write stores a client's write; unlike Set it does not pin, so the
// simulation takes its points back at the next tick.
func (h handler) write(id uint8, reg string, addr uint16, words []uint16) error {
	u, err := h.lookup(id)
	if err != nil {
		return err
	}
	if err := span(addr, uint16(len(words))); err != nil {
		return err
	}
	h.p.mu.Lock()
	defer h.p.mu.Unlock()
	copy(u.table(reg).words[addr:], words)
	return nil
}

func (h handler) HandleCoils(req *mbserver.CoilsRequest) ([]bool, error) {
	if req.IsWrite {
		words := make([]uint16, len(req.Args))
		for i, v := range req.Args {
			if v {
				words[i] = 1
			}
		}
		return nil, h.write(req.UnitId, "coil", req.Addr, words)
	}
	return h.readBits(req.UnitId, "coil", req.Addr, req.Quantity)
}

func (h handler) HandleDiscreteInputs(req *mbserver.DiscreteInputsRequest) ([]bool, error) {
	return h.readBits(req.UnitId, "discrete", req.Addr, req.Quantity)
}

func (h handler) HandleHoldingRegisters(req *mbserver.HoldingRegistersRequest) ([]uint16, error) {
	if req.IsWrite {
		return nil, h.write(req.UnitId, "holding", req.Addr, req.Args)
	}
	return h.readWords(req.UnitId, "holding", req.Addr, req.Quantity)
}

func (h handler) HandleInputRegisters(req *mbserver.InputRegistersRequest) ([]uint16, error) {
	return h.readWords(req.UnitId, "input", req.Addr, req.Quantity)
}
