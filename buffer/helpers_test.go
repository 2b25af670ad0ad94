package buffer

import (
	"bytes"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// manual is a commit interval long enough that only Flush and Close commit,
// for tests that check what is committed when.
const manual = time.Hour

func openTest(t testing.TB, opts Options) *Queue {
	t.Helper()
	if opts.CommitInterval == 0 {
		opts.CommitInterval = manual
	}
	q, err := Open(opts)
	if err != nil {
		t.Fatalf("Open(%s): %v", opts.Path, err)
	}
	t.Cleanup(func() { q.Close() })
	return q
}

func tempPath(t testing.TB) string {
	return filepath.Join(t.TempDir(), "buffer.db")
}

func mustAppend(t testing.TB, q *Queue, m Message) uint64 {
	t.Helper()
	seq, err := q.Append(m)
	if err != nil {
		t.Fatalf("Append: %v", err)
	}
	return seq
}

func mustFlush(t testing.TB, q *Queue) {
	t.Helper()
	if err := q.Flush(); err != nil {
		t.Fatalf("Flush: %v", err)
	}
}

func mustClose(t testing.TB, q *Queue) {
	t.Helper()
	if err := q.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
}

// readAll reads every committed message in batches.
func readAll(t testing.TB, q *Queue) []Message {
	t.Helper()
	var out []Message
	var after uint64
	for {
		ms, err := q.Read(after, 100)
		if err != nil {
			t.Fatalf("Read: %v", err)
		}
		if len(ms) == 0 {
			return out
		}
		out = append(out, ms...)
		after = ms[len(ms)-1].Seq
	}
}

func seqsOf(ms []Message) []uint64 {
	out := make([]uint64, len(ms))
	for i, m := range ms {
		out[i] = m.Seq
	}
	return out
}

func fileSize(t testing.TB, path string) int64 {
	t.Helper()
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return st.Size()
}

// poll waits for cond under a deadline.
func poll(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// logBuffer captures slog output for assertions.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

func (l *logBuffer) logger() *slog.Logger {
	return slog.New(slog.NewTextHandler(l, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// eventsOfType returns the committed events of one type.
func eventsOfType(t testing.TB, q *Queue, typ string) []Event {
	t.Helper()
	evs, err := q.Events(10000)
	if err != nil {
		t.Fatalf("Events: %v", err)
	}
	var out []Event
	for _, e := range evs {
		if e.Type == typ {
			out = append(out, e)
		}
	}
	return out
}

func attr(e Event, key string) any {
	for _, a := range e.Attrs {
		if a.Key == key {
			return a.Value
		}
	}
	return nil
}
