package buffer

import (
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

func messageOfSize(n int) Message {
	return Message{Created: t0, Equipment: "press01", Class: "process",
		Readings: []Reading{{Tag: "blob", Value: strings.Repeat("x", n), TS: t0}}}
}

func TestSizeCap(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	tests := []struct {
		name     string
		maxSize  int64
		n        int
		flushAt  int // Flush (and stat the file) every flushAt appends
		msg      func(i int) Message
		ackEvery int // ack every ackEvery-th committed seq, like a slow uplink
		// noBudget disables the data budget, leaving bbolt's own MaxSize
		// (and the trim-and-retry backstop) alone to hold the cap.
		noBudget bool
	}{
		{name: "256KiB one reading", maxSize: 256 << 10, n: 6000, flushAt: 40, msg: func(int) Message { return sampleMessage(0, 1) }},
		{name: "256KiB ten readings", maxSize: 256 << 10, n: 4000, flushAt: 25, msg: func(int) Message { return sampleMessage(0, 10) }},
		{name: "256KiB bursts larger than the budget", maxSize: 256 << 10, n: 4000, flushAt: 1000, msg: func(int) Message { return sampleMessage(0, 10) }},
		{name: "1MiB values over a page", maxSize: 1 << 20, n: 1500, flushAt: 7, msg: func(int) Message { return messageOfSize(6000) }},
		{name: "1MiB values just over half a page", maxSize: 1 << 20, n: 3000, flushAt: 20, msg: func(int) Message { return messageOfSize(2100) }},
		{name: "1MiB mixed sizes with acks", maxSize: 1 << 20, n: 4000, flushAt: 13, ackEvery: 5,
			msg: func(int) Message { return messageOfSize(rng.IntN(9000)) }},
		{name: "256KiB backstop only", maxSize: 256 << 10, n: 4000, flushAt: 25, noBudget: true, msg: func(int) Message { return sampleMessage(0, 10) }},
		{name: "1MiB backstop only, large values", maxSize: 1 << 20, n: 1500, flushAt: 30, noBudget: true, msg: func(int) Message { return messageOfSize(5000) }},
		{name: "4MiB ten readings with acks", maxSize: 4 << 20, n: 30000, flushAt: 100, ackEvery: 3, msg: func(int) Message { return sampleMessage(0, 10) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := tempPath(t)
			logs := &logBuffer{}
			q := openTest(t, Options{Path: path, MaxSize: tt.maxSize, Logger: logs.logger()})
			if tt.noBudget {
				q.bud.data, q.bud.chunk = 1<<40, 1<<40
			}
			checkSize := func(when string) {
				t.Helper()
				if size := fileSize(t, path); size > tt.maxSize {
					t.Fatalf("%s: file is %d bytes, over max_size %d", when, size, tt.maxSize)
				}
			}
			acked := map[uint64]bool{}
			var last uint64
			for i := range tt.n {
				last = mustAppend(t, q, tt.msg(i))
				if (i+1)%tt.flushAt == 0 {
					mustFlush(t, q)
					checkSize("after a commit")
					if tt.ackEvery > 0 {
						ms, _ := q.Read(0, 1000)
						for _, m := range ms {
							if m.Seq%uint64(tt.ackEvery) == 0 {
								q.Ack(m.Seq)
								acked[m.Seq] = true
							}
						}
					}
				}
			}
			mustFlush(t, q)
			checkSize("after the last commit")

			kept := seqsOf(readAll(t, q))
			if len(kept) == 0 || kept[len(kept)-1] != last {
				t.Fatalf("the newest message is not kept (kept %d)", len(kept))
			}
			// What is kept is the newest messages, without a gap (acked
			// ones aside).
			oldest := kept[0]
			var dropped []uint64
			for s, k := uint64(1), 0; s <= last; s++ {
				switch {
				case k < len(kept) && kept[k] == s:
					k++
				case acked[s]:
				case s > oldest:
					t.Fatalf("seq %d missing between kept %d and %d", s, oldest, last)
				default:
					dropped = append(dropped, s)
				}
			}
			if len(dropped) == 0 {
				t.Fatalf("nothing dropped: the test does not exercise the cap")
			}
			st := q.Stats()
			if st.Dropped != uint64(len(dropped)) || st.Messages != len(kept) || st.OldestSeq != oldest {
				t.Fatalf("stats %+v; dropped %d, kept %d from %d", st, len(dropped), len(kept), oldest)
			}

			// The overflow events account for exactly the dropped seqs.
			isDropped := map[uint64]bool{}
			for _, s := range dropped {
				isDropped[s] = true
			}
			covered := map[uint64]bool{}
			var count uint64
			evs := eventsOfType(t, q, EventOverflow)
			for _, e := range evs {
				from, to, n, ok := overflowRange(e)
				if !ok || from > to {
					t.Fatalf("malformed event %+v", e)
				}
				for s := from; s <= to; s++ {
					if !isDropped[s] && !acked[s] {
						t.Fatalf("event %+v covers seq %d, which was not dropped", e, s)
					}
					if isDropped[s] {
						if covered[s] {
							t.Fatalf("seq %d in two events", s)
						}
						covered[s] = true
					}
				}
				count += n
			}
			if count != uint64(len(dropped)) || len(covered) != len(dropped) {
				t.Fatalf("events count %d and cover %d seqs; %d were dropped", count, len(covered), len(dropped))
			}
			if !strings.Contains(logs.String(), "buffer full: dropped oldest messages") {
				t.Fatal("no Warn about the drops")
			}
			retries := strings.Count(logs.String(), "file cap reached before the data budget")
			t.Logf("kept %d (seq %d..%d), dropped %d in %d events, file %d bytes of %d, backstop retries %d",
				len(kept), oldest, last, len(dropped), len(evs), fileSize(t, path), tt.maxSize, retries)
			if !tt.noBudget && retries > 0 {
				t.Fatalf("bbolt refused to grow the file %d times: the data budget is too optimistic", retries)
			}

			// The invariants hold after reopening.
			mustClose(t, q)
			q = openTest(t, Options{Path: path, MaxSize: tt.maxSize})
			checkSize("after reopen")
			again := seqsOf(readAll(t, q))
			if tt.noBudget {
				// Open applies the real budget: it may trim, oldest first.
				kept = kept[len(kept)-len(again):]
			}
			if len(again) != len(kept) || again[0] != kept[0] {
				t.Fatalf("after reopen %d messages from %v, want %d from %d", len(again), again[:1], len(kept), kept[0])
			}
			if seq := mustAppend(t, q, tt.msg(0)); seq != last+1 {
				t.Fatalf("seq after reopen %d, want %d", seq, last+1)
			}
		})
	}
}

func TestOverflowEventsSplitOnceHandedOut(t *testing.T) {
	// Drops extend the pending overflow event only until Events has handed
	// it out; then a new one starts, so a published event never changes.
	q := openTest(t, Options{Path: tempPath(t), MaxSize: 256 << 10})
	fill := func(n int) {
		for range n {
			mustAppend(t, q, sampleMessage(0, 10))
		}
		mustFlush(t, q)
	}
	fill(2000)
	fill(200)
	first := eventsOfType(t, q, EventOverflow) // hands them out
	if len(first) != 1 {
		t.Fatalf("%d overflow events before hand-out, want 1 (extended)", len(first))
	}
	fill(200)
	fill(200)
	all := eventsOfType(t, q, EventOverflow)
	if len(all) != 2 || !eventsEqual(all[0], first[0]) {
		t.Fatalf("events after hand-out:\n%+v\nfirst was %+v", all, first[0])
	}
	_, to1, _, _ := overflowRange(all[0])
	from2, _, _, _ := overflowRange(all[1])
	if from2 != to1+1 {
		t.Fatalf("second event starts at %d, first ended at %d", from2, to1)
	}
}

func eventsEqual(a, b Event) bool {
	fa, ta, na, _ := overflowRange(a)
	fb, tb, nb, _ := overflowRange(b)
	return a.ID == b.ID && a.TS.Equal(b.TS) && fa == fb && ta == tb && na == nb
}

func TestLowerMaxSizeOnOpen(t *testing.T) {
	path := tempPath(t)
	q := openTest(t, Options{Path: path, MaxSize: 8 << 20})
	for range 8000 {
		mustAppend(t, q, sampleMessage(0, 10))
	}
	mustClose(t, q)
	if size := fileSize(t, path); size <= 1<<20 {
		t.Fatalf("setup: file is only %d bytes", size)
	}
	q = openTest(t, Options{Path: path, MaxSize: 1 << 20})
	if size := fileSize(t, path); size > 1<<20 {
		t.Fatalf("after reopening with max_size 1MiB the file is %d bytes", size)
	}
	kept := seqsOf(readAll(t, q))
	if len(kept) == 0 || kept[len(kept)-1] != 8000 || uint64(len(kept)) != 8000-kept[0]+1 {
		t.Fatalf("kept %d messages, want the newest without gaps", len(kept))
	}
	evs := eventsOfType(t, q, EventOverflow)
	if len(evs) != 1 || attr(evs[0], "dropped_seq_from") != uint64(1) || attr(evs[0], "dropped_seq_to") != kept[0]-1 {
		t.Fatalf("overflow events %+v, kept from %d", evs, kept[0])
	}
}

// TestLossEventsNeverTrimmed: the broker is down, the buffer is full and
// drops the oldest messages, and a flapping device adds device_down and
// device_up events far past the event cap. The events that announce the
// losses are never trimmed (the oldest overflow said where the loss began
// and went first), so every missing seq lies in an announced range; when
// only loss events are left they are merged, not dropped.
func TestLossEventsNeverTrimmed(t *testing.T) {
	q := openTest(t, Options{Path: tempPath(t), MaxSize: 256 << 10})
	var last uint64
	for round := range 40 {
		for range 150 {
			last = mustAppend(t, q, sampleMessage(0, 10))
		}
		for i := range 60 {
			typ := "device_down"
			if i%2 == 1 {
				typ = "device_up"
			}
			if err := q.AppendEvent(Event{Type: typ, TS: t0, Attrs: []Attr{{Key: "device", Value: "press01"}}}); err != nil {
				t.Fatal(err)
			}
		}
		mustFlush(t, q)
		if round%4 == 3 {
			eventsOfType(t, q, EventOverflow) // handed out: the next drops start a new event
		}
	}
	kept := seqsOf(readAll(t, q))
	if len(kept) == 0 || kept[len(kept)-1] != last {
		t.Fatalf("kept %d messages, want the newest", len(kept))
	}
	if q.Stats().Events > maxEvents {
		t.Fatalf("%d events, cap %d", q.Stats().Events, maxEvents)
	}
	overflows := eventsOfType(t, q, EventOverflow)
	announced := func(seq uint64) bool {
		for _, e := range overflows {
			if from, to, _, ok := overflowRange(e); ok && from <= seq && seq <= to {
				return true
			}
		}
		return false
	}
	for seq := uint64(1); seq < kept[0]; seq++ {
		if !announced(seq) {
			t.Fatalf("seq %d is missing and no buffer_overflow event announces it (events %+v)", seq, overflows)
		}
	}
	if len(overflows) < 2 {
		t.Fatalf("%d overflow events: the test did not make separate ones", len(overflows))
	}
}

// TestTrimEventMergesLossEvents: with only loss events left, the two oldest
// overflow events not handed out become one spanning both; handed-out ones
// (ID <= mark) are never rewritten.
func TestTrimEventMergesLossEvents(t *testing.T) {
	q := openTest(t, Options{Path: tempPath(t)})
	ranges := [][3]uint64{{1, 10, 10}, {20, 29, 10}, {40, 44, 5}, {50, 59, 10}}
	for i, r := range ranges {
		if err := q.AppendEvent(overflowEvent(0, t0.Add(time.Duration(i)*time.Second), r[0], r[1], r[2])); err != nil {
			t.Fatal(err)
		}
	}
	mustFlush(t, q)
	tests := []struct {
		mark uint64
		want [][3]uint64
		done bool
	}{
		{1, [][3]uint64{{1, 10, 10}, {20, 44, 15}, {50, 59, 10}}, true}, // event 1 was handed out
		{1, [][3]uint64{{1, 10, 10}, {20, 59, 25}}, true},
		{1, [][3]uint64{{1, 10, 10}, {20, 59, 25}}, false}, // only one left above the mark
	}
	for i, tt := range tests {
		var done bool
		err := q.db.Update(func(tx *bolt.Tx) error {
			var out txOutcome
			var err error
			done, err = q.trimEvent(tx.Bucket([]byte(bucketEvents)), tt.mark, &out)
			return err
		})
		if err != nil || done != tt.done {
			t.Fatalf("step %d: done %v, err %v; want done %v", i, done, err, tt.done)
		}
		evs := eventsOfType(t, q, EventOverflow)
		var got [][3]uint64
		for _, e := range evs {
			f, to, n, _ := overflowRange(e)
			got = append(got, [3]uint64{f, to, n})
		}
		if !reflect.DeepEqual(got, tt.want) {
			t.Fatalf("step %d: ranges %v, want %v", i, got, tt.want)
		}
	}
}

// TestBackstopDropsOnlyWhatIsNeeded: when bbolt refuses to grow the file
// (the data budget off, so the backstop alone holds the cap), room is made
// by dropping about what the new messages need, not half the backlog per
// retry. Random record sizes in a 1 MiB buffer: once full, what the buffer
// keeps never falls far below what it held at its fullest.
func TestBackstopDropsOnlyWhatIsNeeded(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 11))
	logs := &logBuffer{}
	q := openTest(t, Options{Path: tempPath(t), MaxSize: 1 << 20, Logger: logs.logger()})
	q.bud.data, q.bud.chunk = 1<<40, 1<<40
	var most, least int64
	var drops uint64
	for i := range 3000 {
		mustAppend(t, q, messageOfSize(200+rng.IntN(3000)))
		if (i+1)%10 != 0 {
			continue
		}
		before := q.Stats()
		mustFlush(t, q)
		st := q.Stats()
		if st.Dropped == 0 {
			most = max(most, st.Bytes)
			continue
		}
		if st.Dropped > before.Dropped {
			drops++
		}
		if least == 0 || st.Bytes < least {
			least = st.Bytes
		}
		most = max(most, st.Bytes)
	}
	if drops == 0 {
		t.Fatal("the backstop never dropped: the test does not exercise it")
	}
	t.Logf("kept bytes: most %d, least after the first drop %d (%.0f %%), %d commits dropped, retries %d",
		most, least, 100*float64(least)/float64(most), drops, strings.Count(logs.String(), "file cap reached before the data budget"))
	if least < most*6/10 {
		t.Fatalf("the buffer fell to %d bytes of the %d it held: the backstop dropped far more than it needed", least, most)
	}
}
