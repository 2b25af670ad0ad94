package buffer

import (
	"sync"
	"testing"
	"time"
)

// TestMaxAgeExpiresOldest: with max_age, messages created longer ago than
// that are dropped, oldest first, at the next commit, and a buffer_expired
// event names their seq range; younger ones stay. Without max_age nothing
// expires.
func TestMaxAgeExpiresOldest(t *testing.T) {
	for _, maxAge := range []time.Duration{0, time.Hour} {
		t.Run(maxAge.String(), func(t *testing.T) {
			var mu sync.Mutex
			now := t0
			clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
			q := openTest(t, Options{Path: tempPath(t), MaxAge: maxAge, Clock: clock})
			msgAt := func(ts time.Time) Message {
				m := sampleMessage(0, 1)
				m.Created = ts
				return m
			}
			for i := range 10 { // seq 1..10, created t0 .. t0+90 min
				mustAppend(t, q, msgAt(t0.Add(time.Duration(i)*10*time.Minute)))
			}
			mustFlush(t, q)
			mu.Lock()
			now = t0.Add(95 * time.Minute) // seq 1..4 (created before t0+35m) are over an hour old
			mu.Unlock()
			mustAppend(t, q, msgAt(t0.Add(95*time.Minute)))
			mustFlush(t, q)
			kept := seqsOf(readAll(t, q))
			evs := eventsOfType(t, q, EventExpired)
			if maxAge == 0 {
				if len(kept) != 11 || len(evs) != 0 {
					t.Fatalf("without max_age: kept %v, events %+v", kept, evs)
				}
				return
			}
			if len(kept) != 7 || kept[0] != 5 {
				t.Fatalf("kept %v, want seq 5..11", kept)
			}
			if len(evs) != 1 || attr(evs[0], "dropped_seq_from") != uint64(1) || attr(evs[0], "dropped_seq_to") != uint64(4) ||
				attr(evs[0], "dropped") != uint64(4) {
				t.Fatalf("buffer_expired events %+v, want one for seq 1..4", evs)
			}
			if st := q.Stats(); st.Dropped != 4 {
				t.Fatalf("stats %+v: the expired messages count as dropped", st)
			}
		})
	}
}
