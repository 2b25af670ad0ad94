package modbus_test

// responder is a Modbus slave of the tests' own, for device behaviours
// pymodbus cannot show (a reply just after the master's timeout, a
// transient exception, an echo byte, a gateway that answers with another
// unit id, a reply paced at a real baud rate). It speaks RTU or ASCII on
// end A of a socat pty pair, or Modbus TCP on a loopback port, and serves
// one request at a time, as a slave on a bus does.

import (
	"bufio"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"io"
	"net"
	"os"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/linegate/linegate/internal/testkit"
	"github.com/linegate/linegate/testdata/peers"
)

// answer is what the responder does with one request: reply is the PDU to
// send (nil: the table's own answer; empty: no reply at all); delay is
// waited before it; prefix is written before the frame (garbage, an
// echo); with setUnit, unit replaces the unit id of the reply.
type answer struct {
	reply   []byte
	delay   time.Duration
	prefix  []byte
	setUnit bool
	unit    byte
}

type responder struct {
	t      testing.TB
	framer string // rtu | ascii | tcp
	Device string // the pty end the driver opens (serial)
	Addr   string // host:port (tcp)
	// charTime paces the reply's bytes as a line at that baud rate would;
	// 0 writes each reply at once.
	charTime time.Duration
	// deaf drops, unanswered, the TCP requests that arrive this soon
	// after their connection was accepted (a device still starting its
	// session).
	deaf time.Duration

	mu    sync.Mutex
	hold  map[uint16]uint16
	coils map[uint16]bool
	n     int // requests served
	// quirk decides the n-th request's answer (n from 0); nil: none.
	quirk func(n int, unit byte, pdu []byte) answer
}

// startResponder serves the holding registers hold (and coils, all off
// at first) under every unit id, over framer rtu, ascii or tcp; quirk (nil:
// none) bends the answers.
func startResponder(t testing.TB, framer string, hold map[uint16]uint16, quirk func(n int, unit byte, pdu []byte) answer) *responder {
	t.Helper()
	r := &responder{t: t, framer: framer, hold: hold, coils: map[uint16]bool{}, quirk: quirk}
	var wg sync.WaitGroup
	switch framer {
	case "tcp":
		r.Addr = testkit.Serve(t, r.serveTCP)
	default:
		pty := peers.StartPtyPair(t)
		f, err := os.OpenFile(pty.A, os.O_RDWR|syscall.O_NOCTTY, 0)
		if err != nil {
			t.Fatal(err)
		}
		r.Device = pty.B
		wg.Add(1)
		go func() {
			defer wg.Done()
			r.serveSerial(f)
		}()
		t.Cleanup(func() {
			f.Close() // wakes the blocked Read
			wg.Wait()
		})
	}
	return r
}

func (r *responder) set(addr, v uint16) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.hold[addr] = v
}

func (r *responder) served() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.n
}

// handle answers one request PDU.
func (r *responder) handle(unit byte, pdu []byte) answer {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := r.n
	r.n++
	var a answer
	if r.quirk != nil {
		r.mu.Unlock()
		a = r.quirk(n, unit, pdu)
		r.mu.Lock()
	}
	if a.reply == nil {
		a.reply = r.table(pdu)
	}
	return a
}

// table answers pdu from the register and coil tables.
func (r *responder) table(pdu []byte) []byte {
	fc := pdu[0]
	exc := func(code byte) []byte { return []byte{fc | 0x80, code} }
	if len(pdu) < 5 {
		return exc(3)
	}
	addr, count := binary.BigEndian.Uint16(pdu[1:]), binary.BigEndian.Uint16(pdu[3:])
	switch fc {
	case 3, 4:
		out := []byte{fc, byte(2 * count)}
		for a := range count {
			v, ok := r.hold[addr+a]
			if !ok {
				return exc(2)
			}
			out = binary.BigEndian.AppendUint16(out, v)
		}
		return out
	case 1:
		out := []byte{fc, byte((count + 7) / 8)}
		out = append(out, make([]byte, (count+7)/8)...)
		for a := range count {
			if r.coils[addr+a] {
				out[2+a/8] |= 1 << (a % 8)
			}
		}
		return out
	case 5:
		r.coils[addr] = count == 0xFF00
		return pdu[:5]
	case 6:
		if _, ok := r.hold[addr]; !ok {
			return exc(2)
		}
		r.hold[addr] = count
		return pdu[:5]
	case 15:
		for a := range count {
			r.coils[addr+a] = pdu[6+a/8]&(1<<(a%8)) != 0
		}
		return pdu[:5]
	case 16:
		for a := range count {
			if _, ok := r.hold[addr+a]; !ok {
				return exc(2)
			}
		}
		for a := range count {
			r.hold[addr+a] = binary.BigEndian.Uint16(pdu[6+2*a:])
		}
		return pdu[:5]
	}
	return exc(1)
}

// serveSerial reads request frames from the pty end and answers them.
func (r *responder) serveSerial(f *os.File) {
	br := bufio.NewReader(f)
	for {
		var unit byte
		var pdu []byte
		if r.framer == "ascii" {
			line, err := br.ReadString('\n')
			if err != nil {
				return
			}
			i := strings.IndexByte(line, ':')
			body, err := hex.DecodeString(strings.TrimRight(line[i+1:], "\r\n"))
			if i < 0 || err != nil || len(body) < 3 {
				continue
			}
			unit, pdu = body[0], body[1:len(body)-1]
		} else {
			frame, err := readRTURequest(br)
			if err != nil {
				if errors.Is(err, errBadFrame) {
					continue
				}
				return
			}
			unit, pdu = frame[0], frame[1:len(frame)-2]
		}
		a := r.handle(unit, pdu)
		if a.setUnit {
			unit = a.unit
		}
		time.Sleep(a.delay) // the slave's own slowness, not synchronisation
		if len(a.reply) == 0 {
			continue
		}
		out := append([]byte(nil), a.prefix...)
		if r.framer == "ascii" {
			out = append(out, asciiFrame(unit, a.reply)...)
		} else {
			out = append(out, rtuFrameOf(unit, a.reply)...)
		}
		if err := r.writePaced(f, out); err != nil {
			return
		}
	}
}

// writePaced writes b at once, or in 5 ms chunks no faster than charTime
// per byte, as a UART would send it (a late chunk does not delay the next).
func (r *responder) writePaced(w io.Writer, b []byte) error {
	if r.charTime == 0 {
		_, err := w.Write(b)
		return err
	}
	per := max(1, int(5*time.Millisecond/r.charTime))
	start := time.Now()
	for sent := 0; sent < len(b); {
		k := min(per, len(b)-sent)
		if _, err := w.Write(b[sent : sent+k]); err != nil {
			return err
		}
		sent += k
		time.Sleep(time.Until(start.Add(time.Duration(sent) * r.charTime)))
	}
	return nil
}

var errBadFrame = errors.New("bad request frame")

// readRTURequest reads one request frame: 8 bytes for functions 1..6, and
// 7 + byte count + 2 for 15 and 16.
func readRTURequest(br *bufio.Reader) ([]byte, error) {
	head := make([]byte, 7)
	if _, err := io.ReadFull(br, head); err != nil {
		return nil, err
	}
	size := 8
	if head[1] == 15 || head[1] == 16 {
		size = 9 + int(head[6])
	}
	frame := append(head, make([]byte, size-7)...)
	if _, err := io.ReadFull(br, frame[7:]); err != nil {
		return nil, err
	}
	if crcOf(frame[:size-2]) != uint16(frame[size-2])|uint16(frame[size-1])<<8 {
		return nil, errBadFrame
	}
	return frame, nil
}

func (r *responder) serveTCP(c net.Conn) {
	defer c.Close()
	accepted := time.Now()
	head := make([]byte, 7)
	for {
		if _, err := io.ReadFull(c, head); err != nil {
			return
		}
		n := int(binary.BigEndian.Uint16(head[4:]))
		if n < 2 || n > 254 {
			return
		}
		pdu := make([]byte, n-1)
		if _, err := io.ReadFull(c, pdu); err != nil {
			return
		}
		if time.Since(accepted) < r.deaf {
			r.mu.Lock()
			r.n++ // seen, not answered
			r.mu.Unlock()
			continue
		}
		unit := head[6]
		a := r.handle(unit, pdu)
		if a.setUnit {
			unit = a.unit
		}
		time.Sleep(a.delay)
		if len(a.reply) == 0 {
			continue
		}
		out := append([]byte(nil), head[:4]...)
		out = binary.BigEndian.AppendUint16(out, uint16(len(a.reply)+1))
		out = append(out, unit)
		out = append(out, a.reply...)
		// A late reply goes to a connection the master may have dropped.
		if _, err := c.Write(out); err != nil {
			return
		}
	}
}

func rtuFrameOf(unit byte, pdu []byte) []byte {
	b := append([]byte{unit}, pdu...)
	c := crcOf(b)
	return append(b, byte(c), byte(c>>8))
}

func asciiFrame(unit byte, pdu []byte) []byte {
	b := append([]byte{unit}, pdu...)
	var lrc byte
	for _, c := range b {
		lrc += c
	}
	b = append(b, -lrc)
	return []byte(":" + strings.ToUpper(hex.EncodeToString(b)) + "\r\n")
}

// crcOf is Modbus RTU's CRC, written again here so that the test does not
// trust the driver's.
func crcOf(b []byte) uint16 {
	crc := uint16(0xFFFF)
	for _, c := range b {
		crc ^= uint16(c)
		for range 8 {
			if crc&1 != 0 {
				crc = crc>>1 ^ 0xA001
			} else {
				crc >>= 1
			}
		}
	}
	return crc
}

// url is the driver address of the responder.
func (r *responder) url() string {
	switch r.framer {
	case "tcp":
		return "tcp://" + r.Addr
	case "ascii":
		return "ascii://" + r.Device + "?parity=N"
	}
	return "rtu://" + r.Device + "?parity=N"
}
