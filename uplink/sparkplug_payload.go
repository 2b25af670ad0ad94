package uplink

import (
	"math"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/linegate/linegate/buffer"
	pb "github.com/linegate/linegate/uplink/sparkplugb"
)

// Metric mapping (README "Sparkplug B"):
//
//	reading value      datatype   value field
//	bool               Boolean    boolean_value
//	int64 (any int)    Int64      long_value (two's complement)
//	uint64 (any uint)  UInt64     long_value
//	float64, float32   Double     double_value
//	string             String     string_value
//	time.Time          DateTime   long_value, ms since the epoch
//	time.Duration      Double     seconds, as in the JSON
//	array, other       String     the value's JSON text
//	null               (learned)  is_null; a tag seen only as null is born Double
//
// A later value of another kind widens the metric (integers and doubles to
// Double) or retypes it, with a new DBIRTH; a value that fits the born
// datatype (an int into Double, a uint64 below 2^63 into Int64) is converted.
// Every metric of a DDATA carries the property Quality and, when not good
// and known, error; DBIRTH also carries engUnit; reading attributes (a
// counter's delta, a state's previous) are properties of the DDATA metric.

// spMillis is t in ms since the Unix epoch, as Sparkplug timestamps are.
func spMillis(t time.Time) uint64 { return uint64(t.UnixMilli()) }

// spValue normalizes a reading value to nil, bool, int64, uint64, float64,
// string or time.Time and gives its datatype (Unknown for nil).
func spValue(v any) (pb.DataType, any) {
	switch v := v.(type) {
	case nil:
		return pb.DataType_Unknown, nil
	case bool:
		return pb.DataType_Boolean, v
	case int64:
		return pb.DataType_Int64, v
	case uint64:
		return pb.DataType_UInt64, v
	case float64:
		return pb.DataType_Double, v
	case string:
		return pb.DataType_String, v
	case int:
		return pb.DataType_Int64, int64(v)
	case int8:
		return pb.DataType_Int64, int64(v)
	case int16:
		return pb.DataType_Int64, int64(v)
	case int32:
		return pb.DataType_Int64, int64(v)
	case uint:
		return pb.DataType_UInt64, uint64(v)
	case uint8:
		return pb.DataType_UInt64, uint64(v)
	case uint16:
		return pb.DataType_UInt64, uint64(v)
	case uint32:
		return pb.DataType_UInt64, uint64(v)
	case float32:
		return pb.DataType_Double, float64(v)
	case time.Time:
		return pb.DataType_DateTime, v
	case time.Duration:
		return pb.DataType_Double, v.Seconds()
	default:
		// Arrays and anything unexpected: the JSON text the JSON format sends.
		return pb.DataType_String, string(appendValue(nil, v))
	}
}

// coerce converts a normalized value of datatype vdt to dt if that loses
// nothing a process value needs.
func coerce(v any, vdt, dt pb.DataType) (any, bool) {
	if vdt == dt {
		return v, true
	}
	switch dt {
	case pb.DataType_Double:
		switch v := v.(type) {
		case int64:
			return float64(v), true
		case uint64:
			return float64(v), true
		}
	case pb.DataType_Int64:
		if v, ok := v.(uint64); ok && v <= math.MaxInt64 {
			return int64(v), true
		}
	case pb.DataType_UInt64:
		if v, ok := v.(int64); ok && v >= 0 {
			return uint64(v), true
		}
	}
	return nil, false
}

func isNumeric(dt pb.DataType) bool {
	return dt == pb.DataType_Int64 || dt == pb.DataType_UInt64 || dt == pb.DataType_Double
}

// learn records the readings of m in d's metrics (their last values, for
// births) and reports whether d's birth certificate changed: a new tag or a
// new datatype.
func (sp *sparkplug) learn(d *spDevice, m *buffer.Message) bool {
	changed := false
	for i := range m.Readings {
		r := &m.Readings[i]
		vdt, v := spValue(r.Value)
		mt := d.byTag[r.Tag]
		if mt == nil {
			mt = &spMetric{name: r.Tag, alias: sp.nextAlias, dt: vdt}
			sp.nextAlias++
			if vdt == pb.DataType_Unknown {
				mt.dt, mt.provisional = pb.DataType_Double, true
			}
			d.byTag[r.Tag] = mt
			d.metrics = append(d.metrics, mt)
			changed = true
		} else if vdt != pb.DataType_Unknown {
			switch cv, ok := coerce(v, vdt, mt.dt); {
			case mt.provisional:
				mt.provisional = false
				if mt.dt != vdt {
					mt.dt, changed = vdt, true
				}
			case ok:
				v = cv
			case isNumeric(vdt) && isNumeric(mt.dt):
				mt.dt, changed = pb.DataType_Double, true
				v, _ = coerce(v, vdt, pb.DataType_Double)
			default:
				mt.dt, changed = vdt, true
			}
		}
		mt.value = v
		mt.ts = r.TS
		if mt.ts.IsZero() {
			mt.ts = m.Created
		}
		mt.quality, mt.err = r.Quality, r.Error
		if r.Unit != "" && r.Unit != mt.unit {
			mt.unit, changed = r.Unit, true
		}
	}
	return changed
}

// setValue puts v (normalized, of datatype dt or nil) into metric m.
func setValue(m *pb.Payload_Metric, dt pb.DataType, v any) {
	v, _ = coerce(v, valueType(v), dt)
	switch v := v.(type) {
	case nil:
		m.IsNull = proto.Bool(true)
	case bool:
		m.Value = &pb.Payload_Metric_BooleanValue{BooleanValue: v}
	case int64:
		m.Value = &pb.Payload_Metric_LongValue{LongValue: uint64(v)}
	case uint64:
		m.Value = &pb.Payload_Metric_LongValue{LongValue: v}
	case float64:
		m.Value = &pb.Payload_Metric_DoubleValue{DoubleValue: v}
	case string:
		m.Value = &pb.Payload_Metric_StringValue{StringValue: v}
	case time.Time:
		m.Value = &pb.Payload_Metric_LongValue{LongValue: spMillis(v)}
	}
}

func valueType(v any) pb.DataType {
	dt, _ := spValue(v)
	return dt
}

// qualityCode is the OPC DA quality Ignition reads from the Quality property.
func qualityCode(q buffer.Quality) uint32 {
	switch q {
	case buffer.Good:
		return 192
	case buffer.Uncertain:
		return 64
	default:
		return 0
	}
}

// propertyValue maps an attribute value to a Sparkplug property value.
func propertyValue(v any) *pb.Payload_PropertyValue {
	dt, nv := spValue(v)
	p := &pb.Payload_PropertyValue{Type: proto.Uint32(uint32(dt))}
	switch nv := nv.(type) {
	case nil:
		p.Type = proto.Uint32(uint32(pb.DataType_String))
		p.IsNull = proto.Bool(true)
	case bool:
		p.Value = &pb.Payload_PropertyValue_BooleanValue{BooleanValue: nv}
	case int64:
		p.Value = &pb.Payload_PropertyValue_LongValue{LongValue: uint64(nv)}
	case uint64:
		p.Value = &pb.Payload_PropertyValue_LongValue{LongValue: nv}
	case float64:
		p.Value = &pb.Payload_PropertyValue_DoubleValue{DoubleValue: nv}
	case string:
		p.Value = &pb.Payload_PropertyValue_StringValue{StringValue: nv}
	case time.Time:
		p.Value = &pb.Payload_PropertyValue_LongValue{LongValue: spMillis(nv)}
	}
	return p
}

func stringProperty(s string) *pb.Payload_PropertyValue {
	return &pb.Payload_PropertyValue{Type: proto.Uint32(uint32(pb.DataType_String)),
		Value: &pb.Payload_PropertyValue_StringValue{StringValue: s}}
}

// properties builds a metric's property set: Quality, error when not good,
// then engUnit (births) or the reading's attributes (data).
func properties(q buffer.Quality, errText, unit string, attrs []buffer.Attr) *pb.Payload_PropertySet {
	ps := &pb.Payload_PropertySet{
		Keys: []string{spQualityProperty},
		Values: []*pb.Payload_PropertyValue{{Type: proto.Uint32(uint32(pb.DataType_Int32)),
			Value: &pb.Payload_PropertyValue_IntValue{IntValue: qualityCode(q)}}},
	}
	if q != buffer.Good && errText != "" {
		ps.Keys = append(ps.Keys, spErrorProperty)
		ps.Values = append(ps.Values, stringProperty(errText))
	}
	if unit != "" {
		ps.Keys = append(ps.Keys, spUnitProperty)
		ps.Values = append(ps.Values, stringProperty(unit))
	}
	for _, a := range attrs {
		switch a.Key {
		case spQualityProperty, spErrorProperty, spUnitProperty:
			continue // the fixed properties win, as in the JSON
		}
		ps.Keys = append(ps.Keys, a.Key)
		ps.Values = append(ps.Values, propertyValue(a.Value))
	}
	return ps
}

// marshal encodes p. It cannot fail: the schema is proto2 without required
// fields, and proto2 strings are not checked for UTF-8.
func marshal(p *pb.Payload) []byte {
	b, _ := proto.Marshal(p)
	return b
}

// next returns the seq of the next message of the session.
func (ss *spSession) next() *uint64 {
	s := uint64(ss.seq)
	ss.seq++
	return &s
}

func (sp *sparkplug) bdSeqMetric(ss *spSession, ts uint64) *pb.Payload_Metric {
	return &pb.Payload_Metric{Name: proto.String(spBdSeqMetric), Timestamp: proto.Uint64(ts),
		Datatype: proto.Uint32(uint32(pb.DataType_Int64)), Value: &pb.Payload_Metric_LongValue{LongValue: ss.bdSeq}}
}

// nbirth is the NBIRTH: seq 0, bdSeq, Node Control/Rebirth and the node
// metrics.
func (sp *sparkplug) nbirth(ss *spSession) []byte {
	ss.seq = 0
	now := spMillis(sp.now())
	str := uint32(pb.DataType_String)
	return marshal(&pb.Payload{
		Timestamp: proto.Uint64(now),
		Seq:       ss.next(),
		Metrics: []*pb.Payload_Metric{
			sp.bdSeqMetric(ss, now),
			// No alias: a host must be able to ask for a rebirth by name
			// before it has seen any birth.
			{Name: proto.String(spRebirthMetric), Timestamp: proto.Uint64(now),
				Datatype: proto.Uint32(uint32(pb.DataType_Boolean)), Value: &pb.Payload_Metric_BooleanValue{BooleanValue: false}},
			{Name: proto.String(spVersionMetric), Alias: proto.Uint64(spVersionAlias), Timestamp: proto.Uint64(now),
				Datatype: proto.Uint32(str), Value: &pb.Payload_Metric_StringValue{StringValue: sp.version}},
			{Name: proto.String(spEventMetric), Alias: proto.Uint64(spEventAlias), Timestamp: proto.Uint64(now),
				Datatype: proto.Uint32(str), IsNull: proto.Bool(true)},
		},
	})
}

// ndeath is the NDEATH: bdSeq only, no seq.
func (sp *sparkplug) ndeath(ss *spSession) []byte {
	now := spMillis(sp.now())
	return marshal(&pb.Payload{Timestamp: proto.Uint64(now), Metrics: []*pb.Payload_Metric{sp.bdSeqMetric(ss, now)}})
}

// dbirthPayload is the DBIRTH of d: every metric with name, alias, datatype
// and its last value.
func (sp *sparkplug) dbirthPayload(ss *spSession, d *spDevice) []byte {
	ms := make([]*pb.Payload_Metric, 0, len(d.metrics))
	now := sp.now()
	for _, mt := range d.metrics {
		ts := mt.ts
		if ts.IsZero() {
			ts = now // a configured tag not read yet
		}
		m := &pb.Payload_Metric{Name: proto.String(mt.name), Alias: proto.Uint64(mt.alias),
			Timestamp: proto.Uint64(spMillis(ts)), Datatype: proto.Uint32(uint32(mt.dt)),
			Properties: properties(mt.quality, mt.err, mt.unit, nil)}
		setValue(m, mt.dt, mt.value)
		ms = append(ms, m)
	}
	return marshal(&pb.Payload{Timestamp: proto.Uint64(spMillis(now)), Seq: ss.next(), Metrics: ms})
}

// ddata appends the DDATA of message m to dst: every reading by alias, in
// the datatype of the birth (learn has run on m).
func (sp *sparkplug) ddata(dst []byte, ss *spSession, d *spDevice, m *buffer.Message, historical bool) []byte {
	ms := make([]*pb.Payload_Metric, 0, len(m.Readings))
	for i := range m.Readings {
		r := &m.Readings[i]
		mt := d.byTag[r.Tag]
		ts := r.TS
		if ts.IsZero() {
			ts = m.Created
		}
		pm := &pb.Payload_Metric{Alias: proto.Uint64(mt.alias), Timestamp: proto.Uint64(spMillis(ts)),
			Datatype: proto.Uint32(uint32(mt.dt)), Properties: properties(r.Quality, r.Error, "", r.Attrs)}
		if historical {
			pm.IsHistorical = proto.Bool(true)
		}
		_, v := spValue(r.Value)
		setValue(pm, mt.dt, v)
		ms = append(ms, pm)
	}
	// The same bytes as marshal, appended. It cannot fail either.
	b, _ := proto.MarshalOptions{}.MarshalAppend(dst, &pb.Payload{Timestamp: proto.Uint64(spMillis(m.Created)), Seq: ss.next(), Metrics: ms})
	return b
}

// ddeath is a DDEATH: timestamp and seq.
func (sp *sparkplug) ddeath(ss *spSession) []byte {
	return marshal(&pb.Payload{Timestamp: proto.Uint64(spMillis(sp.now())), Seq: ss.next()})
}

// eventData is the NDATA of an event: Gateway/Event = its JSON.
func (sp *sparkplug) eventData(ss *spSession, e buffer.Event, eventJSON []byte) []byte {
	ts := spMillis(e.TS)
	return marshal(&pb.Payload{Timestamp: proto.Uint64(ts), Seq: ss.next(), Metrics: []*pb.Payload_Metric{{
		Alias: proto.Uint64(spEventAlias), Timestamp: proto.Uint64(ts), Datatype: proto.Uint32(uint32(pb.DataType_String)),
		Value: &pb.Payload_Metric_StringValue{StringValue: string(eventJSON)},
	}}})
}
