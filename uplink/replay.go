package uplink

import (
	"context"
	"fmt"
	"time"
)

// Replay at a configured rate (Config.ReplayRate > 0).
//
// The decision: two lanes per connection, split by seq at the boundary B,
// the last seq appended when the connection came up.
//
//   - The replay lane is the backlog, seq <= B: published oldest first, at
//     most ReplayRate messages per second, every one with historical:true.
//   - The live lane is seq > B: published as soon as committed, unthrottled,
//     every one with historical:false, and it goes first when both lanes
//     want the in-flight window.
//
// Strict global seq order (one lane, the rate applying to everything until
// the backlog is gone) was the alternative; it keeps live readings waiting
// behind the whole backlog, backlog/(rate - production) seconds, which is
// exactly what a rate limit must not cause. With lanes, what the MES sees
// stays checkable by a simple rule, because the historical flag names the
// lane exactly:
//
//   - historical:false messages arrive in seq order; historical:true messages
//     arrive in seq order (after a reconnect they start again at the oldest
//     message not yet acknowledged, so de-duplicate by id first);
//   - the seqs a live message skipped are the backlog, still coming as
//     historical, oldest first;
//   - a seq below a received historical message that has not arrived is
//     lost, and a loss is always announced by an event (buffer_overflow,
//     buffer_dropped, buffer_corrupt).
//
// With ReplayRate 0 there is one lane in seq order (the replay lane is
// empty by the time live messages are read), as before.
//
// Both lanes share the in-flight window and the acker: the broker
// acknowledges in the order it received, whatever the lane, and a message
// leaves the buffer only after its PUBACK, so at-least-once and "duplicates
// at most MaxInflight per lost connection" are unchanged.

// pacer is a token bucket: rate tokens per second, at most burst saved.
type pacer struct {
	rate   float64
	burst  float64
	tokens float64
	last   time.Time
}

func newPacer(rate float64, window int) *pacer {
	// A burst of a tenth of a second's worth keeps the publishes smooth
	// without a timer per message; at least one, at most the window.
	burst := min(max(rate/10, 1), float64(window))
	return &pacer{rate: rate, burst: burst, tokens: burst}
}

// take returns how many of want may go now (0..want), and when none may,
// how long until the next one may.
func (p *pacer) take(now time.Time, want int) (int, time.Duration) {
	if !p.last.IsZero() {
		p.tokens = min(p.burst, p.tokens+now.Sub(p.last).Seconds()*p.rate)
	}
	p.last = now
	n := min(int(p.tokens), want)
	if n > 0 {
		p.tokens -= float64(n)
		return n, 0
	}
	wait := time.Duration((1 - p.tokens) / p.rate * float64(time.Second))
	return 0, max(wait, time.Millisecond)
}

// lanes is the replay state of one connection.
type lanes struct {
	boundary uint64 // B: seqs <= B are the replay lane
	replay   uint64 // cursor of the replay lane (last seq published)
	live     uint64 // cursor of the live lane
	done     bool   // the replay lane is empty
	pace     *pacer
}

func (u *Uplink) newLanes() *lanes {
	st := u.src.Stats()
	b := st.NextSeq - 1
	if st.NextSeq == 0 {
		b = 0
	}
	l := &lanes{boundary: b, live: b, pace: newPacer(u.cfg.ReplayRate, u.cfg.MaxInflight)}
	if st.Messages == 0 && st.Pending == 0 {
		l.done = true // no backlog
	} else {
		u.met.replaying.Set(1)
	}
	return l
}

// fillLanes publishes live messages, then replay messages as the pacer
// allows, until the window is full or neither lane has more. It reports
// whether the window is full, and how long until the pacer lets the next
// replay message go (0: no need to wake for it).
func (u *Uplink) fillLanes(ctx context.Context, s *session, a *acker, l *lanes) (bool, time.Duration, error) {
	for {
		free := u.cfg.MaxInflight - int(u.inflight.Load())
		if free <= 0 {
			return true, 0, nil
		}
		msgs, err := u.read(l.live, free)
		if err != nil {
			return false, 0, fmt.Errorf("%w after seq %d: %w", errRead, l.live, err)
		}
		for i := range msgs {
			if err := u.publish(s, a, &msgs[i], false); err != nil {
				return false, 0, err
			}
			l.live = msgs[i].Seq
		}
		// The replay read below reuses the batch: keep only the count.
		live := len(msgs)
		free -= live
		if free <= 0 {
			continue // recheck: the acker may have freed slots meanwhile
		}
		var wait time.Duration
		sent := 0
		if !l.done {
			n, w := l.pace.take(time.Now(), free)
			wait = w
			if n > 0 {
				sent, err = u.replayBatch(s, a, l, n)
				if err != nil {
					return false, 0, err
				}
				// Tokens taken and not used (the backlog ended, or the
				// rest is not committed yet) are given back.
				l.pace.tokens += float64(n - sent)
			}
		}
		if live == 0 && sent == 0 {
			if l.done {
				wait = 0
			}
			return false, wait, nil
		}
		select {
		case <-s.lost:
			return false, 0, s.err()
		case <-ctx.Done():
			return false, 0, ctx.Err()
		default:
		}
	}
}

// replayBatch publishes up to n messages of the replay lane and returns
// how many it published.
func (u *Uplink) replayBatch(s *session, a *acker, l *lanes, n int) (int, error) {
	msgs, err := u.read(l.replay, n)
	if err != nil {
		return 0, fmt.Errorf("%w after seq %d: %w", errRead, l.replay, err)
	}
	sent := 0
	for i := range msgs {
		if msgs[i].Seq > l.boundary {
			l.setDone(u)
			return sent, nil
		}
		if err := u.publish(s, a, &msgs[i], true); err != nil {
			return sent, err
		}
		l.replay = msgs[i].Seq
		sent++
	}
	if l.replay >= l.boundary {
		l.setDone(u)
	}
	// Fewer than asked and below the boundary: the rest of the backlog is
	// appended but not committed yet; the next commit wakes serve.
	return sent, nil
}

func (l *lanes) setDone(u *Uplink) {
	if !l.done {
		l.done = true
		u.met.replaying.Set(0)
	}
}
