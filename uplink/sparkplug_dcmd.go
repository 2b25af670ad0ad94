package uplink

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
	"google.golang.org/protobuf/proto"

	"github.com/linegate/linegate/buffer"
	pb "github.com/linegate/linegate/uplink/sparkplugb"
)

// DCMD: each device's spBv1.0/<group>/DCMD/<edge node>/<device> is
// subscribed with QoS 1 before its DBIRTH. Each metric of a DCMD is one
// write, through the same command path and checks as a JSON command
// (WriteHandler: the agent hands it to commands.Service.HandleRequest).
// Sparkplug has neither an id nor an expiry, so:
//
//   - the id (for the at-most-once ledger) is dcmd:<device>/<tag>@<ts>[#seq],
//     ts the metric's timestamp (else the payload's) in ms and seq the
//     payload's: a DCMD the broker delivers again, or one replayed, has
//     the same id and is refused as a duplicate;
//   - it expires DCMDMaxAge after that timestamp, on the gateway's clock:
//     a DCMD that waited out an outage is refused, never executed late. A
//     DCMD without a timestamp, or one more than DCMDMaxAge ahead of the
//     gateway clock, is refused.
//
// After an ok (written and read back), the new value goes out in a DDATA,
// Sparkplug's way of confirming a write; a refusal or failure is a warning
// in the log and a command event in the buffer (the commands package).

// DefaultDCMDMaxAge is how old a DCMD's timestamp may be when its write
// runs (Config.DCMDMaxAge).
const DefaultDCMDMaxAge = 10 * time.Second

// MetricWrite is one metric of a DCMD as a command: Value is
// json.Number, bool or string, in published units.
type MetricWrite struct {
	ID, Tag string
	Value   any
	Expires time.Time
}

// maxWriteID bounds a MetricWrite id (the command ledger's key limit).
const maxWriteID = 128

// WriteHandler takes the metric writes of Sparkplug DCMDs, with the same
// checks as the JSON commands; Config.Commands must implement it for DCMDs
// to be carried out. malformed is why the metric is no command (then w
// holds what could be read). done is called once, maybe later from
// another goroutine: ok means written and read back, readback in
// published units.
type WriteHandler interface {
	HandleWrite(topic, equipment string, w MetricWrite, malformed error, retained bool, done func(ok bool, readback any))
}

// spCmdDevice is what a DCMD handler knows of a configured device: fixed
// after New, so paho's goroutines read it without a lock.
type spCmdDevice struct {
	name    string
	byName  map[string]spCmdMetric
	byAlias map[uint64]spCmdMetric
}

type spCmdMetric struct {
	name, kind string
}

// spConfirm is an ok write to confirm with a DDATA, for serve.
type spConfirm struct {
	device, tag string
	value       any // published units, as read back
	ts          time.Time
}

// cmdDevices indexes the configured devices by topic level, after declare.
func (sp *sparkplug) cmdDevices(devs []SparkplugDevice) {
	sp.cmd = map[string]*spCmdDevice{}
	for _, cd := range devs {
		d := sp.devices[cd.Name]
		c := &spCmdDevice{name: cd.Name, byName: map[string]spCmdMetric{}, byAlias: map[uint64]spCmdMetric{}}
		for _, t := range cd.Tags {
			m := spCmdMetric{name: t.Name, kind: t.Kind}
			c.byName[t.Name] = m
			if mt := d.byTag[t.Name]; mt != nil {
				c.byAlias[mt.alias] = m
			}
		}
		sp.cmd[d.level] = c
	}
}

// subscribeDCMD subscribes to the DCMD topics of devs in one SUBSCRIBE.
func (u *Uplink) subscribeDCMD(ctx context.Context, s *session, devs []*spDevice) error {
	if len(devs) == 0 {
		return nil
	}
	filters := make(map[string]byte, len(devs))
	for _, d := range devs {
		filters[u.sp.deviceTopic("DCMD", d)] = 1
	}
	tok := s.client.SubscribeMultiple(filters, func(_ mqtt.Client, m mqtt.Message) { u.onDCMD(s, m) })
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
	tok := s.client.Subscribe(topic, 1, func(_ mqtt.Client, m mqtt.Message) { u.onDCMD(s, m) })
	go func() {
		// Ends with the token, which ends at the latest with the connection.
		<-tok.Done()
		if err := tok.Error(); err != nil {
			u.log.Warn("sparkplug: subscribe DCMD", "topic", topic, "error", err)
		}
	}()
}

// onDCMD hands each metric write of a DCMD to the command path. It runs
// on paho's delivery goroutine and never waits for a device.
func (u *Uplink) onDCMD(s *session, m mqtt.Message) {
	level := m.Topic()[strings.LastIndexByte(m.Topic(), '/')+1:]
	h, ok := u.cfg.Commands.(WriteHandler)
	if !ok {
		u.log.Warn("sparkplug: DCMD refused: commands are off (uplink.commands); nothing was written",
			"device", level, "topic", m.Topic())
		return
	}
	dev := u.sp.cmd[level]
	equipment := level
	if dev != nil {
		equipment = dev.name
	}
	for _, w := range decodeDCMD(m.Payload(), dev, equipment, u.sp.now(), u.cfg.DCMDMaxAge) {
		tag := w.req.Tag
		h.HandleWrite(m.Topic(), equipment, w.req, w.err, m.Retained(), func(ok bool, readback any) {
			if ok {
				u.confirmLater(s, spConfirm{device: equipment, tag: tag, value: readback, ts: u.sp.now()})
			}
		})
	}
}

// confirmLater hands an ok write to serve, which publishes its DDATA.
func (u *Uplink) confirmLater(s *session, c spConfirm) {
	select {
	case s.sp.confirm <- c:
	default:
		// Serve is far behind or the session ended: the next poll's DDATA
		// carries the value.
		u.log.Warn("sparkplug: DCMD write not confirmed by a DDATA (the next poll publishes the value)", "device", c.device, "tag", c.tag)
	}
}

// confirmDCMD publishes the DDATA of an ok write: the value read back, by
// alias, in the metric's born datatype. Only on serve's goroutine.
func (u *Uplink) confirmDCMD(s *session, c spConfirm) error {
	d := u.sp.devices[c.device]
	if d == nil || !s.sp.born[d] {
		return nil // no DDATA before a DBIRTH; the next birth has the value
	}
	mt := d.byTag[c.tag]
	if mt == nil {
		return nil
	}
	_, v := spValue(c.value)
	if _, ok := coerce(v, valueType(v), mt.dt); !ok {
		return nil // the next poll's DDATA and DBIRTH carry it in the right type
	}
	ts := spMillis(c.ts)
	pm := &pb.Payload_Metric{Alias: proto.Uint64(mt.alias), Timestamp: proto.Uint64(ts),
		Datatype: proto.Uint32(uint32(mt.dt)), Properties: properties(buffer.Good, "", "", nil)}
	setValue(pm, mt.dt, v)
	payload := marshal(&pb.Payload{Timestamp: proto.Uint64(ts), Seq: s.sp.next(), Metrics: []*pb.Payload_Metric{pm}})
	return u.spPublish(s, d.dataTopic, u.sp.qos, payload)
}

// spConfirm is the session's confirmation channel; nil for JSON.
func (s *session) spConfirm() <-chan spConfirm {
	if s.sp == nil {
		return nil
	}
	return s.sp.confirm
}

// dcmdWrite is one metric of a DCMD as a command request, or why it
// cannot be one.
type dcmdWrite struct {
	req MetricWrite
	err error
}

// decodeDCMD turns a DCMD payload into one request per metric. dev is nil
// for a device that is not configured (the command path refuses it).
func decodeDCMD(payload []byte, dev *spCmdDevice, equipment string, now time.Time, maxAge time.Duration) []dcmdWrite {
	if maxAge <= 0 {
		maxAge = DefaultDCMDMaxAge
	}
	var p pb.Payload
	if err := proto.Unmarshal(payload, &p); err != nil {
		return []dcmdWrite{{err: fmt.Errorf("malformed command: DCMD is not a Sparkplug B payload: %v", err)}}
	}
	if len(p.GetMetrics()) == 0 {
		return []dcmdWrite{{err: errors.New("malformed command: DCMD without metrics")}}
	}
	out := make([]dcmdWrite, 0, len(p.GetMetrics()))
	for _, mt := range p.GetMetrics() {
		var w dcmdWrite
		w.req, w.err = decodeMetric(&p, mt, dev, equipment, now, maxAge)
		out = append(out, w)
	}
	return out
}

func decodeMetric(p *pb.Payload, mt *pb.Payload_Metric, dev *spCmdDevice, equipment string, now time.Time, maxAge time.Duration) (MetricWrite, error) {
	var req MetricWrite
	var cm spCmdMetric
	switch {
	case mt.Name != nil:
		req.Tag = mt.GetName()
		if dev != nil {
			cm = dev.byName[req.Tag]
		}
	case mt.Alias != nil:
		req.Tag = fmt.Sprintf("alias %d", mt.GetAlias())
		if dev != nil {
			if m, ok := dev.byAlias[mt.GetAlias()]; ok {
				cm, req.Tag = m, m.name
			} else {
				return req, fmt.Errorf("malformed command: alias %d is not a metric of %s's DBIRTH", mt.GetAlias(), equipment)
			}
		}
	default:
		return req, errors.New("malformed command: a DCMD metric without name or alias")
	}
	v, err := dcmdValue(mt, cm.kind)
	if err != nil {
		return req, fmt.Errorf("malformed command: metric %s: %v", req.Tag, err)
	}
	req.Value = v
	ms := mt.GetTimestamp()
	if mt.Timestamp == nil {
		ms = p.GetTimestamp()
	}
	if ms == 0 {
		return req, fmt.Errorf("malformed command: metric %s: a DCMD needs a timestamp (its age decides whether it may still run)", req.Tag)
	}
	ts := time.UnixMilli(int64(min(ms, math.MaxInt64)))
	if ts.Sub(now) > maxAge {
		return req, fmt.Errorf("malformed command: metric %s: timestamp %s is more than %s ahead of the gateway clock (%s)",
			req.Tag, ts.UTC().Format(time.RFC3339Nano), maxAge, now.UTC().Format(time.RFC3339Nano))
	}
	req.Expires = ts.Add(maxAge).UTC()
	req.ID = dcmdID(equipment, req.Tag, ms, p.Seq)
	return req, nil
}

// dcmdID is the ledger id of a DCMD metric write.
func dcmdID(equipment, tag string, ms uint64, seq *uint64) string {
	id := fmt.Sprintf("dcmd:%s/%s@%d", equipment, tag, ms)
	if seq != nil {
		id += "#" + strconv.FormatUint(*seq, 10)
	}
	if len(id) > maxWriteID || strings.ContainsFunc(id, func(r rune) bool { return r < 0x20 || r == 0x7f || r == 0xfffd }) {
		sum := sha256.Sum256([]byte(id))
		id = "dcmd:" + hex.EncodeToString(sum[:16])
	}
	return id
}

// dcmdValue is a DCMD metric's value as a command value (json.Number,
// bool or string). kind is the configured tag's ("uint" decides the
// signedness of an integer that comes without a datatype).
func dcmdValue(mt *pb.Payload_Metric, kind string) (any, error) {
	if mt.GetIsNull() {
		return nil, errors.New("null value")
	}
	dt := pb.DataType(mt.GetDatatype())
	switch v := mt.Value.(type) {
	case *pb.Payload_Metric_BooleanValue:
		return v.BooleanValue, nil
	case *pb.Payload_Metric_StringValue:
		return v.StringValue, nil
	case *pb.Payload_Metric_FloatValue:
		f := float64(v.FloatValue)
		if math.IsNaN(f) || math.IsInf(f, 0) {
			return nil, fmt.Errorf("value %v is not a finite number", f)
		}
		return json.Number(strconv.FormatFloat(f, 'g', -1, 32)), nil
	case *pb.Payload_Metric_DoubleValue:
		if math.IsNaN(v.DoubleValue) || math.IsInf(v.DoubleValue, 0) {
			return nil, fmt.Errorf("value %v is not a finite number", v.DoubleValue)
		}
		return json.Number(strconv.FormatFloat(v.DoubleValue, 'g', -1, 64)), nil
	case *pb.Payload_Metric_IntValue:
		switch {
		case dt == pb.DataType_UInt8 || dt == pb.DataType_UInt16 || dt == pb.DataType_UInt32,
			dt == pb.DataType_Unknown && kind == "uint":
			return json.Number(strconv.FormatUint(uint64(v.IntValue), 10)), nil
		}
		// Int8/16/32 travel as their 32-bit two's complement.
		return json.Number(strconv.FormatInt(int64(int32(v.IntValue)), 10)), nil
	case *pb.Payload_Metric_LongValue:
		switch {
		case dt == pb.DataType_UInt64, dt == pb.DataType_Unknown && kind == "uint":
			return json.Number(strconv.FormatUint(v.LongValue, 10)), nil
		case dt == pb.DataType_DateTime:
			return nil, errors.New("a DateTime cannot be written")
		}
		return json.Number(strconv.FormatInt(int64(v.LongValue), 10)), nil
	}
	return nil, errors.New("no value, or one of a type that cannot be written (bytes, dataset, template)")
}
