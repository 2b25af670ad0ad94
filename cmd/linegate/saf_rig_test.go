package main

// The rig of the store-and-forward interop tests (saf_interop_test.go): the
// real linegate binary, a real Mosquitto, the simulated press line as PLC,
// a small MQTT-unaware TCP proxy in between that the test turns into an
// outage or a stalled broker, and an MES subscriber that records every
// arrival in order.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/linegate/linegate/internal/testkit"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/linegate/linegate/cmd/internal/agent"
	"github.com/linegate/linegate/drivers/sim"
	"github.com/linegate/linegate/testdata/peers"
)

// safLong turns the scaled-down durations into the real ones (a one-minute
// outage, a stall past the keepalive; buffer/README.md).
func safLong() bool { return os.Getenv("LINEGATE_LONG") == "1" }

// ---- proxy ----

type proxyMode int32

const (
	proxyUp    proxyMode = iota // forward both ways
	proxyDown                   // accept and close at once: the broker is unreachable
	proxyStall                  // forward CONNECT and CONNACK, then swallow everything both ways
)

// safProxy forwards TCP connections to target, or plays a broken network.
type safProxy struct {
	ln     net.Listener
	target string
	mode   atomic.Int32

	mu     sync.Mutex
	conns  map[net.Conn]struct{}
	closed bool // no more connections are registered
	wg     sync.WaitGroup
}

func startProxy(t *testing.T, target string) *safProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &safProxy{ln: ln, target: target, conns: map[net.Conn]struct{}{}}
	p.wg.Add(1)
	go p.accept()
	t.Cleanup(func() {
		ln.Close()
		p.mu.Lock()
		p.closed = true
		p.mu.Unlock()
		p.cut()
		p.wg.Wait()
	})
	return p
}

func (p *safProxy) addr() string { return p.ln.Addr().String() }

// set changes the mode for new connections; cut ends the current ones.
func (p *safProxy) set(m proxyMode) { p.mode.Store(int32(m)) }

func (p *safProxy) cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for c := range p.conns {
		c.Close()
	}
}

func (p *safProxy) accept() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		mode := proxyMode(p.mode.Load())
		if mode == proxyDown {
			c.Close()
			continue
		}
		up, err := net.DialTimeout("tcp", p.target, 2*time.Second)
		if err != nil {
			c.Close()
			continue
		}
		p.mu.Lock()
		if p.closed {
			p.mu.Unlock()
			c.Close()
			up.Close()
			return
		}
		p.conns[c], p.conns[up] = struct{}{}, struct{}{}
		p.mu.Unlock()
		var acked atomic.Bool // CONNACK forwarded (stall mode swallows from then on)
		stall := mode == proxyStall
		p.wg.Add(2)
		go p.pipe(up, c, func(b []byte) []byte {
			if stall && acked.Load() {
				return nil
			}
			return b
		})
		connack := 4 // MQTT 3.1.1 CONNACK: 0x20 0x02 flags code
		go p.pipe(c, up, func(b []byte) []byte {
			if !stall {
				return b
			}
			if connack == 0 {
				return nil
			}
			n := min(connack, len(b))
			connack -= n
			if connack == 0 {
				acked.Store(true)
			}
			return b[:n]
		})
	}
}

// pipe copies src to dst through filter until either side closes.
func (p *safProxy) pipe(dst, src net.Conn, filter func([]byte) []byte) {
	defer p.wg.Done()
	defer func() {
		src.Close()
		dst.Close()
		p.mu.Lock()
		delete(p.conns, src)
		delete(p.conns, dst)
		p.mu.Unlock()
	}()
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			if out := filter(buf[:n]); len(out) > 0 {
				if _, werr := dst.Write(out); werr != nil {
					return
				}
			}
		}
		if err != nil {
			return
		}
	}
}

// ---- the MES ----

// arrival is one message the MES received, in arrival order.
type arrival struct {
	topic      string
	seq        uint64
	historical bool
	ts         time.Time // the payload's ts (message creation)
	at         time.Time
	state      string // status messages
	event      string // event messages
	payload    []byte
}

func (a arrival) data() bool { return !strings.Contains(a.topic, "/_gateway/") }

type safMES struct {
	mu         sync.Mutex
	arr        []arrival
	subscribed atomic.Bool
	c          paho.Client
}

// startMES subscribes to linegate/# with QoS 1. persistent uses a fixed
// client id and a persistent session, so a broker with persistence keeps
// queueing for it while it is away.
func startMES(t *testing.T, brokerURL string, persistent bool) *safMES {
	t.Helper()
	m := &safMES{}
	id := fmt.Sprintf("mes-%d", time.Now().UnixNano())
	opts := paho.NewClientOptions().AddBroker(brokerURL).SetClientID(id).SetCleanSession(!persistent).
		SetAutoReconnect(true).SetConnectRetry(true).SetConnectRetryInterval(100 * time.Millisecond).
		SetMaxReconnectInterval(200 * time.Millisecond).SetOrderMatters(true).
		SetConnectionLostHandler(func(paho.Client, error) { m.subscribed.Store(false) }).
		SetOnConnectHandler(func(c paho.Client) {
			tok := c.Subscribe("linegate/#", 1, m.receive)
			go func() {
				if tok.WaitTimeout(10*time.Second) && tok.Error() == nil {
					m.subscribed.Store(true)
				}
			}()
		})
	m.c = paho.NewClient(opts)
	if tok := m.c.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("MES connect: %v", tok.Error())
	}
	t.Cleanup(func() { m.c.Disconnect(100) })
	testkit.WaitFor(t, 10*time.Second, "MES subscribed", m.subscribed.Load)
	return m
}

func (m *safMES) receive(_ paho.Client, msg paho.Message) {
	a := arrival{topic: msg.Topic(), at: time.Now(), payload: append([]byte(nil), msg.Payload()...)}
	var p struct {
		Seq        uint64    `json:"seq"`
		Historical bool      `json:"historical"`
		TS         time.Time `json:"ts"`
		State      string    `json:"state"`
		Event      string    `json:"event"`
	}
	if err := json.Unmarshal(a.payload, &p); err == nil {
		a.seq, a.historical, a.ts, a.state, a.event = p.Seq, p.Historical, p.TS, p.State, p.Event
	}
	if msg.Retained() {
		return // a retained status replayed on (re)subscribe says nothing about order
	}
	m.mu.Lock()
	m.arr = append(m.arr, a)
	m.mu.Unlock()
}

func (m *safMES) all() []arrival {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Clone(m.arr)
}

func (m *safMES) dataArrivals() []arrival {
	var out []arrival
	for _, a := range m.all() {
		if a.data() {
			out = append(out, a)
		}
	}
	return out
}

func (m *safMES) has(seq uint64) bool {
	for _, a := range m.all() {
		if a.data() && a.seq == seq {
			return true
		}
	}
	return false
}

func (m *safMES) events(kind string) []map[string]any {
	var out []map[string]any
	for _, a := range m.all() {
		if a.event == kind {
			var e map[string]any
			if json.Unmarshal(a.payload, &e) == nil {
				out = append(out, e)
			}
		}
	}
	return out
}

// ---- linegate ----

// safProc is one run of the linegate binary.
type safProc struct {
	cmd    *exec.Cmd
	mu     sync.Mutex
	stderr bytes.Buffer
	exited chan struct{} // closed once Wait returned, err set
	err    error
}

func (p *safProc) log() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.stderr.String()
}

// kill9 is kill -9: no shutdown, no final commit.
func (p *safProc) kill9(t *testing.T) time.Time {
	t.Helper()
	at := time.Now()
	if err := p.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	<-p.exited
	return at
}

// term is SIGTERM and a clean exit 0.
func (p *safProc) term(t *testing.T) {
	t.Helper()
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.exited:
		if p.err != nil {
			t.Fatalf("linegate exited with %v\n%s", p.err, p.log())
		}
	case <-time.After(20 * time.Second):
		t.Fatalf("linegate did not stop on SIGTERM\n%s", p.log())
	}
}

func (p *safProc) alive() bool {
	select {
	case <-p.exited:
		return false
	default:
		return true
	}
}

// ---- the rig ----

type rigOptions struct {
	devices     int
	maxSize     string // buffer.max_size
	maxInflight int
	replayRate  float64
	persistence bool // Mosquitto persistence, and a persistent MES session
	bufDir      string
	devProxy    bool // the devices are reached through safRig.devProxy (to flap them)
}

type safRig struct {
	t        *testing.T
	opts     rigOptions
	bin      string
	cfgPath  string
	bufPath  string
	httpAddr string
	broker   *peers.Mosquitto
	proxy    *safProxy
	devProxy *safProxy // with rigOptions.devProxy: between linegate and the press line
	mes      *safMES
	procs    []*safProc
}

const safPoll = 100 * time.Millisecond

func newRig(t *testing.T, o rigOptions) *safRig {
	t.Helper()
	peers.Interop(t)
	if o.devices == 0 {
		o.devices = 2
	}
	if o.maxSize == "" {
		o.maxSize = "1GiB"
	}
	if o.maxInflight == 0 {
		o.maxInflight = 64
	}
	r := &safRig{t: t, opts: o, bin: linegateBinary(t)}
	units := make([]byte, o.devices)
	for i := range units {
		units[i] = byte(i + 1)
	}
	line := sim.NewPressLine(sim.Options{Addr: "127.0.0.1:0", Units: units})
	if err := line.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { line.Stop() })

	// Mosquitto queues at most 1000 messages per subscriber by default and
	// drops the rest: an unpaced drain (thousands per second) outruns the
	// MES's client, and a persistent MES away across a restart needs its
	// whole queue kept. Unlimited, so that what the MES misses is linegate's.
	mo := peers.MosquittoOptions{Persistence: o.persistence, GlobalConfig: "max_queued_messages 0"}
	r.broker = peers.StartMosquitto(t, mo)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("mosquitto log:\n%s", r.broker.Log())
		}
	})
	r.proxy = startProxy(t, r.broker.Addr)
	r.mes = startMES(t, r.broker.URL, o.persistence)

	dir := t.TempDir()
	if o.bufDir == "" {
		o.bufDir = dir
	}
	r.cfgPath = filepath.Join(dir, "linegate.yaml")
	r.bufPath = filepath.Join(o.bufDir, "buffer.db")
	devAddr := line.Addr()
	if o.devProxy {
		r.devProxy = startProxy(t, devAddr)
		devAddr = r.devProxy.addr()
	}
	r.httpAddr = fmt.Sprintf("127.0.0.1:%d", testkit.FreePort(t))
	var devs strings.Builder
	for i := 1; i <= o.devices; i++ {
		fmt.Fprintf(&devs, `  - name: press%02d
    driver: modbus
    address: tcp://%s
    unit_id: %d
    poll_interval: %s
    timeout: 500ms
    tags:
      - {name: temperature, class: process, register: holding, address: 0, type: float32, unit: degC}
      - {name: speed, class: process, register: input, address: 4, type: int16, scale: 0.1, unit: rpm}
      - {name: state, class: equipment, register: holding, address: 10, type: uint16}
      - {name: cycle_time, class: time, register: holding, address: 14, type: uint16, unit: ms}
`, i, devAddr, i, safPoll)
	}
	cfg := fmt.Sprintf(`gateway: {id: saf-gw, site: plant-a, area: assembly, line: line1}
buffer: {path: %s, max_size: %s, commit_interval: 50ms}
uplink: {brokers: [tcp://%s], max_inflight: %d, replay_rate: %g}
http: {listen: "%s"}
devices:
%s`, r.bufPath, o.maxSize, r.proxy.addr(), o.maxInflight, o.replayRate, r.httpAddr, devs.String())
	if err := os.WriteFile(r.cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	r.opts = o
	return r
}

// perSecond is how many messages the line produces: one per class per
// device per poll.
func (r *safRig) perSecond() float64 { return float64(r.opts.devices*3) / safPoll.Seconds() }

// start runs linegate and waits until its HTTP endpoint answers.
func (r *safRig) start() *safProc {
	r.t.Helper()
	p := &safProc{cmd: exec.Command(r.bin, "run", "-c", r.cfgPath), exited: make(chan struct{})}
	p.cmd.Stderr = &lockedWriter{w: &p.stderr, mu: &p.mu}
	if err := p.cmd.Start(); err != nil {
		r.t.Fatal(err)
	}
	go func() {
		p.err = p.cmd.Wait()
		close(p.exited)
	}()
	n := len(r.procs)
	r.procs = append(r.procs, p)
	r.t.Cleanup(func() {
		if p.alive() {
			p.cmd.Process.Kill()
			<-p.exited
		}
		if r.t.Failed() {
			r.t.Logf("linegate run %d stderr (last 6000 bytes):\n%s", n+1, tail(p.log(), 6000))
		}
	})
	testkit.WaitFor(r.t, 15*time.Second, "linegate /healthz", func() bool {
		if !p.alive() {
			r.t.Fatalf("linegate exited at start:\n%s", p.log())
		}
		_, ok := r.status()
		return ok
	})
	return p
}

func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[len(s)-n:]
}

var httpClient = &http.Client{Timeout: 2 * time.Second}

// status is the agent's /status, ok false when it does not answer.
func (r *safRig) status() (agent.Status, bool) {
	var st agent.Status
	resp, err := httpClient.Get("http://" + r.httpAddr + "/status")
	if err != nil {
		return st, false
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK || json.NewDecoder(resp.Body).Decode(&st) != nil {
		return st, false
	}
	return st, true
}

func (r *safRig) mustStatus() agent.Status {
	r.t.Helper()
	st, ok := r.status()
	if !ok {
		r.t.Fatal("no /status")
	}
	return st
}

// metric reads one unlabelled sample from /metrics.
func (r *safRig) metric(name string) float64 {
	r.t.Helper()
	resp, err := httpClient.Get("http://" + r.httpAddr + "/metrics")
	if err != nil {
		r.t.Fatalf("/metrics: %v", err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), name+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				r.t.Fatalf("/metrics %s: %v", name, err)
			}
			return f
		}
	}
	r.t.Fatalf("/metrics has no %s", name)
	return 0
}

func (r *safRig) polls() uint64 {
	var n uint64
	for _, d := range r.mustStatus().Devices {
		n += d.Polls
	}
	return n
}

// waitDrained waits until the agent's buffer is empty and the MES has
// every seq the agent had created when it was.
func (r *safRig) waitDrained(timeout time.Duration) uint64 {
	r.t.Helper()
	var last uint64
	testkit.WaitFor(r.t, timeout, "buffer drained and every seq at the MES", func() bool {
		st, ok := r.status()
		if !ok || !st.Uplink.Connected || st.Buffer.Messages != 0 {
			return false
		}
		last = st.Buffer.NextSeq - 1
		return r.mes.has(last)
	})
	return last
}

// outage cuts the agent off the broker for d (the broker itself stays up
// for the MES) and brings it back.
func (r *safRig) outage(d time.Duration) {
	r.t.Helper()
	r.proxy.set(proxyDown)
	r.proxy.cut()
	testkit.WaitFor(r.t, 10*time.Second, "agent sees the outage", func() bool {
		st, ok := r.status()
		return ok && !st.Uplink.Connected
	})
	time.Sleep(d) // the outage itself: its length is the scenario, not a synchronisation
	r.proxy.set(proxyUp)
}

// ---- checks ----

// delivery is what checkDelivery found.
type delivery struct {
	maxSeq     uint64
	distinct   int
	duplicates int
}

// checkDelivery checks the MES rule on the data arrivals: after
// de-duplication by seq every seq 1..max is there. With lanes false the
// first arrivals of the seqs are in seq order (one lane, replay_rate 0);
// with lanes true, within each connection (split at each online status)
// historical and live messages are each in seq order and every historical
// seq is below every live one (replay.go of the uplink).
func checkDelivery(t *testing.T, all []arrival, lanes bool) delivery {
	t.Helper()
	seen := map[uint64]bool{}
	var d delivery
	var next uint64 = 1
	type seg struct{ lastHist, lastLive, maxHist, minLive uint64 }
	cur := &seg{}
	segN := 0
	for _, a := range all {
		if !a.data() {
			if a.state == "online" {
				cur = &seg{}
				segN++
			}
			continue
		}
		if seen[a.seq] {
			// De-duplicate first (the MES rule): resends after a reconnect,
			// and a persistent MES session's redeliveries from the broker.
			d.duplicates++
			continue
		}
		seen[a.seq] = true
		d.maxSeq = max(d.maxSeq, a.seq)
		if !lanes {
			if a.seq != next {
				t.Fatalf("seq %d arrived when %d was due: gap or reorder", a.seq, next)
			}
			next++
		}
		if lanes {
			last := &cur.lastLive
			if a.historical {
				last = &cur.lastHist
				cur.maxHist = max(cur.maxHist, a.seq)
			} else if cur.minLive == 0 {
				cur.minLive = a.seq
			}
			if a.seq <= *last {
				t.Fatalf("connection %d: seq %d (historical=%v) after %d: lane out of order", segN, a.seq, a.historical, *last)
			}
			*last = a.seq
			if cur.minLive != 0 && cur.maxHist >= cur.minLive {
				t.Fatalf("connection %d: historical seq %d not below live seq %d", segN, cur.maxHist, cur.minLive)
			}
		}
	}
	for s := uint64(1); s <= d.maxSeq; s++ {
		if !seen[s] {
			t.Fatalf("seq %d of 1..%d never arrived", s, d.maxSeq)
		}
	}
	d.distinct = len(seen)
	return d
}

// drainRate is the historical messages per second between the first and
// the last historical arrival after since.
func drainRate(all []arrival, since time.Time) (n int, rate float64, took time.Duration) {
	var first, last time.Time
	for _, a := range all {
		if a.data() && a.historical && a.at.After(since) {
			if first.IsZero() {
				first = a.at
			}
			last = a.at
			n++
		}
	}
	took = last.Sub(first)
	if took > 0 {
		rate = float64(n) / took.Seconds()
	}
	return n, rate, took
}

// crashWindow measures what a kill -9 at kill lost: per equipment and class,
// the polls between the last message created before the kill and the kill.
// It returns the messages lost and the longest such span.
func crashWindow(all []arrival, kill time.Time) (lost int, span time.Duration) {
	last := map[string]time.Time{}
	for _, a := range all {
		if !a.data() || !a.ts.Before(kill) {
			continue
		}
		k := a.topic
		if a.ts.After(last[k]) {
			last[k] = a.ts
		}
	}
	for _, ts := range last {
		gap := kill.Sub(ts)
		span = max(span, gap)
		lost += int(gap / safPoll)
	}
	return lost, span
}
