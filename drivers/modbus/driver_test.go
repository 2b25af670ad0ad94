package modbus

import (
	"context"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/linegate/linegate/internal/testkit"

	"github.com/linegate/linegate/drivers"
)

func newDriver(t *testing.T, addr string, edit func(*Config), tags ...Tag) *Driver {
	t.Helper()
	cfg := Config{Device: "press01", Address: "tcp://" + addr, UnitID: 1, Timeout: 5 * time.Second, Tags: tags}
	if edit != nil {
		edit(&cfg)
	}
	d, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	d.setBackoff(10*time.Millisecond, 50*time.Millisecond)
	t.Cleanup(func() { d.Close() })
	return d
}

func read(t *testing.T, d *Driver) ([]drivers.Sample, error) {
	t.Helper()
	out := make([]drivers.Sample, len(d.fields))
	err := d.Read(context.Background(), out)
	return out, err
}

func wantGood(t *testing.T, out []drivers.Sample, i int, want any) {
	t.Helper()
	s := out[i]
	if s.Quality != drivers.Good || s.Err != nil || !sameValue(s.Value, want) || s.TS.IsZero() {
		t.Errorf("sample %d = %+v, want good %#v", i, s, want)
	}
}

func wantBad(t *testing.T, out []drivers.Sample, i int, errText string) {
	t.Helper()
	s := out[i]
	if s.Quality != drivers.Bad || s.Value != nil || s.Err == nil || !strings.Contains(s.Err.Error(), errText) {
		t.Errorf("sample %d = %+v, want bad with %q", i, s, errText)
	}
}

func TestReadRoundTrip(t *testing.T) {
	b := newBank()
	var tags []Tag
	var want []any
	// Every decode case, in holding and in input registers, with a hole
	// of one register after each so that several reads are needed.
	for _, table := range []string{"holding", "input"} {
		addr := uint16(100)
		for _, tc := range decodeCases {
			tags = append(tags, Tag{Name: tc.name, Register: table, Address: addr, Type: tc.typ, ByteOrder: tc.order, Bit: tc.bit, Length: tc.len})
			want = append(want, tc.want)
			b.setWords(table, addr, tc.words...)
			addr += uint16(len(tc.words)) + 1
		}
	}
	for i, on := range []bool{true, false, true, true, false, false, false, false, false, true} {
		for _, table := range []string{"coil", "discrete"} {
			a := uint16(500 + 3*i) // holes of two bits
			b.setBit(table, a, on)
			tags = append(tags, Tag{Name: table, Register: table, Address: a, Type: "bool", Bit: -1})
			want = append(want, on)
		}
	}
	addr, _ := startServer(t, b, "")
	d := newDriver(t, addr, nil, tags...)
	if n := len(d.Plan()); n < 6 {
		t.Fatalf("plan has %d requests, want several per table: %v", n, d.Plan())
	}

	out, err := read(t, d)
	if err != nil {
		t.Fatal(err)
	}
	for i := range tags {
		wantGood(t, out, i, want[i])
	}

	// The next cycle reuses the connection and sees new values.
	b.setWords("holding", 100, 0x4220, 0x0000) // 40.0
	b.setBit("coil", 500, false)
	out, err = read(t, d)
	if err != nil {
		t.Fatal(err)
	}
	wantGood(t, out, 0, 40.0)
	wantGood(t, out, len(tags)-20, false)
}

func TestReadException(t *testing.T) {
	b := newBank()
	b.limit = 100
	b.setWords("holding", 0, 0x41BC, 0)
	b.setWords("input", 4, 1234)
	addr, _ := startServer(t, b, "")
	d := newDriver(t, addr, nil,
		tg("holding", 0, "float32"),
		tg("holding", 98, "float32"), // 98..99: served
		tg("holding", 150, "float32"),
		tg("input", 4, "int16"),
		tg("holding", 152, "uint16"),
	)
	out, err := read(t, d)
	if err != nil {
		t.Fatalf("an exception is not a device failure: %v", err)
	}
	wantGood(t, out, 0, 23.5)
	wantGood(t, out, 1, 0.0)
	// The merged read 0x0096+3 drew the exception; split, each tag fails alone.
	wantBad(t, out, 2, "read holding 0x0096+2: modbus exception 2 (illegal data address)")
	wantBad(t, out, 4, "read holding 0x0098+1: modbus exception 2 (illegal data address)")
	wantGood(t, out, 3, int64(1234))
	var ex *Exception
	if !errors.As(out[2].Err, &ex) || ex.Code != 2 || ex.Function != 3 {
		t.Errorf("error %v is not Exception{3, 2}", out[2].Err)
	}

	// A device that answers only with exceptions is up: no error.
	d2 := newDriver(t, addr, nil, tg("holding", 200, "uint16"), tg("input", 300, "uint16"))
	out, err = read(t, d2)
	if err != nil {
		t.Errorf("got %v, want nil", err)
	}
	wantBad(t, out, 0, "read holding 0x00C8+1: modbus exception 2")
	wantBad(t, out, 1, "read input 0x012C+1: modbus exception 2")
}

func TestReadServerStopsAndReturns(t *testing.T) {
	b := newBank()
	b.setWords("holding", 10, 1)
	addr, stop := startServer(t, b, "")
	d := newDriver(t, addr, nil, tg("holding", 10, "uint16"), tg("coil", 0, "bool"))
	if _, err := read(t, d); err != nil {
		t.Fatal(err)
	}

	stop()
	out, err := read(t, d)
	if err == nil {
		t.Fatal("no error with the server gone")
	}
	for i := range out {
		if out[i].Quality != drivers.Bad || !errors.Is(out[i].Err, err) {
			t.Errorf("sample %d = %+v, want bad with %v", i, out[i], err)
		}
	}

	b.setWords("holding", 10, 2)
	startServer(t, b, addr)
	testkit.WaitFor(t, waitTimeout, "reconnect", func() bool {
		out, err = read(t, d)
		return err == nil
	})
	wantGood(t, out, 0, int64(2))
	wantGood(t, out, 1, false)
}

func TestReadBackoff(t *testing.T) {
	addr := freeAddr(t) // nobody listens: connection refused
	d := newDriver(t, addr, nil, tg("holding", 0, "uint16"))
	d.setBackoff(time.Hour, time.Hour)

	out, err := read(t, d)
	if err == nil || !strings.Contains(err.Error(), "connection refused") || strings.Contains(err.Error(), "reconnect in") {
		t.Fatalf("first read: %v", err)
	}
	wantBad(t, out, 0, "connection refused")

	// With a server up now, Read must still not dial before the backoff.
	startServer(t, newBank(), addr)
	out, err = read(t, d)
	if err == nil || !strings.HasPrefix(err.Error(), "retry in 1h0m0s: ") || !strings.Contains(err.Error(), "connection refused") {
		t.Fatalf("read during backoff: %v", err)
	}
	wantBad(t, out, 0, "retry in ")

	// Without the device's backoff, the link's own still holds the dial.
	d.setBackoff(0, 0)
	d.l.(*tcpLink).dial.set(time.Hour, time.Hour)
	out, err = read(t, d)
	if err == nil || !strings.HasPrefix(err.Error(), "reconnect in ") || !strings.Contains(err.Error(), "connection refused") {
		t.Fatalf("read during the link's backoff: %v", err)
	}
	wantBad(t, out, 0, "reconnect in ")

}

func TestNextBackoff(t *testing.T) {
	var got []time.Duration
	var cur time.Duration
	for range 7 {
		cur = nextBackoff(cur, time.Second, 30*time.Second)
		got = append(got, cur/time.Second)
	}
	want := []time.Duration{1, 2, 4, 8, 16, 30, 30}
	if !slices.Equal(got, want) {
		t.Errorf("backoff steps %v s, want %v s", got, want)
	}
}

func TestReadTimeout(t *testing.T) {
	addr, got := silentServer(t)
	d := newDriver(t, addr, func(c *Config) { c.Timeout = 100 * time.Millisecond; c.MaxGap = -1 },
		tg("holding", 0, "float32"), tg("holding", 20, "uint16"), tg("input", 0, "uint16"))
	out, err := read(t, d)
	if err == nil || err.Error() != "read holding 0x0014+1: i/o timeout" || !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("got %v, want the timeout of the second request", err)
	}
	for i := range out {
		wantBad(t, out, i, "i/o timeout")
	}
	// Two timeouts in a row end the cycle: the third request is not sent.
	testkit.WaitFor(t, waitTimeout, "two requests at the server", func() bool { return len(got) >= 2 })
	if n := len(got); n != 2 {
		t.Errorf("server saw %d requests, want 2", n)
	}
}

func TestReadLateReplyNotTakenForNext(t *testing.T) {
	b := newBank()
	b.setWords("holding", 0, 0x1111)
	b.setWords("input", 0, 0x2222)
	addr, _ := startServer(t, b, "")
	d := newDriver(t, addr, func(c *Config) { c.Timeout = 200 * time.Millisecond },
		tg("holding", 0, "uint16"), tg("input", 0, "uint16"))
	if _, err := read(t, d); err != nil {
		t.Fatal(err)
	}

	// The holding reply is held until after the client gave up on it. Had
	// the client kept the socket, the input request would queue behind the
	// held one on the server and then read the late holding reply.
	held := b.holdNext()
	out, err := read(t, d)
	select {
	case <-held:
	default:
		t.Fatal("holding request never reached the server")
	}
	if err != nil {
		t.Fatalf("one timeout of two requests is not a device failure: %v", err)
	}
	wantBad(t, out, 0, "read holding 0x0000+1: i/o timeout")
	wantGood(t, out, 1, int64(0x2222))

	b.releaseHeld() // the late reply goes out now, to the abandoned socket
	b.setWords("holding", 0, 0x3333)
	for range 3 {
		out, err = read(t, d)
		if err != nil {
			t.Fatal(err)
		}
		wantGood(t, out, 0, int64(0x3333))
		wantGood(t, out, 1, int64(0x2222))
	}
}

func TestReadContext(t *testing.T) {
	t.Run("cancelled before", func(t *testing.T) {
		addr, got := silentServer(t)
		d := newDriver(t, addr, nil, tg("holding", 0, "uint16"), tg("coil", 0, "bool"))
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		out := make([]drivers.Sample, 2)
		if err := d.Read(ctx, out); !errors.Is(err, context.Canceled) {
			t.Fatalf("got %v, want context.Canceled", err)
		}
		wantBad(t, out, 0, "context canceled")
		wantBad(t, out, 1, "context canceled")
		if len(got) != 0 {
			t.Error("a request was sent")
		}
	})
	t.Run("cancelled during a request", func(t *testing.T) {
		addr, got := silentServer(t)
		d := newDriver(t, addr, func(c *Config) { c.Timeout = time.Hour }, tg("holding", 0, "uint16"), tg("coil", 0, "bool"))
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		out := make([]drivers.Sample, 2)
		done := make(chan error, 1)
		go func() { done <- d.Read(ctx, out) }()
		<-got // the request is at the server, which will never answer
		cancel()
		select {
		case err := <-done:
			if !errors.Is(err, context.Canceled) {
				t.Fatalf("got %v, want context.Canceled", err)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("Read did not return after cancel")
		}
		wantBad(t, out, 0, "context canceled")
		wantBad(t, out, 1, "context canceled")
	})
	t.Run("deadline shorter than timeout", func(t *testing.T) {
		addr, _ := silentServer(t)
		d := newDriver(t, addr, func(c *Config) { c.Timeout = time.Hour }, tg("holding", 0, "uint16"))
		ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
		defer cancel()
		if err := d.Read(ctx, make([]drivers.Sample, 1)); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("got %v, want context.DeadlineExceeded", err)
		}
	})
}

func TestCloseDuringRead(t *testing.T) {
	addr, got := silentServer(t)
	d := newDriver(t, addr, func(c *Config) { c.Timeout = time.Hour }, tg("holding", 0, "uint16"))
	done := make(chan error, 1)
	go func() { done <- d.Read(context.Background(), make([]drivers.Sample, 1)) }()
	<-got
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if err == nil {
			t.Fatal("Read succeeded on a closed connection")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Read did not return after Close")
	}
}

func TestReadAfterCloseReconnects(t *testing.T) {
	b := newBank()
	b.setWords("holding", 0, 7)
	addr, _ := startServer(t, b, "")
	d := newDriver(t, addr, nil, tg("holding", 0, "uint16"))
	for range 3 {
		out, err := read(t, d)
		if err != nil {
			t.Fatal(err)
		}
		wantGood(t, out, 0, int64(7))
		if err := d.Close(); err != nil {
			t.Fatal(err)
		}
	}
	if err := d.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

func TestReadMalformedReplies(t *testing.T) {
	// reply builds a response to a read request ADU from a PDU.
	reply := func(req []byte, pdu ...byte) []byte {
		adu := make([]byte, 7, 7+len(pdu))
		copy(adu, req[:4])
		binary.BigEndian.PutUint16(adu[4:], uint16(1+len(pdu)))
		adu[6] = req[6]
		return append(adu, pdu...)
	}
	tests := []struct {
		name  string
		reply func(req []byte) []byte
		want  string
	}{
		{"fewer registers than asked", func(req []byte) []byte { return reply(req, 3, 2, 0, 1) }, "reply has 2 data bytes, want 4"},
		{"more registers than asked", func(req []byte) []byte { return reply(req, 3, 6, 0, 1, 0, 2, 0, 3) }, "reply has 6 data bytes, want 4"},
		{"byte count mismatch", func(req []byte) []byte { return reply(req, 3, 9, 0, 1) }, "does not match count"},
		{"wrong transaction id", func(req []byte) []byte { r := reply(req, 3, 4, 0, 1, 0, 2); r[1]++; return r }, "transaction id"},
		{"wrong unit id", func(req []byte) []byte { r := reply(req, 3, 4, 0, 1, 0, 2); r[6]++; return r }, "unit id"},
		{"zero length", func(req []byte) []byte { r := reply(req, 3); binary.BigEndian.PutUint16(r[4:], 0); return r[:7] }, "bad MBAP length 0"},
		{"huge length", func(req []byte) []byte { r := reply(req, 3); binary.BigEndian.PutUint16(r[4:], 0xFFFF); return r }, "bad MBAP length 65535"},
		{"other function code", func(req []byte) []byte { return reply(req, 4, 4, 0, 1, 0, 2) }, "modbus: exception"},
		{"empty data", func(req []byte) []byte { return reply(req, 3) }, "empty"},
		{"closed", func(req []byte) []byte { return nil }, "connection closed by device"},
		{"bytes after the reply", func(req []byte) []byte { return append(reply(req, 3, 4, 0, 1, 0, 2), 0, 0) }, "2 unexpected bytes after the reply"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			addr, accepts := rawServer(t, tc.reply)
			d := newDriver(t, addr, func(c *Config) { c.Timeout = 200 * time.Millisecond }, tg("holding", 0, "float32"))
			d.setBackoff(0, 0) // retry at once
			for range 2 {
				out, err := read(t, d)
				if err == nil {
					t.Fatalf("no error; sample %+v", out[0])
				}
				wantBad(t, out, 0, tc.want)
				wantBad(t, out, 0, "read holding 0x0000+2: ")
			}
			// Out of step: every failure drops the socket.
			if n := accepts(); n != 2 {
				t.Errorf("%d connections, want 2", n)
			}
		})
	}
}

func TestReadShortOut(t *testing.T) {
	d, err := New(Config{Address: "tcp://127.0.0.1:1", Tags: []Tag{tg("holding", 0, "uint16"), tg("holding", 1, "uint16")}})
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Read(context.Background(), make([]drivers.Sample, 1)); err == nil {
		t.Error("no error for a short out slice")
	}
}

func TestReadNoTags(t *testing.T) {
	d, err := New(Config{Address: "tcp://127.0.0.1:1"})
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Read(context.Background(), nil); err != nil {
		t.Errorf("got %v", err)
	}
}

// BenchmarkRead is one cycle of 20 tags in 4 requests over loopback.
func BenchmarkRead(b *testing.B) {
	bk := newBank()
	var tags []Tag
	for i := range 16 {
		tags = append(tags, tg("holding", uint16(2*i), "float32"))
		bk.setWords("holding", uint16(2*i), 0x41BC, uint16(i)) // 23.5...
	}
	bk.setWords("input", 4, 1234)
	tags = append(tags, tg("input", 4, "int16"), tg("coil", 0, "bool"), tg("discrete", 3, "bool"), strTag(50, 8))
	addr, _ := startServer(b, bk, "")
	d, err := New(Config{Address: "tcp://" + addr, UnitID: 1, Tags: tags})
	if err != nil {
		b.Fatal(err)
	}
	defer d.Close()
	out := make([]drivers.Sample, len(tags))
	b.ReportAllocs()
	for b.Loop() {
		if err := d.Read(context.Background(), out); err != nil {
			b.Fatal(err)
		}
	}
}

// A reply that arrives in pieces (header, then the rest, byte by byte) is
// read whole: roundTrip reads what is there and then what is missing.
func TestReadReplyInPieces(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	t.Cleanup(func() { l.Close(); <-done })
	go func() {
		defer close(done)
		c, err := l.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		req := make([]byte, 12)
		for {
			if _, err := io.ReadFull(c, req); err != nil {
				return
			}
			resp := []byte{req[0], req[1], 0, 0, 0, 7, req[6], 3, 4, 0x41, 0xbc, 0, 0} // 23.5 as float32
			pieces := [][]byte{resp[:7]}
			for i := 7; i < len(resp); i++ {
				pieces = append(pieces, resp[i:i+1])
			}
			for _, p := range pieces {
				if _, err := c.Write(p); err != nil {
					return
				}
			}
		}
	}()
	d := newDriver(t, l.Addr().String(), nil, tg("holding", 0, "float32"))
	for range 3 {
		out, err := read(t, d)
		if err != nil {
			t.Fatal(err)
		}
		if out[0].Value != float64(23.5) {
			t.Fatalf("value %v, want 23.5", out[0].Value)
		}
	}
}
