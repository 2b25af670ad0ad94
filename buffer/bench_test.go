package buffer

import (
	"fmt"
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

// BenchmarkReadDesign reads messages as the uplink does at the design load:
// 100 devices of 33 float readings, every value different from the last
// cycle's, in batches of the in-flight window. One op is one message.
func BenchmarkReadDesign(b *testing.B) {
	q, err := Open(Options{Path: tempPath(b), CommitInterval: time.Hour})
	if err != nil {
		b.Fatal(err)
	}
	defer q.Close()
	const cycles, devices, window = 10, 100, 64
	for c := range cycles {
		for d := range devices {
			created := t0.Add(time.Duration(c) * time.Second)
			m := Message{Created: created, Equipment: fmt.Sprintf("press%02d", d), Class: "process"}
			for i := range 33 {
				m.Readings = append(m.Readings, Reading{Tag: fmt.Sprintf("temperature_zone_%02d", i), Unit: "degC",
					Value: 180.25 + float64(i) + float64(c)/4, TS: created.Add(-time.Duration(i) * time.Millisecond)})
			}
			if _, err := q.Append(m); err != nil {
				b.Fatal(err)
			}
		}
	}
	if err := q.Flush(); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	var after uint64
	var bt Batch // reused from read to read, as the uplink does
	for n := 0; n < b.N; {
		if err := q.ReadBatch(&bt, after, min(window, b.N-n)); err != nil {
			b.Fatal(err)
		}
		ms := bt.Messages
		if len(ms) == 0 {
			after = 0
			continue
		}
		after = ms[len(ms)-1].Seq
		n += len(ms)
	}
}
