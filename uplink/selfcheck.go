package uplink

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
)

// ErrNotDelivered is the self-check's verdict on a broker that acknowledged
// the online status but never delivered it: with MQTT 3.1.1 a broker that
// denies a publish by ACL still sends PUBACK (Mosquitto does, and logs
// "Denied PUBLISH"), so the PUBACK alone cannot tell delivered from dropped.
var ErrNotDelivered = errors.New("the broker acknowledged the online status but did not deliver it: " +
	"its ACL probably denies this user publishing under the gateway's topics " +
	"(allow readwrite on <topic_prefix>/<site>/<area>/<line>/#); nothing is sent until it does")

// subackFailure is the SUBACK return code of a refused subscription.
const subackFailure = 0x80

// announce publishes the retained online status and, before any data
// goes out, checks that the broker delivers it: it subscribes to the status
// topic first and waits for its own payload to come back.
//
// Without this, an ACL that does not cover the gateway's topics would make
// the broker acknowledge and drop every message, and the uplink would
// delete them from the buffer: a silent loss. Holding the data until the
// echo arrives keeps it in the buffer, and the connection is retried with
// backoff until the ACL is fixed. The check covers the _gateway branch
// only; the data topics share the line's prefix, which is what an ACL
// normally grants (README "Security").
//
// A broker that refuses the subscription (an ACL that grants write but not
// read) leaves nothing to check with: that is logged once per connection
// and the data goes out unverified.
func (u *Uplink) announce(ctx context.Context, s *session, online []byte) error {
	if u.sp != nil {
		return u.announceSparkplug(ctx, s)
	}
	echo := make(chan struct{}, 1)
	sub := s.client.Subscribe(u.statusTopic, 1, func(_ mqtt.Client, m mqtt.Message) {
		if bytes.Equal(m.Payload(), online) {
			select {
			case echo <- struct{}{}:
			default:
			}
		}
	})
	if err := waitToken(ctx, s, sub); err != nil {
		return fmt.Errorf("subscribe %s: %w", u.statusTopic, err)
	}
	verify := true
	if st, ok := sub.(*mqtt.SubscribeToken); ok && st.Result()[u.statusTopic] == subackFailure {
		verify = false
		u.log.Warn("mqtt: the broker refuses a subscription to the gateway's own status topic, so delivery cannot be verified; grant the user read on it",
			"topic", u.statusTopic)
	}
	if err := u.publishWait(ctx, s, u.statusTopic, online, true); err != nil {
		return err
	}
	if !verify {
		return nil
	}
	t := time.NewTimer(u.cfg.ConnectTimeout)
	defer t.Stop()
	select {
	case <-echo:
		// Not waited for: the subscription only costs the status
		// messages, and a lost UNSUBACK must not end the connection.
		s.client.Unsubscribe(u.statusTopic)
		return nil
	case <-t.C:
		u.met.notDelivered.Inc()
		return fmt.Errorf("%w (topic %s)", ErrNotDelivered, u.statusTopic)
	case <-s.lost:
		return s.err()
	case <-ctx.Done():
		return ctx.Err()
	}
}
