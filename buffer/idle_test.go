package buffer

import (
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// TestIdleCommitsNothing: with nothing appended the committer does not
// commit on a clock; an acknowledgement alone waits for the next append's
// commit (one fsync pair per message, not two), and is committed on its own
// only after ackCommitDelay or at Close. Every commit is flash wear on a
// line PC.
func TestIdleCommitsNothing(t *testing.T) {
	reg := prometheus.NewRegistry()
	interval := 5 * time.Millisecond
	path := tempPath(t)
	q := openTest(t, Options{Path: path, CommitInterval: interval, Registerer: reg})
	commits := func() float64 { return testutil.ToFloat64(q.met.commits) }
	waitCommits := func(n float64) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for commits() < n {
			if time.Now().After(deadline) {
				t.Fatalf("%v commits, waited for %v", commits(), n)
			}
			time.Sleep(time.Millisecond)
		}
	}

	base := commits()
	s1 := mustAppend(t, q, sampleMessage(0, 1))
	waitCommits(base + 1)
	base++
	if err := q.Ack(s1); err != nil {
		t.Fatal(err)
	}
	// Forty commit intervals with only an ack pending: no commit. (The
	// committer ticked every interval and committed the ack alone.)
	time.Sleep(40 * interval)
	if n := commits() - base; n != 0 {
		t.Fatalf("%v commits while only an acknowledgement was pending", n)
	}
	if st := q.Stats(); st.Messages != 0 || st.Acked != 1 {
		t.Fatalf("stats %+v: want the acknowledged message counted as acked (deleted by the next commit), not as waiting", st)
	}
	// The next append's commit takes the ack along: one commit for both.
	s2 := mustAppend(t, q, sampleMessage(0, 2))
	waitCommits(base + 1)
	time.Sleep(10 * interval) // a second commit would come within this
	if n := commits() - base; n != 1 {
		t.Fatalf("%v commits for one append and one ack, want 1", n)
	}
	if st := q.Stats(); st.Messages != 1 || st.Acked != 0 || st.OldestSeq != s2 {
		t.Fatalf("after the shared commit: %+v, want only seq %d left", st, s2)
	}
	// An ack on its own is committed at Close, so a clean restart does not
	// send it again.
	if err := q.Ack(s2); err != nil {
		t.Fatal(err)
	}
	if err := q.Close(); err != nil {
		t.Fatal(err)
	}
	q2 := openTest(t, Options{Path: path})
	if st := q2.Stats(); st.Messages != 0 {
		t.Fatalf("after Close and reopen: %+v, want the acknowledged message gone", st)
	}
}

// TestAcksAloneCommittedInBulk: a drain with nothing appended (every device
// down for good, a backlog going out) still frees the space: ackCommitBatch
// acknowledgements make a commit at once.
func TestAcksAloneCommittedInBulk(t *testing.T) {
	q := openTest(t, Options{Path: tempPath(t), CommitInterval: 5 * time.Millisecond})
	var seqs []uint64
	for i := range ackCommitBatch {
		seqs = append(seqs, mustAppend(t, q, sampleMessage(0, i%3+1)))
	}
	mustFlush(t, q)
	if err := q.Ack(seqs...); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(ackCommitDelay / 2)
	for q.Stats().Messages != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("%d acknowledgements not committed before ackCommitDelay: %+v", len(seqs), q.Stats())
		}
		time.Sleep(time.Millisecond)
	}
}
