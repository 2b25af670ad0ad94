package buffer

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	bolt "go.etcd.io/bbolt"
)

func TestAppendReadAck(t *testing.T) {
	path := tempPath(t)
	q := openTest(t, Options{Path: path})
	var want []Message
	for i := range 10 {
		m := sampleMessage(0, i%4+1)
		m.Seq = mustAppend(t, q, m)
		want = append(want, m)
	}
	if got := seqsOf(want); !reflect.DeepEqual(got, []uint64{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}) {
		t.Fatalf("assigned seqs %v", got)
	}
	if got, _ := q.Read(0, 100); len(got) != 0 {
		t.Fatalf("Read before the commit returned %d messages; only committed messages may be published", len(got))
	}
	if st := q.Stats(); st.Pending != 10 || st.Messages != 0 || st.NextSeq != 11 {
		t.Fatalf("stats before commit: %+v", st)
	}
	mustFlush(t, q)

	got := readAll(t, q)
	if len(got) != len(want) {
		t.Fatalf("read %d messages, want %d", len(got), len(want))
	}
	for i := range got {
		if !messagesEqual(got[i], want[i]) {
			t.Fatalf("message %d:\n got %+v\nwant %+v", i, got[i], want[i])
		}
	}
	tests := []struct {
		after uint64
		max   int
		want  []uint64
	}{
		{0, 3, []uint64{1, 2, 3}},
		{5, 3, []uint64{6, 7, 8}},
		{9, 5, []uint64{10}},
		{10, 5, []uint64{}},
		{0, 0, []uint64{}},
	}
	for _, tt := range tests {
		ms, err := q.Read(tt.after, tt.max)
		if err != nil {
			t.Fatal(err)
		}
		if got := seqsOf(ms); !reflect.DeepEqual(got, tt.want) {
			t.Errorf("Read(%d, %d) = %v, want %v", tt.after, tt.max, got, tt.want)
		}
	}

	// Acks are deleted in the next commit but hidden from Read at once.
	if err := q.Ack(1, 2, 3, 7, 99); err != nil {
		t.Fatal(err)
	}
	wantLeft := []uint64{4, 5, 6, 8, 9, 10}
	if got := seqsOf(readAll(t, q)); !reflect.DeepEqual(got, wantLeft) {
		t.Fatalf("after Ack, before commit: %v, want %v", got, wantLeft)
	}
	mustFlush(t, q)
	st := q.Stats()
	if st.Messages != 6 || st.OldestSeq != 4 || !st.OldestCreated.Equal(t0) || st.Pending != 0 {
		t.Fatalf("stats after ack: %+v", st)
	}
	mustClose(t, q)

	q = openTest(t, Options{Path: path})
	if got := seqsOf(readAll(t, q)); !reflect.DeepEqual(got, wantLeft) {
		t.Fatalf("after reopen: %v, want %v", got, wantLeft)
	}
	st2 := q.Stats()
	if st2.Messages != st.Messages || st2.Bytes != st.Bytes || st2.OldestSeq != 4 || st2.NextSeq != 11 {
		t.Fatalf("stats after reopen %+v, before close %+v", st2, st)
	}
}

func TestSeqContinuity(t *testing.T) {
	tests := []struct {
		name  string
		ack   bool
		flush bool                            // Flush before Close (Close flushes anyway)
		after func(t *testing.T, path string) // between Close and Open
	}{
		{name: "kept", flush: true},
		{name: "all acked", ack: true, flush: true},
		{name: "close flushes"},
		{name: "sidecar removed, meta has it", ack: true, flush: true, after: func(t *testing.T, path string) {
			if err := os.Remove(sidecarPath(path)); err != nil {
				t.Fatal(err)
			}
		}},
		{name: "file removed, sidecar has it", ack: true, flush: true, after: func(t *testing.T, path string) {
			if err := os.Remove(path); err != nil {
				t.Fatal(err)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := tempPath(t)
			for round := range 3 {
				q := openTest(t, Options{Path: path})
				for i := range 5 {
					want := uint64(round*5 + i + 1)
					if got := mustAppend(t, q, sampleMessage(0, 1)); got != want {
						t.Fatalf("round %d: seq %d, want %d", round, got, want)
					}
				}
				if tt.flush {
					mustFlush(t, q)
				}
				if tt.ack {
					mustFlush(t, q)
					q.Ack(seqsOf(readAll(t, q))...)
				}
				mustClose(t, q)
				if tt.after != nil {
					tt.after(t, path)
				}
			}
		})
	}
}

func TestSeqAfterCrashWithoutSidecarClean(t *testing.T) {
	// A reserved (not clean) sidecar is a ceiling, not the last seq: with
	// the file healthy, seq continues from the file, without a gap.
	path := tempPath(t)
	q := openTest(t, Options{Path: path})
	for range 3 {
		mustAppend(t, q, sampleMessage(0, 1))
	}
	mustFlush(t, q)
	// Simulate a crash: no clean Close rewrote the sidecar.
	side, ok, err := readSidecar(path)
	if err != nil || !ok || side.clean || side.value < 3+seqReserveBlock {
		t.Fatalf("sidecar after commit: %+v %v %v", side, ok, err)
	}
	q.dbMu.Lock()
	q.db.Close()
	q.db = nil
	q.dbMu.Unlock()
	q.Close()
	if err := writeSidecar(path, side); err != nil { // Close wrote a clean one; put the crash state back
		t.Fatal(err)
	}

	q = openTest(t, Options{Path: path})
	if seq := mustAppend(t, q, sampleMessage(0, 1)); seq != 4 {
		t.Fatalf("seq after crash with healthy file = %d, want 4", seq)
	}
	mustClose(t, q)

	// The file is lost: seq continues above the reservation (a gap, never a reuse).
	if err := writeSidecar(path, side); err != nil {
		t.Fatal(err)
	}
	os.Remove(path)
	q = openTest(t, Options{Path: path})
	if seq := mustAppend(t, q, sampleMessage(0, 1)); seq != side.value+1 {
		t.Fatalf("seq after losing the file = %d, want %d", seq, side.value+1)
	}
}

func TestCommittedSignal(t *testing.T) {
	q := openTest(t, Options{Path: tempPath(t), CommitInterval: 5 * time.Millisecond})
	seq := mustAppend(t, q, sampleMessage(0, 2))
	select {
	case <-q.Committed():
	case <-time.After(10 * time.Second):
		t.Fatal("no commit signal")
	}
	ms, err := q.Read(0, 10)
	if err != nil || len(ms) != 1 || ms[0].Seq != seq {
		t.Fatalf("Read after signal = %v, %v", seqsOf(ms), err)
	}
	// An ack-only commit does not signal.
	q.Ack(seq)
	poll(t, 10*time.Second, "ack committed", func() bool { return q.Stats().Messages == 0 })
	select {
	case <-q.Committed():
		t.Fatal("signal after a commit that added nothing")
	default:
	}
}

func TestConcurrentAppendReadAck(t *testing.T) {
	q := openTest(t, Options{Path: tempPath(t), CommitInterval: 2 * time.Millisecond})
	const writers, perWriter = 3, 600
	var wg sync.WaitGroup
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range perWriter {
				m := sampleMessage(0, 3)
				m.Equipment = string(rune('a' + w))
				m.Readings[0].Value = int64(i)
				if _, err := q.Append(m); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}

	// The reader publishes in order and acks, like the uplink.
	done := make(chan []uint64)
	go func() {
		var got []uint64
		var after uint64
		deadline := time.Now().Add(30 * time.Second)
		for len(got) < writers*perWriter && time.Now().Before(deadline) {
			ms, err := q.Read(after, 50)
			if err != nil {
				t.Error(err)
				break
			}
			if len(ms) == 0 {
				select {
				case <-q.Committed():
				case <-time.After(50 * time.Millisecond):
				}
				continue
			}
			for _, m := range ms {
				got = append(got, m.Seq)
			}
			after = ms[len(ms)-1].Seq
			if err := q.Ack(seqsOf(ms)...); err != nil {
				t.Error(err)
			}
			_ = q.Stats()
		}
		done <- got
	}()
	wg.Wait()
	got := <-done
	if len(got) != writers*perWriter {
		t.Fatalf("read %d messages, want %d", len(got), writers*perWriter)
	}
	for i, s := range got {
		if s != uint64(i+1) {
			t.Fatalf("message %d has seq %d: not every seq exactly once in order", i, s)
		}
	}
	mustFlush(t, q)
	if st := q.Stats(); st.Messages != 0 || st.Bytes != 0 || st.OldestSeq != 0 || st.NextSeq != writers*perWriter+1 {
		t.Fatalf("stats after all acked: %+v", st)
	}
}

func TestEvents(t *testing.T) {
	path := tempPath(t)
	q := openTest(t, Options{Path: path})
	for i, typ := range []string{"device_down", "device_up", "config_reload"} {
		if err := q.AppendEvent(Event{Type: typ, TS: t0.Add(time.Duration(i) * time.Second), Attrs: []Attr{{Key: "device", Value: "press01"}}}); err != nil {
			t.Fatal(err)
		}
	}
	if evs, _ := q.Events(10); len(evs) != 0 {
		t.Fatalf("%d events before commit", len(evs))
	}
	mustFlush(t, q)
	evs, err := q.Events(10)
	if err != nil {
		t.Fatal(err)
	}
	if len(evs) != 3 || evs[0].ID != 1 || evs[2].ID != 3 || evs[1].Type != "device_up" || !evs[1].TS.Equal(t0.Add(time.Second)) || attr(evs[0], "device") != "press01" {
		t.Fatalf("events: %+v", evs)
	}
	if evs, _ := q.Events(2); len(evs) != 2 {
		t.Fatalf("Events(2) returned %d", len(evs))
	}
	q.AckEvents(1, 2)
	if evs, _ := q.Events(10); len(evs) != 1 || evs[0].ID != 3 {
		t.Fatalf("after AckEvents: %+v", evs)
	}
	mustClose(t, q)
	q = openTest(t, Options{Path: path})
	if evs, _ := q.Events(10); len(evs) != 1 || evs[0].ID != 3 || q.Stats().Events != 1 {
		t.Fatalf("after reopen: %+v", evs)
	}
	q.AppendEvent(Event{Type: "x", TS: t0})
	mustFlush(t, q)
	if evs, _ := q.Events(10); len(evs) != 2 || evs[1].ID != 4 {
		t.Fatalf("event IDs do not continue: %+v", evs)
	}
}

func TestEventsCapped(t *testing.T) {
	q := openTest(t, Options{Path: tempPath(t), MaxSize: 4 << 20})
	for i := range maxEvents + 250 {
		if err := q.AppendEvent(Event{Type: "device_down", TS: t0, Attrs: []Attr{{Key: "n", Value: int64(i)}}}); err != nil {
			t.Fatal(err)
		}
		if i%100 == 0 {
			mustFlush(t, q)
		}
	}
	mustFlush(t, q)
	evs, _ := q.Events(5000)
	if len(evs) != maxEvents || q.Stats().Events != maxEvents {
		t.Fatalf("%d events kept (stats %d), want %d", len(evs), q.Stats().Events, maxEvents)
	}
	if first, last := attr(evs[0], "n"), attr(evs[len(evs)-1], "n"); first != int64(250) || last != int64(maxEvents+249) {
		t.Fatalf("kept events %v..%v, want the newest", first, last)
	}
}

func TestAppendErrors(t *testing.T) {
	q := openTest(t, Options{Path: tempPath(t), MaxSize: MinMaxSize})
	huge := Message{Readings: []Reading{{Tag: "blob", Value: strings.Repeat("x", 64<<10)}}}
	tests := []struct {
		name string
		m    Message
		want string
	}{
		{"bad value", Message{Equipment: "press01", Class: "process", Readings: []Reading{{Tag: "t", Value: []int{1}}}}, "press01/process: reading \"t\": unsupported value type []int"},
		{"too large", huge, "too large for a buffer of max_size 262144"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := q.Append(tt.m); err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want %q", err, tt.want)
			}
		})
	}
	// A refused message takes no seq.
	if seq := mustAppend(t, q, sampleMessage(0, 1)); seq != 1 {
		t.Fatalf("seq %d after refused appends, want 1", seq)
	}
}

func TestOpenOptionErrors(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name string
		opts Options
		want string
	}{
		{"no path", Options{}, "no path"},
		{"tiny max size", Options{Path: filepath.Join(dir, "a.db"), MaxSize: 1000}, "below the minimum"},
		{"negative interval", Options{Path: filepath.Join(dir, "b.db"), CommitInterval: -1}, "negative commit interval"},
		{"directory", Options{Path: dir}, "is a directory"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			q, err := Open(tt.opts)
			if err == nil {
				q.Close()
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want %q", err, tt.want)
			}
		})
	}
}

func TestClosed(t *testing.T) {
	q := openTest(t, Options{Path: tempPath(t)})
	mustClose(t, q)
	if err := q.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	calls := map[string]error{}
	_, calls["Append"] = q.Append(Message{})
	calls["AppendEvent"] = q.AppendEvent(Event{})
	calls["Flush"] = q.Flush()
	_, calls["Read"] = q.Read(0, 1)
	calls["Ack"] = q.Ack(1)
	_, calls["Events"] = q.Events(1)
	calls["AckEvents"] = q.AckEvents(1)
	calls["Compact"] = q.Compact()
	for name, err := range calls {
		if !errors.Is(err, ErrClosed) {
			t.Errorf("%s after Close: %v, want ErrClosed", name, err)
		}
	}
}

func TestLockedFile(t *testing.T) {
	path := tempPath(t)
	q := openTest(t, Options{Path: path})
	_, err := Open(Options{Path: path})
	if !errors.Is(err, ErrInUse) {
		t.Fatalf("second Open: %v, want ErrInUse", err)
	}
	want := "buffer " + path + " is in use by another process (is linegate running? see linegate status)"
	if err.Error() != want {
		t.Fatalf("error text %q, want %q", err, want)
	}
	if err := Verify(path); !errors.Is(err, ErrInUse) {
		t.Fatalf("Verify of a file in use: %v", err)
	}
	// The first queue is unharmed.
	mustAppend(t, q, sampleMessage(0, 1))
	mustFlush(t, q)
}

func TestPermissions(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "var", "lib", "linegate")
	path := filepath.Join(dir, "buffer.db")
	q := openTest(t, Options{Path: path})
	mustAppend(t, q, sampleMessage(0, 1))
	mustClose(t, q)
	for p, want := range map[string]os.FileMode{dir: 0o700, path: 0o600, sidecarPath(path): 0o600} {
		st, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if got := st.Mode().Perm(); got&^want != 0 {
			t.Errorf("%s mode %v, want at most %v", p, got, want)
		}
	}
	// A file widened by someone else is made private again.
	os.Chmod(path, 0o644)
	openTest(t, Options{Path: path})
	if st, _ := os.Stat(path); st.Mode().Perm() != 0o600 {
		t.Fatalf("mode after reopen %v", st.Mode().Perm())
	}
}

func TestMetrics(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	path := tempPath(t)
	q := openTest(t, Options{Path: path, Registerer: reg, Clock: func() time.Time { return t0.Add(90 * time.Second) }})
	for range 4 {
		mustAppend(t, q, sampleMessage(0, 2))
	}
	mustFlush(t, q)
	q.Ack(1)
	mustFlush(t, q)
	st := q.Stats()
	checks := map[string]float64{
		"linegate_buffer_messages":               3,
		"linegate_buffer_bytes":                  float64(st.Bytes),
		"linegate_buffer_file_bytes":             float64(fileSize(t, path)),
		"linegate_buffer_oldest_age_seconds":     90,
		"linegate_buffer_append_total":           4,
		"linegate_buffer_commits_total":          2,
		"linegate_buffer_dropped_messages_total": 0,
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, mf := range mfs {
		seen[mf.GetName()] = true
		want, ok := checks[mf.GetName()]
		if !ok {
			continue
		}
		m := mf.GetMetric()[0]
		got := m.GetGauge().GetValue() + m.GetCounter().GetValue()
		if got != want {
			t.Errorf("%s = %v, want %v", mf.GetName(), got, want)
		}
	}
	for name := range checks {
		if !seen[name] {
			t.Errorf("metric %s not registered", name)
		}
	}
	if n := testutil.CollectAndCount(reg, "linegate_buffer_commit_seconds"); n != 1 {
		t.Errorf("commit_seconds: %d series", n)
	}
	// A second queue on the same registry is refused, Close unregisters.
	if _, err := Open(Options{Path: filepath.Join(t.TempDir(), "other.db"), Registerer: reg}); err == nil || !strings.Contains(err.Error(), "already registered") {
		t.Fatalf("second registration: %v", err)
	}
	mustClose(t, q)
	q = openTest(t, Options{Path: path, Registerer: reg})
	if got := testutil.ToFloat64(q.met.messages); got != 3 {
		t.Fatalf("messages gauge after reopen = %v", got)
	}
}

func TestUnreadableRecordSkipped(t *testing.T) {
	// A record damaged after Open (bit rot) is skipped by Read, deleted by
	// the next commit, counted as dropped and reported as an event.
	logs := &logBuffer{}
	q := openTest(t, Options{Path: tempPath(t), Logger: logs.logger()})
	for range 5 {
		mustAppend(t, q, sampleMessage(0, 2))
	}
	mustFlush(t, q)
	err := q.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket([]byte(bucketMsgs))
		key := []byte{0, 0, 0, 0, 0, 0, 0, 3}
		v := slices.Clone(b.Get(key))
		v[15] ^= 1
		return b.Put(key, v)
	})
	if err != nil {
		t.Fatal(err)
	}
	if got := seqsOf(readAll(t, q)); !reflect.DeepEqual(got, []uint64{1, 2, 4, 5}) {
		t.Fatalf("read %v", got)
	}
	mustFlush(t, q)
	st := q.Stats()
	if st.Messages != 4 || st.Dropped != 1 {
		t.Fatalf("stats %+v", st)
	}
	evs := eventsOfType(t, q, EventCorrupt)
	if len(evs) != 1 || attr(evs[0], "dropped") != uint64(1) || attr(evs[0], "dropped_seq_from") != uint64(3) {
		t.Fatalf("events %+v", evs)
	}
	if !strings.Contains(logs.String(), "checksum mismatch") {
		t.Fatalf("no error logged: %s", logs)
	}
}
