package uplink

import (
	"context"
	"fmt"
	"strings"

	mqtt "github.com/eclipse/paho.mqtt.golang"
	"google.golang.org/protobuf/proto"

	pb "github.com/linegate/linegate/uplink/sparkplugb"
)

// DCMD: each device's spBv1.0/<group>/DCMD/<edge node>/<device> is
// subscribed with QoS 1 before its DBIRTH, so that a host's writes reach
// the edge node. Writes are not carried out yet: onDCMD refuses each one
// with a log line. This is where the command path will be wired.

// subscribeDCMD subscribes to the DCMD topics of devs in one SUBSCRIBE.
func (u *Uplink) subscribeDCMD(ctx context.Context, s *session, devs []*spDevice) error {
	if len(devs) == 0 {
		return nil
	}
	filters := make(map[string]byte, len(devs))
	for _, d := range devs {
		filters[u.sp.deviceTopic("DCMD", d)] = 1
	}
	tok := s.client.SubscribeMultiple(filters, func(_ mqtt.Client, m mqtt.Message) { u.onDCMD(m) })
	if err := waitToken(ctx, s, tok); err != nil {
		return fmt.Errorf("subscribe DCMD of %d devices: %w", len(devs), err)
	}
	for _, d := range devs {
		s.sp.dcmd[d] = true
	}
	return nil
}

// subscribeDCMDAsync subscribes to d's DCMD without waiting: a failure is
// logged, the data goes on.
func (u *Uplink) subscribeDCMDAsync(s *session, d *spDevice) {
	s.sp.dcmd[d] = true
	topic := u.sp.deviceTopic("DCMD", d)
	tok := s.client.Subscribe(topic, 1, func(_ mqtt.Client, m mqtt.Message) { u.onDCMD(m) })
	go func() {
		// Ends with the token, which ends at the latest with the connection.
		<-tok.Done()
		if err := tok.Error(); err != nil {
			u.log.Warn("sparkplug: subscribe DCMD", "topic", topic, "error", err)
		}
	}()
}

// onDCMD refuses a device command: writes from the host are not carried out.
func (u *Uplink) onDCMD(m mqtt.Message) {
	device := m.Topic()[strings.LastIndexByte(m.Topic(), '/')+1:]
	var p pb.Payload
	if err := proto.Unmarshal(m.Payload(), &p); err != nil {
		u.log.Warn("sparkplug: DCMD refused: not a Sparkplug payload", "device", device, "error", err)
		return
	}
	names := make([]string, 0, len(p.GetMetrics()))
	for _, mt := range p.GetMetrics() {
		if mt.Name != nil {
			names = append(names, mt.GetName())
		} else {
			names = append(names, fmt.Sprintf("alias %d", mt.GetAlias()))
		}
	}
	u.log.Warn("sparkplug: DCMD refused: writes to devices are not supported by this version; nothing was written",
		"device", device, "metrics", strings.Join(names, ","))
}
