package sim

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"strings"
	"sync"
	"time"

	mbserver "github.com/simonvetter/modbus"
)

const (
	tickInterval = 100 * time.Millisecond
	// unknownUnitHold is how long a request to a unit id that is not served
	// stays unanswered before the connection is dropped (still without a
	// reply): longer than any sane client timeout, short enough that
	// abandoned connections do not pile up.
	unknownUnitHold = 5 * time.Second
	maxClients      = 100
	idleTimeout     = 2 * time.Minute
)

// Options of a simulated press line.
type Options struct {
	Addr   string // listen address, default "127.0.0.1:0" (a free port)
	Units  []byte // unit ids served, default {1}
	Logger *slog.Logger
	Clock  func() time.Time // nil = time.Now
}

// PressLine is a simulated line of presses behind one Modbus TCP server.
type PressLine struct {
	log   *slog.Logger
	clock func() time.Time
	addr  string // as asked, until Start

	mu      sync.Mutex // guards units, frozen, failing
	units   map[byte]*unit
	frozen  bool
	failing map[failAt]bool // see Fail

	life    sync.Mutex // guards the fields below: Start and Stop
	started bool
	srv     *mbserver.ModbusServer
	cancel  context.CancelFunc
	done    chan struct{} // closed when the simulation goroutine is gone
	quit    chan struct{} // closed at stop: releases held requests
}

// NewPressLine builds the line with its registers already filled; nothing
// runs until Start.
func NewPressLine(opts Options) *PressLine {
	p := &PressLine{
		log:   opts.Logger,
		clock: opts.Clock,
		addr:  opts.Addr,
		units: make(map[byte]*unit),
		quit:  make(chan struct{}),
	}
	if p.log == nil {
		p.log = slog.New(slog.DiscardHandler)
	}
	if p.clock == nil {
		p.clock = time.Now
	}
	if p.addr == "" {
		p.addr = "127.0.0.1:0"
	}
	ids := opts.Units
	if len(ids) == 0 {
		ids = []byte{1}
	}
	now := p.clock()
	for _, id := range ids {
		if _, ok := p.units[id]; !ok {
			u := &unit{id: id, model: newModel(id)}
			u.step(now)
			p.units[id] = u
		}
	}
	return p
}

// Start listens and serves until Stop or until ctx is done. It returns
// once the server accepts connections.
func (p *PressLine) Start(ctx context.Context) error {
	p.life.Lock()
	defer p.life.Unlock()
	if p.started {
		return errors.New("sim: already started")
	}
	srv, addr, err := p.listen()
	if err != nil {
		return fmt.Errorf("sim: listen on %s: %w", p.addr, err)
	}
	ctx, cancel := context.WithCancel(ctx)
	p.started, p.srv, p.addr, p.cancel = true, srv, addr, cancel
	p.done = make(chan struct{})
	go p.run(ctx, srv, p.done)
	p.log.Debug("simulated press line listening", "addr", addr, "units", p.unitIDs())
	return nil
}

// listen starts the Modbus server. simonvetter's server cannot report the
// port it got for ":0", so a free port is picked first, and picked again
// should someone take it in between.
func (p *PressLine) listen() (*mbserver.ModbusServer, string, error) {
	host, port, err := net.SplitHostPort(p.addr)
	if err != nil {
		return nil, "", err
	}
	for try := 0; ; try++ {
		addr := p.addr
		if port == "0" {
			l, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
			if err != nil {
				return nil, "", err
			}
			addr = l.Addr().String()
			l.Close()
		}
		srv, err := mbserver.NewServer(&mbserver.ServerConfiguration{
			URL:        "tcp://" + addr,
			Timeout:    idleTimeout,
			MaxClients: maxClients,
			// The library's own messages (client gone, protocol error)
			// are worth a look only when debugging.
			Logger: slog.NewLogLogger(p.log.Handler(), slog.LevelDebug),
		}, handler{p})
		if err != nil {
			return nil, "", err
		}
		err = srv.Start()
		if err == nil {
			return srv, addr, nil
		}
		if port != "0" || try == 20 || !strings.Contains(err.Error(), "address already in use") {
			return nil, "", err
		}
	}
}

// run owns the simulation: it ticks until ctx is done, then stops the
// server.
func (p *PressLine) run(ctx context.Context, srv *mbserver.ModbusServer, done chan struct{}) {
	defer close(done)
	t := time.NewTicker(tickInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			close(p.quit)
			if err := srv.Stop(); err != nil {
				p.log.Warn("stopping simulated press line", "err", err)
			}
			return
		case <-t.C:
			p.step()
		}
	}
}

func (p *PressLine) step() {
	now := p.clock()
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, u := range p.units {
		if p.frozen {
			u.model.last = now // so counters do not jump on thaw
			continue
		}
		u.step(now)
	}
}

// Addr is the address the server listens on ("127.0.0.1:PORT") once
// started.
func (p *PressLine) Addr() string {
	p.life.Lock()
	defer p.life.Unlock()
	return p.addr
}

// Stop stops the simulation and the server and closes every connection.
// It may be called more than once, and without Start.
func (p *PressLine) Stop() error {
	p.life.Lock()
	cancel, done := p.cancel, p.done
	p.life.Unlock()
	if cancel == nil {
		return nil
	}
	cancel()
	<-done
	return nil
}

// Set writes words to the table reg ("holding", "input", "coil",
// "discrete"; a non-zero word is a set bit) of unit from addr on, and pins
// them: the simulation no longer changes them. Unknown units or tables and
// addresses past 199 are ignored.
func (p *PressLine) Set(unit byte, reg string, addr uint16, words ...uint16) {
	p.mu.Lock()
	defer p.mu.Unlock()
	u, ok := p.units[unit]
	if !ok {
		p.log.Debug("sim: Set on a unit not served", "unit", unit)
		return
	}
	t := u.table(reg)
	if t == nil {
		p.log.Debug("sim: Set on an unknown table", "table", reg)
		return
	}
	for i, w := range words {
		a := int(addr) + i
		if a >= tableSize {
			break
		}
		if reg == "coil" || reg == "discrete" {
			w = min(w, 1)
		}
		t.words[a] = w
		t.pinned[a] = true
	}
}

// Freeze stops (true) or resumes (false) the simulation: frozen, the
// registers only change by Set or by a client's write.
func (p *PressLine) Freeze(frozen bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.frozen = frozen
}

func (p *PressLine) unitIDs() []byte {
	p.mu.Lock()
	defer p.mu.Unlock()
	ids := make([]byte, 0, len(p.units))
	for id := range p.units {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids
}
