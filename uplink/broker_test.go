package uplink

import (
	"errors"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
	mochi "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/listeners"
	"github.com/mochi-mqtt/server/v2/packets"
)

// testBroker is a real MQTT broker (mochi-mqtt) in the test process, on a
// loopback port, stopped by t.Cleanup at the latest.
type testBroker struct {
	t    testing.TB
	srv  *mochi.Server
	addr string
	hook *brokerHook
	once sync.Once
}

// startBroker starts a broker on addr ("127.0.0.1:0" for a free port, or the
// address of a stopped broker to restart it on the same port).
func startBroker(t testing.TB, addr string) *testBroker {
	t.Helper()
	return startBrokerOn(t, listeners.NewTCP(listeners.Config{ID: "tcp", Address: addr}))
}

// startBrokerOn starts a broker serving one listener.
func startBrokerOn(t testing.TB, l listeners.Listener) *testBroker {
	t.Helper()
	srv := mochi.New(&mochi.Options{Logger: slog.New(slog.DiscardHandler)})
	hook := &brokerHook{}
	if err := srv.AddHook(hook, nil); err != nil {
		t.Fatal(err)
	}
	if err := srv.AddListener(l); err != nil {
		t.Fatalf("broker listen %s: %v", l.Address(), err)
	}
	if err := srv.Serve(); err != nil {
		t.Fatal(err)
	}
	b := &testBroker{t: t, srv: srv, addr: l.Address(), hook: hook}
	t.Cleanup(b.stop)
	return b
}

func (b *testBroker) url() string { return "tcp://" + b.addr }

// stop closes the listener and the clients, then the server.
//
// mochi v2.7.9's Close can deadlock: Clients.GetByListener takes the read
// lock twice, and a client connecting or disconnecting in between blocks
// both for good (mochi-mqtt/server#488, fix pending in #489/#507). So the
// listeners are ended first with a closer that takes the lock once; CloseAll
// then waits for every client goroutine, and Close finds the TCP listener
// ended and does not look the clients up again.
func (b *testBroker) stop() {
	b.once.Do(func() {
		b.srv.Listeners.CloseAll(func(listener string) {
			for _, cl := range b.srv.Clients.GetAll() {
				if cl.Net.Listener == listener {
					_ = b.srv.DisconnectClient(cl, packets.ErrServerShuttingDown)
				}
			}
		})
		_ = b.srv.Close()
	})
}

// kick closes a client's connection from the broker side, as a network
// failure would: the client sent no DISCONNECT, so its will is published.
func (b *testBroker) kick(clientID string) {
	b.t.Helper()
	cl, ok := b.srv.Clients.Get(clientID)
	if !ok {
		b.t.Fatalf("broker has no client %q", clientID)
	}
	cl.Stop(errors.New("kicked by test"))
}

// brokerPub is a publish as the broker received it from a client.
type brokerPub struct {
	client, topic string
	payload       []byte
	retain        bool
	qos           byte
}

// brokerHook allows every client unless denied, and records every publish
// before the broker acknowledges it (mochi sends the PUBACK before it
// forwards the message to subscribers, so this sees all that was acked).
type brokerHook struct {
	mochi.HookBase
	deny   atomic.Value // string: client id refused at CONNECT; "" = none
	denied atomic.Int64 // CONNECTs refused

	mu   sync.Mutex
	pubs []brokerPub
	// onPublish, if set, is called for each publish, outside mu.
	onPublish func(brokerPub)
}

func (h *brokerHook) ID() string { return "test" }

func (h *brokerHook) Provides(b byte) bool {
	return b == mochi.OnConnectAuthenticate || b == mochi.OnACLCheck || b == mochi.OnPublish
}

func (h *brokerHook) OnConnectAuthenticate(cl *mochi.Client, _ packets.Packet) bool {
	if d, _ := h.deny.Load().(string); d != "" && cl.ID == d {
		h.denied.Add(1)
		return false
	}
	return true
}

func (h *brokerHook) OnACLCheck(*mochi.Client, string, bool) bool { return true }

func (h *brokerHook) OnPublish(cl *mochi.Client, pk packets.Packet) (packets.Packet, error) {
	p := brokerPub{client: cl.ID, topic: pk.TopicName, payload: append([]byte(nil), pk.Payload...),
		retain: pk.FixedHeader.Retain, qos: pk.FixedHeader.Qos}
	h.mu.Lock()
	h.pubs = append(h.pubs, p)
	f := h.onPublish
	h.mu.Unlock()
	if f != nil {
		f(p)
	}
	return pk, nil
}

func (h *brokerHook) setOnPublish(f func(brokerPub)) {
	h.mu.Lock()
	h.onPublish = f
	h.mu.Unlock()
}

func (h *brokerHook) published() []brokerPub {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]brokerPub(nil), h.pubs...)
}

// subscriber is a paho client playing the MES.
type subscriber struct {
	c    mqtt.Client
	mu   sync.Mutex
	msgs []received
}

type received struct {
	topic    string
	payload  string
	retained bool
}

func subscribe(t *testing.T, brokerURL string, filters ...string) *subscriber {
	t.Helper()
	s := &subscriber{}
	opts := mqtt.NewClientOptions().AddBroker(brokerURL).
		SetClientID("mes-" + strings.ReplaceAll(t.Name(), "/", "-") + "-" + time.Now().Format("150405.000000000")).
		SetAutoReconnect(false).SetCleanSession(true).SetProtocolVersion(4)
	s.c = mqtt.NewClient(opts)
	if tok := s.c.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("subscriber connect: %v", tok.Error())
	}
	t.Cleanup(func() { s.c.Disconnect(0) })
	for _, f := range filters {
		tok := s.c.Subscribe(f, 1, func(_ mqtt.Client, m mqtt.Message) {
			s.mu.Lock()
			s.msgs = append(s.msgs, received{m.Topic(), string(m.Payload()), m.Retained()})
			s.mu.Unlock()
		})
		if !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
			t.Fatalf("subscribe %s: %v", f, tok.Error())
		}
	}
	return s
}

func (s *subscriber) received() []received {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]received(nil), s.msgs...)
}

// live is what was received without the retained flag. A subscriber that
// subscribed just before a retained publish may get it twice, once live and
// once as the retained copy mochi sends after the SUBACK.
func (s *subscriber) live() []received {
	var out []received
	for _, m := range s.received() {
		if !m.retained {
			out = append(out, m)
		}
	}
	return out
}
