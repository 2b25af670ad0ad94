package uplink

import (
	"errors"
	"fmt"
	"testing"
	"time"
	"unsafe"

	"github.com/linegate/linegate/buffer"
)

func TestPayloadPool(t *testing.T) {
	p := newPayloadPool(64)
	a := p.get(100)
	if len(a) != 0 || cap(a) < 100 {
		t.Fatalf("get: len %d cap %d", len(a), cap(a))
	}
	a = append(a, "payload"...)
	p.put(a)
	if b := p.get(50); len(b) != 0 || unsafe.SliceData(b) != unsafe.SliceData(a) {
		t.Fatal("a buffer given back was not reused")
	}
	p.put(a)
	if b := p.get(1000); unsafe.SliceData(b) == unsafe.SliceData(a) || cap(b) < 1000 {
		t.Fatal("a buffer too small was reused")
	}
	p.put(make([]byte, 0, maxPooledPayload+1))
	if len(p.free) != 0 {
		t.Fatal("an oversized buffer was kept")
	}
	for range maxFreePayloads + 5 {
		p.put(make([]byte, 0, 10))
	}
	if len(p.free) != maxFreePayloads {
		t.Fatalf("free list holds %d", len(p.free))
	}
}

func TestAckerReusesOnlyAcknowledgedPayloads(t *testing.T) {
	// A token that completed with an error may leave its packet queued in
	// paho or in its store, so that payload must not be written again.
	src := newMemSource()
	src.addN(2)
	u, err := New(testConfig("tcp://127.0.0.1:1"), src)
	if err != nil {
		t.Fatal(err)
	}
	s := &session{lost: make(chan struct{})}
	a := newAcker(u, s)
	acked, failed := make([]byte, 0, 10), make([]byte, 0, 10)
	a.fifo = append(a.fifo,
		pending{seq: 1, tok: doneToken{done: closedChan()}, payload: acked},
		pending{seq: 2, tok: doneToken{done: closedChan(), err: errors.New("connection lost")}, payload: failed})
	u.inflight.Add(2)
	a.complete()
	if len(u.payloads.free) != 1 {
		t.Fatalf("%d payloads given back, want 1", len(u.payloads.free))
	}
	if b := <-u.payloads.free; unsafe.SliceData(b) != unsafe.SliceData(acked) {
		t.Fatal("the payload given back is not the acknowledged one")
	}
	if s.err() == nil {
		t.Fatal("the failed publish did not end the session")
	}
}

func TestReusedPayloadsAreIntact(t *testing.T) {
	// Messages of different sizes through paho and a real broker, with the
	// payload buffers going round: every payload the broker got is exactly
	// the encoding of its message.
	b := startBroker(t, "127.0.0.1:0")
	src := newMemSource()
	r := startUplink(t, testConfig(b.url()), src)
	r.waitConnected(t)
	created := time.Now().Add(time.Hour).UTC() // live: not historical
	want := map[string][]byte{}
	for i := range 400 {
		m := buffer.Message{Created: created, Equipment: fmt.Sprintf("press%02d", i%7), Class: "process"}
		for j := range 1 + i%40 {
			m.Readings = append(m.Readings, buffer.Reading{Tag: fmt.Sprintf("t%d", j), Value: float64(i*1000 + j), TS: created})
		}
		m.Seq = src.add(m)
		want[fmt.Sprintf("%s:%d", testGW.ID, m.Seq)] = AppendJSON(nil, m, testGW, false)
	}
	waitDrained(t, src)
	got := 0
	for _, p := range b.hook.published() {
		if !isDataTopic(p.topic) {
			continue
		}
		d := decodeData(t, p.payload)
		if w, ok := want[d.ID]; !ok || string(p.payload) != string(w) {
			t.Fatalf("payload of %s:\n got %s\nwant %s", d.ID, p.payload, w)
		}
		got++
	}
	if got < len(want) {
		t.Fatalf("broker got %d data messages, want %d", got, len(want))
	}
}
