package sim

import (
	"fmt"
	"math"
	"math/rand/v2"
	"time"
)

const (
	schedulePeriod = 600.0 // seconds; see schedule
	unitLead       = 47.0  // seconds unit n+1 runs ahead of unit n
	maxStep        = 10 * time.Second
)

// model is the state a press carries from tick to tick: its counters and
// its noise. Everything else is a function of the clock.
type model struct {
	offset   float64 // seconds ahead of unit 1
	rng      *rand.Rand
	noise    float64 // low-pass filtered, in -1..1
	last     time.Time
	parts    uint32
	partFrac float64
	cycleMs  float64
	energy   float64 // Wh
	strokes  float64
	runHours float64
}

func newModel(id byte) model {
	n := float64(id)
	return model{
		offset: unitLead * (n - 1),
		// Seeded by unit id: each press has its own, repeatable noise.
		rng:      rand.New(rand.NewPCG(uint64(id), 0x9e3779b97f4a7c15)),
		parts:    120000 + 1000*uint32(id),
		cycleMs:  5000,
		energy:   4.5e9 + 1e7*n, // > 2^32 so that 64-bit decoding matters
		strokes:  5e9 + 1e7*n,
		runHours: 41234.5 + 100*n,
	}
}

// schedule gives the state at t seconds: a 10-minute cycle, mostly running.
func schedule(t float64) (state uint16, door, estop bool) {
	pos := math.Mod(t, schedulePeriod)
	if pos < 0 {
		pos += schedulePeriod
	}
	switch {
	case pos < 20:
		return Stopped, true, false
	case pos < 300:
		return Running, false, false
	case pos < 330:
		return Idle, false, false
	case pos < 560:
		return Running, false, false
	case pos < 580:
		return Fault, false, pos < 570
	}
	return Stopped, true, false
}

var stateWords = [...]string{Stopped: "STOPPED", Running: "OK", Idle: "IDLE", Fault: "FAULT"}

func wave(t, period, phase float64) float64 { return math.Sin(2*math.Pi*t/period + phase) }

// step advances the press to now and writes every simulated point.
func (u *unit) step(now time.Time) {
	m := &u.model
	dt := now.Sub(m.last)
	if m.last.IsZero() || dt < 0 {
		dt = 0
	}
	dt = min(dt, maxStep) // a suspended host must not add hours at once
	m.last = now
	sec := dt.Seconds()
	t := float64(now.UnixNano())/1e9 + m.offset

	// Smooth noise: a first-order low-pass of uniform noise.
	m.noise += (2*m.rng.Float64() - 1 - m.noise) * 0.2

	state, door, estop := schedule(t)
	running := state == Running
	temperature := 70 + 7*wave(t, 300, 0) + 0.8*wave(t, 37, 1) + 0.4*wave(t, 11.3, 2) + 0.3*m.noise
	pressure := 123.25 + 1.5*wave(t, 200, 0.5) + 0.05*m.noise
	var rpm, force float64
	if running {
		rpm = 120 + 3*wave(t, 23, 0) + 0.5*m.noise
		force = 250 + 20*wave(t, 7, 0) + 2*m.noise
		m.cycleMs = 5000 + 600*wave(t, 90, 0) + 100*m.noise
		m.partFrac += sec * 1000 / m.cycleMs
		whole := math.Floor(m.partFrac)
		m.parts += uint32(whole)
		m.partFrac -= whole
		m.strokes += sec * rpm / 60
		m.energy += sec * 15000 / 3600
		m.runHours += sec / 3600
	} else if state == Idle {
		m.energy += sec * 2000 / 3600
	}
	var status uint16
	if running {
		status |= StatusRunning
	}
	if state == Fault {
		status |= StatusFault
	}
	if door {
		status |= StatusDoor
	}
	if estop {
		status |= StatusEStop
	}

	h := &u.holding
	h.putFloat32(addrTemperature, temperature, "ABCD")
	h.put(addrState, state)
	h.putUint32(addrGoodParts, m.parts)
	h.put(addrCycleTime, uint16(math.Round(m.cycleMs)))
	for i, order := range [...]string{"ABCD", "CDAB", "BADC", "DCBA"} {
		h.putFloat32(addrPressure+2*i, pressure, order)
	}
	h.putUint64(addrEnergy, uint64(int64(m.energy)))
	h.putUint64(addrStrokes, uint64(m.strokes))
	h.putFloat64(addrRunHours, m.runHours)
	h.putFloat64(addrForce, force)
	h.putString(addrStatusText, lenStatusText, fmt.Sprintf("PRESS-%02d %s", u.id, stateWords[state]))
	h.put(addrStatus, status)
	u.input.put(addrSpeed, uint16(int16(math.Round(rpm*10))))
	u.discrete.putBool(addrDoorOpen, door)
}
