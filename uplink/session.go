package uplink

import (
	"context"
	"errors"
	"fmt"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/linegate/linegate/buffer"
)

// maxEvents is how many events are read and published at a time.
const maxEvents = 64

// serve publishes on one connection until it is lost (returning why) or ctx
// is done (returning nil after the offline status went out).
//
// Order on every connection: the retained online status, then the pending
// events, then data from the oldest message still in the buffer. Resuming
// from the oldest unacknowledged message, not from where the last connection
// stopped, is what makes a lost connection cost duplicates (at most
// MaxInflight) but never a gap: a message leaves the buffer only after its
// PUBACK.
func (u *Uplink) serve(ctx context.Context, s *session) error {
	online := StatusJSON(u.gw, "online", u.now(), u.cfg.Version)
	// announce also proves that the broker delivers what it acknowledges
	// (an ACL may drop silently): see selfcheck.go.
	if err := u.announce(ctx, s, online); err != nil {
		return u.endSession(ctx, s, err)
	}
	if err := u.subscribeCommands(ctx, s); err != nil {
		return u.endSession(ctx, s, err)
	}

	a := newAcker(u, s)
	go a.run()
	defer a.stop()

	var (
		cursor     uint64 // seq of the last message published on this connection
		wantEvents = true // events are sent first, then whenever a commit may have added some
		retry      <-chan time.Time
		readFailed bool
		ln         *lanes // replay lanes, only with a ReplayRate (replay.go)
		paced      *time.Timer
	)
	if u.cfg.ReplayRate > 0 {
		ln = u.newLanes()
		defer u.met.replaying.Set(0)
		paced = time.NewTimer(time.Hour)
		paced.Stop()
		defer paced.Stop()
	}
	for {
		// Taken before reading, so that a commit after the read still wakes
		// us (whether Committed returns one channel or a new one per commit).
		committed := u.src.Committed()
		if wantEvents {
			if err := u.sendEvents(ctx, s); err != nil {
				return u.endSession(ctx, s, err)
			}
			wantEvents = false
		}
		var (
			full bool
			err  error
			wake <-chan time.Time // the pacer lets the next replay message go
		)
		if ln == nil {
			full, err = u.fill(ctx, s, a, &cursor)
		} else {
			var wait time.Duration
			full, wait, err = u.fillLanes(ctx, s, a, ln)
			if wait > 0 && !full {
				paced.Reset(wait)
				wake = paced.C
			}
		}
		switch {
		case errors.Is(err, errRead):
			// The buffer is not the connection's fault: keep the connection
			// and try again after a pause.
			if !readFailed {
				u.log.Error("uplink: read buffer", "error", err)
				readFailed = true
			}
			retry = time.After(u.cfg.BackoffMin)
		case err != nil:
			return u.endSession(ctx, s, err)
		case readFailed:
			u.log.Info("uplink: buffer readable again")
			readFailed = false
		}
		// Wake on a freed slot only while the window is full; otherwise
		// every acknowledgement would cost a useless read.
		var freed <-chan struct{}
		if full {
			freed = a.freed
		}
		select {
		case <-ctx.Done():
			return u.endSession(ctx, s, ctx.Err())
		case <-s.lost:
			return s.err()
		case <-committed:
			wantEvents = true
		case <-freed:
		case <-wake:
		case <-retry:
			retry = nil
		case <-s.spRebirth():
			if err := u.rebirth(s); err != nil {
				return u.endSession(ctx, s, err)
			}
		case c := <-s.spConfirm():
			if err := u.confirmDCMD(s, c); err != nil {
				return u.endSession(ctx, s, err)
			}
		case <-s.spHostChanged():
			if err := u.hostChanged(s); err != nil {
				return u.endSession(ctx, s, err)
			}
		}
	}
}

// endSession turns the error that stopped serve into its result: on
// shutdown, the retained offline status is published first.
func (u *Uplink) endSession(ctx context.Context, s *session, err error) error {
	if ctx.Err() == nil {
		return err
	}
	if u.sp != nil {
		u.endSparkplug(s)
		return nil
	}
	u.sayOffline(s, shutdownGrace)
	return nil
}

// sayOffline publishes the retained offline status and waits up to grace
// for its PUBACK. The DISCONNECT that follows makes the broker drop the last
// will, so the status must come from us.
func (u *Uplink) sayOffline(s *session, grace time.Duration) {
	offline := StatusJSON(u.gw, "offline", u.now(), u.cfg.Version)
	tctx, cancel := context.WithTimeout(context.Background(), grace)
	defer cancel()
	if err := u.publishWait(tctx, s, u.statusTopic, offline, true); err != nil {
		u.log.Warn("mqtt offline status not acknowledged", "broker", s.broker, "error", err)
	}
}

var errRead = errors.New("read buffer")

// fill publishes messages until the window is full or the buffer has no
// more; it reports whether the window is full.
func (u *Uplink) fill(ctx context.Context, s *session, a *acker, cursor *uint64) (bool, error) {
	for {
		free := u.cfg.MaxInflight - int(u.inflight.Load())
		if free <= 0 {
			return true, nil
		}
		msgs, err := u.read(*cursor, free)
		if err != nil {
			return false, fmt.Errorf("%w after seq %d: %w", errRead, *cursor, err)
		}
		for i := range msgs {
			if err := u.publishMessage(s, a, &msgs[i]); err != nil {
				return false, err
			}
			*cursor = msgs[i].Seq
		}
		if len(msgs) < free {
			return false, nil
		}
		select {
		case <-s.lost:
			return false, s.err()
		case <-ctx.Done():
			return false, ctx.Err()
		default:
		}
	}
}

// read reads the next messages into u.batch, reusing the memory of the
// messages read before: those are published, their payloads encoded.
func (u *Uplink) read(after uint64, max int) ([]buffer.Message, error) {
	err := u.src.ReadBatch(&u.batch, after, max)
	return u.batch.Messages, err
}

// publishMessage hands one message to paho and its token to the acker.
//
// historical is true for a message appended before the current connection
// came up: it waited in the buffer while the broker was unreachable (or
// before the gateway first connected), so the MES should not treat it as
// live. Messages resent after a reconnect are historical too, even if their
// first copy was not. It is decided by seq, not by the messages' creation
// time: a wall clock stepped back an hour would otherwise mark an hour of
// live messages historical.
func (u *Uplink) publishMessage(s *session, a *acker, m *buffer.Message) error {
	return u.publish(s, a, m, m.Seq <= s.upSeq)
}

// publish hands m to paho with the given historical flag.
func (u *Uplink) publish(s *session, a *acker, m *buffer.Message, historical bool) error {
	if u.sp != nil {
		return u.publishSparkplug(s, a, m, historical)
	}
	payload := AppendJSON(u.payloads.get(320+160*len(m.Readings)), *m, u.gw, historical)
	topic := u.dataTopic(m.Equipment, m.Class)
	qos := u.cfg.QoS
	if size := PacketSize(topic, len(payload)); size > u.cfg.MaxPacket {
		// Buffered before the limit was lowered: the broker would refuse it
		// for ever or drop it after its PUBACK. Its place in the window goes
		// to the event that announces the gap, and the message leaves the
		// buffer once that event is acknowledged.
		u.log.Warn("uplink: message too large, dropped", "seq", m.Seq, "bytes", size, "max_message_size", u.cfg.MaxPacket)
		u.met.tooLarge.Inc()
		topic, qos = u.eventsTopic, 1
		payload = AppendEventJSON(payload[:0], buffer.Event{Type: buffer.EventDropped, TS: u.now(), Attrs: []buffer.Attr{
			{Key: "reason", Value: "message_too_large"},
			{Key: "dropped_seq_from", Value: m.Seq},
			{Key: "dropped_seq_to", Value: m.Seq},
			{Key: "dropped", Value: uint64(1)},
		}}, u.gw)
	}

	u.inflight.Add(1)
	u.met.inflight.Inc()
	tok := s.client.Publish(topic, qos, false, payload)
	u.met.published.Inc()
	// Never blocks: the channel holds MaxInflight and at most that many
	// tokens are outstanding.
	a.in <- pending{seq: m.Seq, tok: tok, sent: time.Now(), payload: payload}

	// A publish that failed at once (not connected, write timeout) must stop
	// this connection before anything after it is sent: a later message
	// acknowledged ahead of this one would reach the MES out of order.
	select {
	case <-tok.Done():
		if err := tok.Error(); err != nil {
			return fmt.Errorf("publish seq %d: %w", m.Seq, err)
		}
	default:
	}
	return nil
}

// sendEvents publishes all pending events, oldest first, and deletes each
// batch from the buffer once the broker acknowledged it.
func (u *Uplink) sendEvents(ctx context.Context, s *session) error {
	for {
		evs, err := u.src.Events(maxEvents)
		if err != nil {
			// Not the connection's fault; the next commit retries.
			u.log.Error("uplink: read events", "error", err)
			return nil
		}
		if len(evs) == 0 {
			return nil
		}
		toks := make([]mqtt.Token, len(evs))
		for i := range evs {
			toks[i] = u.publishEvent(s, evs[i])
		}
		ids := make([]uint64, 0, len(evs))
		for i, tok := range toks {
			if err := waitToken(ctx, s, tok); err != nil {
				u.ackEvents(ids)
				return fmt.Errorf("publish event %d (%s): %w", evs[i].ID, evs[i].Type, err)
			}
			ids = append(ids, evs[i].ID)
		}
		if err := u.ackEvents(ids); err != nil {
			// Deleting failed, so reading again would loop on the same
			// events; they go out again on the next connection.
			return nil
		}
		if len(evs) < maxEvents {
			return nil
		}
	}
}

func (u *Uplink) ackEvents(ids []uint64) error {
	if len(ids) == 0 {
		return nil
	}
	err := u.src.AckEvents(ids...)
	if err != nil {
		u.log.Error("uplink: delete acknowledged events", "events", len(ids), "error", err)
	}
	return err
}

// publishWait publishes with QoS 1 and waits for the PUBACK.
func (u *Uplink) publishWait(ctx context.Context, s *session, topic string, payload []byte, retained bool) error {
	if err := waitToken(ctx, s, s.client.Publish(topic, 1, retained, payload)); err != nil {
		return fmt.Errorf("publish %s: %w", topic, err)
	}
	return nil
}

func waitToken(ctx context.Context, s *session, tok mqtt.Token) error {
	select {
	case <-tok.Done():
		return tok.Error()
	case <-s.lost:
		return s.err()
	case <-ctx.Done():
		return ctx.Err()
	}
}
