package uplink

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"

	mqtt "github.com/eclipse/paho.mqtt.golang"
)

// Primary host (Config.PrimaryHost, README "Primary host"):
//
//   - spBv1.0/STATE/<host> is subscribed (QoS 1) after NCMD and before any
//     birth; the births wait for a STATE {"online":true,"timestamp":ms}.
//     Until then nothing is published and the buffer keeps everything, so
//     the wait ends with the backlog replayed as historical.
//   - A STATE older than the last one accepted from the same broker (by its
//     timestamp) is ignored: a host's old will can arrive after its new
//     birth. The reference is per broker because a host connects to each
//     broker at its own time, and it outlives connections, as the
//     specification asks ("the previous STATE received by this edge node").
//   - An offline STATE during a session: NDEATH, DISCONNECT, and the next
//     connection starts at the next broker. An offline STATE before the
//     births: with several brokers, walk to the next one; with one, stay
//     connected and wait for the host there (reconnecting would only learn
//     the same retained STATE later).

// ErrHostOffline ends a session whose primary host said it is offline.
var ErrHostOffline = errors.New("sparkplug: primary host offline")

// stateTopic is the primary host's STATE topic (Sparkplug 3.0).
func (sp *sparkplug) stateTopic() string {
	return spNamespace + "/STATE/" + sp.host
}

// parseState reads a Sparkplug 3.0 STATE payload. Both keys are required:
// a STATE without a timestamp cannot be ordered against the others.
func parseState(payload []byte) (online bool, ts int64, err error) {
	var st struct {
		Online    *bool        `json:"online"`
		Timestamp *json.Number `json:"timestamp"`
	}
	d := json.NewDecoder(bytes.NewReader(payload))
	d.UseNumber()
	if err := d.Decode(&st); err != nil {
		return false, 0, fmt.Errorf("not JSON: %w", err)
	}
	if st.Online == nil || st.Timestamp == nil {
		return false, 0, errors.New(`want {"online":bool,"timestamp":ms}`)
	}
	ts, err = st.Timestamp.Int64()
	if err != nil || ts < 0 {
		return false, 0, fmt.Errorf("timestamp %s: want ms since the epoch", *st.Timestamp)
	}
	return *st.Online, ts, nil
}

// onState is the STATE handler (a paho goroutine): it keeps the host's
// state in the session and signals serve.
func (u *Uplink) onState(s *session, m mqtt.Message) {
	sp, ss := u.sp, s.sp
	if m.Topic() != sp.stateTopic() {
		return // another host's STATE: not ours to follow
	}
	online, ts, err := parseState(m.Payload())
	if err != nil {
		u.log.Warn("sparkplug: STATE of the primary host ignored", "topic", m.Topic(), "error", err)
		return
	}
	sp.stateMu.Lock()
	prev, seen := sp.stateTS[s.broker]
	if seen && ts < prev {
		sp.stateMu.Unlock()
		u.log.Info("sparkplug: STATE older than the last one ignored", "online", online, "timestamp", ts, "last", prev)
		return
	}
	sp.stateTS[s.broker] = ts
	sp.stateMu.Unlock()
	ss.hostOnline.Store(online)
	if online {
		sp.hostUp.Set(1)
	} else {
		sp.hostUp.Set(0)
	}
	signal(ss.hostChanged)
}

func signal(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default: // one pending signal is enough: the state is in hostOnline
	}
}

// subscribeState subscribes to the primary host's STATE.
func (u *Uplink) subscribeState(ctx context.Context, s *session) error {
	topic := u.sp.stateTopic()
	tok := s.client.Subscribe(topic, 1, func(_ mqtt.Client, m mqtt.Message) { u.onState(s, m) })
	if err := waitToken(ctx, s, tok); err != nil {
		return fmt.Errorf("subscribe %s: %w", topic, err)
	}
	if st, ok := tok.(*mqtt.SubscribeToken); ok && st.Result()[topic] == subackFailure {
		// Without STATE the births would wait for ever: say why.
		return fmt.Errorf("subscribe %s: refused by the broker; grant the user read on it", topic)
	}
	return nil
}

// waitHost returns once the primary host is online. An offline STATE makes
// it walk to the next broker when there is one (ErrHostOffline).
func (u *Uplink) waitHost(ctx context.Context, s *session) error {
	ss := s.sp
	logged := false
	for !ss.hostOnline.Load() {
		if !logged {
			u.log.Info("sparkplug: waiting for the primary host to be online before the births; buffering",
				"host", u.sp.host, "broker", s.broker)
			logged = true
		}
		select {
		case <-ss.hostChanged:
			if !ss.hostOnline.Load() && len(u.brokers) > 1 {
				u.walk(s)
				return fmt.Errorf("%w on %s: trying the next broker", ErrHostOffline, s.broker)
			}
		case <-s.lost:
			return s.err()
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	if logged {
		u.log.Info("sparkplug: primary host online", "host", u.sp.host, "broker", s.broker)
	}
	return nil
}

// spHostChanged is the session's STATE signal; nil (never ready) without a
// primary host.
func (s *session) spHostChanged() <-chan struct{} {
	if s.sp == nil {
		return nil
	}
	return s.sp.hostChanged
}

// hostChanged handles a STATE signal in serve: an offline host ends the
// session with an NDEATH (the DISCONNECT that follows drops the will).
func (u *Uplink) hostChanged(s *session) error {
	if s.sp.hostOnline.Load() {
		return nil
	}
	u.log.Warn("sparkplug: primary host offline: NDEATH, disconnecting; buffering until it is back",
		"host", u.sp.host, "broker", s.broker)
	tctx, cancel := context.WithTimeout(context.Background(), errorGrace)
	defer cancel()
	if err := u.publishWait(tctx, s, u.sp.nodeTopic("NDEATH"), u.sp.ndeath(s.sp), false); err != nil {
		u.log.Warn("sparkplug NDEATH not acknowledged", "broker", s.broker, "error", err)
	}
	u.walk(s)
	return fmt.Errorf("%w on %s", ErrHostOffline, s.broker)
}

// walk makes the next connection start at the broker after s's.
func (u *Uplink) walk(s *session) {
	for i, b := range u.brokers {
		if b.Redacted() == s.broker {
			u.sp.brokerStart = (i + 1) % len(u.brokers)
			return
		}
	}
}

// brokerOrder is the order of the next connect: the configured one, turned
// to start where walk left it.
func (u *Uplink) brokerOrder() []*url.URL {
	if u.sp == nil || u.sp.brokerStart == 0 || u.sp.brokerStart >= len(u.brokers) {
		return u.brokers
	}
	k := u.sp.brokerStart
	return append(append(make([]*url.URL, 0, len(u.brokers)), u.brokers[k:]...), u.brokers[:k]...)
}
