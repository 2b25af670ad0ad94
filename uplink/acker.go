package uplink

import (
	"errors"
	"fmt"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
)

// pending is a data message published and not yet acknowledged.
type pending struct {
	seq     uint64
	tok     mqtt.Token
	sent    time.Time
	payload []byte // given back to Uplink.payloads once paho is done with it
}

// acker waits for the tokens of one connection's data publishes and deletes
// acknowledged messages from the buffer, in batches.
//
// One goroutine per connection, whatever the number of messages, and no
// goroutine per token: it waits on the oldest token only. That costs nothing
// because a broker acknowledges QoS 1 publishes in the order it received
// them, and the buffer wants acks in order anyway. Every token completes:
// on PUBACK (QoS 1), after the write (QoS 0), or with an error when the
// connection is lost (paho's cleanUp) or a write times out. When the session
// ends, the acker stops and the tokens still outstanding are forgotten; the
// messages they carried are still in the buffer and the next connection
// sends them again.
type acker struct {
	u     *Uplink
	s     *session
	in    chan pending  // from serve, in publish order
	freed chan struct{} // a slot of the window came free
	quit  chan struct{}
	done  chan struct{}

	fifo   []pending
	seqs   []uint64
	failed bool
}

// errAckTimeout ends a connection whose broker withholds a PUBACK.
var errAckTimeout = errors.New("no PUBACK")

func newAcker(u *Uplink, s *session) *acker {
	n := u.cfg.MaxInflight
	return &acker{
		u:     u,
		s:     s,
		in:    make(chan pending, n),
		freed: make(chan struct{}, 1),
		quit:  make(chan struct{}),
		done:  make(chan struct{}),
		fifo:  make([]pending, 0, n),
		seqs:  make([]uint64, 0, n),
	}
}

func (a *acker) run() {
	defer close(a.done)
	// overdue fires when the oldest publish has waited AckTimeout for its
	// PUBACK; armed only while something is pending, for the head alone.
	overdue := time.NewTimer(time.Hour)
	overdue.Stop()
	defer overdue.Stop()
	var armedFor uint64 // seq the timer is armed for, 0 = none
	for {
		var head <-chan struct{} // nil (never ready) while nothing is pending
		if len(a.fifo) > 0 {
			head = a.fifo[0].tok.Done()
			if h := a.fifo[0]; h.seq != armedFor && !a.failed {
				overdue.Reset(time.Until(h.sent.Add(a.u.cfg.AckTimeout)))
				armedFor = h.seq
			}
		} else if armedFor != 0 {
			overdue.Stop()
			armedFor = 0
		}
		select {
		case p := <-a.in:
			a.fifo = append(a.fifo, p)
		case <-overdue.C:
			armedFor = 0
			if len(a.fifo) > 0 && !isDone(a.fifo[0].tok) && !a.failed {
				// A broker that answers PINGREQ but withholds a PUBACK
				// would stall the window for ever while "connected": end
				// the connection; the next one resends from this message.
				a.failed = true
				a.u.met.ackTimeouts.Inc()
				a.s.fail(fmt.Errorf("%w: seq %d not acknowledged within %s", errAckTimeout, a.fifo[0].seq, a.u.cfg.AckTimeout))
			}
		case <-head:
			a.complete()
		case <-a.quit:
			// Acknowledgements that already arrived are not wasted: on a
			// clean shutdown they all have (the offline status was
			// acknowledged after them), and they spare the MES duplicates.
			for drained := false; !drained; {
				select {
				case p := <-a.in:
					a.fifo = append(a.fifo, p)
				default:
					drained = true
				}
			}
			a.complete()
			a.release(len(a.fifo))
			clear(a.fifo)
			a.fifo = a.fifo[:0]
			return
		}
	}
}

// stop ends run and waits for it.
func (a *acker) stop() {
	close(a.quit)
	<-a.done
}

// complete handles the run of finished tokens at the head of the queue.
func (a *acker) complete() {
	n := 0
	for n < len(a.fifo) && isDone(a.fifo[n].tok) {
		n++
	}
	if n == 0 {
		return
	}
	now := time.Now()
	a.seqs = a.seqs[:0]
	for _, p := range a.fifo[:n] {
		if err := p.tok.Error(); err != nil {
			a.u.met.publishErrors.Inc()
			if !a.failed {
				a.failed = true
				a.s.fail(fmt.Errorf("publish seq %d: %w", p.seq, err))
			}
			continue
		}
		// Completed without error: acknowledged, and paho no longer reads
		// the payload (payloads.go).
		a.u.payloads.put(p.payload)
		// After a failure the connection is ending and the next one resends
		// from the failed message on; nothing after it leaves the buffer, so
		// that "resume from the oldest unacknowledged" stays the whole rule.
		if a.failed {
			continue
		}
		a.seqs = append(a.seqs, p.seq)
		// Measured when the acker sees the token, which is the PUBACK time
		// unless an earlier token was slower.
		a.u.met.latency.Observe(now.Sub(p.sent).Seconds())
	}
	if len(a.seqs) > 0 {
		if err := a.u.src.Ack(a.seqs...); err != nil {
			// The messages stay in the buffer and go out again on the next
			// connection: a duplicate, not a loss.
			a.u.log.Error("uplink: delete acknowledged messages", "from_seq", a.seqs[0],
				"to_seq", a.seqs[len(a.seqs)-1], "error", err)
		} else {
			a.u.met.acked.Add(float64(len(a.seqs)))
			a.u.mu.Lock()
			a.u.st.Published += uint64(len(a.seqs))
			a.u.st.LastPublish = a.u.now()
			a.u.mu.Unlock()
		}
	}
	// The vacated tail is cleared so that it pins no token or payload.
	rest := copy(a.fifo, a.fifo[n:])
	clear(a.fifo[rest:])
	a.fifo = a.fifo[:rest]
	a.release(n)
}

// release gives n slots of the window back and wakes serve if it waits.
func (a *acker) release(n int) {
	if n == 0 {
		return
	}
	a.u.inflight.Add(-int64(n))
	a.u.met.inflight.Sub(float64(n))
	select {
	case a.freed <- struct{}{}:
	default:
	}
}

func isDone(t mqtt.Token) bool {
	select {
	case <-t.Done():
		return true
	default:
		return false
	}
}
