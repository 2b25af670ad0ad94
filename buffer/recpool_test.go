package buffer

import (
	"testing"
)

func TestRecPool(t *testing.T) {
	cases := []struct {
		name     string
		put      []int // capacities given back, in order
		get      int   // then get(n)
		reuse    int   // index into put of the slice get must return; -1: a new one
		wantCap  int   // with a new one: its capacity
		pooledAt int   // bytes pooled after the get
	}{
		{name: "empty pool, rounded up to the class", get: 1100, reuse: -1, wantCap: 2048},
		{name: "small rounded up to the smallest class", get: 3, reuse: -1, wantCap: 128},
		{name: "same class", put: []int{2048}, get: 1100, reuse: 0},
		{name: "grown record goes to the class below its cap", put: []int{2052}, get: 1100, reuse: 0},
		{name: "class too small", put: []int{1024}, get: 1100, reuse: -1, wantCap: 2048, pooledAt: 1024},
		{name: "last in first out", put: []int{2048, 2048}, get: 2000, reuse: 1, pooledAt: 2048},
		{name: "larger than the largest class", put: []int{1 << 17}, get: 1 << 17, reuse: -1, wantCap: 1 << 17},
		{name: "over the byte bound", put: []int{1 << 16, 1 << 16, 1 << 16, 1 << 16, 1 << 16, 1 << 16, 1 << 16, 1 << 16,
			1 << 16, 1 << 16, 1 << 16, 1 << 16, 1 << 16, 1 << 16, 1 << 16, 1 << 16, 1 << 16}, get: 100, reuse: -1, wantCap: 128,
			pooledAt: maxPooledBytes},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var p recPool
			recs := make([]pendingRec, len(tc.put))
			for i, c := range tc.put {
				recs[i].rec = make([]byte, 10, c)
			}
			p.put(recs)
			b := p.get(tc.get)
			if len(b) != 0 || cap(b) < tc.get {
				t.Fatalf("get(%d): len %d cap %d", tc.get, len(b), cap(b))
			}
			if tc.reuse >= 0 {
				if &b[:1][0] != &recs[tc.reuse].rec[0] {
					t.Fatalf("get(%d) did not return the record given back", tc.get)
				}
			} else if cap(b) != tc.wantCap {
				t.Fatalf("get(%d): new slice of cap %d, want %d", tc.get, cap(b), tc.wantCap)
			}
			if p.bytes != tc.pooledAt {
				t.Fatalf("pooled %d bytes, want %d", p.bytes, tc.pooledAt)
			}
		})
	}
}

func TestAppendReusesCommittedRecords(t *testing.T) {
	// A record is given back once its commit succeeded; the next append of
	// a message that size encodes into it, and what the file holds is
	// still each message as appended.
	q := openTest(t, Options{Path: tempPath(t)})
	want := []Message{richMessage(0)}
	want[0].Seq = mustAppend(t, q, want[0])
	q.mu.Lock()
	first := &q.pending[0].rec[:1][0]
	q.mu.Unlock()
	mustFlush(t, q)

	m := richMessage(1)
	m.Seq = mustAppend(t, q, m)
	want = append(want, m)
	q.mu.Lock()
	reused := &q.pending[0].rec[:1][0] == first
	q.mu.Unlock()
	if !reused {
		t.Fatal("the second append did not reuse the committed record")
	}
	mustFlush(t, q)
	got := readAll(t, q)
	if len(got) != len(want) {
		t.Fatalf("read %d messages, want %d", len(got), len(want))
	}
	for i := range got {
		encodedEqual(t, got[i], want[i])
	}
}
