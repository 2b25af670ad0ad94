package buffer

import (
	"bytes"
	"math"
	"slices"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

// richMessage has every kind of string and value Read decodes, some of
// them too long for the name table, and differs by i.
func richMessage(i int) Message {
	m := sampleMessage(0, 8)
	m.Equipment = "press0" + string(rune('0'+i%3))
	m.Readings = append(m.Readings,
		Reading{Tag: "recipe", Value: strings.Repeat("long text value ", 8), TS: t0},
		Reading{Tag: "zones", Value: []any{1.5, int64(-2), "x", []any{uint64(3)}}, TS: t0},
		Reading{Tag: "counter", Value: uint64(1<<40 + i), Quality: Uncertain, Error: strings.Repeat("e", 100), TS: t0},
		Reading{Tag: "nan", Value: math.NaN(), TS: t0},
		Reading{Tag: strings.Repeat("t", 70), Value: float64(i), TS: t0})
	return m
}

// encodedEqual compares messages by their encoding, which also works for
// NaN values (reflect.DeepEqual does not).
func encodedEqual(t *testing.T, got, want Message) {
	t.Helper()
	g, err := appendMessage(nil, &got)
	if err != nil {
		t.Fatal(err)
	}
	w, err := appendMessage(nil, &want)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(g, w) {
		t.Fatalf("seq %d:\n got %+v\nwant %+v", want.Seq, got, want)
	}
}

func TestReadResultsOutliveTheFile(t *testing.T) {
	// Read decodes straight from bbolt's mmap: everything it returns must
	// be copied out, or using it after Close (which unmaps) would fault or
	// show other data.
	q := openTest(t, Options{Path: tempPath(t)})
	var want []Message
	for i := range 12 {
		m := richMessage(i)
		m.Seq = mustAppend(t, q, m)
		want = append(want, m)
	}
	mustFlush(t, q)
	var got []Message
	for after := uint64(0); ; {
		ms, err := q.Read(after, 5)
		if err != nil {
			t.Fatal(err)
		}
		if len(ms) == 0 {
			break
		}
		got = append(got, ms...)
		after = ms[len(ms)-1].Seq
	}
	mustClose(t, q)
	if len(got) != len(want) {
		t.Fatalf("read %d messages, want %d", len(got), len(want))
	}
	for i := range got {
		encodedEqual(t, got[i], want[i])
	}
}

func TestReadMessagesDoNotShareSlices(t *testing.T) {
	// The readings (and attributes) of a batch are one allocation; a
	// caller appending to one message must not overwrite the next.
	q := openTest(t, Options{Path: tempPath(t)})
	for range 3 {
		mustAppend(t, q, sampleMessage(0, 4))
	}
	mustFlush(t, q)
	ms, err := q.Read(0, 3)
	if err != nil || len(ms) != 3 {
		t.Fatal(len(ms), err)
	}
	_ = append(ms[0].Readings, Reading{Tag: "extra"})
	_ = append(ms[0].Readings[0].Attrs, Attr{Key: "extra"})
	if want := sampleMessage(2, 4); !messagesEqual(ms[1], want) {
		t.Fatalf("got %+v, want %+v", ms[1], want)
	}
}

func TestReadFillsTheBatchPastBadRecords(t *testing.T) {
	// Records that pass the checksum but do not decode (here a record under
	// another seq's key, and one with a trailing byte) are only found while
	// decoding; Read still returns max messages when there are that many.
	q := openTest(t, Options{Path: tempPath(t)})
	for range 7 {
		mustAppend(t, q, sampleMessage(0, 3))
	}
	mustFlush(t, q)
	err := q.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket([]byte(bucketMsgs))
		key := func(seq byte) []byte { return []byte{0, 0, 0, 0, 0, 0, 0, seq} }
		if err := b.Put(key(2), bytes.Clone(b.Get(key(3)))); err != nil {
			return err
		}
		v := b.Get(key(4))
		return b.Put(key(4), sealRecord(append(bytes.Clone(v[:len(v)-crcSize]), 0)))
	})
	if err != nil {
		t.Fatal(err)
	}
	ms, err := q.Read(0, 3)
	if err != nil {
		t.Fatal(err)
	}
	if got := seqsOf(ms); !slices.Equal(got, []uint64{1, 3, 5}) {
		t.Fatalf("read %v, want [1 3 5]", got)
	}
	for _, m := range ms {
		want := sampleMessage(m.Seq, 3)
		if !messagesEqual(m, want) {
			t.Fatalf("got %+v, want %+v", m, want)
		}
	}
	mustFlush(t, q)
	if st := q.Stats(); st.Dropped != 2 || st.Messages != 5 {
		t.Fatalf("stats %+v", st)
	}
}

func TestReadAllocations(t *testing.T) {
	// Read allocates per batch, not per reading: the readings share one
	// slice, and tags, units and states come from the name table. Only
	// boxing a number that is not a small integer allocates per reading,
	// so the values here are small integers and states. (Only a count
	// limit here, no timing.)
	q := openTest(t, Options{Path: tempPath(t)})
	const n, readings = 20, 30
	for d := range n {
		m := Message{Created: t0, Equipment: "press" + string(rune('a'+d)), Class: "process"}
		for i := range readings {
			var v any = int64(i)
			if i%2 == 0 {
				v = "running"
			}
			m.Readings = append(m.Readings, Reading{Tag: "temperature_" + string(rune('a'+i)), Unit: "degC",
				Value: v, TS: t0.Add(-time.Millisecond)})
		}
		mustAppend(t, q, m)
	}
	mustFlush(t, q)
	read := func() {
		if ms, err := q.Read(0, n); err != nil || len(ms) != n {
			t.Fatal(len(ms), err)
		}
	}
	read() // fills the name table
	// The messages slice, the readings slice, and bbolt's transaction.
	if allocs := testing.AllocsPerRun(20, read); allocs > 20 {
		t.Fatalf("Read of %d messages of %d readings: %v allocations, want <= 20", n, readings, allocs)
	}
}

func TestReadBatchReusesMemory(t *testing.T) {
	// Reading into the same Batch again decodes into the readings of the
	// batch before, when they are room enough and the first pass takes
	// them; every message must still come out whole, including when a bad
	// record makes Read decode in two passes (the second pass must not
	// reuse what the first handed out).
	cases := []struct {
		name        string
		first, next int  // messages read by the first and the next ReadBatch
		corrupt     bool // a record of the next read fails to decode
		reuse       bool // the next read's readings are the first's memory
	}{
		{name: "same size", first: 4, next: 4, reuse: true},
		{name: "smaller", first: 6, next: 2, reuse: true},
		{name: "larger", first: 2, next: 6, reuse: false},
		{name: "two passes", first: 6, next: 4, corrupt: true, reuse: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			q := openTest(t, Options{Path: tempPath(t)})
			var want []Message
			for i := range tc.first + tc.next + 1 {
				m := richMessage(i) // their readings differ
				m.Seq = mustAppend(t, q, m)
				want = append(want, m)
			}
			mustFlush(t, q)
			var b Batch
			if err := q.ReadBatch(&b, 0, tc.first); err != nil || len(b.Messages) != tc.first {
				t.Fatalf("first read: %d messages, %v", len(b.Messages), err)
			}
			before := &b.Messages[0].Readings[0]
			after := uint64(tc.first)
			wantSeqs := want[tc.first : tc.first+tc.next]
			if tc.corrupt {
				// The record after the first of this read holds a trailing
				// byte: it passes the checksum and fails to decode.
				bad := after + 2
				err := q.db.Update(func(tx *bolt.Tx) error {
					bk := tx.Bucket([]byte(bucketMsgs))
					key := []byte{0, 0, 0, 0, 0, 0, 0, byte(bad)}
					v := bk.Get(key)
					return bk.Put(key, sealRecord(append(bytes.Clone(v[:len(v)-crcSize]), 0)))
				})
				if err != nil {
					t.Fatal(err)
				}
				wantSeqs = slices.Concat(want[tc.first:bad-1], want[bad:tc.first+tc.next+1])
			}
			if err := q.ReadBatch(&b, after, tc.next); err != nil {
				t.Fatal(err)
			}
			if got := seqsOf(b.Messages); !slices.Equal(got, seqsOf(wantSeqs)) {
				t.Fatalf("read %v, want %v", got, seqsOf(wantSeqs))
			}
			for i, m := range b.Messages {
				encodedEqual(t, m, wantSeqs[i])
			}
			if reused := &b.Messages[0].Readings[0] == before; reused != tc.reuse {
				t.Fatalf("readings reused: %v, want %v", reused, tc.reuse)
			}
		})
	}
}

func TestReadBatchAllocations(t *testing.T) {
	// The point of a Batch: reading into it again does not allocate the
	// readings (a count, no timing).
	q := openTest(t, Options{Path: tempPath(t)})
	const n = 20
	for range n {
		mustAppend(t, q, Message{Created: t0, Equipment: "press01", Class: "process",
			Readings: slices.Repeat([]Reading{{Tag: "state", Value: "running", TS: t0}}, 30)})
	}
	mustFlush(t, q)
	var b Batch
	readBatch := func() {
		if err := q.ReadBatch(&b, 0, n); err != nil || len(b.Messages) != n {
			t.Fatal(len(b.Messages), err)
		}
	}
	read := func() {
		if ms, err := q.Read(0, n); err != nil || len(ms) != n {
			t.Fatal(len(ms), err)
		}
	}
	readBatch()
	fresh := testing.AllocsPerRun(20, read)
	reused := testing.AllocsPerRun(20, readBatch)
	// Read allocates the messages slice and the readings; ReadBatch neither.
	if reused > fresh-2 {
		t.Fatalf("ReadBatch into a used Batch: %v allocations, Read: %v; want at least 2 fewer", reused, fresh)
	}
}

func TestNameTableBounded(t *testing.T) {
	nt := newNameTable()
	for i := range maxNames + 10 {
		b := []byte("tag" + strings.Repeat("x", i%40) + string(rune(i)))
		if s := nt.intern(b); s != string(b) {
			t.Fatalf("intern(%q) = %q", b, s)
		}
		if len(nt.m) > maxNames || nt.bytes > maxNameBytes {
			t.Fatalf("table grew to %d entries, %d bytes", len(nt.m), nt.bytes)
		}
	}
	long := bytes.Repeat([]byte("y"), maxInternLen+1)
	if s := nt.intern(long); s != string(long) || nt.m[string(long)] != nil {
		t.Fatal("a long string was interned")
	}
}
