package buffer

import (
	"os"
	"reflect"
	"sync"
	"testing"
	"time"
)

func TestCompact(t *testing.T) {
	path := tempPath(t)
	q := openTest(t, Options{Path: path, MaxSize: 64 << 20})
	for range 5000 {
		mustAppend(t, q, sampleMessage(0, 10))
	}
	q.AppendEvent(Event{Type: "device_down", TS: t0})
	mustFlush(t, q)
	all := readAll(t, q)
	q.Ack(seqsOf(all[:len(all)-100])...)
	mustFlush(t, q)
	want := readAll(t, q)
	before := fileSize(t, path)

	// Appends and reads go on during the compaction (they wait or stay in
	// memory, but nothing fails or gets lost).
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	var appended []uint64
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			default:
			}
			seq, err := q.Append(sampleMessage(0, 2))
			if err != nil {
				t.Error(err)
				return
			}
			appended = append(appended, seq)
			if _, err := q.Read(4900, 10); err != nil {
				t.Error(err)
				return
			}
			time.Sleep(time.Millisecond)
		}
	}()
	if err := q.Compact(); err != nil {
		t.Fatal(err)
	}
	close(stop)
	wg.Wait()

	after := fileSize(t, path)
	if after >= before/4 {
		t.Fatalf("compaction: %d -> %d bytes", before, after)
	}
	if st := q.Stats(); st.FileSize != after {
		t.Fatalf("Stats.FileSize %d, file %d", st.FileSize, after)
	}
	if _, err := os.Stat(path + ".compact"); !os.IsNotExist(err) {
		t.Fatalf("temporary file left: %v", err)
	}
	mustFlush(t, q)
	got := seqsOf(readAll(t, q))
	wantSeqs := append(seqsOf(want), appended...)
	if !reflect.DeepEqual(got, wantSeqs) {
		t.Fatalf("after compaction: %d messages, want %d", len(got), len(wantSeqs))
	}
	if evs := eventsOfType(t, q, "device_down"); len(evs) != 1 {
		t.Fatalf("events after compaction: %+v", evs)
	}
	next := mustAppend(t, q, sampleMessage(0, 1))
	mustClose(t, q)

	q = openTest(t, Options{Path: path, MaxSize: 64 << 20})
	if got := readAll(t, q); len(got) != len(wantSeqs)+1 || got[len(got)-1].Seq != next {
		t.Fatalf("after reopen: %d messages", len(got))
	}
	if seq := mustAppend(t, q, sampleMessage(0, 1)); seq != next+1 {
		t.Fatalf("seq after compaction and reopen %d, want %d", seq, next+1)
	}
}

// TestLeftoverCompactCopyRemoved: a crash during a compaction leaves
// <path>.compact beside the buffer; the next Open removes it and keeps the
// buffer's messages. A read-only inspection leaves it alone.
func TestLeftoverCompactCopyRemoved(t *testing.T) {
	path := tempPath(t)
	q := openTest(t, Options{Path: path})
	for range 5 {
		mustAppend(t, q, sampleMessage(0, 1))
	}
	mustClose(t, q)
	leftover := path + ".compact"
	if err := os.WriteFile(leftover, make([]byte, 64<<10), 0o600); err != nil {
		t.Fatal(err)
	}
	ro := openTest(t, Options{Path: path, ReadOnly: true})
	mustClose(t, ro)
	if _, err := os.Stat(leftover); err != nil {
		t.Fatalf("a read-only open touched the leftover: %v", err)
	}
	q = openTest(t, Options{Path: path})
	if _, err := os.Stat(leftover); !os.IsNotExist(err) {
		t.Fatalf("leftover compaction copy still there after Open (%v)", err)
	}
	if got := len(readAll(t, q)); got != 5 {
		t.Fatalf("%d messages after Open, want 5", got)
	}
}
