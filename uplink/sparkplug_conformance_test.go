package uplink

import (
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"google.golang.org/protobuf/proto"

	"github.com/linegate/linegate/buffer"
	"github.com/linegate/linegate/internal/testkit"
	"github.com/linegate/linegate/testdata/peers"
	pb "github.com/linegate/linegate/uplink/sparkplugb"
)

// The Sparkplug 3.0 edge-node conformance suite: one subtest per assertion
// of the specification that the Eclipse Sparkplug TCK checks for an edge
// node (its tests SessionEstablishment, SessionTermination, SendData,
// ReceiveCommand, PrimaryHost, MultipleBroker), named by the assertion id.
// Each group runs one scenario against real Mosquitto through mqttWire,
// which records what the edge node sends (CONNECT and its will, SUBSCRIBE,
// PUBLISH with QoS and retain, DISCONNECT); every payload and will is also
// decoded by the npm sparkplug-payload package, which must read it as Go
// does. Assertions that cannot apply are skipped with the reason; README.md
// "Conformance" lists them all.

// spAssertion is one assertion of the specification.
type spAssertion struct {
	id    string
	na    string // not applicable: why (the subtest is skipped)
	check func(t *testing.T, r *spRun)
}

// spPub is a Sparkplug PUBLISH of the edge node, decoded.
type spPub struct {
	wirePkt
	typ, group, node, device string
	p                        *pb.Payload
}

// spRun is what a scenario recorded.
type spRun struct {
	pkts     []wirePkt
	pubs     []spPub
	connects []wirePkt     // by connection number
	wills    []*pb.Payload // decoded will of each connection
	marks    map[string]time.Time
	logs     *syncBuffer
	overlap  bool
}

const (
	spPrefix  = "spBv1.0/" + spGroup + "/"
	spHostID  = "scada-01"
	spState   = "spBv1.0/STATE/" + spHostID
	spDCMDTop = spPrefix + "DCMD/" + spNode + "/"
)

// spTestDevices is the configured tag list: pressure and the oven's tags
// are never read before the first birth.
var spTestDevices = []SparkplugDevice{
	{Name: "press01", Tags: []SparkplugTag{{Name: "temperature", Unit: "degC"}, {Name: "speed", Unit: "rpm"}, {Name: "pressure", Unit: "bar"}}},
	{Name: "oven02", Tags: []SparkplugTag{{Name: "running", Kind: "bool"}, {Name: "state", Kind: "string"}}},
}

func (r *spRun) mark(name string) {
	r.marks[name] = time.Now()
}

// finish decodes what the wire recorded, with Go and with sparkplug-payload.
func (r *spRun) finish(t *testing.T, rec *wireLog) {
	t.Helper()
	// The uplink has stopped; its last packets (NDEATH, DISCONNECT) may
	// still be on their way through the proxy.
	testkit.WaitFor(t, long, "every connection ended on the wire", func() bool {
		rec.mu.Lock()
		defer rec.mu.Unlock()
		for _, n := range rec.open {
			if n > 0 {
				return false
			}
		}
		return true
	})
	r.pkts = rec.packets()
	rec.mu.Lock()
	r.overlap = rec.overlap
	rec.mu.Unlock()
	var raw [][]byte
	var goP []*pb.Payload
	for _, p := range r.pkts {
		switch p.typ {
		case 1:
			for len(r.connects) <= p.conn {
				r.connects = append(r.connects, wirePkt{})
				r.wills = append(r.wills, nil)
			}
			r.connects[p.conn] = p
			w := &pb.Payload{}
			if err := proto.Unmarshal(p.willPayload, w); err != nil {
				t.Fatalf("connection %d: will payload: %v", p.conn, err)
			}
			r.wills[p.conn] = w
			raw, goP = append(raw, p.willPayload), append(goP, w)
		case 3:
			parts := strings.Split(p.topic, "/")
			if len(parts) < 4 || parts[0] != "spBv1.0" || parts[1] == "STATE" {
				continue
			}
			sp := spPub{wirePkt: p, group: parts[1], typ: parts[2], node: parts[3], p: &pb.Payload{}}
			if len(parts) == 5 {
				sp.device = parts[4]
			}
			if err := proto.Unmarshal(p.payload, sp.p); err != nil {
				t.Fatalf("%s: %v", p.topic, err)
			}
			r.pubs = append(r.pubs, sp)
			raw, goP = append(raw, p.payload), append(goP, sp.p)
		}
	}
	js := peers.SparkplugDecode(t, raw)
	for i := range raw {
		compareNPM(t, fmt.Sprintf("payload %d", i), goP[i], js[i])
	}
}

// of returns the publishes of one message type.
func (r *spRun) of(typ string) []spPub {
	var out []spPub
	for _, p := range r.pubs {
		if p.typ == typ {
			out = append(out, p)
		}
	}
	return out
}

func (r *spRun) need(t *testing.T, typ string) []spPub {
	t.Helper()
	ps := r.of(typ)
	if len(ps) == 0 {
		t.Fatalf("the scenario recorded no %s", typ)
	}
	return ps
}

// connPubs is the Sparkplug publishes of connection c, in wire order.
func (r *spRun) connPubs(c int) []spPub {
	var out []spPub
	for _, p := range r.pubs {
		if p.conn == c {
			out = append(out, p)
		}
	}
	return out
}

func bdSeqOf(p *pb.Payload) (uint64, bool) {
	m := spMetricByName(p, spBdSeqMetric)
	if m == nil || pb.DataType(m.GetDatatype()) != pb.DataType_Int64 {
		return 0, false
	}
	return m.GetLongValue(), true
}

// The generic checks, each shared by the assertions that say the same.

func checkQoS(typ string, qos byte) func(*testing.T, *spRun) {
	return func(t *testing.T, r *spRun) {
		for _, p := range r.need(t, typ) {
			if p.qos != qos {
				t.Errorf("%s on %s: QoS %d, want %d", typ, p.topic, p.qos, qos)
			}
		}
	}
}

func checkNotRetained(typ string) func(*testing.T, *spRun) {
	return func(t *testing.T, r *spRun) {
		for _, p := range r.need(t, typ) {
			if p.retain {
				t.Errorf("%s on %s is retained", typ, p.topic)
			}
		}
	}
}

func checkMQTT(typ string) func(*testing.T, *spRun) {
	return both(checkQoS(typ, 0), checkNotRetained(typ))
}

func both(fs ...func(*testing.T, *spRun)) func(*testing.T, *spRun) {
	return func(t *testing.T, r *spRun) {
		for _, f := range fs {
			f(t, r)
		}
	}
}

// checkSeq: every message but NDEATH has a seq 0..255, one above the
// previous message's on the connection (255 → 0), NBIRTH 0.
func checkSeq(typ string) func(*testing.T, *spRun) {
	return func(t *testing.T, r *spRun) {
		r.need(t, typ)
		for c := range r.connects {
			var prev uint64
			started := false
			for _, p := range r.connPubs(c) {
				if p.typ == "NDEATH" {
					continue
				}
				if p.p.Seq == nil {
					t.Fatalf("%s on connection %d has no seq", p.typ, c)
				}
				s := p.p.GetSeq()
				switch {
				case s > 255:
					t.Fatalf("%s seq %d > 255", p.typ, s)
				case p.typ == "NBIRTH":
					if s != 0 {
						t.Errorf("NBIRTH seq %d, want 0", s)
					}
				case !started:
					t.Fatalf("%s before the NBIRTH of connection %d", p.typ, c)
				case p.typ == typ && s != (prev+1)%256:
					t.Errorf("%s seq %d after %d", typ, s, prev)
				}
				prev, started = s, true
			}
		}
	}
}

// checkTimestamp: the payload has a timestamp, ms since the epoch (UTC);
// births and deaths carry their publish time.
func checkTimestamp(typ string) func(*testing.T, *spRun) {
	return func(t *testing.T, r *spRun) {
		for _, p := range r.need(t, typ) {
			if p.p.Timestamp == nil {
				t.Fatalf("%s on %s: no timestamp", typ, p.topic)
			}
			ts := time.UnixMilli(int64(p.p.GetTimestamp()))
			lo, hi := p.at.Add(-time.Minute), p.at.Add(time.Minute)
			if typ == "DDATA" || typ == "NDATA" {
				lo = p.at.Add(-2 * time.Hour) // the message's creation: history is older
			}
			if ts.Before(lo) || ts.After(hi) {
				t.Errorf("%s timestamp %v, published %v", typ, ts.UTC(), p.at.UTC())
			}
		}
	}
}

func checkTopic(typ string, device bool) func(*testing.T, *spRun) {
	return func(t *testing.T, r *spRun) {
		for _, p := range r.need(t, typ) {
			want := spPrefix + typ + "/" + spNode
			if device {
				want += "/" + p.device
				if p.device == "" || !knownDevice(p.device) {
					t.Errorf("%s: no configured device in %s", typ, p.topic)
				}
			}
			if p.topic != want {
				t.Errorf("%s topic %s, want %s", typ, p.topic, want)
			}
		}
	}
}

func knownDevice(name string) bool {
	for _, d := range spTestDevices {
		if d.Name == name {
			return true
		}
	}
	return false
}

// checkDecodes: sparkplug-payload decoded every payload as Go (finish did
// that); here, that there were some.
func checkDecodes(typ string) func(*testing.T, *spRun) {
	return func(t *testing.T, r *spRun) { r.need(t, typ) }
}

// checkBirthValues: every birth metric has a value, or is_null and none.
func checkBirthValues(typ string) func(*testing.T, *spRun) {
	return func(t *testing.T, r *spRun) {
		for _, p := range r.need(t, typ) {
			for _, m := range p.p.Metrics {
				switch {
				case m.GetIsNull() && m.Value != nil:
					t.Errorf("%s %s: is_null with a value", typ, m.GetName())
				case !m.GetIsNull() && m.Value == nil:
					t.Errorf("%s %s: neither a value nor is_null", typ, m.GetName())
				}
			}
		}
	}
}

// checkBirthMetrics: name, datatype and a value (or is_null) on each.
func checkBirthMetrics(typ string) func(*testing.T, *spRun) {
	return func(t *testing.T, r *spRun) {
		checkBirthValues(typ)(t, r)
		for _, p := range r.need(t, typ) {
			for _, m := range p.p.Metrics {
				if m.Name == nil || m.Datatype == nil {
					t.Errorf("%s metric without name or datatype: %v", typ, m)
				}
			}
		}
	}
}

func checkBirthDatatypes(t *testing.T, r *spRun) {
	for _, typ := range []string{"NBIRTH", "DBIRTH"} {
		for _, p := range r.need(t, typ) {
			for _, m := range p.p.Metrics {
				if m.Datatype == nil || pb.DataType(m.GetDatatype()) == pb.DataType_Unknown {
					t.Errorf("%s metric %s: no datatype", typ, m.GetName())
				}
			}
		}
	}
}

// checkMetricTimestamps: every metric of births and data has a timestamp.
func checkMetricTimestamps(t *testing.T, r *spRun) {
	for _, typ := range []string{"NBIRTH", "DBIRTH", "NDATA", "DDATA"} {
		for _, p := range r.need(t, typ) {
			for _, m := range p.p.Metrics {
				if m.Timestamp == nil {
					t.Errorf("%s metric %s (alias %d): no timestamp", typ, m.GetName(), m.GetAlias())
				}
			}
		}
	}
}

// checkNBIRTHBdSeq: the NBIRTH's bdSeq (Int64) is the will's of its CONNECT.
func checkNBIRTHBdSeq(t *testing.T, r *spRun) {
	for _, p := range r.need(t, "NBIRTH") {
		got, ok := bdSeqOf(p.p)
		if !ok {
			t.Fatalf("NBIRTH on connection %d: no Int64 bdSeq", p.conn)
		}
		want, _ := bdSeqOf(r.wills[p.conn])
		if got != want {
			t.Errorf("NBIRTH on connection %d: bdSeq %d, will %d", p.conn, got, want)
		}
	}
}

// checkWillBdSeq: each CONNECT's will has bdSeq one above the last one's.
func checkWillBdSeq(t *testing.T, r *spRun) {
	for c, w := range r.wills {
		got, ok := bdSeqOf(w)
		if !ok {
			t.Fatalf("will of connection %d: no Int64 bdSeq", c)
		}
		if c > 0 {
			prev, _ := bdSeqOf(r.wills[c-1])
			if got != (prev+1)%256 {
				t.Errorf("will of connection %d: bdSeq %d after %d", c, got, prev)
			}
		}
	}
	if len(r.wills) < 3 {
		t.Fatalf("want a reconnect and a restart: %d connections", len(r.wills))
	}
}

func checkWill(t *testing.T, r *spRun) {
	for c, p := range r.connects {
		if !p.will {
			t.Errorf("CONNECT %d has no will", c)
		}
	}
}

func checkWillTopic(t *testing.T, r *spRun) {
	for c, p := range r.connects {
		if p.willTopic != spNDEATH {
			t.Errorf("CONNECT %d: will topic %q", c, p.willTopic)
		}
	}
}

func checkWillQoS(t *testing.T, r *spRun) {
	for c, p := range r.connects {
		if p.willQoS != 1 {
			t.Errorf("CONNECT %d: will QoS %d", c, p.willQoS)
		}
	}
}

func checkWillRetain(t *testing.T, r *spRun) {
	for c, p := range r.connects {
		if p.willRetain {
			t.Errorf("CONNECT %d: will retained", c)
		}
	}
}

// checkWillPayload: the will decodes (finish) to bdSeq and nothing else.
func checkWillPayload(t *testing.T, r *spRun) {
	for c, w := range r.wills {
		if len(w.Metrics) != 1 || w.Metrics[0].GetName() != spBdSeqMetric {
			t.Errorf("will %d: metrics %v, want bdSeq only", c, w.Metrics)
		}
	}
}

// checkNDEATHPayload: only bdSeq, no seq, the bdSeq of the session.
func checkNDEATHPayload(t *testing.T, r *spRun) {
	checkWillPayload(t, r)
	for _, p := range r.of("NDEATH") {
		if len(p.p.Metrics) != 1 || p.p.Metrics[0].GetName() != spBdSeqMetric {
			t.Errorf("NDEATH: metrics %v, want bdSeq only", p.p.Metrics)
		}
	}
}

func checkNDEATHNoSeq(t *testing.T, r *spRun) {
	for c, w := range r.wills {
		if w.Seq != nil {
			t.Errorf("will %d has a seq", c)
		}
	}
	for _, p := range r.of("NDEATH") {
		if p.p.Seq != nil {
			t.Errorf("NDEATH on connection %d has a seq", p.conn)
		}
	}
}

func checkNDEATHBdSeq(t *testing.T, r *spRun) {
	for _, p := range r.of("NDEATH") {
		got, _ := bdSeqOf(p.p)
		want, _ := bdSeqOf(r.wills[p.conn])
		if got != want {
			t.Errorf("NDEATH on connection %d: bdSeq %d, will and NBIRTH %d", p.conn, got, want)
		}
	}
	checkNBIRTHBdSeq(t, r)
}

// checkSubscribed: on every connection that births, filter was subscribed
// with QoS 1 before the first NBIRTH.
func checkSubscribed(filter func(spPub) string) func(*testing.T, *spRun) {
	return func(t *testing.T, r *spRun) {
		for _, b := range r.need(t, "DBIRTH") {
			want := filter(b)
			if want == "" {
				continue
			}
			found := false
			for _, p := range r.pkts {
				if p.conn != b.conn || p.typ != 8 {
					continue
				}
				if !p.at.After(b.at) || p.at.Equal(b.at) {
					for _, s := range p.subs {
						if s.filter == want {
							found = true
							if s.qos != 1 {
								t.Errorf("%s subscribed with QoS %d", want, s.qos)
							}
						}
					}
				}
			}
			if !found {
				t.Errorf("connection %d: %s not subscribed before %s", b.conn, want, b.topic)
			}
		}
	}
}

func checkNCMDSubscribed(t *testing.T, r *spRun) {
	checkSubscribedBefore(t, r, spNCMD, "NBIRTH")
}

// checkSubscribedBefore: topic subscribed (QoS 1) on each connection
// before its first message of type typ.
func checkSubscribedBefore(t *testing.T, r *spRun, topic, typ string) {
	t.Helper()
	for c := range r.connects {
		first := -1
		for i, p := range r.pkts {
			if p.conn == c && p.typ == 3 && strings.HasPrefix(p.topic, spPrefix+typ+"/") {
				first = i
				break
			}
		}
		if first < 0 {
			continue
		}
		found := false
		for _, p := range r.pkts[:first] {
			if p.conn != c || p.typ != 8 {
				continue
			}
			for _, s := range p.subs {
				if s.filter == topic {
					found = true
					if s.qos != 1 {
						t.Errorf("connection %d: %s subscribed with QoS %d, want 1", c, topic, s.qos)
					}
				}
			}
		}
		if !found {
			t.Errorf("connection %d: %s not subscribed before its %s", c, topic, typ)
		}
	}
}

// checkRebirthMetric: Node Control/Rebirth, Boolean false, no alias.
func checkRebirthMetric(what string) func(*testing.T, *spRun) {
	return func(t *testing.T, r *spRun) {
		for _, p := range r.need(t, "NBIRTH") {
			m := spMetricByName(p.p, spRebirthMetric)
			switch {
			case m == nil:
				t.Fatalf("NBIRTH without %s", spRebirthMetric)
			case what == "datatype" && pb.DataType(m.GetDatatype()) != pb.DataType_Boolean:
				t.Errorf("%s datatype %v", spRebirthMetric, pb.DataType(m.GetDatatype()))
			case what == "value" && (m.GetIsNull() || m.GetBooleanValue()):
				t.Errorf("%s value %v, want false", spRebirthMetric, m.Value)
			case what == "alias" && m.Alias != nil:
				t.Errorf("%s has alias %d", spRebirthMetric, m.GetAlias())
			}
		}
	}
}

// checkAliasNames: a birth metric with an alias has a name.
func checkAliasNames(t *testing.T, r *spRun) {
	for _, typ := range []string{"NBIRTH", "DBIRTH"} {
		for _, p := range r.need(t, typ) {
			for _, m := range p.p.Metrics {
				if m.Alias != nil && m.Name == nil {
					t.Errorf("%s: alias %d without a name", typ, m.GetAlias())
				}
				if typ == "DBIRTH" && m.Alias == nil {
					t.Errorf("DBIRTH %s: no alias", m.GetName())
				}
			}
		}
	}
}

// checkAliasUnique: within each birth sequence, an alias names one metric
// of the node; across sequences, the same one.
func checkAliasUnique(t *testing.T, r *spRun) {
	names := map[uint64]string{}
	for _, typ := range []string{"NBIRTH", "DBIRTH"} {
		for _, p := range r.need(t, typ) {
			for _, m := range p.p.Metrics {
				if m.Alias == nil {
					continue
				}
				key := p.device + "/" + m.GetName()
				if prev, ok := names[m.GetAlias()]; ok && prev != key {
					t.Errorf("alias %d names %s and %s", m.GetAlias(), prev, key)
				}
				names[m.GetAlias()] = key
			}
		}
	}
}

// checkBirthOrder: on each connection, after an NBIRTH come the DBIRTHs of
// every configured device alive, before any NDATA or DDATA.
func checkBirthOrder(t *testing.T, r *spRun) {
	for c := range r.connects {
		ps := r.connPubs(c)
		for i, p := range ps {
			if p.typ != "NBIRTH" {
				continue
			}
			born := map[string]bool{}
			for _, q := range ps[i+1:] {
				if q.typ != "DBIRTH" {
					break
				}
				born[q.device] = true
			}
			for _, q := range ps[i+1:] {
				if q.typ == "NBIRTH" {
					break
				}
				if (q.typ == "DDATA" || q.typ == "DDEATH") && !born[q.device] && !laterBirth(ps[i+1:], q) {
					t.Errorf("connection %d: %s of %s before its DBIRTH", c, q.typ, q.device)
				}
			}
			if len(born) == 0 {
				t.Errorf("connection %d: no DBIRTH right after the NBIRTH", c)
			}
		}
	}
}

// laterBirth reports whether q's device had a DBIRTH before q in ps (a
// device born after the initial sequence: device_up, a new tag).
func laterBirth(ps []spPub, q spPub) bool {
	for _, p := range ps {
		if p.at.Equal(q.at) && p.topic == q.topic {
			return false
		}
		if p.typ == "DBIRTH" && p.device == q.device {
			return true
		}
	}
	return false
}

// checkDataOrder: a DDATA (or NDATA) only after the NBIRTH and, for DDATA,
// its device's DBIRTH of the same birth sequence.
func checkDataOrder(typ string) func(*testing.T, *spRun) {
	return func(t *testing.T, r *spRun) {
		r.need(t, typ)
		for c := range r.connects {
			nbirth := false
			born := map[string]bool{}
			for _, p := range r.connPubs(c) {
				switch p.typ {
				case "NBIRTH":
					nbirth, born = true, map[string]bool{}
				case "DBIRTH":
					born[p.device] = true
				case "DDEATH":
					born[p.device] = false
				case typ:
					if !nbirth || (typ == "DDATA" && !born[p.device]) {
						t.Errorf("connection %d: %s on %s before its births", c, typ, p.topic)
					}
				}
			}
		}
	}
}

// checkFirstPublishIsNBIRTH: births are the first messages published.
func checkFirstPublishIsNBIRTH(t *testing.T, r *spRun) {
	for c := range r.connects {
		for _, p := range r.pkts {
			if p.conn == c && p.typ == 3 {
				if !strings.HasPrefix(p.topic, spPrefix+"NBIRTH/") {
					t.Errorf("connection %d: first publish on %s", c, p.topic)
				}
				break
			}
		}
	}
}

func checkCleanSession(t *testing.T, r *spRun) {
	for c, p := range r.connects {
		if p.protoLevel != 4 || !p.clean {
			t.Errorf("CONNECT %d: protocol level %d, clean session %v; want 4 (3.1.1), true", c, p.protoLevel, p.clean)
		}
	}
}

func checkDBIRTHBeforeNBIRTH(t *testing.T, r *spRun) {
	checkDataOrder("DBIRTH")(t, r)
}

func checkDBIRTHMatchesNode(t *testing.T, r *spRun) {
	nb := r.need(t, "NBIRTH")[0]
	for _, p := range r.need(t, "DBIRTH") {
		if p.group != nb.group || p.node != nb.node {
			t.Errorf("DBIRTH %s/%s, NBIRTH %s/%s", p.group, p.node, nb.group, nb.node)
		}
	}
}

// checkCaseSensitivity: no two metric names of one device (or the node)
// that are equal in lower case.
func checkCaseSensitivity(t *testing.T, r *spRun) {
	for _, typ := range []string{"NBIRTH", "DBIRTH"} {
		for _, p := range r.need(t, typ) {
			seen := map[string]string{}
			for _, m := range p.p.Metrics {
				k := strings.ToLower(m.GetName())
				if prev, ok := seen[k]; ok {
					t.Errorf("%s %s: %q and %q", typ, p.device, prev, m.GetName())
				}
				seen[k] = m.GetName()
			}
		}
	}
}

// checkDataAliases: DDATA carries metrics of its device's birth, by alias.
func checkDataAliases(t *testing.T, r *spRun) {
	for c := range r.connects {
		born := map[string]map[uint64]bool{}
		for _, p := range r.connPubs(c) {
			switch p.typ {
			case "DBIRTH":
				b := map[uint64]bool{}
				for _, m := range p.p.Metrics {
					b[m.GetAlias()] = true
				}
				born[p.device] = b
			case "DDATA":
				if len(p.p.Metrics) == 0 {
					t.Errorf("DDATA of %s without metrics", p.device)
				}
				for _, m := range p.p.Metrics {
					if !born[p.device][m.GetAlias()] {
						t.Errorf("DDATA of %s: alias %d not in its DBIRTH", p.device, m.GetAlias())
					}
				}
			}
		}
	}
}

func checkNDATAPayload(t *testing.T, r *spRun) {
	for _, p := range r.need(t, "NDATA") {
		for _, m := range p.p.Metrics {
			if m.GetAlias() != spEventAlias || m.GetStringValue() == "" {
				t.Errorf("NDATA metric %v: want Gateway/Event (alias %d) with its event", m, spEventAlias)
			}
		}
	}
}

const (
	naTemplates = "linegate publishes no templates"
	naMQTT5     = "linegate speaks MQTT 3.1.1 only"
	naHost      = "an assertion on host applications"
)

// spSessionSuite is the TCK's SessionEstablishmentTest and
// SessionTerminationTest, SendDataTest and ReceiveCommandTest, on one
// scenario: a backlog and an event at start, live data, a rebirth asked by
// NCMD, a device_down, a dropped connection (the will), a clean stop and a
// restart.
var spSessionSuite = map[string][]spAssertion{
	"SessionEstablishment": {
		{id: "tck-id-case-sensitivity-metric-names", check: checkCaseSensitivity},
		{id: "tck-id-message-flow-device-birth-publish-dbirth-match-edge-node-topic", check: checkDBIRTHMatchesNode},
		{id: "tck-id-message-flow-device-birth-publish-dbirth-payload", check: checkDecodes("DBIRTH")},
		{id: "tck-id-message-flow-device-birth-publish-dbirth-qos", check: checkQoS("DBIRTH", 0)},
		{id: "tck-id-message-flow-device-birth-publish-dbirth-retained", check: checkNotRetained("DBIRTH")},
		{id: "tck-id-message-flow-device-birth-publish-dbirth-topic", check: checkTopic("DBIRTH", true)},
		{id: "tck-id-message-flow-device-birth-publish-nbirth-wait", check: checkDBIRTHBeforeNBIRTH},
		{id: "tck-id-message-flow-device-dcmd-subscribe", check: checkSubscribed(func(b spPub) string { return spDCMDTop + b.device })},
		{id: "tck-id-message-flow-edge-node-birth-publish-connect", check: checkFirstPublishIsNBIRTH},
		{id: "tck-id-message-flow-edge-node-birth-publish-nbirth-payload", check: checkDecodes("NBIRTH")},
		{id: "tck-id-message-flow-edge-node-birth-publish-nbirth-payload-bdSeq", check: checkNBIRTHBdSeq},
		{id: "tck-id-message-flow-edge-node-birth-publish-nbirth-payload-seq", check: checkSeq("NBIRTH")},
		{id: "tck-id-message-flow-edge-node-birth-publish-nbirth-qos", check: checkQoS("NBIRTH", 0)},
		{id: "tck-id-message-flow-edge-node-birth-publish-nbirth-retained", check: checkNotRetained("NBIRTH")},
		{id: "tck-id-message-flow-edge-node-birth-publish-nbirth-topic", check: checkTopic("NBIRTH", false)},
		{id: "tck-id-message-flow-edge-node-birth-publish-will-message", check: checkWill},
		{id: "tck-id-message-flow-edge-node-birth-publish-will-message-payload", check: checkWillPayload},
		{id: "tck-id-message-flow-edge-node-birth-publish-will-message-payload-bdSeq", check: checkWillBdSeq},
		{id: "tck-id-message-flow-edge-node-birth-publish-will-message-qos", check: checkWillQoS},
		{id: "tck-id-message-flow-edge-node-birth-publish-will-message-topic", check: checkWillTopic},
		{id: "tck-id-message-flow-edge-node-birth-publish-will-message-will-retained", check: checkWillRetain},
		{id: "tck-id-message-flow-edge-node-ncmd-subscribe", check: checkNCMDSubscribed},
		{id: "tck-id-operational-behavior-data-commands-rebirth-datatype", check: checkRebirthMetric("datatype")},
		{id: "tck-id-operational-behavior-data-commands-rebirth-name", check: checkRebirthMetric("name")},
		{id: "tck-id-operational-behavior-data-commands-rebirth-name-aliases", check: checkRebirthMetric("alias")},
		{id: "tck-id-operational-behavior-data-commands-rebirth-value", check: checkRebirthMetric("value")},
		{id: "tck-id-operational-behavior-data-publish-dbirth-values", check: checkBirthValues("DBIRTH")},
		{id: "tck-id-operational-behavior-data-publish-nbirth-values", check: checkBirthValues("NBIRTH")},
		{id: "tck-id-payloads-alias-birth-requirement", check: checkAliasNames},
		{id: "tck-id-payloads-alias-uniqueness", check: checkAliasUnique},
		{id: "tck-id-payloads-dbirth-order", check: checkBirthOrder},
		{id: "tck-id-payloads-dbirth-qos", check: checkQoS("DBIRTH", 0)},
		{id: "tck-id-payloads-dbirth-retain", check: checkNotRetained("DBIRTH")},
		{id: "tck-id-payloads-dbirth-seq", check: checkSeq("DBIRTH")},
		{id: "tck-id-payloads-dbirth-seq-inc", check: checkSeq("DBIRTH")},
		{id: "tck-id-payloads-dbirth-timestamp", check: checkTimestamp("DBIRTH")},
		{id: "tck-id-payloads-ddata-order", check: checkDataOrder("DDATA")},
		{id: "tck-id-payloads-metric-datatype-req", check: checkBirthDatatypes},
		{id: "tck-id-payloads-name-birth-data-requirement", check: checkMetricTimestamps},
		{id: "tck-id-payloads-nbirth-bdseq", check: checkNBIRTHBdSeq},
		{id: "tck-id-payloads-nbirth-bdseq-repeat", check: checkNBIRTHBdSeq},
		{id: "tck-id-payloads-nbirth-qos", check: checkQoS("NBIRTH", 0)},
		{id: "tck-id-payloads-nbirth-rebirth-req", check: both(checkRebirthMetric("datatype"), checkRebirthMetric("value"))},
		{id: "tck-id-payloads-nbirth-retain", check: checkNotRetained("NBIRTH")},
		{id: "tck-id-payloads-nbirth-seq", check: checkSeq("NBIRTH")},
		{id: "tck-id-payloads-nbirth-timestamp", check: checkTimestamp("NBIRTH")},
		{id: "tck-id-payloads-ndata-order", check: checkDataOrder("NDATA")},
		{id: "tck-id-payloads-ndeath-bdseq", check: checkNDEATHBdSeq},
		{id: "tck-id-payloads-ndeath-seq", check: checkNDEATHNoSeq},
		{id: "tck-id-payloads-ndeath-will-message", check: both(checkWill, checkWillTopic)},
		{id: "tck-id-payloads-ndeath-will-message-qos", check: checkWillQoS},
		{id: "tck-id-payloads-ndeath-will-message-retain", check: checkWillRetain},
		{id: "tck-id-payloads-sequence-num-req-nbirth", check: checkSeq("NBIRTH")},
		{id: "tck-id-principles-birth-certificates-order", check: checkFirstPublishIsNBIRTH},
		{id: "tck-id-principles-persistence-clean-session-311", check: checkCleanSession},
		{id: "tck-id-principles-persistence-clean-session-50", na: naMQTT5},
		{id: "tck-id-topics-dbirth-metrics", check: checkBirthMetrics("DBIRTH")},
		{id: "tck-id-topics-dbirth-mqtt", check: checkMQTT("DBIRTH")},
		{id: "tck-id-topics-dbirth-seq", check: checkSeq("DBIRTH")},
		{id: "tck-id-topics-dbirth-timestamp", check: checkTimestamp("DBIRTH")},
		{id: "tck-id-topics-dbirth-topic", check: checkTopic("DBIRTH", true)},
		{id: "tck-id-topics-nbirth-bdseq-included", check: checkNBIRTHBdSeq},
		{id: "tck-id-topics-nbirth-bdseq-matching", check: checkNBIRTHBdSeq},
		{id: "tck-id-topics-nbirth-metrics", check: checkBirthMetrics("NBIRTH")},
		{id: "tck-id-topics-nbirth-mqtt", check: checkMQTT("NBIRTH")},
		{id: "tck-id-topics-nbirth-rebirth-metric", check: both(checkRebirthMetric("datatype"), checkRebirthMetric("value"))},
		{id: "tck-id-topics-nbirth-seq-num", check: checkSeq("NBIRTH")},
		{id: "tck-id-topics-nbirth-timestamp", check: checkTimestamp("NBIRTH")},
		{id: "tck-id-topics-nbirth-topic", check: checkTopic("NBIRTH", false)},
		{id: "tck-id-topics-ndeath-payload", check: checkNDEATHPayload},
		{id: "tck-id-topics-ndeath-seq", check: checkNDEATHNoSeq},
	},
	"SessionTermination": {
		{id: "tck-id-message-flow-edge-node-birth-publish-will-message-topic", check: checkWillTopic},
		{id: "tck-id-operational-behavior-device-ddeath", check: checkDDEATHOnDeviceDown},
		{id: "tck-id-operational-behavior-edge-node-intentional-disconnect-ndeath", check: checkNDEATHBeforeDisconnect},
		{id: "tck-id-operational-behavior-edge-node-intentional-disconnect-packet", check: checkNDEATHBeforeDisconnect},
		{id: "tck-id-payloads-ddeath-seq", check: checkSeq("DDEATH")},
		{id: "tck-id-payloads-ddeath-seq-inc", check: checkSeq("DDEATH")},
		{id: "tck-id-payloads-ddeath-seq-number", check: checkSeq("DDEATH")},
		{id: "tck-id-payloads-ddeath-timestamp", check: checkTimestamp("DDEATH")},
		{id: "tck-id-payloads-ndeath-will-message-publisher", check: checkNDEATHBeforeDisconnect},
		{id: "tck-id-payloads-ndeath-will-message-publisher-disconnect-mqtt311", check: checkNDEATHBeforeDisconnect},
		{id: "tck-id-payloads-ndeath-will-message-publisher-disconnect-mqtt50", na: naMQTT5},
		{id: "tck-id-topics-ddeath-mqtt", check: checkMQTT("DDEATH")},
		{id: "tck-id-topics-ddeath-seq-num", check: checkSeq("DDEATH")},
		{id: "tck-id-topics-ddeath-topic", check: checkTopic("DDEATH", true)},
		{id: "tck-id-topics-ndeath-topic", check: both(checkWillTopic, checkTopic("NDEATH", false))},
	},
	"SendData": {
		{id: "tck-id-payloads-ddata-qos", check: checkQoS("DDATA", 0)},
		{id: "tck-id-payloads-ddata-retain", check: checkNotRetained("DDATA")},
		{id: "tck-id-payloads-ddata-seq", check: checkSeq("DDATA")},
		{id: "tck-id-payloads-ddata-timestamp", check: checkTimestamp("DDATA")},
		{id: "tck-id-payloads-metric-timestamp-in-UTC", check: checkMetricTimestampsUTC},
		{id: "tck-id-payloads-ndata-qos", check: checkQoS("NDATA", 0)},
		{id: "tck-id-payloads-ndata-retain", check: checkNotRetained("NDATA")},
		{id: "tck-id-payloads-ndata-seq", check: checkSeq("NDATA")},
		{id: "tck-id-payloads-ndata-timestamp", check: checkTimestamp("NDATA")},
		{id: "tck-id-payloads-template-definition-members", na: naTemplates},
		{id: "tck-id-payloads-template-definition-nbirth", na: naTemplates},
		{id: "tck-id-payloads-template-definition-nbirth-only", na: naTemplates},
		{id: "tck-id-payloads-template-definition-parameters", na: naTemplates},
		{id: "tck-id-payloads-template-definition-parameters-default", na: naTemplates},
		{id: "tck-id-payloads-template-definition-ref", na: naTemplates},
		{id: "tck-id-payloads-template-instance-members", na: naTemplates},
		{id: "tck-id-payloads-template-instance-members-birth", na: naTemplates},
		{id: "tck-id-payloads-template-instance-members-data", na: naTemplates},
		{id: "tck-id-payloads-template-instance-parameters", na: naTemplates},
		{id: "tck-id-payloads-template-instance-ref", na: naTemplates},
		{id: "tck-id-topics-ddata-mqtt", check: checkMQTT("DDATA")},
		{id: "tck-id-topics-ddata-payload", check: checkDataAliases},
		{id: "tck-id-topics-ddata-seq-num", check: checkSeq("DDATA")},
		{id: "tck-id-topics-ddata-timestamp", check: checkTimestamp("DDATA")},
		{id: "tck-id-topics-ddata-topic", check: checkTopic("DDATA", true)},
		{id: "tck-id-topics-ndata-mqtt", check: checkMQTT("NDATA")},
		{id: "tck-id-topics-ndata-payload", check: checkNDATAPayload},
		{id: "tck-id-topics-ndata-seq-num", check: checkSeq("NDATA")},
		{id: "tck-id-topics-ndata-timestamp", check: checkTimestamp("NDATA")},
		{id: "tck-id-topics-ndata-topic", check: checkTopic("NDATA", false)},
	},
	"ReceiveCommand": {
		{id: "tck-id-operational-behavior-data-commands-rebirth-action-1", check: checkRebirthStopsData},
		{id: "tck-id-operational-behavior-data-commands-rebirth-action-2", check: checkRebirthSequence},
		{id: "tck-id-operational-behavior-data-commands-rebirth-action-3", check: checkNBIRTHBdSeq},
		{id: "tck-id-payloads-ndeath-will-message", check: both(checkWill, checkWillTopic)},
	},
}

func checkDDEATHOnDeviceDown(t *testing.T, r *spRun) {
	ds := r.need(t, "DDEATH")
	if ds[0].device != "press01" || ds[0].at.Before(r.marks["device_down"]) {
		t.Errorf("DDEATH of %s at %v, device_down of press01 at %v", ds[0].device, ds[0].at, r.marks["device_down"])
	}
}

// checkNDEATHBeforeDisconnect: every DISCONNECT right after an NDEATH.
func checkNDEATHBeforeDisconnect(t *testing.T, r *spRun) {
	n := 0
	for i, p := range r.pkts {
		if p.typ != 14 {
			continue
		}
		n++
		var prev *wirePkt
		for j := i - 1; j >= 0; j-- {
			if r.pkts[j].conn == p.conn && r.pkts[j].typ == 3 {
				prev = &r.pkts[j]
				break
			}
		}
		if prev == nil || prev.topic != spNDEATH {
			t.Errorf("connection %d: DISCONNECT not right after an NDEATH", p.conn)
		}
	}
	if n == 0 {
		t.Fatal("no DISCONNECT recorded")
	}
}

// checkMetricTimestampsUTC: metric timestamps are the readings' times, in
// ms since the epoch (which is UTC by definition).
func checkMetricTimestampsUTC(t *testing.T, r *spRun) {
	want := map[uint64]bool{}
	for _, ts := range []string{"past", "live"} {
		want[uint64(r.marks[ts].UnixMilli())] = true
	}
	for _, p := range r.need(t, "DDATA") {
		for _, m := range p.p.Metrics {
			if !want[m.GetTimestamp()] {
				t.Errorf("DDATA metric timestamp %d: not a reading's time in UTC ms", m.GetTimestamp())
			}
		}
	}
}

// checkRebirthStopsData: after the NCMD, the first message is the NBIRTH.
func checkRebirthStopsData(t *testing.T, r *spRun) {
	for _, p := range r.pubs {
		if p.at.After(r.marks["ncmd"]) {
			if p.typ != "NBIRTH" {
				t.Errorf("first message after the rebirth request: %s", p.topic)
			}
			return
		}
	}
	t.Fatal("nothing after the rebirth request")
}

// checkRebirthSequence: the rebirth's NBIRTH, then every device's DBIRTH.
func checkRebirthSequence(t *testing.T, r *spRun) {
	var after []string
	for _, p := range r.pubs {
		if p.at.After(r.marks["ncmd"]) {
			after = append(after, p.typ+"/"+p.device)
		}
	}
	if len(after) < 3 || strings.Join(after[:3], " ") != "NBIRTH/ DBIRTH/press01 DBIRTH/oven02" {
		t.Errorf("after the rebirth request: %v", after)
	}
}

func runSuite(t *testing.T, r *spRun, suite map[string][]spAssertion, order []string) {
	for _, group := range order {
		t.Run(group, func(t *testing.T) {
			for _, a := range suite[group] {
				t.Run(a.id, func(t *testing.T) {
					if a.na != "" {
						t.Skip("not applicable: " + a.na)
					}
					a.check(t, r)
				})
			}
		})
	}
}

// spHostCount waits until the host subscriber has n messages of typ (with
// device, if given).
func spHostCount(t *testing.T, host *subscriber, what string, n int) {
	t.Helper()
	testkit.WaitFor(t, long, fmt.Sprintf("%d %s", n, what), func() bool {
		return strings.Count(" "+spTypes(spReceived(t, host))+" ", " "+what) >= n
	})
}

func TestSparkplugConformanceSession(t *testing.T) {
	peers.Interop(t)
	m := peers.StartMosquitto(t, peers.MosquittoOptions{})
	rec := newWireLog()
	w := startWire(t, "m1", m.Addr, rec)
	host := subscribe(t, m.URL, spPrefix+"#")
	r := &spRun{marks: map[string]time.Time{}}

	src := newMemSource()
	past := time.Now().UTC().Add(-time.Hour).Truncate(time.Millisecond)
	r.marks["past"] = past
	for i := range 2 {
		src.add(buffer.Message{Created: past, Equipment: "press01", Class: "process", Readings: []buffer.Reading{
			{Tag: "temperature", Value: 20.5 + float64(i), Unit: "degC", TS: past},
			{Tag: "speed", Quality: buffer.Bad, Error: "i/o timeout", Unit: "rpm", TS: past},
		}})
	}
	src.addEvent(buffer.Event{Type: "config_reloaded", TS: past})
	cfg := spConfig(w.url())
	cfg.QoS = 0
	cfg.Devices = spTestDevices
	cfg.BdSeqFile = filepath.Join(t.TempDir(), "buffer.db.sparkplug-bdseq")
	run := startUplink(t, cfg, src)
	spHostCount(t, host, "DDATA/press01", 2)
	spHostCount(t, host, "NDATA", 1)

	live := time.Now().UTC().Truncate(time.Millisecond)
	r.marks["live"] = live
	src.add(buffer.Message{Created: live, Equipment: "oven02", Class: "equipment", Readings: []buffer.Reading{
		{Tag: "running", Value: true, TS: live}, {Tag: "state", Value: "heating", TS: live}}})
	spHostCount(t, host, "DDATA/oven02", 1)

	r.mark("ncmd")
	spCommand(t, host, rebirthCmd(true, 0, true))
	spHostCount(t, host, "NBIRTH", 2)
	spHostCount(t, host, "DBIRTH/oven02", 2)

	r.mark("device_down")
	src.addEvent(buffer.Event{Type: "device_down", TS: live, Attrs: []buffer.Attr{{Key: "device", Value: "press01"}}})
	spHostCount(t, host, "DDEATH/press01", 1)

	w.cut() // the broker publishes the will
	spHostCount(t, host, "NDEATH", 1)
	spHostCount(t, host, "NBIRTH", 3)
	run.stop(t)
	spHostCount(t, host, "NDEATH", 2)

	// A restart: the bdSeq goes on from the file.
	run = startUplink(t, cfg, src)
	spHostCount(t, host, "NBIRTH", 4)
	run.stop(t)
	spHostCount(t, host, "NDEATH", 3)

	r.finish(t, rec)
	runSuite(t, r, spSessionSuite, []string{"SessionEstablishment", "SessionTermination", "SendData", "ReceiveCommand"})

	t.Run("configured tags born before their first read", func(t *testing.T) {
		checkDeclaredBirth(t, r.need(t, "DBIRTH"))
	})
}

// checkDeclaredBirth: the first DBIRTH of each device lists all its
// configured tags; one never read is null and bad, with its unit.
func checkDeclaredBirth(t *testing.T, births []spPub) {
	first := map[string]*pb.Payload{}
	for _, b := range births {
		if first[b.device] == nil {
			first[b.device] = b.p
		}
	}
	for _, d := range spTestDevices {
		p := first[d.Name]
		if p == nil {
			t.Fatalf("no DBIRTH of %s", d.Name)
		}
		for _, tag := range d.Tags {
			m := spMetricByName(p, tag.Name)
			if m == nil {
				t.Errorf("DBIRTH of %s lacks %s", d.Name, tag.Name)
				continue
			}
			if d.Name == "press01" && tag.Name == "pressure" || d.Name == "oven02" {
				q := spProperty(m, spQualityProperty)
				if !m.GetIsNull() || q == nil || q.GetIntValue() != 0 {
					t.Errorf("%s/%s never read: is_null %v, Quality %v; want null, 0 (bad)", d.Name, tag.Name, m.GetIsNull(), q)
				}
			}
			if tag.Unit != "" && spProperty(m, spUnitProperty).GetStringValue() != tag.Unit {
				t.Errorf("%s/%s: engUnit %v, want %s", d.Name, tag.Name, spProperty(m, spUnitProperty), tag.Unit)
			}
		}
		if d.Name == "oven02" {
			if dt := pb.DataType(spMetricByName(p, "running").GetDatatype()); dt != pb.DataType_Boolean {
				t.Errorf("oven02/running (kind bool) born %v", dt)
			}
		}
	}
}

// spHostApp publishes STATE as a Sparkplug host application would.
type spHostApp struct {
	t *testing.T
	c mqtt.Client
}

func newHostApp(t *testing.T, brokerURL string) *spHostApp {
	t.Helper()
	return &spHostApp{t: t, c: subscribe(t, brokerURL).c}
}

func (h *spHostApp) state(topic, payload string) {
	h.t.Helper()
	if tok := h.c.Publish(topic, 1, true, payload); !tok.WaitTimeout(long) || tok.Error() != nil {
		h.t.Fatalf("publish STATE: %v", tok.Error())
	}
}

func stateJSON(online bool, ts int64) string {
	return fmt.Sprintf(`{"online":%v,"timestamp":%d}`, online, ts)
}

// logLines counts lines of the uplink's log holding s.
func logLines(b *syncBuffer, s string) int { return strings.Count(b.String(), s) }

var spHostSuite = map[string][]spAssertion{
	"PrimaryHost": {
		{id: "tck-id-message-flow-edge-node-birth-publish-phid-offline", check: checkHostOfflineNDEATH},
		{id: "tck-id-message-flow-edge-node-birth-publish-phid-wait", check: checkBirthAfter("online1", "online2")},
		{id: "tck-id-message-flow-edge-node-birth-publish-phid-wait-id", check: checkBirthAfter("online1")},
		{id: "tck-id-message-flow-edge-node-birth-publish-phid-wait-online", check: checkBirthAfter("online1", "online2")},
		{id: "tck-id-message-flow-edge-node-birth-publish-phid-wait-timestamp", check: checkBirthAfter("online1")},
		{id: "tck-id-operational-behavior-edge-node-termination-host-offline", check: checkHostOfflineNDEATH},
		{id: "tck-id-operational-behavior-edge-node-termination-host-offline-reconnect", check: checkHostOfflineReconnect},
		{id: "tck-id-operational-behavior-edge-node-termination-host-offline-timestamp", check: checkOldOfflineIgnored},
	},
}

// checkBirthAfter: the NBIRTH of connection i comes after marks[i]: the
// STATE that made the host online, not any STATE before it.
func checkBirthAfter(marks ...string) func(*testing.T, *spRun) {
	return func(t *testing.T, r *spRun) {
		checkSubscribedBefore(t, r, spState, "NBIRTH")
		for i, mk := range marks {
			var nb *spPub
			for _, p := range r.connPubs(i) {
				if p.typ == "NBIRTH" {
					nb = &p
					break
				}
			}
			if nb == nil {
				t.Fatalf("connection %d: no NBIRTH", i)
			}
			if nb.at.Before(r.marks[mk]) {
				t.Errorf("connection %d: NBIRTH at %v, before the online STATE (%s) at %v", i, nb.at, mk, r.marks[mk])
			}
		}
	}
}

// checkHostOfflineNDEATH: the offline STATE ends connection 0 with an
// NDEATH and a DISCONNECT.
func checkHostOfflineNDEATH(t *testing.T, r *spRun) {
	var tail []string
	for _, p := range r.pkts {
		if p.conn == 0 && p.at.After(r.marks["offline"]) {
			switch p.typ {
			case 3:
				tail = append(tail, p.topic[strings.LastIndexByte(p.topic[:strings.LastIndexByte(p.topic, '/')], '/')+1:])
			case 14:
				tail = append(tail, "DISCONNECT")
			}
		}
	}
	if strings.Join(tail, " ") != "NDEATH/"+spNode+" DISCONNECT" {
		t.Errorf("connection 0 after the offline STATE: %v; want its NDEATH, DISCONNECT", tail)
	}
}

func checkHostOfflineReconnect(t *testing.T, r *spRun) {
	if len(r.connects) < 2 || r.connects[1].at.Before(r.marks["offline"]) {
		t.Fatalf("no new CONNECT after the offline STATE (%d connections)", len(r.connects))
	}
}

// checkOldOfflineIgnored: after the older offline STATE connection 0 went
// on publishing data.
func checkOldOfflineIgnored(t *testing.T, r *spRun) {
	for _, p := range r.connPubs(0) {
		if p.typ == "DDATA" && p.at.After(r.marks["old_offline"]) {
			return
		}
	}
	t.Error("no DDATA on connection 0 after the older offline STATE")
}

func TestSparkplugConformancePrimaryHost(t *testing.T) {
	peers.Interop(t)
	m := peers.StartMosquitto(t, peers.MosquittoOptions{})
	rec := newWireLog()
	w := startWire(t, "m1", m.Addr, rec)
	host := subscribe(t, m.URL, spPrefix+"#")
	app := newHostApp(t, m.URL)
	r := &spRun{marks: map[string]time.Time{}, logs: &syncBuffer{}}

	src := newMemSource()
	past := time.Now().UTC().Add(-time.Hour).Truncate(time.Millisecond)
	src.add(buffer.Message{Created: past, Equipment: "press01", Class: "process",
		Readings: []buffer.Reading{{Tag: "temperature", Value: 20.5, Unit: "degC", TS: past}}})
	cfg := spConfig(w.url())
	cfg.QoS = 0
	cfg.Devices = spTestDevices
	cfg.PrimaryHost = spHostID
	cfg.Logger = newTextLogger(r.logs)

	app.state(spState, stateJSON(false, 200))
	run := startUplink(t, cfg, src)
	testkit.WaitFor(t, long, "waiting for the host", func() bool { return logLines(r.logs, "waiting for the primary host") == 1 })
	if v := testutil.ToFloat64(run.u.sp.hostUp); v != 0 {
		t.Errorf("primary host online gauge %v while it is offline", v)
	}
	app.state(spState, stateJSON(true, 100))                  // older: ignored
	app.state("spBv1.0/STATE/scada-02", stateJSON(true, 300)) // another host
	app.state(spState, `{"online":true}`)                     // no timestamp: ignored
	testkit.WaitFor(t, long, "the older and the malformed STATE ignored", func() bool {
		return logLines(r.logs, "STATE older than the last one ignored") == 1 && logLines(r.logs, "STATE of the primary host ignored") == 1
	})
	src.add(buffer.Message{Created: time.Now().UTC(), Equipment: "press01", Class: "process",
		Readings: []buffer.Reading{{Tag: "temperature", Value: 21.5, Unit: "degC", TS: time.Now().UTC()}}})
	r.mark("online1")
	app.state(spState, stateJSON(true, 300))
	spHostCount(t, host, "DDATA/press01", 2)
	if v := testutil.ToFloat64(run.u.sp.hostUp); v != 1 {
		t.Errorf("primary host online gauge %v while it is online", v)
	}
	for _, mm := range spReceived(t, host) {
		if mm.typ == "DDATA" && !mm.p.Metrics[0].GetIsHistorical() {
			t.Errorf("%v: buffered while the host was away, not historical", mm)
		}
	}

	r.mark("old_offline")
	app.state(spState, stateJSON(false, 250)) // older than the online one: ignored
	testkit.WaitFor(t, long, "the older offline STATE ignored", func() bool {
		return logLines(r.logs, "STATE older than the last one ignored") == 2
	})
	src.addN(1)
	spHostCount(t, host, "DDATA/press01", 3)

	r.mark("offline")
	app.state(spState, stateJSON(false, 300))
	spHostCount(t, host, "NDEATH", 1)
	testkit.WaitFor(t, long, "waiting for the host again", func() bool { return logLines(r.logs, "waiting for the primary host") == 2 })
	src.addN(3) // buffered: the host is away
	testkit.WaitFor(t, long, "the new connection's STATE subscription", func() bool {
		for _, p := range rec.packets() {
			if p.conn == 1 && p.typ == 8 && len(p.subs) == 1 && p.subs[0].filter == spState {
				return true
			}
		}
		return false
	})
	r.mark("online2")
	app.state(spState, stateJSON(true, 400))
	spHostCount(t, host, "NBIRTH", 2)
	spHostCount(t, host, "DDATA/press01", 6)
	run.stop(t)
	// The stop's NDEATH (the second) reaches the host after stop returns.
	spHostCount(t, host, "NDEATH", 2)

	// The backlog after the host's return: historical, after the births.
	msgs := spReceived(t, host)
	if got := spTypes(msgs[len(msgs)-7:]); got != "NBIRTH DBIRTH/press01 DBIRTH/oven02 DDATA/press01 DDATA/press01 DDATA/press01 NDEATH" {
		t.Errorf("after the host came back: %s", got)
	}
	for _, mm := range msgs[len(msgs)-4 : len(msgs)-1] {
		if mm.typ != "DDATA" || !mm.p.Metrics[0].GetIsHistorical() {
			t.Errorf("backlog after the host came back: %v, want historical DDATA", mm)
		}
	}
	r.finish(t, rec)
	runSuite(t, r, spHostSuite, []string{"PrimaryHost"})
}

var spBrokersSuite = map[string][]spAssertion{
	"MultipleBroker": {
		{id: "tck-id-operational-behavior-edge-node-birth-sequence-wait", check: checkNoBirthWhileOffline},
		{id: "tck-id-operational-behavior-primary-application-state-with-multiple-servers-single-server", check: checkSingleServer},
		{id: "tck-id-operational-behavior-primary-application-state-with-multiple-servers-state-subs", check: checkStateSubscribedEverywhere},
		{id: "tck-id-operational-behavior-primary-application-state-with-multiple-servers-walk", check: checkWalk},
	},
}

// checkNoBirthWhileOffline: no NBIRTH on m1 before the host came online
// there again ("m1_online"), and none on m2 after it went offline there.
func checkNoBirthWhileOffline(t *testing.T, r *spRun) {
	for _, p := range r.need(t, "NBIRTH") {
		switch {
		case p.proxy == "m1" && p.at.After(r.marks["m1_offline"]) && p.at.Before(r.marks["m1_online"]):
			t.Errorf("NBIRTH on m1 while its STATE was offline")
		case p.proxy == "m2" && p.at.After(r.marks["m2_offline"]):
			t.Errorf("NBIRTH on m2 after its STATE went offline")
		}
	}
}

func checkSingleServer(t *testing.T, r *spRun) {
	if r.overlap {
		t.Error("a CONNECT to one broker while connected to the other")
	}
}

func checkStateSubscribedEverywhere(t *testing.T, r *spRun) {
	checkSubscribedBefore(t, r, spState, "NBIRTH")
	for c, p := range r.connects {
		found := false
		for _, q := range r.pkts {
			if q.conn == c && q.typ == 8 && len(q.subs) == 1 && q.subs[0].filter == spState {
				found = true
			}
		}
		if !found {
			t.Errorf("connection %d (%s): STATE not subscribed", c, p.proxy)
		}
	}
}

// checkWalk: after m1's offline STATE the next CONNECT went to m2, and
// after m2's to m1.
func checkWalk(t *testing.T, r *spRun) {
	next := func(mark string) string {
		for _, p := range r.connects {
			if p.at.After(r.marks[mark]) {
				return p.proxy
			}
		}
		return ""
	}
	if got := next("m1_offline"); got != "m2" {
		t.Errorf("after m1's offline STATE: connected to %q, want m2", got)
	}
	if got := next("m2_offline"); got != "m1" {
		t.Errorf("after m2's offline STATE: connected to %q, want m1", got)
	}
}

func TestSparkplugConformanceMultipleBrokers(t *testing.T) {
	peers.Interop(t)
	m1 := peers.StartMosquitto(t, peers.MosquittoOptions{})
	m2 := peers.StartMosquitto(t, peers.MosquittoOptions{})
	rec := newWireLog()
	w1 := startWire(t, "m1", m1.Addr, rec)
	w2 := startWire(t, "m2", m2.Addr, rec)
	h1, h2 := subscribe(t, m1.URL, spPrefix+"#"), subscribe(t, m2.URL, spPrefix+"#")
	a1, a2 := newHostApp(t, m1.URL), newHostApp(t, m2.URL)
	r := &spRun{marks: map[string]time.Time{}, logs: &syncBuffer{}}
	a1.state(spState, stateJSON(true, 100))
	a2.state(spState, stateJSON(true, 100))

	src := newMemSource()
	cfg := spConfig(w1.url(), w2.url())
	cfg.QoS = 0
	cfg.Devices = spTestDevices
	cfg.PrimaryHost = spHostID
	cfg.Logger = newTextLogger(r.logs)
	run := startUplink(t, cfg, src)
	spHostCount(t, h1, "NBIRTH", 1)

	r.mark("m1_offline")
	a1.state(spState, stateJSON(false, 100))
	spHostCount(t, h1, "NDEATH", 1)
	spHostCount(t, h2, "NBIRTH", 1)
	src.addN(1)
	spHostCount(t, h2, "DDATA/press01", 1)

	r.mark("m2_offline")
	a2.state(spState, stateJSON(false, 100))
	spHostCount(t, h2, "NDEATH", 1)
	// Both offline: the edge node walks between them without a birth.
	testkit.WaitFor(t, long, "a walk over both brokers", func() bool {
		return logLines(r.logs, "primary host offline on") >= 2
	})
	r.mark("m1_online")
	a1.state(spState, stateJSON(true, 200))
	spHostCount(t, h1, "NBIRTH", 2)
	run.stop(t)
	r.finish(t, rec)
	runSuite(t, r, spBrokersSuite, []string{"MultipleBroker"})
}

// TestSparkplugConformanceREADME: uplink/README.md lists every assertion
// of the suite.
func TestSparkplugConformanceREADME(t *testing.T) {
	b, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []map[string][]spAssertion{spSessionSuite, spHostSuite, spBrokersSuite} {
		for _, as := range s {
			for _, a := range as {
				if !strings.Contains(string(b), "`"+a.id+"`") {
					t.Errorf("README.md does not list %s", a.id)
				}
			}
		}
	}
}

func newTextLogger(b *syncBuffer) *slog.Logger { return slog.New(slog.NewTextHandler(b, nil)) }
