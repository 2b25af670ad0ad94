package buffer

import (
	"slices"
	"strings"
	"testing"
	"time"
)

func TestDropBefore(t *testing.T) {
	tests := []struct {
		name    string
		before  uint64
		dropped int
		left    []uint64
	}{
		{"nothing below", 1, 0, []uint64{1, 2, 3, 4, 5}},
		{"some", 3, 2, []uint64{3, 4, 5}},
		{"all", 100, 5, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := tempPath(t)
			var logs logBuffer
			q := openTest(t, Options{Path: path, Logger: logs.logger()})
			for range 5 {
				mustAppend(t, q, Message{Created: time.Now().UTC(), Equipment: "press01", Class: "process"})
			}
			mustFlush(t, q)
			n, err := q.DropBefore(tt.before)
			if err != nil || n != tt.dropped {
				t.Fatalf("DropBefore(%d) = %d, %v; want %d", tt.before, n, err, tt.dropped)
			}
			if got := seqsOf(readAll(t, q)); !slices.Equal(got, tt.left) {
				t.Fatalf("left %v, want %v", got, tt.left)
			}
			if st := q.Stats(); st.Messages != len(tt.left) {
				t.Fatalf("stats %+v, want %d messages", st, len(tt.left))
			}
			evs := eventsOfType(t, q, EventDropped)
			if tt.dropped == 0 {
				if len(evs) != 0 {
					t.Fatalf("events %+v for nothing dropped", evs)
				}
				return
			}
			if len(evs) != 1 || attr(evs[0], "dropped_seq_from") != uint64(1) || attr(evs[0], "dropped_seq_to") != uint64(tt.dropped) ||
				attr(evs[0], "dropped") != uint64(tt.dropped) {
				t.Fatalf("events %+v", evs)
			}
			if !strings.Contains(logs.String(), "dropped by the operator") {
				t.Fatalf("no warning in the log: %s", logs.String())
			}
			// Survives a reopen: the deletion was committed.
			mustClose(t, q)
			q2 := openTest(t, Options{Path: path})
			if got := seqsOf(readAll(t, q2)); !slices.Equal(got, tt.left) {
				t.Fatalf("after reopen %v, want %v", got, tt.left)
			}
			if st := q2.Stats(); st.NextSeq != 6 {
				t.Fatalf("next seq %d after reopen, want 6", st.NextSeq)
			}
		})
	}
}

func TestDropBeforeClosed(t *testing.T) {
	q := openTest(t, Options{Path: tempPath(t)})
	mustClose(t, q)
	if _, err := q.DropBefore(10); err != ErrClosed {
		t.Fatalf("err %v, want ErrClosed", err)
	}
}
