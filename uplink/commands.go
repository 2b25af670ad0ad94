package uplink

import (
	"context"
	"fmt"
	"strings"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
)

// CommandHandler takes the commands (writes) the MES publishes on
// <prefix>/<site>/<area>/<line>/<equipment>/cmd; *commands.Service
// implements it.
type CommandHandler interface {
	// Handle must not wait for the device: it is called from the MQTT
	// client's delivery goroutine. reply publishes one cmd_result payload
	// and may be called later, from another goroutine.
	Handle(topic, equipment string, payload []byte, retained bool, reply func(payload []byte))
}

// replyTimeout bounds the wait for a cmd_result's PUBACK, for the log.
const replyTimeout = 30 * time.Second

// cmdFilter is the subscription filter of the commands: one level for the
// equipment. The data topics end in a class and the gateway's own topics
// are two levels deeper, so it catches nothing of ours.
func (u *Uplink) cmdFilter() string {
	// joinTopic makes a + in a level safe; this one is the wildcard.
	return joinTopic(u.cfg.TopicPrefix, u.gw.Site, u.gw.Area, u.gw.Line) + "/+/cmd"
}

// subscribeCommands subscribes to the cmd topics on s (JSON format, with a
// CommandHandler). Results go out on the session that got the command: on
// a connection lost in between, the result is only in the command event,
// which is kept in the buffer and sent on the next connection.
func (u *Uplink) subscribeCommands(ctx context.Context, s *session) error {
	h := u.cfg.Commands
	if h == nil || u.sp != nil {
		return nil
	}
	filter := u.cmdFilter()
	base := strings.TrimSuffix(filter, "+/cmd")
	resultTopic := gatewayTopic(u.cfg.TopicPrefix, u.gw, "cmd_result")
	reply := func(payload []byte) {
		tok := s.client.Publish(resultTopic, 1, false, payload)
		go func() {
			if !tok.WaitTimeout(replyTimeout) || tok.Error() != nil {
				u.log.Warn("mqtt: command result not acknowledged by the broker (the command event still is, in the buffer)",
					"topic", resultTopic, "err", tok.Error())
			}
		}()
	}
	tok := s.client.Subscribe(filter, 1, func(_ mqtt.Client, m mqtt.Message) {
		equipment, ok := strings.CutPrefix(m.Topic(), base)
		if !ok {
			return
		}
		equipment = strings.TrimSuffix(equipment, "/cmd")
		h.Handle(m.Topic(), equipment, m.Payload(), m.Retained(), reply)
	})
	if err := waitToken(ctx, s, tok); err != nil {
		return fmt.Errorf("subscribe %s: %w", filter, err)
	}
	if st, ok := tok.(*mqtt.SubscribeToken); ok && st.Result()[filter] == subackFailure {
		u.log.Warn("mqtt: the broker refuses the subscription to the command topics, so the MES cannot write; grant the gateway's user read on them",
			"topic", filter)
	}
	return nil
}
