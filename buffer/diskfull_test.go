package buffer

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/linegate/linegate/testdata/peers"
)

// lossRanges returns the seqs the buffer_overflow events announce.
func lossRanges(t *testing.T, q *Queue) (map[uint64]bool, uint64) {
	t.Helper()
	in := map[uint64]bool{}
	var n uint64
	for _, e := range eventsOfType(t, q, EventOverflow) {
		from, to := attr(e, "dropped_seq_from").(uint64), attr(e, "dropped_seq_to").(uint64)
		for s := from; s <= to; s++ {
			in[s] = true
		}
		n += attr(e, "dropped").(uint64)
	}
	return in, n
}

// TestDiskFullLikeBufferFull: on a file system with no byte left (a tmpfs
// the test fills), commits go on: the oldest messages make room, a
// buffer_overflow event names them, acknowledgements free room while the
// disk is still full, and once the disk has room the reserve is back and
// the gauge says so.
func TestDiskFullLikeBufferFull(t *testing.T) {
	mnt := peers.MountTmpfs(t, "4m")
	path := filepath.Join(mnt, "buffer.db")
	logs := &logBuffer{}
	q := openTest(t, Options{Path: path, MaxSize: 64 << 20, Logger: logs.logger()})
	defer q.Close()
	if _, err := os.Stat(reservePath(path)); err != nil {
		t.Fatalf("no reserve after Open: %v", err)
	}
	filler := filepath.Join(mnt, "filler")
	peers.FillDisk(t, filler, 0)

	var last uint64
	appendFlush := func(n int) {
		t.Helper()
		for range n {
			last = mustAppend(t, q, sampleMessage(0, 8))
		}
		if err := q.Flush(); err != nil {
			t.Fatalf("Flush on a full disk: %v\n%s", err, tail(logs.String(), 3000))
		}
	}
	// Far more than the 4 MiB hold.
	for range 200 {
		appendFlush(200)
	}
	q.commitMu.Lock()
	full := q.disk.full
	q.commitMu.Unlock()
	if !full {
		t.Fatal("40,000 messages on a 4 MiB disk, and the buffer never saw it full")
	}
	st := q.Stats()
	if st.Dropped == 0 {
		t.Fatal("nothing dropped on a full disk")
	}
	// Every seq is in the file or in an announced range.
	check := func(acked map[uint64]bool) uint64 {
		t.Helper()
		kept := map[uint64]bool{}
		for _, m := range readAll(t, q) {
			kept[m.Seq] = true
		}
		ranges, announced := lossRanges(t, q)
		for s := uint64(1); s <= last; s++ {
			if !kept[s] && !ranges[s] && !acked[s] {
				t.Fatalf("seq %d neither kept, acknowledged nor announced", s)
			}
		}
		return announced
	}
	announced := check(nil)
	t.Logf("disk full: %d appended, %d kept, %d dropped, announced %d", last, st.Messages, st.Dropped, announced)

	// The broker is back, the disk still full: acknowledging everything
	// frees the file's pages, and new messages fit without more drops.
	acked := map[uint64]bool{}
	for _, m := range readAll(t, q) {
		acked[m.Seq] = true
		if err := q.Ack(m.Seq); err != nil {
			t.Fatal(err)
		}
	}
	mustFlush(t, q)
	if n := q.Stats().Messages; n != 0 {
		t.Fatalf("%d messages left after acknowledging all on a full disk", n)
	}
	before := q.Stats().Dropped
	appendFlush(200)
	if d := q.Stats().Dropped - before; d != 0 {
		t.Errorf("%d dropped after the acknowledgements freed the file", d)
	}
	check(acked)

	// Room again.
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	q.commitMu.Lock()
	q.maybeDiskRoom(time.Now().Add(diskRetryEvery))
	full = q.disk.full
	q.commitMu.Unlock()
	if full {
		t.Fatal("the disk has room, the buffer still thinks it full")
	}
	if _, err := os.Stat(reservePath(path)); err != nil {
		t.Fatalf("no reserve after the disk has room: %v", err)
	}
	out := logs.String()
	for _, want := range []string{"buffer: disk full", "disk has room again"} {
		if !strings.Contains(out, want) {
			t.Errorf("log lacks %q", want)
		}
	}
}

// TestPendingMemoryCapped: while every commit fails, the messages waiting
// in memory stay within memCap, the oldest waiting are dropped, and the
// first commit that works announces them.
func TestPendingMemoryCapped(t *testing.T) {
	q := openTest(t, Options{Path: tempPath(t)})
	defer q.Close()
	q.mu.Lock()
	q.commitErr = errors.New("no space left on device (test)")
	q.mu.Unlock()
	limit := q.memCap()
	var last uint64
	var peak int64
	for range 25000 {
		last = mustAppend(t, q, sampleMessage(0, 8))
		q.mu.Lock()
		peak = max(peak, q.pendingBytes)
		q.mu.Unlock()
	}
	if peak > limit+4096 {
		t.Fatalf("%d bytes waiting in memory, cap %d", peak, limit)
	}
	q.mu.Lock()
	q.commitErr = nil
	q.mu.Unlock()
	mustFlush(t, q)
	kept := map[uint64]bool{}
	for _, m := range readAll(t, q) {
		kept[m.Seq] = true
	}
	ranges, announced := lossRanges(t, q)
	for s := uint64(1); s <= last; s++ {
		if !kept[s] && !ranges[s] {
			t.Fatalf("seq %d lost without an event", s)
		}
	}
	if announced+uint64(len(kept)) != last {
		t.Fatalf("%d kept + %d announced != %d appended", len(kept), announced, last)
	}
	t.Logf("25,000 appends while commits fail: at most %d bytes waiting (cap %d), %d kept, %d dropped and announced", peak, limit, len(kept), announced)
}

func tail(s string, n int) string { return s[max(0, len(s)-n):] }
