package uplink

import (
	"encoding/json"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/linegate/linegate/buffer"
	"github.com/linegate/linegate/internal/testkit"
	"github.com/linegate/linegate/testdata/peers"
	pb "github.com/linegate/linegate/uplink/sparkplugb"
)

var dcmdDevices = []SparkplugDevice{
	{Name: "press01", Tags: []SparkplugTag{{Name: "setpoint", Kind: "float"}, {Name: "count", Kind: "uint"}, {Name: "offset", Kind: "int"}, {Name: "temperature"}}},
}

func dcmdSparkplug(t *testing.T) *sparkplug {
	t.Helper()
	cfg := spConfig("tcp://127.0.0.1:1")
	cfg.Devices = dcmdDevices
	u, err := New(cfg, newMemSource())
	if err != nil {
		t.Fatal(err)
	}
	return u.sp
}

// TestDecodeDCMD: each metric of a DCMD, by name or by the alias of the
// DBIRTH, becomes a request with an id the same on every delivery and an
// expiry DCMDMaxAge after its timestamp; what cannot run is malformed.
func TestDecodeDCMD(t *testing.T) {
	sp := dcmdSparkplug(t)
	dev := sp.cmd["press01"]
	setpoint := sp.devices["press01"].byTag["setpoint"].alias
	count := sp.devices["press01"].byTag["count"].alias
	now := time.UnixMilli(1_800_000_000_000)
	nowMS := uint64(now.UnixMilli())
	f32 := func(f float32) *pb.Payload_Metric_FloatValue { return &pb.Payload_Metric_FloatValue{FloatValue: f} }
	u32 := uint32(pb.DataType_UInt32)
	i16 := uint32(pb.DataType_Int16)
	tests := []struct {
		name    string
		p       *pb.Payload
		tag     string
		value   any
		id, err string
	}{
		{name: "by name", p: &pb.Payload{Timestamp: &nowMS, Metrics: []*pb.Payload_Metric{{Name: ptr("setpoint"), Value: f32(52.1)}}},
			tag: "setpoint", value: json.Number("52.1"), id: "dcmd:press01/setpoint@1800000000000"},
		{name: "by alias, metric timestamp, seq", p: &pb.Payload{Timestamp: ptr(nowMS - 5), Seq: ptr(uint64(7)), Metrics: []*pb.Payload_Metric{
			{Alias: &setpoint, Timestamp: ptr(nowMS - 1), Value: &pb.Payload_Metric_DoubleValue{DoubleValue: 40}}}},
			tag: "setpoint", value: json.Number("40"), id: "dcmd:press01/setpoint@1799999999999#7"},
		{name: "uint32", p: &pb.Payload{Timestamp: &nowMS, Metrics: []*pb.Payload_Metric{{Alias: &count, Datatype: &u32, Value: &pb.Payload_Metric_IntValue{IntValue: 0xffffffff}}}},
			tag: "count", value: json.Number("4294967295"), id: "dcmd:press01/count@1800000000000"},
		{name: "int16 negative", p: &pb.Payload{Timestamp: &nowMS, Metrics: []*pb.Payload_Metric{{Name: ptr("offset"), Datatype: &i16, Value: &pb.Payload_Metric_IntValue{IntValue: 0xfffffffe}}}},
			tag: "offset", value: json.Number("-2"), id: "dcmd:press01/offset@1800000000000"},
		{name: "unknown alias", p: &pb.Payload{Timestamp: &nowMS, Metrics: []*pb.Payload_Metric{{Alias: ptr(uint64(999)), Value: f32(1)}}},
			tag: "alias 999", err: "alias 999 is not a metric of press01's DBIRTH"},
		{name: "null", p: &pb.Payload{Timestamp: &nowMS, Metrics: []*pb.Payload_Metric{{Name: ptr("setpoint"), IsNull: ptr(true)}}},
			tag: "setpoint", err: "null value"},
		{name: "NaN", p: &pb.Payload{Timestamp: &nowMS, Metrics: []*pb.Payload_Metric{{Name: ptr("setpoint"), Value: &pb.Payload_Metric_DoubleValue{DoubleValue: nan()}}}},
			tag: "setpoint", err: "not a finite number"},
		{name: "no timestamp", p: &pb.Payload{Metrics: []*pb.Payload_Metric{{Name: ptr("setpoint"), Value: f32(1)}}},
			tag: "setpoint", err: "a DCMD needs a timestamp"},
		{name: "from the future", p: &pb.Payload{Timestamp: ptr(nowMS + 60_000), Metrics: []*pb.Payload_Metric{{Name: ptr("setpoint"), Value: f32(1)}}},
			tag: "setpoint", err: "more than 10s ahead of the gateway clock"},
		{name: "no name or alias", p: &pb.Payload{Timestamp: &nowMS, Metrics: []*pb.Payload_Metric{{Value: f32(1)}}},
			err: "without name or alias"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, _ := proto.Marshal(tt.p)
			ws := decodeDCMD(b, dev, "press01", now, 0)
			if len(ws) != 1 {
				t.Fatalf("%d writes, want 1", len(ws))
			}
			w := ws[0]
			if w.req.Tag != tt.tag {
				t.Errorf("tag %q, want %q", w.req.Tag, tt.tag)
			}
			if tt.err != "" {
				if w.err == nil || !strings.Contains(w.err.Error(), tt.err) || !strings.HasPrefix(w.err.Error(), "malformed command: ") {
					t.Fatalf("error %v, want malformed command: ...%s", w.err, tt.err)
				}
				return
			}
			if w.err != nil {
				t.Fatal(w.err)
			}
			if w.req.Value != tt.value || w.req.ID != tt.id {
				t.Errorf("value %#v id %q, want %#v %q", w.req.Value, w.req.ID, tt.value, tt.id)
			}
			ts := time.UnixMilli(int64(nowMS))
			if tt.p.Metrics[0].Timestamp != nil {
				ts = time.UnixMilli(int64(*tt.p.Metrics[0].Timestamp))
			}
			if want := ts.Add(DefaultDCMDMaxAge); !w.req.Expires.Equal(want) {
				t.Errorf("expires %s, want %s", w.req.Expires, want)
			}
		})
	}
	t.Run("not sparkplug", func(t *testing.T) {
		ws := decodeDCMD([]byte{0xff, 0xff}, dev, "press01", now, 0)
		if len(ws) != 1 || ws[0].err == nil || !strings.Contains(ws[0].err.Error(), "not a Sparkplug B payload") {
			t.Fatalf("%+v", ws)
		}
	})
	t.Run("long names hash", func(t *testing.T) {
		id := dcmdID(strings.Repeat("x", 200), "t", 1, nil)
		if len(id) > maxWriteID || id != dcmdID(strings.Repeat("x", 200), "t", 1, nil) {
			t.Fatalf("id %q", id)
		}
	})
}

// dcmdRecorder is a WriteHandler answering each write with result.
type dcmdRecorder struct {
	mu     sync.Mutex
	writes []MetricWrite
	errs   []error
	ok     bool
}

func (h *dcmdRecorder) Handle(string, string, []byte, bool, func([]byte)) {}

func (h *dcmdRecorder) HandleWrite(_, _ string, w MetricWrite, malformed error, _ bool, done func(bool, any)) {
	h.mu.Lock()
	h.writes = append(h.writes, w)
	h.errs = append(h.errs, malformed)
	h.mu.Unlock()
	if malformed == nil && h.ok {
		go done(true, float64(47.5)) // later, from another goroutine, as the collector does
	}
}

func (h *dcmdRecorder) got() ([]MetricWrite, []error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]MetricWrite(nil), h.writes...), append([]error(nil), h.errs...)
}

// TestSparkplugDCMDWrite: a DCMD by alias reaches the command path and
// its ok write is confirmed by a DDATA of the value read back; without a
// WriteHandler a DCMD is refused in the log.
func TestSparkplugDCMDWrite(t *testing.T) {
	peers.Interop(t)
	m := peers.StartMosquitto(t, peers.MosquittoOptions{})
	host := subscribe(t, m.URL, spFilter)
	h := &dcmdRecorder{ok: true}
	cfg := spConfig(m.URL)
	cfg.Devices = dcmdDevices
	cfg.Commands = h
	startUplink(t, cfg, newMemSource())
	spHostCount(t, host, "DBIRTH/press01", 1)
	var alias uint64
	for _, msg := range spReceived(t, host) {
		if msg.typ == "DBIRTH" {
			alias = spMetricByName(msg.p, "setpoint").GetAlias()
		}
	}
	now := uint64(time.Now().UnixMilli())
	b, _ := proto.Marshal(&pb.Payload{Timestamp: &now, Metrics: []*pb.Payload_Metric{{Alias: &alias, Datatype: ptr(uint32(pb.DataType_Float)),
		Value: &pb.Payload_Metric_FloatValue{FloatValue: 47.5}}}})
	if tok := host.c.Publish(spDCMDTop+"press01", 1, false, b); !tok.WaitTimeout(long) || tok.Error() != nil {
		t.Fatal(tok.Error())
	}
	spHostCount(t, host, "DDATA/press01", 1)
	ws, errs := h.got()
	if len(ws) != 1 || errs[0] != nil || ws[0].Tag != "setpoint" || ws[0].Value != json.Number("47.5") {
		t.Fatalf("writes %+v, errors %v", ws, errs)
	}
	for _, msg := range spReceived(t, host) {
		if msg.typ != "DDATA" {
			continue
		}
		mt := msg.p.GetMetrics()
		if len(mt) != 1 || mt[0].GetAlias() != alias || mt[0].GetDoubleValue() != 47.5 || mt[0].GetDatatype() != uint32(pb.DataType_Double) {
			t.Fatalf("DDATA %v, want setpoint (alias %d) = 47.5 as Double", msg.p, alias)
		}
	}
}

func TestSparkplugDCMDCommandsOff(t *testing.T) {
	peers.Interop(t)
	m := peers.StartMosquitto(t, peers.MosquittoOptions{})
	host := subscribe(t, m.URL, spFilter)
	logs := &syncBuffer{}
	cfg := spConfig(m.URL)
	cfg.Devices = spTestDevices
	cfg.Logger = newTextLogger(logs)
	src := newMemSource()
	startUplink(t, cfg, src)
	spHostCount(t, host, "DBIRTH/press01", 1)
	now := uint64(time.Now().UnixMilli())
	b, _ := proto.Marshal(&pb.Payload{Timestamp: &now, Metrics: []*pb.Payload_Metric{{Name: ptr("temperature"), Value: &pb.Payload_Metric_DoubleValue{DoubleValue: 1}}}})
	if tok := host.c.Publish(spDCMDTop+"press01", 1, false, b); !tok.WaitTimeout(long) || tok.Error() != nil {
		t.Fatal(tok.Error())
	}
	testkit.WaitFor(t, long, "the refusal in the log", func() bool {
		return strings.Contains(logs.String(), "DCMD refused: commands are off")
	})
	src.add(buffer.Message{Created: time.Now(), Equipment: "press01", Class: "process",
		Readings: []buffer.Reading{{Tag: "temperature", Value: 1.5, TS: time.Now()}}})
	spHostCount(t, host, "DDATA/press01", 1)
}

func nan() float64 {
	var z float64
	return z / z
}
