package buffer

import (
	"testing"
	"time"
)

// BenchmarkAppendCommit measures the sustained rate of messages of 10
// readings through Append and the group committer (fsync per commit), with
// the default 50ms commit interval.
func BenchmarkAppendCommit(b *testing.B) {
	q, err := Open(Options{Path: tempPath(b), MaxSize: 1 << 30})
	if err != nil {
		b.Fatal(err)
	}
	defer q.Close()
	m := sampleMessage(0, 10)
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	for range b.N {
		if _, err := q.Append(m); err != nil {
			b.Fatal(err)
		}
	}
	if err := q.Flush(); err != nil {
		b.Fatal(err)
	}
	elapsed := time.Since(start)
	b.StopTimer()
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "msgs/s")
	if st := q.Stats(); st.Messages != b.N || st.Dropped != 0 {
		b.Fatalf("stats %+v after %d appends", st, b.N)
	}
}

// BenchmarkRead measures decoding committed messages of 10 readings, as the
// uplink reads them.
func BenchmarkRead(b *testing.B) {
	q, err := Open(Options{Path: tempPath(b), CommitInterval: time.Hour})
	if err != nil {
		b.Fatal(err)
	}
	defer q.Close()
	for range 1000 {
		if _, err := q.Append(sampleMessage(0, 10)); err != nil {
			b.Fatal(err)
		}
	}
	if err := q.Flush(); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	n := 0
	for range b.N {
		ms, err := q.Read(0, 100)
		if err != nil || len(ms) != 100 {
			b.Fatal(len(ms), err)
		}
		n += len(ms)
	}
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "msgs/s")
}
