package uplink

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/linegate/linegate/internal/testkit"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"

	"github.com/linegate/linegate/buffer"
)

const (
	testClientID = "linegate-line1-pc"
	statusTopic  = "linegate/plant-a/assembly/line1/_gateway/line1-pc/status"
	eventsTopic  = "linegate/plant-a/assembly/line1/_gateway/line1-pc/events"
	dataFilter   = "linegate/plant-a/assembly/line1/+/+"
	long         = 30 * time.Second // deadline for conditions that normally hold in milliseconds
)

func testConfig(brokers ...string) Config {
	return Config{
		Brokers: brokers, GatewayID: "line1-pc", Site: "plant-a", Area: "assembly", Line: "line1",
		Version: "test", QoS: 1, MaxInflight: 64,
		ConnectTimeout: 5 * time.Second, BackoffMin: 10 * time.Millisecond, BackoffMax: 100 * time.Millisecond,
	}
}

// runner runs an Uplink until stop (or the end of the test).
type runner struct {
	u      *Uplink
	cancel context.CancelFunc
	done   chan struct{}
	err    error
}

func startUplink(t *testing.T, cfg Config, src Source) *runner {
	t.Helper()
	u, err := New(cfg, src)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &runner{u: u, cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(r.done)
		r.err = u.Run(ctx)
	}()
	t.Cleanup(func() { r.stop(t) })
	return r
}

// stop cancels Run and waits for it to return.
func (r *runner) stop(t *testing.T) {
	t.Helper()
	r.cancel()
	select {
	case <-r.done:
	case <-time.After(long):
		t.Fatal("Run did not return after cancel")
	}
	if r.err != nil {
		t.Errorf("Run returned %v", r.err)
	}
}

func (r *runner) waitConnected(t *testing.T) {
	t.Helper()
	testkit.WaitFor(t, long, "uplink connected", func() bool { return r.u.Status().Connected })
}

func waitDrained(t *testing.T, src *memSource) {
	t.Helper()
	testkit.WaitFor(t, long, "buffer drained", func() bool {
		m, e := src.pending()
		return m == 0 && e == 0
	})
}

// dataMsg is the part of a data payload the tests look at.
type dataMsg struct {
	ID         string    `json:"id"`
	Seq        uint64    `json:"seq"`
	TS         time.Time `json:"ts"`
	Historical bool      `json:"historical"`
}

func decodeData(t *testing.T, payload []byte) dataMsg {
	t.Helper()
	var d dataMsg
	if err := json.Unmarshal(payload, &d); err != nil {
		t.Fatalf("payload %s: %v", payload, err)
	}
	return d
}

func isDataTopic(topic string) bool { return !strings.Contains(topic, "/_gateway/") }

func fixedClock(t time.Time) func() time.Time { return func() time.Time { return t } }

func TestPublishesContractPayload(t *testing.T) {
	b := startBroker(t, "127.0.0.1:0")
	mes := subscribe(t, b.url(), "linegate/#")
	src := newMemSource()
	cfg := testConfig(b.url())
	up := mustTime("2026-11-27T10:15:00Z")
	cfg.Clock = fixedClock(up)
	startUplink(t, cfg, src)
	// Appended once connected: live, not historical (that is decided by
	// seq, whatever the clock says).
	testkit.WaitFor(t, long, "online status", func() bool { return len(mes.live()) >= 1 })
	src.add(designMessage()) // seq 1; the golden payload has 18234

	testkit.WaitFor(t, long, "data message at the MES", func() bool { return len(mes.live()) >= 2 })
	got := mes.live()
	if got[0].topic != statusTopic || got[0].payload != string(StatusJSON(testGW, "online", up, "test")) {
		t.Errorf("first message %s %s, want the online status", got[0].topic, got[0].payload)
	}
	want := strings.Replace(string(readGolden(t, "design_example.json")), "18234", "1", 2)
	if got[1].topic != "linegate/plant-a/assembly/line1/press01/process" || got[1].payload != want {
		t.Errorf("got %s\n%s\nwant linegate/plant-a/assembly/line1/press01/process\n%s", got[1].topic, got[1].payload, want)
	}
	waitDrained(t, src)
}

func TestDeliversAllInOrder(t *testing.T) {
	const total, inflight = 5000, 64
	b := startBroker(t, "127.0.0.1:0")
	mes := subscribe(t, b.url(), dataFilter)
	src := newMemSource()
	src.addN(total / 2)
	cfg := testConfig(b.url())
	cfg.MaxInflight = inflight
	reg := prometheus.NewRegistry()
	cfg.Registerer = reg
	r := startUplink(t, cfg, src)
	src.addN(total / 2) // while the first half is being published

	testkit.WaitFor(t, long, "all messages at the MES", func() bool { return len(mes.received()) >= total })
	got := mes.received()
	if len(got) != total {
		t.Fatalf("MES got %d messages, want %d (no outage, so no duplicates)", len(got), total)
	}
	for i, m := range got {
		if d := decodeData(t, []byte(m.payload)); d.Seq != uint64(i+1) {
			t.Fatalf("message %d has seq %d: order or completeness broken", i, d.Seq)
		}
	}
	waitDrained(t, src)
	if src.maxOutstanding > inflight {
		t.Errorf("%d messages were outstanding at once, MaxInflight is %d", src.maxOutstanding, inflight)
	}
	st := r.u.Status()
	if st.Published != total || st.Inflight != 0 || !st.Connected || st.LastPublish.IsZero() {
		t.Errorf("status %+v", st)
	}
	m := r.u.met
	if v := testutil.ToFloat64(m.acked); v != total {
		t.Errorf("acked_messages_total %v", v)
	}
	if v := testutil.ToFloat64(m.published); v != total {
		t.Errorf("published_messages_total %v", v)
	}
	if v := testutil.ToFloat64(m.connected); v != 1 {
		t.Errorf("connected %v", v)
	}
	if n := testutil.CollectAndCount(m.latency); n != 1 {
		t.Errorf("latency histogram: %d series", n)
	}
	names := []string{"connected", "inflight", "published_messages_total", "publish_errors_total",
		"acked_messages_total", "reconnects_total", "publish_latency_seconds"}
	fams, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range names {
		if !slices.ContainsFunc(fams, func(f *dto.MetricFamily) bool { return f.GetName() == "linegate_uplink_"+n }) {
			t.Errorf("metric linegate_uplink_%s not registered", n)
		}
	}
}

// TestBrokerRestart stops the broker while messages are in flight, lets the
// collector go on buffering, and restarts the broker on the same port.
//
// The MES view is what each broker accepted, recorded by a broker hook
// before its PUBACK: a subscriber across a restart of a broker without
// persistence may legitimately miss messages the broker acknowledged but had
// not yet forwarded (mochi acknowledges first), which says nothing about the
// uplink.
func TestBrokerRestart(t *testing.T) {
	const inflight = 64
	const before, during, after = 2000, 500, 500
	b1 := startBroker(t, "127.0.0.1:0")
	stopAt := make(chan struct{})
	var once sync.Once
	b1.hook.setOnPublish(func(p brokerPub) {
		var d dataMsg
		if isDataTopic(p.topic) && json.Unmarshal(p.payload, &d) == nil && d.Seq == 700 {
			once.Do(func() { close(stopAt) })
		}
	})
	src := newMemSource()
	cfg := testConfig(b1.url())
	cfg.MaxInflight = inflight
	r := startUplink(t, cfg, src)
	r.waitConnected(t)
	src.addN(before) // created while connected: live

	select {
	case <-stopAt:
	case <-time.After(long):
		t.Fatal("broker never received seq 700")
	}
	b1.stop() // mid-stream: the uplink has up to 64 messages in flight
	testkit.WaitFor(t, long, "uplink to notice the outage", func() bool { return !r.u.Status().Connected })
	outage := time.Now()
	src.addN(during) // created while the broker is down: historical
	testkit.WaitFor(t, long, "a failed reconnect", func() bool { return strings.Contains(r.u.Status().LastError, "connect") })

	b2 := startBroker(t, b1.addr)
	testkit.WaitFor(t, long, "reconnect", func() bool { st := r.u.Status(); return st.Connected && st.Reconnects == 1 })
	reconnected := time.Now()
	src.addN(after) // live again
	waitDrained(t, src)

	total := before + during + after
	var seqs []uint64
	var first, second []dataMsg
	for i, pubs := range [][]brokerPub{b1.hook.published(), b2.hook.published()} {
		for j, p := range pubs {
			if !isDataTopic(p.topic) {
				continue
			}
			if i == 1 && j == 0 {
				t.Errorf("first publish after the restart is %s, want the online status", p.topic)
			}
			d := decodeData(t, p.payload)
			seqs = append(seqs, d.Seq)
			if i == 0 {
				first = append(first, d)
			} else {
				second = append(second, d)
			}
		}
	}
	// After de-duplication by seq (the MES's id), every seq is there, in order.
	seen := map[uint64]bool{}
	next := uint64(1)
	for _, s := range seqs {
		if seen[s] {
			continue
		}
		seen[s] = true
		if s != next {
			t.Fatalf("after de-duplication seq %d follows %d: gap or reorder", s, next-1)
		}
		next++
	}
	if next-1 != uint64(total) {
		t.Fatalf("MES saw %d distinct seqs, want %d", next-1, total)
	}
	dups := len(seqs) - total
	if dups > inflight {
		t.Errorf("%d duplicates, want at most MaxInflight=%d", dups, inflight)
	}
	t.Logf("%d messages on the first broker, %d on the second, %d duplicates", len(first), len(second), dups)
	for _, d := range first {
		if d.Historical {
			t.Errorf("seq %d published live on the first connection is marked historical", d.Seq)
		}
	}
	// On the second connection, what was created before it came up (resends
	// of the first connection's in-flight messages, and all created during
	// the outage) is historical; what was created after is live.
	for _, d := range second {
		if want := d.Seq <= before+during; d.Historical != want {
			t.Errorf("seq %d created %v (outage from %v, reconnected by %v): historical=%v, want %v",
				d.Seq, d.TS, outage, reconnected, d.Historical, want)
		}
	}
}

func TestStatusRetainedAndLastWill(t *testing.T) {
	b := startBroker(t, "127.0.0.1:0")
	r := startUplink(t, testConfig(b.url()), newMemSource())
	r.waitConnected(t)

	// The states the MES saw, repeats folded: a subscriber may get the same
	// status twice (live, and as the retained copy).
	mes := subscribe(t, b.url(), statusTopic)
	states := func() string {
		var out []string
		for _, m := range mes.received() {
			var st struct{ State string }
			if err := json.Unmarshal([]byte(m.payload), &st); err != nil {
				t.Errorf("status %s: %v", m.payload, err)
			}
			if len(out) == 0 || out[len(out)-1] != st.State {
				out = append(out, st.State)
			}
		}
		return strings.Join(out, " ")
	}
	retained := func(want string) {
		t.Helper()
		late := subscribe(t, b.url(), statusTopic)
		testkit.WaitFor(t, long, "retained status", func() bool { return len(late.received()) > 0 })
		if m := late.received()[0]; !m.retained || !strings.Contains(m.payload, `"state":"`+want+`"`) {
			t.Errorf("a new subscriber got %+v, want the retained %s status", m, want)
		}
	}
	testkit.WaitFor(t, long, "online status", func() bool { return states() == "online" })
	retained("online")

	// The connection dies without DISCONNECT and the broker refuses the
	// reconnect for now: the will must leave "offline" retained.
	b.hook.deny.Store(testClientID)
	b.kick(testClientID)
	testkit.WaitFor(t, long, "last will", func() bool { return states() != "online" })
	if got := states(); got != "online offline" {
		t.Fatalf("MES saw %q, want online offline", got)
	}
	testkit.WaitFor(t, long, "a refused reconnect", func() bool { return b.hook.denied.Load() > 0 })
	retained("offline")
	for _, p := range b.hook.published() {
		if p.topic == statusTopic && strings.Contains(string(p.payload), "offline") {
			t.Errorf("offline status was published, want it to come from the will only")
		}
	}

	b.hook.deny.Store("")
	testkit.WaitFor(t, long, "online again", func() bool { return states() != "online offline" })
	if got := states(); got != "online offline online" {
		t.Errorf("MES saw %q, want online offline online", got)
	}
	if st := r.u.Status(); st.Reconnects != 1 || !st.Connected || st.LastError == "" {
		t.Errorf("status %+v", st)
	}
	if v := testutil.ToFloat64(r.u.met.reconnects); v != 1 {
		t.Errorf("reconnects_total %v", v)
	}
}

func TestShutdownPublishesOfflineStatus(t *testing.T) {
	b := startBroker(t, "127.0.0.1:0")
	src := newMemSource()
	src.addN(100)
	r := startUplink(t, testConfig(b.url()), src)
	waitDrained(t, src)
	r.stop(t)

	pubs := b.hook.published()
	last := pubs[len(pubs)-1]
	if last.client != testClientID || last.topic != statusTopic || !last.retain || last.qos != 1 ||
		!strings.Contains(string(last.payload), `"state":"offline"`) {
		t.Errorf("last publish %s %s retain=%v qos=%d, want the retained offline status",
			last.topic, last.payload, last.retain, last.qos)
	}
	late := subscribe(t, b.url(), statusTopic)
	testkit.WaitFor(t, long, "retained status", func() bool { return len(late.received()) > 0 })
	if m := late.received()[0]; !strings.Contains(m.payload, `"state":"offline"`) {
		t.Errorf("retained status %s", m.payload)
	}
	if st := r.u.Status(); st.Connected {
		t.Errorf("status %+v after Run returned", st)
	}
}

func TestEventsBeforeDataAndAcked(t *testing.T) {
	b := startBroker(t, "127.0.0.1:0")
	mes := subscribe(t, b.url(), "linegate/#")
	src := newMemSource()
	src.addEvent(buffer.Event{Type: "buffer_overflow", TS: mustTime("2026-11-27T10:15:03Z"),
		Attrs: []buffer.Attr{{Key: "dropped_seq_from", Value: uint64(100)}, {Key: "dropped_seq_to", Value: uint64(180)}}})
	src.addEvent(buffer.Event{Type: "device_down", TS: mustTime("2026-11-27T10:15:04Z"),
		Attrs: []buffer.Attr{{Key: "device", Value: "press01"}, {Key: "error", Value: "i/o timeout"}}})
	src.addN(3)
	startUplink(t, testConfig(b.url()), src)

	testkit.WaitFor(t, long, "status, 2 events and 3 messages", func() bool { return len(mes.live()) >= 6 })
	waitDrained(t, src)
	got := mes.live()
	wantTopics := []string{statusTopic, eventsTopic, eventsTopic, "linegate/plant-a/assembly/line1/press01/process"}
	for i, w := range wantTopics {
		if got[i].topic != w {
			t.Fatalf("message %d on %s, want %s (order: status, events, data): %+v", i, got[i].topic, w, got)
		}
	}
	if want := string(readGolden(t, "event_overflow.json")); got[1].payload != want {
		t.Errorf("event payload\n got %s\nwant %s", got[1].payload, want)
	}
	if want := `{"schema":"linegate/v1","gateway":"line1-pc","event":"device_down","device":"press01","error":"i/o timeout","ts":"2026-11-27T10:15:04.000Z"}`; got[2].payload != want {
		t.Errorf("event payload\n got %s\nwant %s", got[2].payload, want)
	}

	// An event raised later goes out too, and is deleted once acknowledged.
	src.addEvent(buffer.Event{Type: "config_reload", TS: time.Now()})
	testkit.WaitFor(t, long, "later event", func() bool {
		return slices.ContainsFunc(mes.received(), func(m received) bool { return strings.Contains(m.payload, "config_reload") })
	})
	waitDrained(t, src)
}

func TestQoS0DeletesAfterWrite(t *testing.T) {
	b := startBroker(t, "127.0.0.1:0")
	mes := subscribe(t, b.url(), dataFilter)
	src := newMemSource()
	src.addN(200)
	cfg := testConfig(b.url())
	cfg.QoS = 0
	startUplink(t, cfg, src)
	waitDrained(t, src)
	testkit.WaitFor(t, long, "messages at the MES", func() bool { return len(mes.received()) == 200 })
	for _, p := range b.hook.published() {
		if isDataTopic(p.topic) && p.qos != 0 {
			t.Fatalf("data published with QoS %d", p.qos)
		}
	}
}

func TestFailover(t *testing.T) {
	dead := deadAddr(t)
	b1 := startBroker(t, "127.0.0.1:0")
	b2 := startBroker(t, "127.0.0.1:0")
	tests := []struct {
		name    string
		brokers []string
		want    string
	}{
		{"first is down", []string{"tcp://" + dead, b1.url()}, b1.url()},
		{"first wins when both are up", []string{b2.url(), b1.url()}, b2.url()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := startUplink(t, testConfig(tt.brokers...), newMemSource())
			r.waitConnected(t)
			if got := r.u.Status().Broker; got != tt.want {
				t.Errorf("connected to %s, want %s", got, tt.want)
			}
			r.stop(t)
		})
	}

	t.Run("moves on when the first goes down", func(t *testing.T) {
		a := startBroker(t, "127.0.0.1:0")
		src := newMemSource()
		src.addN(100)
		r := startUplink(t, testConfig(a.url(), b1.url()), src)
		waitDrained(t, src)
		a.stop()
		testkit.WaitFor(t, long, "failover", func() bool { st := r.u.Status(); return st.Connected && st.Broker == b1.url() })
		src.addN(100)
		waitDrained(t, src)
	})
}

// deadAddr is a loopback address where nothing listens.
func deadAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

// silentListener accepts connections and never answers: a hung broker.
func silentListener(t *testing.T) (addr string, accepted <-chan struct{}) {
	t.Helper()
	acc := make(chan struct{}, 1)
	addr = testkit.Serve(t, func(c net.Conn) {
		select {
		case acc <- struct{}{}:
		default:
		}
		_, _ = io.Copy(io.Discard, c) // hold the connection until the test ends
	})
	return addr, acc
}

func TestRunReturnsPromptlyOnCancel(t *testing.T) {
	b := startBroker(t, "127.0.0.1:0")
	silent, accepted := silentListener(t)
	tests := []struct {
		name    string
		broker  string
		backoff time.Duration
		ready   func(*runner) bool
	}{
		{"connected", b.url(), 0, func(r *runner) bool { return r.u.Status().Connected }},
		{"broker refuses", "tcp://" + deadAddr(t), 0, func(r *runner) bool { return r.u.Status().LastError != "" }},
		{"in backoff", "tcp://" + deadAddr(t), time.Hour, func(r *runner) bool { return r.u.Status().LastError != "" }},
		{"broker silent", "tcp://" + silent, 0, func(*runner) bool {
			select {
			case <-accepted:
				return true
			default:
				return false
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := newMemSource()
			src.addN(10)
			cfg := testConfig(tt.broker)
			// Far longer than the wait below: Run must not sit these out.
			cfg.ConnectTimeout = time.Hour
			if tt.backoff > 0 {
				cfg.BackoffMin, cfg.BackoffMax = tt.backoff, tt.backoff
			}
			r := startUplink(t, cfg, src)
			testkit.WaitFor(t, long, "uplink in state", func() bool { return tt.ready(r) })
			r.cancel()
			select {
			case <-r.done:
			case <-time.After(10 * time.Second):
				t.Fatal("Run did not return within 10s of cancel")
			}
		})
	}
}

func TestReadErrorKeepsConnection(t *testing.T) {
	b := startBroker(t, "127.0.0.1:0")
	var logs syncBuffer
	src := newMemSource()
	src.setReadErr(errors.New("bbolt: disk I/O error"))
	src.addN(5)
	cfg := testConfig(b.url())
	cfg.Logger = slog.New(slog.NewTextHandler(&logs, nil))
	r := startUplink(t, cfg, src)
	testkit.WaitFor(t, long, "read error logged", func() bool { return strings.Contains(logs.String(), "disk I/O error") })
	if !r.u.Status().Connected {
		t.Error("a buffer error dropped the connection")
	}
	src.setReadErr(nil)
	waitDrained(t, src)
	if n := strings.Count(logs.String(), "disk I/O error"); n != 1 {
		t.Errorf("read error logged %d times, want once", n)
	}
}

// TestLogs checks the outage logging: one warning per outage, the outage
// length on reconnect, and never the password.
func TestLogs(t *testing.T) {
	const secret = "s3cret-pw"
	b := startBroker(t, "127.0.0.1:0")
	b.hook.deny.Store(testClientID)
	var logs syncBuffer
	cfg := testConfig("tcp://user:"+secret+"@"+deadAddr(t), b.url())
	cfg.Username, cfg.Password = "user", secret
	cfg.Logger = slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	r := startUplink(t, cfg, newMemSource())
	testkit.WaitFor(t, long, "three refused connects", func() bool { return b.hook.denied.Load() >= 3 })
	b.hook.deny.Store("")
	r.waitConnected(t)
	b.kick(testClientID)
	testkit.WaitFor(t, long, "reconnect", func() bool { st := r.u.Status(); return st.Connected && st.Reconnects == 1 })
	r.stop(t)

	out := logs.String()
	if strings.Contains(out, secret) {
		t.Errorf("password in logs:\n%s", out)
	}
	if n := strings.Count(out, `level=WARN msg="mqtt connect failed"`); n != 1 {
		t.Errorf("%d warnings for one outage at startup, want 1:\n%s", n, out)
	}
	// The next try is announced once per outage; every later failed
	// attempt goes to debug only (three were refused above).
	if n := strings.Count(out, `level=INFO msg="mqtt retrying with backoff"`); n != 1 {
		t.Errorf("%d infos of the next try for one outage, want 1:\n%s", n, out)
	}
	if n := strings.Count(out, `level=DEBUG msg="mqtt connect failed"`); n < 2 {
		t.Errorf("%d failed attempts at debug, want the attempts after the first (at least 2):\n%s", n, out)
	}
	for _, want := range []string{
		`level=INFO msg="mqtt connected" broker=` + b.url() + " outage=",
		`level=WARN msg="mqtt connection lost" broker=` + b.url(),
		`level=INFO msg="mqtt reconnected" broker=` + b.url() + " outage=",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("logs lack %q:\n%s", want, out)
		}
	}
	if strings.Contains(r.u.Status().LastError, secret) {
		t.Errorf("password in status")
	}
}

func TestNoGoroutineLeak(t *testing.T) {
	b := startBroker(t, "127.0.0.1:0")
	before := runtime.NumGoroutine()

	src := newMemSource()
	src.addN(500)
	src.addEvent(buffer.Event{Type: "device_up", TS: time.Now()})
	r := startUplink(t, testConfig(b.url()), src)
	waitDrained(t, src)
	b.kick(testClientID)
	testkit.WaitFor(t, long, "reconnect", func() bool { st := r.u.Status(); return st.Connected && st.Reconnects == 1 })
	src.addN(500)
	waitDrained(t, src)
	r.stop(t)

	deadline := time.Now().Add(long)
	for runtime.NumGoroutine() > before {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			t.Fatalf("%d goroutines, %d before:\n%s", runtime.NumGoroutine(), before, buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestNewValidates(t *testing.T) {
	ok := testConfig("tcp://127.0.0.1:1884")
	tests := []struct {
		name   string
		modify func(*Config)
		src    Source
		want   string
	}{
		{"no source", func(*Config) {}, nil, "no source"},
		{"no gateway", func(c *Config) { c.GatewayID = "" }, newMemSource(), "gateway id"},
		{"no broker", func(c *Config) { c.Brokers = nil }, newMemSource(), "no broker"},
		{"bad scheme", func(c *Config) { c.Brokers = []string{"http://x:1"} }, newMemSource(), "scheme"},
		{"no host", func(c *Config) { c.Brokers = []string{"tcp://:1883"} }, newMemSource(), "no host"},
		{"bad url hides password", func(c *Config) { c.Brokers = []string{"tcp://u:pw%zz@h"} }, newMemSource(), "invalid URL"},
		{"qos 2", func(c *Config) { c.QoS = 2 }, newMemSource(), "qos"},
		{"wildcard prefix", func(c *Config) { c.TopicPrefix = "a/#" }, newMemSource(), "prefix"},
		{"negative inflight", func(c *Config) { c.MaxInflight = -1 }, newMemSource(), "inflight"},
		{"backoff", func(c *Config) { c.BackoffMin, c.BackoffMax = time.Minute, time.Second }, newMemSource(), "backoff"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := ok
			cfg.Brokers = slices.Clone(ok.Brokers)
			tt.modify(&cfg)
			_, err := New(cfg, tt.src)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("New: %v, want an error about %q", err, tt.want)
			}
			if strings.Contains(err.Error(), "pw") {
				t.Errorf("error shows the password: %v", err)
			}
		})
	}

	u, err := New(Config{Brokers: []string{"tcp://mes", "ssl://mes", "ws://mes/mqtt"}, GatewayID: "gw"}, newMemSource())
	if err != nil {
		t.Fatal(err)
	}
	c := u.cfg
	if c.ClientID != "linegate-gw" || c.TopicPrefix != "linegate" || c.MaxInflight != 64 || c.QoS != 0 ||
		c.ConnectTimeout != 10*time.Second || c.BackoffMin != time.Second || c.BackoffMax != 30*time.Second {
		t.Errorf("defaults: %+v", c)
	}
	if got := u.brokerList(); got != "tcp://mes:1883,ssl://mes:8883,ws://mes/mqtt" {
		t.Errorf("brokers %s", got)
	}
	if _, err := New(ok, newMemSource()); err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	cfg := ok
	cfg.Registerer = reg
	if _, err := New(cfg, newMemSource()); err != nil {
		t.Fatal(err)
	}
	if _, err := New(cfg, newMemSource()); err == nil {
		t.Error("second registration on the same registry did not fail")
	}
}

// syncBuffer is a bytes.Buffer safe for a logger and a test reading it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestRunTwiceFails(t *testing.T) {
	b := startBroker(t, "127.0.0.1:0")
	r := startUplink(t, testConfig(b.url()), newMemSource())
	r.waitConnected(t)
	if err := r.u.Run(context.Background()); err == nil {
		t.Error("a second concurrent Run did not fail")
	}
}

// TestHistoricalByBufferNotByClock: the gateway's clock stepped back an
// hour while connected (NTP, an operator). Messages created after the step
// carry creation times before the connection came up, yet they are live;
// the backlog from before the connection is historical.
func TestHistoricalByBufferNotByClock(t *testing.T) {
	b := startBroker(t, "127.0.0.1:0")
	mes := subscribe(t, b.url(), "linegate/#")
	src := newMemSource()
	src.addN(3) // waited for the connection: historical
	startUplink(t, testConfig(b.url()), src)
	testkit.WaitFor(t, long, "the backlog", func() bool { return len(mes.live()) >= 4 })
	stepped := time.Now().Add(-time.Hour).UTC()
	for range 3 {
		src.add(buffer.Message{Created: stepped, Equipment: "press01", Class: "process",
			Readings: []buffer.Reading{{Tag: "temperature", Value: 23.5, Unit: "degC", TS: stepped}}})
	}
	testkit.WaitFor(t, long, "the messages after the step", func() bool { return len(mes.live()) >= 7 })
	for _, m := range mes.live() {
		if !isDataTopic(m.topic) {
			continue
		}
		d := decodeData(t, []byte(m.payload))
		if want := d.Seq <= 3; d.Historical != want {
			t.Errorf("seq %d: historical %v, want %v", d.Seq, d.Historical, want)
		}
	}
}
