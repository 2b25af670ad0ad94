package buffer

import (
	"context"
	"testing"
	"time"
)

// A burst of appends is committed once it pauses, long before the commit
// interval; a stream that never pauses is still committed every interval.
// The intervals are long enough that the two paths cannot be confused on a
// loaded machine.
func TestCommitWhenAppendsPause(t *testing.T) {
	t.Run("burst", func(t *testing.T) {
		// pause 4.8 s; a burst's slice 24 s, the tick 2 min: only the
		// pause commits within the deadline below.
		const interval = 2 * time.Minute
		q := openTest(t, Options{Path: tempPath(t), CommitInterval: interval})
		for i := range 20 {
			mustAppend(t, q, Message{Equipment: "press01", Class: "process", Readings: []Reading{{Tag: "t", Value: int64(i)}}})
		}
		poll(t, 20*time.Second, "burst committed after the pause, not the interval", func() bool {
			return q.Stats().Messages == 20
		})
	})
	// A stream never pauses: only settle's bound on the wait lets the
	// committer (and its tick) commit at all.
	t.Run("stream", func(t *testing.T) {
		const interval = 3 * time.Second // pause: 120 ms; appends every 20 ms
		q := openTest(t, Options{Path: tempPath(t), CommitInterval: interval})
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() {
			defer close(done)
			tk := time.NewTicker(20 * time.Millisecond)
			defer tk.Stop()
			for {
				select {
				case <-ctx.Done():
					return
				case <-tk.C:
					if _, err := q.Append(Message{Equipment: "press01", Class: "process"}); err != nil {
						return
					}
				}
			}
		}()
		defer func() { cancel(); <-done }()
		poll(t, time.Minute, "a stream committed while it goes on", func() bool {
			return q.Stats().Messages > 0
		})
		select {
		case <-done:
			t.Fatal("the appender stopped")
		default:
		}
	})
}
