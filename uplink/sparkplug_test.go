package uplink

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/linegate/linegate/internal/testkit"

	mqtt "github.com/eclipse/paho.mqtt.golang"
	"google.golang.org/protobuf/proto"

	"github.com/linegate/linegate/buffer"
	pb "github.com/linegate/linegate/uplink/sparkplugb"
)

const (
	spGroup    = "plant-a_line1"
	spNode     = "line1-pc"
	spFilter   = "spBv1.0/" + spGroup + "/#"
	spNCMD     = "spBv1.0/" + spGroup + "/NCMD/" + spNode
	spNDEATH   = "spBv1.0/" + spGroup + "/NDEATH/" + spNode
	spNBIRTH   = "spBv1.0/" + spGroup + "/NBIRTH/" + spNode
	spPressTop = "spBv1.0/" + spGroup + "/DDATA/" + spNode + "/press01"
)

func spConfig(brokers ...string) Config {
	cfg := testConfig(brokers...)
	cfg.Format = FormatSparkplugB
	return cfg
}

// spMsg is a Sparkplug message as a host received it.
type spMsg struct {
	typ, device string
	p           *pb.Payload
}

func (m spMsg) String() string {
	if m.p.Seq == nil {
		return m.typ + "/" + m.device
	}
	return fmt.Sprintf("%s/%s#%d", m.typ, m.device, m.p.GetSeq())
}

// spReceived decodes what sub received under spBv1.0/<group>/.
func spReceived(t *testing.T, sub *subscriber) []spMsg {
	t.Helper()
	var out []spMsg
	for _, r := range sub.received() {
		parts := strings.Split(r.topic, "/")
		if len(parts) < 4 || parts[0] != "spBv1.0" || parts[2] == "NCMD" {
			continue
		}
		m := spMsg{typ: parts[2], p: &pb.Payload{}}
		if len(parts) == 5 {
			m.device = parts[4]
		}
		if err := proto.Unmarshal([]byte(r.payload), m.p); err != nil {
			t.Fatalf("%s: %v", r.topic, err)
		}
		out = append(out, m)
	}
	return out
}

// spHost checks what a Sparkplug host application checks, in receive
// order: NBIRTH first with seq 0, then seq +1 mod 256 on every message,
// a device's DBIRTH before its DDATA and none after its DDEATH, aliases
// of DDATA bound by the birth, NDEATH with the bdSeq of the NBIRTH.
type spHost struct {
	t       *testing.T
	online  bool
	bdSeq   uint64
	seq     uint64
	born    map[string]map[uint64]*pb.Payload_Metric // device → alias → birth metric
	aliases map[uint64]string                        // alias → device/name, across the node
	// counts
	nbirths, dbirths, ddata, ddeaths, ndeaths, ndata, historical int
	values                                                       []*pb.Payload_Metric // DDATA metrics, in order
}

func newSpHost(t *testing.T) *spHost {
	return &spHost{t: t, born: map[string]map[uint64]*pb.Payload_Metric{}, aliases: map[uint64]string{}}
}

func (h *spHost) check(msgs []spMsg) {
	t := h.t
	t.Helper()
	for i, m := range msgs {
		at := fmt.Sprintf("message %d (%v)", i, m)
		if m.typ == "NDEATH" {
			if m.p.Seq != nil {
				t.Errorf("%s: NDEATH has a seq", at)
			}
			if bd := spMetricByName(m.p, "bdSeq"); bd == nil || bd.GetLongValue() != h.bdSeq {
				t.Errorf("%s: NDEATH bdSeq %v, want %d (of the NBIRTH)", at, bd, h.bdSeq)
			}
			h.online = false
			h.ndeaths++
			continue
		}
		if m.p.Seq == nil {
			t.Fatalf("%s: no seq", at)
		}
		if m.typ == "NBIRTH" {
			if m.p.GetSeq() != 0 {
				t.Errorf("%s: NBIRTH seq %d, want 0", at, m.p.GetSeq())
			}
			bd := spMetricByName(m.p, "bdSeq")
			if bd == nil || spMetricByName(m.p, "Node Control/Rebirth") == nil {
				t.Fatalf("%s: NBIRTH without bdSeq or Node Control/Rebirth", at)
			}
			h.bdSeq, h.seq, h.online = bd.GetLongValue(), 0, true
			h.born = map[string]map[uint64]*pb.Payload_Metric{}
			h.nbirths++
			continue
		}
		if !h.online {
			t.Fatalf("%s: before any NBIRTH (or after the NDEATH)", at)
		}
		if want := (h.seq + 1) % 256; m.p.GetSeq() != want {
			t.Fatalf("%s: seq %d, want %d", at, m.p.GetSeq(), want)
		}
		h.seq = m.p.GetSeq()
		switch m.typ {
		case "DBIRTH":
			b := map[uint64]*pb.Payload_Metric{}
			for _, mt := range m.p.Metrics {
				if mt.Name == nil || mt.Alias == nil || mt.Datatype == nil {
					t.Fatalf("%s: birth metric without name, alias or datatype: %v", at, mt)
				}
				key := m.device + "/" + mt.GetName()
				if prev, ok := h.aliases[mt.GetAlias()]; ok && prev != key {
					t.Fatalf("%s: alias %d of %s already names %s", at, mt.GetAlias(), key, prev)
				}
				h.aliases[mt.GetAlias()] = key
				b[mt.GetAlias()] = mt
			}
			h.born[m.device] = b
			h.dbirths++
		case "DDATA":
			b := h.born[m.device]
			if b == nil {
				t.Fatalf("%s: DDATA of a device without DBIRTH", at)
			}
			for _, mt := range m.p.Metrics {
				if mt.Name != nil {
					t.Errorf("%s: DDATA metric has a name", at)
				}
				bm := b[mt.GetAlias()]
				if bm == nil {
					t.Fatalf("%s: alias %d not in the DBIRTH", at, mt.GetAlias())
				}
				if mt.GetDatatype() != bm.GetDatatype() {
					t.Fatalf("%s: alias %d datatype %d, born %d", at, mt.GetAlias(), mt.GetDatatype(), bm.GetDatatype())
				}
				if mt.GetIsHistorical() {
					h.historical++
				}
				h.values = append(h.values, mt)
			}
			h.ddata++
		case "DDEATH":
			delete(h.born, m.device)
			h.ddeaths++
		case "NDATA":
			h.ndata++
		default:
			t.Fatalf("%s: unexpected type", at)
		}
	}
}

// name returns the tag an alias was born as.
func (h *spHost) name(alias uint64) string {
	s := h.aliases[alias]
	return s[strings.LastIndex(s, "/")+1:]
}

func spMetricByName(p *pb.Payload, name string) *pb.Payload_Metric {
	for _, m := range p.Metrics {
		if m.GetName() == name {
			return m
		}
	}
	return nil
}

func spProperty(m *pb.Payload_Metric, key string) *pb.Payload_PropertyValue {
	ps := m.GetProperties()
	for i, k := range ps.GetKeys() {
		if k == key && i < len(ps.GetValues()) {
			return ps.GetValues()[i]
		}
	}
	return nil
}

func spTypes(msgs []spMsg) string {
	var b strings.Builder
	for _, m := range msgs {
		b.WriteString(m.typ)
		if m.device != "" {
			b.WriteString("/" + m.device)
		}
		b.WriteByte(' ')
	}
	return strings.TrimSpace(b.String())
}

// TestSparkplugBirthBeforeDataSeqWrapAliases sends 300 messages of two
// devices (more than one seq cycle) and checks them as a host would.
func TestSparkplugBirthBeforeDataSeqWrapAliases(t *testing.T) {
	b := startBroker(t, "127.0.0.1:0")
	sub := subscribe(t, b.url(), spFilter)
	src := newMemSource()
	now := time.Now().UTC()
	for i := range 150 {
		src.add(buffer.Message{Created: now, Equipment: "press01", Class: "process", Readings: []buffer.Reading{
			{Tag: "temperature", Value: 20 + float64(i), Unit: "degC", TS: now},
			{Tag: "count", Value: int64(i), TS: now},
		}})
		src.add(buffer.Message{Created: now, Equipment: "oven02", Class: "equipment", Readings: []buffer.Reading{
			{Tag: "running", Value: i%2 == 0, TS: now},
			{Tag: "state", Value: "idle", TS: now, Attrs: []buffer.Attr{{Key: "previous", Value: "running"}}},
		}})
	}
	r := startUplink(t, spConfig(b.url()), src)
	waitDrained(t, src)
	testkit.WaitFor(t, long, "300 DDATA", func() bool {
		n := 0
		for _, m := range spReceived(t, sub) {
			if m.typ == "DDATA" {
				n++
			}
		}
		return n == 300
	})
	r.stop(t)
	testkit.WaitFor(t, long, "NDEATH on shutdown", func() bool {
		msgs := spReceived(t, sub)
		return len(msgs) > 0 && msgs[len(msgs)-1].typ == "NDEATH"
	})

	msgs := spReceived(t, sub)
	h := newSpHost(t)
	h.check(msgs)
	if h.nbirths != 1 || h.dbirths != 2 || h.ddata != 300 || h.ndeaths != 1 {
		t.Errorf("nbirth %d dbirth %d ddata %d ndeath %d, want 1 2 300 1", h.nbirths, h.dbirths, h.ddata, h.ndeaths)
	}
	if got := spTypes(msgs[:3]); got != "NBIRTH DBIRTH/press01 DDATA/press01" {
		t.Errorf("first messages %s", got)
	}
	if got := msgs[len(msgs)-2].p.GetSeq(); got != 302%256 {
		t.Errorf("last seq %d, want %d (302 mod 256)", got, 302%256)
	}
	// Node metrics and the DBIRTH datatypes.
	nb := msgs[0].p
	if v := spMetricByName(nb, "Gateway/Version"); v.GetStringValue() != "test" {
		t.Errorf("Gateway/Version = %v", v)
	}
	wantTypes := map[string]pb.DataType{"temperature": pb.DataType_Double, "count": pb.DataType_Int64,
		"running": pb.DataType_Boolean, "state": pb.DataType_String}
	for _, m := range msgs {
		if m.typ != "DBIRTH" {
			continue
		}
		for _, mt := range m.p.Metrics {
			if want := wantTypes[mt.GetName()]; pb.DataType(mt.GetDatatype()) != want {
				t.Errorf("%s datatype %v, want %v", mt.GetName(), pb.DataType(mt.GetDatatype()), want)
			}
			if mt.GetName() == "temperature" {
				if u := spProperty(mt, "engUnit"); u.GetStringValue() != "degC" {
					t.Errorf("temperature engUnit %v", u)
				}
			}
		}
	}
	// Values by alias, in order, with Quality 192 and attributes as properties.
	var temps []float64
	var counts []int64
	for _, mt := range h.values {
		if q := spProperty(mt, "Quality"); q.GetIntValue() != 192 || q.GetType() != uint32(pb.DataType_Int32) {
			t.Fatalf("Quality property %v, want Int32 192", q)
		}
		switch h.name(mt.GetAlias()) {
		case "temperature":
			temps = append(temps, mt.GetDoubleValue())
		case "count":
			counts = append(counts, int64(mt.GetLongValue()))
		case "state":
			if p := spProperty(mt, "previous"); p.GetStringValue() != "running" {
				t.Errorf("state property previous = %v", p)
			}
		}
	}
	if len(temps) != 150 || temps[0] != 20 || temps[149] != 169 || counts[149] != 149 {
		t.Errorf("temperature values %d, first %v last %v; last count %v", len(temps), temps[0], temps[len(temps)-1], counts[len(counts)-1])
	}
	if h.historical != 600 {
		t.Errorf("historical metrics %d, want 600: all 300 messages were buffered before the connection", h.historical)
	}
}

// TestSparkplugLiveQualityAndNewTag: live data is not historical; quality
// is a property (with the error when not good); a new tag re-births the
// device before its DDATA.
func TestSparkplugLiveQualityAndNewTag(t *testing.T) {
	b := startBroker(t, "127.0.0.1:0")
	sub := subscribe(t, b.url(), spFilter)
	src := newMemSource()
	r := startUplink(t, spConfig(b.url()), src)
	r.waitConnected(t)
	testkit.WaitFor(t, long, "NBIRTH", func() bool { return len(spReceived(t, sub)) >= 1 })

	now := time.Now().UTC()
	src.add(buffer.Message{Created: now, Equipment: "press01", Class: "process", Readings: []buffer.Reading{
		{Tag: "temperature", Value: 23.5, TS: now},
		{Tag: "speed", Value: nil, Quality: buffer.Bad, Error: "modbus exception 2 (illegal data address)", TS: now},
		{Tag: "pressure", Value: 1.5, Quality: buffer.Uncertain, TS: now},
	}})
	src.add(buffer.Message{Created: now, Equipment: "press01", Class: "equipment", Readings: []buffer.Reading{
		{Tag: "state", Value: "running", TS: now},
	}})
	waitDrained(t, src)
	testkit.WaitFor(t, long, "2 DDATA", func() bool { return strings.Count(spTypes(spReceived(t, sub)), "DDATA") == 2 })

	msgs := spReceived(t, sub)
	if got := spTypes(msgs); got != "NBIRTH DBIRTH/press01 DDATA/press01 DBIRTH/press01 DDATA/press01" {
		t.Fatalf("messages %s", got)
	}
	h := newSpHost(t)
	h.check(msgs)
	if h.historical != 0 {
		t.Errorf("%d historical metrics in live data", h.historical)
	}
	if n := len(msgs[3].p.Metrics); n != 4 {
		t.Errorf("second DBIRTH has %d metrics, want all 4", n)
	}
	for _, mt := range h.values {
		q, e := spProperty(mt, "Quality").GetIntValue(), spProperty(mt, "error")
		switch h.name(mt.GetAlias()) {
		case "speed":
			if q != 0 || !mt.GetIsNull() || e.GetStringValue() != "modbus exception 2 (illegal data address)" {
				t.Errorf("bad reading: quality %d null %v error %v", q, mt.GetIsNull(), e)
			}
		case "pressure":
			if q != 64 || mt.GetDoubleValue() != 1.5 || e != nil {
				t.Errorf("uncertain reading: quality %d value %v error %v", q, mt.GetDoubleValue(), e)
			}
		default:
			if q != 192 || e != nil {
				t.Errorf("%s: quality %d error %v", h.name(mt.GetAlias()), q, e)
			}
		}
	}
}

// spCommand publishes an NCMD as a host would.
func spCommand(t *testing.T, sub *subscriber, p *pb.Payload) {
	t.Helper()
	b, err := proto.Marshal(p)
	if err != nil {
		t.Fatal(err)
	}
	if tok := sub.c.Publish(spNCMD, 1, false, b); !tok.WaitTimeout(long) || tok.Error() != nil {
		t.Fatalf("publish NCMD: %v", tok.Error())
	}
}

func rebirthCmd(name bool, alias uint64, v bool) *pb.Payload {
	m := &pb.Payload_Metric{Datatype: proto.Uint32(uint32(pb.DataType_Boolean)),
		Value: &pb.Payload_Metric_BooleanValue{BooleanValue: v}}
	if name {
		m.Name = proto.String("Node Control/Rebirth")
	} else {
		m.Alias = proto.Uint64(alias)
	}
	return &pb.Payload{Timestamp: proto.Uint64(1), Metrics: []*pb.Payload_Metric{m}}
}

func TestSparkplugRebirthOnNCMD(t *testing.T) {
	b := startBroker(t, "127.0.0.1:0")
	sub := subscribe(t, b.url(), spFilter)
	src := newMemSource()
	r := startUplink(t, spConfig(b.url()), src)
	src.addN(3)
	waitDrained(t, src)
	testkit.WaitFor(t, long, "3 DDATA", func() bool { return strings.Count(spTypes(spReceived(t, sub)), "DDATA") == 3 })

	// Not a rebirth: garbage, Rebirth=false, another alias. A rebirth by
	// alias (as hosts do once the NBIRTH gave one) last; messages from one
	// client arrive in order, so all earlier ones were handled before it.
	if tok := sub.c.Publish(spNCMD, 1, false, []byte("\xff\xffnot protobuf")); !tok.WaitTimeout(long) {
		t.Fatal("publish garbage")
	}
	spCommand(t, sub, rebirthCmd(true, 0, false))
	spCommand(t, sub, rebirthCmd(false, 7, true))
	spCommand(t, sub, rebirthCmd(false, 1, true))
	testkit.WaitFor(t, long, "second NBIRTH", func() bool { return strings.Count(spTypes(spReceived(t, sub)), "NBIRTH") == 2 })
	testkit.WaitFor(t, long, "DBIRTH after the rebirth", func() bool { return strings.Count(spTypes(spReceived(t, sub)), "DBIRTH") == 2 })
	// By name, then data after it.
	spCommand(t, sub, rebirthCmd(true, 0, true))
	testkit.WaitFor(t, long, "third NBIRTH", func() bool { return strings.Count(spTypes(spReceived(t, sub)), "NBIRTH") == 3 })
	src.addN(2)
	waitDrained(t, src)
	testkit.WaitFor(t, long, "5 DDATA", func() bool { return strings.Count(spTypes(spReceived(t, sub)), "DDATA") == 5 })
	r.stop(t)

	msgs := spReceived(t, sub)
	want := "NBIRTH DBIRTH/press01 DDATA/press01 DDATA/press01 DDATA/press01 NBIRTH DBIRTH/press01 NBIRTH DBIRTH/press01 DDATA/press01 DDATA/press01"
	if got := spTypes(msgs); !strings.HasPrefix(got, want) {
		t.Fatalf("messages\n%s\nwant\n%s", got, want)
	}
	h := newSpHost(t)
	h.check(msgs)
	if h.bdSeq != 0 {
		t.Errorf("bdSeq %d after rebirths on one connection, want 0", h.bdSeq)
	}
}

func TestSparkplugDeviceDownUp(t *testing.T) {
	b := startBroker(t, "127.0.0.1:0")
	sub := subscribe(t, b.url(), spFilter)
	src := newMemSource()
	r := startUplink(t, spConfig(b.url()), src)
	src.addN(1)
	waitDrained(t, src)
	testkit.WaitFor(t, long, "DDATA", func() bool { return strings.Contains(spTypes(spReceived(t, sub)), "DDATA") })

	now := time.Now().UTC()
	src.addEvent(buffer.Event{Type: "device_down", TS: now, Attrs: []buffer.Attr{
		{Key: "device", Value: "press01"}, {Key: "error", Value: "i/o timeout"}}})
	testkit.WaitFor(t, long, "DDEATH", func() bool { return strings.Contains(spTypes(spReceived(t, sub)), "NDATA") })
	// While down: bad readings are acknowledged without a DDATA.
	for range 3 {
		src.add(buffer.Message{Created: now, Equipment: "press01", Class: "process", Readings: []buffer.Reading{
			{Tag: "temperature", Quality: buffer.Bad, Error: "i/o timeout", TS: now}}})
	}
	waitDrained(t, src)
	src.addEvent(buffer.Event{Type: "device_up", TS: now, Attrs: []buffer.Attr{{Key: "device", Value: "press01"}}})
	testkit.WaitFor(t, long, "device_up NDATA", func() bool { return strings.Count(spTypes(spReceived(t, sub)), "NDATA") == 2 })
	src.addN(1)
	waitDrained(t, src)
	testkit.WaitFor(t, long, "DDATA after device_up", func() bool { return strings.Count(spTypes(spReceived(t, sub)), "DDATA") == 2 })
	r.stop(t)
	want := "NBIRTH DBIRTH/press01 DDATA/press01 DDEATH/press01 NDATA DBIRTH/press01 NDATA DDATA/press01 NDEATH"
	testkit.WaitFor(t, long, "NDEATH", func() bool { return strings.HasSuffix(spTypes(spReceived(t, sub)), "NDEATH") })
	msgs := spReceived(t, sub)
	if got := spTypes(msgs); got != want {
		t.Fatalf("messages\n%s\nwant\n%s", got, want)
	}
	h := newSpHost(t)
	h.check(msgs)
	ev := msgs[4].p.Metrics[0]
	if ev.GetAlias() != spEventAlias || !strings.Contains(ev.GetStringValue(), `"event":"device_down"`) ||
		!strings.Contains(ev.GetStringValue(), `"error":"i/o timeout"`) {
		t.Errorf("NDATA event metric %v", ev)
	}
	// The DBIRTH on device_up carries the last value: bad, with the error.
	if mt := spMetricByName(msgs[5].p, "temperature"); !mt.GetIsNull() || spProperty(mt, "Quality").GetIntValue() != 0 {
		t.Errorf("DBIRTH after device_up: %v", mt)
	}
}

func TestSparkplugNDEATHIsTheWill(t *testing.T) {
	b := startBroker(t, "127.0.0.1:0")
	sub := subscribe(t, b.url(), spFilter)
	src := newMemSource()
	r := startUplink(t, spConfig(b.url()), src)
	r.waitConnected(t)
	src.addN(1)
	waitDrained(t, src)
	testkit.WaitFor(t, long, "DDATA", func() bool { return spTypes(spReceived(t, sub)) == "NBIRTH DBIRTH/press01 DDATA/press01" })
	b.kick(testClientID)
	// The new connection births the devices it knows before any data.
	testkit.WaitFor(t, long, "the will, then a new NBIRTH and DBIRTH", func() bool {
		return spTypes(spReceived(t, sub)) == "NBIRTH DBIRTH/press01 DDATA/press01 NDEATH NBIRTH DBIRTH/press01"
	})
	src.addN(1)
	waitDrained(t, src)
	r.stop(t)
	testkit.WaitFor(t, long, "NDEATH on shutdown", func() bool {
		return spTypes(spReceived(t, sub)) == "NBIRTH DBIRTH/press01 DDATA/press01 NDEATH NBIRTH DBIRTH/press01 DDATA/press01 NDEATH"
	})
	msgs := spReceived(t, sub)
	var bd []uint64
	for _, m := range msgs {
		if m.typ == "NBIRTH" || m.typ == "NDEATH" {
			bd = append(bd, spMetricByName(m.p, "bdSeq").GetLongValue())
		}
	}
	if fmt.Sprint(bd) != "[0 0 1 1]" {
		t.Errorf("bdSeq of NBIRTH NDEATH NBIRTH NDEATH = %v, want [0 0 1 1]", bd)
	}
	newSpHost(t).check(msgs)
}

// TestSparkplugLearn checks the metric mapping: datatypes from value kinds,
// conversion into the born datatype, widening with a new birth.
func TestSparkplugLearn(t *testing.T) {
	tm := time.Date(2026, 11, 27, 10, 15, 2, 123e6, time.UTC)
	tests := []struct {
		name    string
		values  []any
		dt      pb.DataType
		changed []bool // per value: a new DBIRTH
		check   func(*pb.Payload_Metric) bool
	}{
		{"bool", []any{true}, pb.DataType_Boolean, []bool{true}, func(m *pb.Payload_Metric) bool { return m.GetBooleanValue() }},
		{"int64", []any{int64(-5)}, pb.DataType_Int64, []bool{true}, func(m *pb.Payload_Metric) bool { return int64(m.GetLongValue()) == -5 }},
		{"uint64", []any{uint64(1 << 63)}, pb.DataType_UInt64, []bool{true}, func(m *pb.Payload_Metric) bool { return m.GetLongValue() == 1<<63 }},
		{"int16 → Int64", []any{int16(7)}, pb.DataType_Int64, []bool{true}, func(m *pb.Payload_Metric) bool { return m.GetLongValue() == 7 }},
		{"string", []any{"run"}, pb.DataType_String, []bool{true}, func(m *pb.Payload_Metric) bool { return m.GetStringValue() == "run" }},
		{"time", []any{tm}, pb.DataType_DateTime, []bool{true}, func(m *pb.Payload_Metric) bool { return m.GetLongValue() == uint64(tm.UnixMilli()) }},
		{"duration", []any{1500 * time.Millisecond}, pb.DataType_Double, []bool{true}, func(m *pb.Payload_Metric) bool { return m.GetDoubleValue() == 1.5 }},
		{"array", []any{[]any{int64(1), 2.5}}, pb.DataType_String, []bool{true}, func(m *pb.Payload_Metric) bool { return m.GetStringValue() == "[1,2.5]" }},
		{"int into double", []any{2.5, int64(3)}, pb.DataType_Double, []bool{true, false}, func(m *pb.Payload_Metric) bool { return m.GetDoubleValue() == 3 }},
		{"double widens int", []any{int64(3), 2.5}, pb.DataType_Double, []bool{true, true}, func(m *pb.Payload_Metric) bool { return m.GetDoubleValue() == 2.5 }},
		{"small uint into int", []any{int64(3), uint64(4)}, pb.DataType_Int64, []bool{true, false}, func(m *pb.Payload_Metric) bool { return m.GetLongValue() == 4 }},
		{"string retypes", []any{int64(3), "x"}, pb.DataType_String, []bool{true, true}, func(m *pb.Payload_Metric) bool { return m.GetStringValue() == "x" }},
		{"null first is provisional", []any{nil, "x"}, pb.DataType_String, []bool{true, true}, func(m *pb.Payload_Metric) bool { return m.GetStringValue() == "x" }},
		{"null keeps type", []any{true, nil}, pb.DataType_Boolean, []bool{true, false}, func(m *pb.Payload_Metric) bool { return m.GetIsNull() && m.Value == nil }},
		{"provisional double", []any{nil, 1.5}, pb.DataType_Double, []bool{true, false}, func(m *pb.Payload_Metric) bool { return m.GetDoubleValue() == 1.5 }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sp, err := newSparkplug(&Config{Format: FormatSparkplugB, GatewayID: "gw", Clock: time.Now})
			if err != nil {
				t.Fatal(err)
			}
			d := sp.device("press01")
			ss := &spSession{born: map[*spDevice]bool{}}
			var last []byte
			for i, v := range tt.values {
				m := &buffer.Message{Created: tm, Equipment: "press01", Readings: []buffer.Reading{{Tag: "x", Value: v, TS: tm}}}
				if got := sp.learn(d, m); got != tt.changed[i] {
					t.Errorf("value %d (%v): changed %v, want %v", i, v, got, tt.changed[i])
				}
				last = sp.ddata(nil, ss, d, m, false)
			}
			var p pb.Payload
			if err := proto.Unmarshal(last, &p); err != nil {
				t.Fatal(err)
			}
			m := p.Metrics[0]
			if pb.DataType(m.GetDatatype()) != tt.dt || d.byTag["x"].dt != tt.dt {
				t.Errorf("datatype %v, want %v", pb.DataType(m.GetDatatype()), tt.dt)
			}
			if !tt.check(m) {
				t.Errorf("value %v", m)
			}
			if m.GetTimestamp() != uint64(tm.UnixMilli()) {
				t.Errorf("timestamp %d", m.GetTimestamp())
			}
		})
	}
}

func TestSparkplugIsRebirth(t *testing.T) {
	enc := func(p *pb.Payload) []byte { b, _ := proto.Marshal(p); return b }
	tests := []struct {
		name    string
		payload []byte
		want    bool
	}{
		{"by name", enc(rebirthCmd(true, 0, true)), true},
		{"by alias", enc(rebirthCmd(false, spRebirthAlias, true)), true},
		{"false", enc(rebirthCmd(true, 0, false)), false},
		{"other alias", enc(rebirthCmd(false, 9, true)), false},
		{"empty", nil, false},
		{"garbage", []byte{0xff, 0xff, 0xff}, false},
		{"other metric", enc(&pb.Payload{Metrics: []*pb.Payload_Metric{{Name: proto.String("Node Control/Reboot"),
			Value: &pb.Payload_Metric_BooleanValue{BooleanValue: true}}}}), false},
	}
	for _, tt := range tests {
		if got := isRebirth(tt.payload); got != tt.want {
			t.Errorf("%s: %v, want %v", tt.name, got, tt.want)
		}
	}
}

func TestSparkplugConfig(t *testing.T) {
	tests := []struct {
		name              string
		site, line, gw    string
		group, node, fmt  string
		wantGroup, wantNd string
		err               string
	}{
		{name: "defaults", site: "plant-a", line: "line1", gw: "line1-pc", wantGroup: "plant-a_line1", wantNd: "line1-pc"},
		{name: "sanitized", site: "a/b", gw: "gw+1", wantGroup: "a_b", wantNd: "gw_1"},
		{name: "nothing", gw: "gw", wantGroup: "linegate", wantNd: "gw"},
		{name: "explicit", gw: "gw", group: "G", node: "N", wantGroup: "G", wantNd: "N"},
		{name: "bad group", gw: "gw", group: "a#", err: `sparkplug group id "a#"`},
		{name: "bad node", gw: "gw", node: "a/b", err: `sparkplug edge node "a/b"`},
		{name: "json with group", gw: "gw", group: "G", fmt: FormatJSON, err: "are for format sparkplugb"},
		{name: "unknown format", gw: "gw", fmt: "xml", err: `format "xml"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := Config{Brokers: []string{"tcp://127.0.0.1:1884"}, GatewayID: tt.gw, Site: tt.site, Line: tt.line,
				Format: tt.fmt, GroupID: tt.group, EdgeNode: tt.node}
			if cfg.Format == "" {
				cfg.Format = FormatSparkplugB
			}
			u, err := New(cfg, newMemSource())
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("error %v, want %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if u.sp.group != tt.wantGroup || u.sp.node != tt.wantNd {
				t.Errorf("group, node = %q, %q; want %q, %q", u.sp.group, u.sp.node, tt.wantGroup, tt.wantNd)
			}
		})
	}
}

var _ mqtt.Token = doneToken{}

// TestSparkplugGoodReadingRevivesDeadDevice: a device_down with no
// device_up after it, then a good reading: the device is born again before
// its DDATA (the DDEATH/DBIRTH rule holds either way).
func TestSparkplugGoodReadingRevivesDeadDevice(t *testing.T) {
	b := startBroker(t, "127.0.0.1:0")
	sub := subscribe(t, b.url(), spFilter)
	src := newMemSource()
	startUplink(t, spConfig(b.url()), src)
	src.addN(1)
	waitDrained(t, src)
	testkit.WaitFor(t, long, "DDATA", func() bool { return strings.Contains(spTypes(spReceived(t, sub)), "DDATA") })
	src.addEvent(buffer.Event{Type: "device_down", TS: time.Now().UTC(), Attrs: []buffer.Attr{{Key: "device", Value: "press01"}}})
	testkit.WaitFor(t, long, "DDEATH", func() bool { return strings.Contains(spTypes(spReceived(t, sub)), "DDEATH") })
	src.addN(1)
	waitDrained(t, src)
	want := "NBIRTH DBIRTH/press01 DDATA/press01 DDEATH/press01 NDATA DBIRTH/press01 DDATA/press01"
	testkit.WaitFor(t, long, want, func() bool { return spTypes(spReceived(t, sub)) == want })
	newSpHost(t).check(spReceived(t, sub))
}

// FuzzSparkplugNCMD: any NCMD payload, as a broker may deliver it from
// anyone allowed to publish there, is answered without a panic.
func FuzzSparkplugNCMD(f *testing.F) {
	for _, p := range []*pb.Payload{rebirthCmd(true, 0, true), rebirthCmd(false, spRebirthAlias, true), {}} {
		b, _ := proto.Marshal(p)
		f.Add(b)
	}
	f.Add([]byte{0x12, 0xff, 0xff, 0xff, 0xff, 0x0f})
	f.Fuzz(func(t *testing.T, payload []byte) {
		isRebirth(payload)
	})
}
