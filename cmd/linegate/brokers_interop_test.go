package main

// The interop suite against the brokers MES teams run besides Mosquitto:
// RabbitMQ with its MQTT plugin and a 3-node NATS cluster with MQTT and
// JetStream, each started by the test on free loopback ports (never the
// machine's services). The real linegate binary polls the simulated press
// line and publishes; an MES subscriber counts what arrives.
// uplink/README.md ("Broker differences") records what these tests saw.

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/linegate/linegate/internal/testkit"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/linegate/linegate/drivers/sim"
	"github.com/linegate/linegate/testdata/peers"
)

const brkStatusTopic = "linegate/plant-a/assembly/line1/_gateway/saf-gw/status"

// brokerRig is the safRig without Mosquitto: linegate's brokers and the
// MES's broker are the test's.
type brokerRig struct {
	*safRig
	brokers []string
}

// newBrokerRig writes a config for the binary against brokers (uplink
// keys in uplinkExtra, e.g. a tls block) and starts the press line and the
// MES on mesURL.
//
// One press at 100 ms: 30 messages/s, a load the brokers take with room to
// spare on a busy 2-core machine under the race detector, so that a drain
// ends.
func newBrokerRig(t *testing.T, brokers []string, uplinkExtra, mesURL string, persistentMES bool, maxInflight int) *brokerRig {
	t.Helper()
	line := sim.NewPressLine(sim.Options{Addr: "127.0.0.1:0", Units: []byte{1}})
	if err := line.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { line.Stop() })
	dir := t.TempDir()
	r := &safRig{t: t, opts: rigOptions{devices: 1, maxInflight: maxInflight}, bin: linegateBinary(t),
		cfgPath: filepath.Join(dir, "linegate.yaml"), bufPath: filepath.Join(dir, "buffer.db"),
		httpAddr: fmt.Sprintf("127.0.0.1:%d", testkit.FreePort(t))}
	var devs strings.Builder
	for i := 1; i <= 1; i++ {
		fmt.Fprintf(&devs, `  - name: press%02d
    driver: modbus
    address: tcp://%s
    unit_id: %d
    poll_interval: %s
    timeout: 500ms
    tags:
      - {name: temperature, class: process, register: holding, address: 0, type: float32, unit: degC}
      - {name: state, class: equipment, register: holding, address: 10, type: uint16}
      - {name: cycle_time, class: time, register: holding, address: 14, type: uint16, unit: ms}
`, i, line.Addr(), i, safPoll)
	}
	cfg := fmt.Sprintf(`gateway: {id: saf-gw, site: plant-a, area: assembly, line: line1}
buffer: {path: %s, max_size: 64MiB, commit_interval: 50ms}
uplink:
  brokers: [%s]
  max_inflight: %d
  reconnect_max: 1s
  ack_timeout: 5s
%s
http: {listen: "%s"}
devices:
%s`, r.bufPath, strings.Join(brokers, ", "), maxInflight, uplinkExtra, r.httpAddr, devs.String())
	if err := os.WriteFile(r.cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	r.mes = startMES(t, mesURL, persistentMES)
	return &brokerRig{safRig: r, brokers: brokers}
}

// tally is the MES's count of the data messages, by seq, up to created.
// reordered counts first arrivals below an earlier seq: with replay_rate
// the live lane overtakes the backlog (uplink/replay.go), not a fault.
type tally struct{ created, delivered, missing, duplicated, reordered int }

func count(all []arrival, created uint64) tally {
	tl := tally{created: int(created)}
	seen := map[uint64]bool{}
	var last uint64
	for _, a := range all {
		if !a.data() || a.seq > created {
			continue
		}
		if seen[a.seq] {
			tl.duplicated++
			continue
		}
		if a.seq < last {
			tl.reordered++
		}
		last = a.seq
		seen[a.seq] = true
	}
	tl.delivered = len(seen)
	tl.missing = tl.created - tl.delivered
	return tl
}

func (tl tally) String() string {
	return fmt.Sprintf("created %d, delivered %d, missing %d, duplicated %d, overtaken %d (replay lanes)",
		tl.created, tl.delivered, tl.missing, tl.duplicated, tl.reordered)
}

// retainedState connects a fresh client, subscribes to the status topic and
// returns the state of the retained status it gets ("" if none within wait).
func retainedState(t *testing.T, url string, wait time.Duration) string {
	t.Helper()
	got := make(chan paho.Message, 1)
	opts := paho.NewClientOptions().AddBroker(url).SetClientID(fmt.Sprintf("probe-%d", time.Now().UnixNano())).
		SetCleanSession(true).SetAutoReconnect(false).SetConnectTimeout(5 * time.Second)
	c := paho.NewClient(opts)
	if tok := c.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("status probe connect %s: %v", url, tok.Error())
	}
	defer c.Disconnect(50)
	tok := c.Subscribe(brkStatusTopic, 1, func(_ paho.Client, m paho.Message) {
		if !m.Retained() {
			return // a live status that raced the subscription: not the stored one
		}
		select {
		case got <- m:
		default:
		}
	})
	if !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("status probe subscribe: %v", tok.Error())
	}
	select {
	case m := <-got:
		var p struct{ State string }
		_ = json.Unmarshal(m.Payload(), &p)
		return p.State
	case <-time.After(wait):
		return ""
	}
}

// waitRetained waits until a fresh subscriber gets the retained state,
// flagged retained.
func waitRetained(t *testing.T, url, state string) {
	t.Helper()
	testkit.WaitFor(t, 20*time.Second, "retained status "+state+" at "+url, func() bool {
		return retainedState(t, url, 2*time.Second) == state
	})
}

// sharedProbe subscribes two clients to $share/mes/<data topics> and
// reports how many data messages each got in window while linegate runs.
func sharedProbe(t *testing.T, url string, window time.Duration) [2]int {
	t.Helper()
	var mu sync.Mutex
	var n [2]int
	for i := range 2 {
		opts := paho.NewClientOptions().AddBroker(url).SetClientID(fmt.Sprintf("share-%d-%d", i, time.Now().UnixNano())).
			SetCleanSession(true).SetAutoReconnect(false).SetConnectTimeout(5 * time.Second)
		c := paho.NewClient(opts)
		if tok := c.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
			t.Fatalf("shared probe connect: %v", tok.Error())
		}
		defer c.Disconnect(50)
		i := i
		tok := c.Subscribe("$share/mes/linegate/plant-a/assembly/line1/+/+", 1, func(paho.Client, paho.Message) {
			mu.Lock()
			n[i]++
			mu.Unlock()
		})
		if !tok.WaitTimeout(10 * time.Second) {
			t.Fatal("shared probe: no SUBACK")
		}
		if err := tok.Error(); err != nil {
			t.Logf("shared subscription refused: %v", err)
			return n
		}
	}
	time.Sleep(window) // counting what arrives in a window is the probe itself
	mu.Lock()
	defer mu.Unlock()
	return n
}

// publishProbe publishes one message of size bytes at qos on a scratch
// topic that the same client subscribes to, and reports what happened: the
// acknowledgement (or the error) and whether the message came back.
func publishProbe(t *testing.T, url string, qos byte, size int) string {
	t.Helper()
	lost := make(chan error, 1)
	back := make(chan int, 1)
	opts := paho.NewClientOptions().AddBroker(url).SetClientID(fmt.Sprintf("pub-%d", time.Now().UnixNano())).
		SetCleanSession(true).SetAutoReconnect(false).SetConnectTimeout(5 * time.Second).
		SetConnectionLostHandler(func(_ paho.Client, err error) { lost <- err })
	c := paho.NewClient(opts)
	if tok := c.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		return fmt.Sprintf("connect: %v", tok.Error())
	}
	defer c.Disconnect(50)
	if tok := c.Subscribe("probe/size", 1, func(_ paho.Client, m paho.Message) {
		select {
		case back <- len(m.Payload()):
		default:
		}
	}); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		return fmt.Sprintf("subscribe: %v", tok.Error())
	}
	tok := c.Publish("probe/size", qos, false, make([]byte, size))
	select {
	case <-tok.Done():
		if tok.Error() != nil {
			return tok.Error().Error()
		}
	case err := <-lost:
		return fmt.Sprintf("connection closed (%v)", err)
	case <-time.After(5 * time.Second):
		return "no acknowledgement within 5s"
	}
	select {
	case n := <-back:
		return fmt.Sprintf("acknowledged and delivered (%d bytes)", n)
	case err := <-lost:
		return fmt.Sprintf("acknowledged, then the connection closed (%v)", err)
	case <-time.After(3 * time.Second):
		return "acknowledged, never delivered"
	}
}

// runSuite: QoS 1 delivery of everything the binary created, the retained
// online and offline status, the will after kill -9, and the probes of
// shared subscriptions, QoS 2 and the packet size.
func runSuite(t *testing.T, r *brokerRig, probeURL string) {
	t.Run("qos1 and retained status", func(t *testing.T) {
		r.t = t
		p := r.start()
		testkit.WaitFor(t, 20*time.Second, "connected", func() bool { st, ok := r.status(); return ok && st.Uplink.Connected })
		waitRetained(t, probeURL, "online")
		t.Log("retained online status delivered to a new subscriber")
		testkit.WaitFor(t, 20*time.Second, "30 messages at the MES", func() bool { return len(r.mes.dataArrivals()) >= 30 })
		n := sharedProbe(t, probeURL, time.Second)
		t.Logf("shared subscription $share/mes/...: consumer A got %d, consumer B got %d in 1s", n[0], n[1])
		last := r.waitDrained(20 * time.Second)
		p.term(t)
		waitRetained(t, probeURL, "offline")
		t.Log("retained offline status after SIGTERM")
		tl := count(r.mes.all(), last)
		t.Logf("qos 1: %v", tl)
		if tl.missing != 0 {
			t.Errorf("%d seqs missing", tl.missing)
		}
	})
	t.Run("will", func(t *testing.T) {
		r.t = t
		p := r.start()
		waitRetained(t, probeURL, "online")
		p.kill9(t)
		waitRetained(t, probeURL, "offline")
		t.Log("the will (retained offline) published after kill -9")
	})
	t.Run("probes", func(t *testing.T) {
		t.Logf("publish QoS 2: %s", publishProbe(t, probeURL, 2, 10))
		t.Logf("publish 2 MiB at QoS 1: %s", publishProbe(t, probeURL, 1, 2<<20))
	})
}

// TestBrokersRabbitMQ runs the suite against a RabbitMQ node of the test's
// own with the MQTT plugin; linegate connects over TLS, the MES over TCP.
func TestBrokersRabbitMQ(t *testing.T) {
	peers.Interop(t)
	dir := t.TempDir()
	ca, caKey := writeCA(t, dir)
	writeServerCert(t, dir, ca, caKey)
	rmq := peers.StartRabbitMQ(t, peers.RabbitMQOptions{
		TLSCert: filepath.Join(dir, "server.pem"), TLSKey: filepath.Join(dir, "server.key"), TLSCA: filepath.Join(dir, "ca.pem"),
	})
	r := newBrokerRig(t, []string{rmq.TLSURL}, fmt.Sprintf("  tls: {ca_file: %s}", filepath.Join(dir, "ca.pem")), rmq.MQTTURL, false, 64)
	runSuite(t, r, rmq.MQTTURL)
	if t.Failed() {
		t.Logf("rabbitmq log:\n%s", tail(rmq.Log(), 6000))
	}
}

// TestBrokersNATSCluster runs the suite against a 3-node NATS cluster, then
// kills the node linegate is connected to in the middle of a drain: it fails
// over to the next entry of uplink.brokers, and the MES (a persistent
// session on a node that stays up) gets every seq, with at most
// max_inflight duplicates.
func TestBrokersNATSCluster(t *testing.T) {
	peers.Interop(t)
	c := peers.StartNATSCluster(t, 3)
	n1, n3 := c.Nodes[0], c.Nodes[2]
	t.Run("suite", func(t *testing.T) {
		r := newBrokerRig(t, []string{n1.MQTTURL, c.Nodes[1].MQTTURL, n3.MQTTURL}, "", n3.MQTTURL, false, 64)
		runSuite(t, r, n3.MQTTURL)
	})
	t.Run("failover mid-drain", func(t *testing.T) {
		const inflight = 32
		// A proxy in front of each node keeps them all unreachable until
		// the backlog is there; then the first connection goes to n1.
		// Killing n1 ends it, and its proxy refuses the next attempt, like
		// the dead node.
		var px [3]*safProxy
		var urls []string
		for i, n := range c.Nodes {
			px[i] = startProxy(t, n.MQTTAddr)
			px[i].set(proxyDown)
			urls = append(urls, "tcp://"+px[i].addr())
		}
		r := newBrokerRig(t, urls, "  replay_rate: 60", n3.MQTTURL, true, inflight)
		p := r.start()
		testkit.WaitFor(t, 20*time.Second, "a backlog of 120", func() bool { st, ok := r.status(); return ok && st.Buffer.Messages >= 120 })
		for _, x := range px {
			x.set(proxyUp)
		}
		testkit.WaitFor(t, 20*time.Second, "mid-drain through n1", func() bool {
			st, ok := r.status()
			hist := 0
			for _, a := range r.mes.dataArrivals() {
				if a.historical {
					hist++
				}
			}
			return ok && st.Uplink.Connected && st.Uplink.Broker == urls[0] && hist >= 20 && st.Buffer.Messages > 40
		})
		n1.Kill()
		px[0].set(proxyDown)
		// The next attempt tries n2 first; while JetStream elects new
		// leaders (seconds) a node may refuse the MQTT CONNECT, and the
		// attempt goes on to n3.
		testkit.WaitFor(t, 30*time.Second, "failover to n2 or n3", func() bool {
			st, ok := r.status()
			return ok && st.Uplink.Connected && (st.Uplink.Broker == urls[1] || st.Uplink.Broker == urls[2])
		})
		st, _ := r.status()
		to := map[string]string{urls[1]: "n2", urls[2]: "n3"}[st.Uplink.Broker]
		var last uint64
		for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(50 * time.Millisecond) {
			st, ok := r.status()
			if ok && st.Uplink.Connected && st.Buffer.Messages == 0 && r.mes.has(st.Buffer.NextSeq-1) {
				last = st.Buffer.NextSeq - 1
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("not drained after the failover: status %+v; MES %v", st.Uplink, count(r.mes.all(), st.Buffer.NextSeq-1))
			}
		}
		p.term(t)
		testkit.WaitFor(t, 20*time.Second, "the MES has every seq", func() bool { return r.mes.has(last) })
		tl := count(r.mes.all(), last)
		t.Logf("NATS failover n1 → %s mid-drain (max_inflight %d): %v", to, inflight, tl)
		if tl.missing != 0 {
			t.Errorf("%d seqs missing", tl.missing)
		}
		if tl.duplicated > inflight {
			t.Errorf("%d duplicates, more than max_inflight %d", tl.duplicated, inflight)
		}
	})
}
