package uplink

import (
	"io"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/linegate/linegate/internal/testkit"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/linegate/linegate/testdata/peers"
)

// pubackDropper is an MQTT proxy that loses one PUBACK on its way to the
// client (the drop-th one of the first connection) and forwards everything
// else, PINGRESP included: a broker that keeps the connection alive while
// one acknowledgement never comes.
type pubackDropper struct {
	ln      net.Listener
	target  string
	drop    int
	seen    atomic.Int32
	dropped atomic.Bool
	wg      sync.WaitGroup
	mu      sync.Mutex
	conns   []net.Conn
}

func startPubackDropper(t *testing.T, target string, drop int) *pubackDropper {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &pubackDropper{ln: ln, target: target, drop: drop}
	p.wg.Add(1)
	go p.accept()
	t.Cleanup(func() {
		ln.Close()
		p.mu.Lock()
		for _, c := range p.conns {
			c.Close()
		}
		p.mu.Unlock()
		p.wg.Wait()
	})
	return p
}

func (p *pubackDropper) url() string { return "tcp://" + p.ln.Addr().String() }

func (p *pubackDropper) accept() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		b, err := net.Dial("tcp", p.target)
		if err != nil {
			c.Close()
			continue
		}
		p.mu.Lock()
		p.conns = append(p.conns, c, b)
		p.mu.Unlock()
		p.wg.Add(2)
		go func() { defer p.wg.Done(); _, _ = io.Copy(b, c); b.Close() }()
		go func() { defer p.wg.Done(); p.filter(c, b); c.Close() }()
	}
}

// filter copies broker → client packet by packet, dropping one PUBACK.
func (p *pubackDropper) filter(dst io.Writer, src io.Reader) {
	for {
		var hdr [1]byte
		if _, err := io.ReadFull(src, hdr[:]); err != nil {
			return
		}
		// Remaining length: a varint of up to four bytes.
		var lenBytes []byte
		n, mul := 0, 1
		for i := 0; i < 4; i++ {
			var b [1]byte
			if _, err := io.ReadFull(src, b[:]); err != nil {
				return
			}
			lenBytes = append(lenBytes, b[0])
			n += int(b[0]&0x7F) * mul
			mul *= 128
			if b[0]&0x80 == 0 {
				break
			}
		}
		body := make([]byte, n)
		if _, err := io.ReadFull(src, body); err != nil {
			return
		}
		if hdr[0]>>4 == 4 && !p.dropped.Load() && int(p.seen.Add(1)) == p.drop {
			p.dropped.Store(true)
			continue
		}
		pkt := append(append(hdr[:], lenBytes...), body...)
		if _, err := dst.Write(pkt); err != nil {
			return
		}
	}
}

// TestAckTimeoutResumes: one PUBACK never comes while the broker answers
// everything else. The window fills behind the unacknowledged message and,
// without an ack timeout, delivery stalls for ever on a "connected" link.
// With it the connection is dropped after AckTimeout, the next one resends
// from the oldest unacknowledged message, and everything is delivered.
func TestAckTimeoutResumes(t *testing.T) {
	b := startBroker(t, "127.0.0.1:0")
	ackTimeoutResumes(t, b.addr, b.url())
}

// TestAckTimeoutResumesMosquitto is the same against a real Mosquitto,
// whose log also shows the end of the stalled connection: a clean
// DISCONNECT (so the broker drops the will), after which the offline status
// the MES saw can only have come from the uplink.
func TestAckTimeoutResumesMosquitto(t *testing.T) {
	peers.Interop(t)
	m := peers.StartMosquitto(t, peers.MosquittoOptions{})
	ackTimeoutResumes(t, m.Addr, m.URL)
	testkit.WaitFor(t, long, "the broker's log of the clean DISCONNECT", func() bool {
		return strings.Contains(m.Log(), "Client "+testClientID+" disconnected.")
	})
	if log := m.Log(); strings.Contains(log, "Client "+testClientID+" closed its connection") {
		t.Errorf("the stalled connection was closed without a DISCONNECT (the will, not the uplink, said offline):\n%s", log)
	}
}

func ackTimeoutResumes(t *testing.T, brokerAddr, brokerURL string) {
	mes := subscribe(t, brokerURL, "linegate/#")
	proxy := startPubackDropper(t, brokerAddr, 3) // 1: online status, 2: first data message, 3: the second
	src := newMemSource()
	cfg := testConfig(proxy.url())
	cfg.MaxInflight = 4
	cfg.AckTimeout = 500 * time.Millisecond
	r := startUplink(t, cfg, src)
	src.addN(20)
	testkit.WaitFor(t, long, "every message acknowledged", func() bool {
		m, _ := src.pending()
		return m == 0
	})
	if !proxy.dropped.Load() {
		t.Fatal("the proxy dropped no PUBACK: the test tested nothing")
	}
	if n := testutil.ToFloat64(r.u.met.ackTimeouts); n < 1 {
		t.Fatalf("ack timeouts %v, want the dropped PUBACK to end the connection", n)
	}
	// The broker's PUBACK to us says nothing of its delivery to the MES'
	// subscription, which may still be on its way: wait for that too.
	var offline bool
	var seen map[uint64]bool
	delivered := func() bool {
		offline, seen = false, map[uint64]bool{}
		for _, m := range mes.received() {
			// The DISCONNECT after the timeout drops the will: the offline
			// status came from the uplink itself.
			if m.topic == statusTopic && strings.Contains(m.payload, `"state":"offline"`) {
				offline = true
			}
			if isDataTopic(m.topic) && !m.retained {
				seen[decodeData(t, []byte(m.payload)).Seq] = true
			}
		}
		for seq := uint64(1); seq <= 20; seq++ {
			if !seen[seq] {
				return false
			}
		}
		return offline
	}
	deadline := time.Now().Add(long)
	for !delivered() && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if !offline {
		t.Error("no offline status after the connection was dropped for the missing PUBACK")
	}
	for seq := uint64(1); seq <= 20; seq++ {
		if !seen[seq] {
			t.Errorf("seq %d never reached the MES", seq)
		}
	}
}
