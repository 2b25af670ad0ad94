package uplink

import (
	"bufio"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/linegate/linegate/internal/testkit"
)

// mqttWire is a TCP proxy in front of a broker that records the MQTT 3.1.1
// packets its clients send (CONNECT with its will, SUBSCRIBE, PUBLISH,
// DISCONNECT), as the Sparkplug TCK does with its broker extension: QoS,
// retain flags and the will are what a subscriber cannot see. cut drops a
// client's connection without a DISCONNECT, so the broker publishes its will.
type mqttWire struct {
	addr   string
	target string
	name   string
	rec    *wireLog

	mu    sync.Mutex
	conns []net.Conn // client sides
}

// wireLog is the packets of one or more proxies, in one order.
type wireLog struct {
	mu   sync.Mutex
	pkts []wirePkt
	open map[string]int // open connections per proxy
	// overlap is set when a CONNECT arrived while another proxy had a
	// connection that had not sent DISCONNECT or closed.
	overlap bool
	nconn   int
}

// wirePkt is one packet a client sent.
type wirePkt struct {
	proxy string
	conn  int  // connection number, across proxies, from 0
	typ   byte // 1 CONNECT, 3 PUBLISH, 8 SUBSCRIBE, 14 DISCONNECT, 0 = closed without DISCONNECT
	at    time.Time

	// CONNECT
	protoLevel              byte
	clean, will, willRetain bool
	willQoS                 byte
	willTopic               string
	willPayload             []byte
	// PUBLISH
	topic   string
	qos     byte
	retain  bool
	payload []byte
	// SUBSCRIBE
	subs []wireSub
}

type wireSub struct {
	filter string
	qos    byte
}

func newWireLog() *wireLog { return &wireLog{open: map[string]int{}} }

func startWire(t *testing.T, name, target string, rec *wireLog) *mqttWire {
	t.Helper()
	w := &mqttWire{target: target, name: name, rec: rec}
	w.addr = testkit.Serve(t, w.handle)
	return w
}

func (w *mqttWire) url() string { return "tcp://" + w.addr }

// handle proxies one client connection; it returns once both sides are
// closed.
func (w *mqttWire) handle(c net.Conn) {
	b, err := net.Dial("tcp", w.target)
	if err != nil {
		return
	}
	w.mu.Lock()
	w.conns = append(w.conns, c)
	w.mu.Unlock()
	done := make(chan struct{})
	go func() {
		defer close(done)
		_, _ = io.Copy(c, b)
		c.Close()
	}()
	w.forward(c, b)
	b.Close()
	<-done
}

// cut closes every client connection without a DISCONNECT.
func (w *mqttWire) cut() {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, c := range w.conns {
		c.Close()
	}
}

// forward copies the client's packets to the broker, recording each.
func (w *mqttWire) forward(c, b net.Conn) {
	r := bufio.NewReader(c)
	conn := -1
	disconnected := false
	defer func() {
		if conn >= 0 {
			w.rec.closed(w.name, conn, disconnected)
		}
	}()
	for {
		h, err := r.ReadByte()
		if err != nil {
			return
		}
		n, lenBytes, err := readRemaining(r)
		if err != nil {
			return
		}
		body := make([]byte, n)
		if _, err := io.ReadFull(r, body); err != nil {
			return
		}
		p := wirePkt{proxy: w.name, typ: h >> 4, at: time.Now()}
		switch p.typ {
		case 1:
			parseConnect(&p, body)
			conn = w.rec.connect(w.name)
		case 3:
			p.qos, p.retain = (h>>1)&3, h&1 == 1
			if s, rest, ok := mqttString(body); ok {
				p.topic = s
				if p.qos > 0 && len(rest) >= 2 {
					rest = rest[2:]
				}
				p.payload = append([]byte(nil), rest...)
			}
		case 8:
			rest := body[min(2, len(body)):]
			for len(rest) > 0 {
				s, r2, ok := mqttString(rest)
				if !ok || len(r2) < 1 {
					break
				}
				p.subs = append(p.subs, wireSub{s, r2[0]})
				rest = r2[1:]
			}
		case 14:
			disconnected = true
		}
		p.conn = conn
		if p.typ == 1 || p.typ == 3 || p.typ == 8 || p.typ == 14 {
			w.rec.add(p)
		}
		out := append(append([]byte{h}, lenBytes...), body...)
		if _, err := b.Write(out); err != nil {
			return
		}
	}
}

func readRemaining(r *bufio.Reader) (int, []byte, error) {
	var n, shift int
	var raw []byte
	for i := 0; i < 4; i++ {
		c, err := r.ReadByte()
		if err != nil {
			return 0, nil, err
		}
		raw = append(raw, c)
		n |= int(c&0x7f) << shift
		if c&0x80 == 0 {
			return n, raw, nil
		}
		shift += 7
	}
	return 0, nil, errors.New("remaining length too long")
}

func mqttString(b []byte) (string, []byte, bool) {
	if len(b) < 2 {
		return "", nil, false
	}
	n := int(binary.BigEndian.Uint16(b))
	if len(b) < 2+n {
		return "", nil, false
	}
	return string(b[2 : 2+n]), b[2+n:], true
}

func parseConnect(p *wirePkt, body []byte) {
	_, rest, ok := mqttString(body) // protocol name
	if !ok || len(rest) < 4 {
		return
	}
	p.protoLevel = rest[0]
	flags := rest[1]
	p.clean = flags&0x02 != 0
	p.will = flags&0x04 != 0
	p.willQoS = (flags >> 3) & 3
	p.willRetain = flags&0x20 != 0
	rest = rest[4:]
	if _, rest, ok = mqttString(rest); !ok { // client id
		return
	}
	if p.will {
		if p.willTopic, rest, ok = mqttString(rest); !ok {
			return
		}
		var msg string
		if msg, _, ok = mqttString(rest); ok {
			p.willPayload = []byte(msg)
		}
	}
}

func (l *wireLog) connect(proxy string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	for other, n := range l.open {
		if other != proxy && n > 0 {
			l.overlap = true
		}
	}
	l.open[proxy]++
	l.nconn++
	return l.nconn - 1
}

func (l *wireLog) closed(proxy string, conn int, disconnected bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !disconnected {
		l.open[proxy]--
		l.pkts = append(l.pkts, wirePkt{proxy: proxy, conn: conn, at: time.Now()})
	}
}

func (l *wireLog) add(p wirePkt) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if p.typ == 14 {
		// A DISCONNECT ends the connection for the overlap check: the
		// socket closes right after it.
		l.open[p.proxy]--
	}
	l.pkts = append(l.pkts, p)
}

func (l *wireLog) packets() []wirePkt {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]wirePkt(nil), l.pkts...)
}
