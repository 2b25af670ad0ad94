package buffer

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	bolt "go.etcd.io/bbolt"
)

// writeRealBuffer makes a healthy buffer file holding seqs 1..n, closed
// cleanly (so its sidecar says n).
func writeRealBuffer(t *testing.T, path string, n int) {
	t.Helper()
	q := openTest(t, Options{Path: path})
	for range n {
		mustAppend(t, q, sampleMessage(0, 10))
	}
	mustClose(t, q)
}

func rawUpdate(t *testing.T, path string, fn func(tx *bolt.Tx) error) {
	t.Helper()
	db, err := bolt.Open(path, 0o600, &bolt.Options{NoFreelistSync: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Update(fn); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestCorruptFileMovedAside(t *testing.T) {
	const pageSize = 4096
	tests := []struct {
		name    string
		make    func(t *testing.T, path string) // leaves a corrupt file at path
		nextSeq uint64                          // first seq after the repair
		reason  string                          // in the logged error
	}{
		{name: "random bytes", nextSeq: 1, reason: "invalid database", make: func(t *testing.T, path string) {
			b := make([]byte, 64<<10)
			r := rand.New(rand.NewPCG(3, 4))
			for i := range b {
				b[i] = byte(r.Uint32())
			}
			os.WriteFile(path, b, 0o600)
		}},
		{name: "random bytes, seq from sidecar", nextSeq: 501, reason: "invalid database", make: func(t *testing.T, path string) {
			os.WriteFile(path, bytes.Repeat([]byte("linegate"), 4096), 0o600)
			writeSidecar(path, seqSidecar{value: 500, clean: true})
		}},
		{name: "too small", nextSeq: 1, make: func(t *testing.T, path string) {
			os.WriteFile(path, []byte("x"), 0o600)
		}},
		{name: "truncated real file", nextSeq: 3001, reason: "truncated", make: func(t *testing.T, path string) {
			writeRealBuffer(t, path, 3000)
			if err := os.Truncate(path, fileSize(t, path)/2); err != nil {
				t.Fatal(err)
			}
		}},
		{name: "truncated to the meta pages", nextSeq: 3001, make: func(t *testing.T, path string) {
			writeRealBuffer(t, path, 3000)
			if err := os.Truncate(path, 3*pageSize); err != nil {
				t.Fatal(err)
			}
		}},
		{name: "garbage pages behind valid metas", nextSeq: 3001, make: func(t *testing.T, path string) {
			writeRealBuffer(t, path, 3000)
			b, _ := os.ReadFile(path)
			r := rand.New(rand.NewPCG(5, 6))
			for i := 2 * pageSize; i < len(b); i++ {
				b[i] = byte(r.Uint32())
			}
			os.WriteFile(path, b, 0o600)
		}},
		{name: "zeroed pages behind valid metas", nextSeq: 3001, make: func(t *testing.T, path string) {
			writeRealBuffer(t, path, 3000)
			b, _ := os.ReadFile(path)
			clear(b[2*pageSize:])
			os.WriteFile(path, b, 0o600)
		}},
		{name: "branch pages pointing outside the file", nextSeq: 3001, reason: "out of bounds", make: func(t *testing.T, path string) {
			// bbolt follows these through its mmap: without guard this is
			// a fatal fault, not a panic.
			writeRealBuffer(t, path, 3000)
			var branches []int
			db, err := bolt.Open(path, 0o600, &bolt.Options{NoFreelistSync: true})
			if err != nil {
				t.Fatal(err)
			}
			db.View(func(tx *bolt.Tx) error {
				for id := 2; ; id++ {
					info, err := tx.Page(id)
					if info == nil || err != nil {
						return err
					}
					if info.Type == "branch" {
						branches = append(branches, id)
					}
				}
			})
			db.Close()
			if len(branches) == 0 {
				t.Fatal("setup: no branch page")
			}
			b, _ := os.ReadFile(path)
			for _, id := range branches {
				p := b[id*pageSize:]
				count := int(binary.LittleEndian.Uint16(p[10:12]))
				for i := range count {
					binary.LittleEndian.PutUint64(p[16+16*i+8:], 1<<28+uint64(i))
				}
			}
			os.WriteFile(path, b, 0o600)
		}},
		// The faults below are in bounds: bbolt's check (in a goroutine
		// of its own) and its freelist rebuild follow them, and a page
		// that references its ancestor recursed until the stack overflowed.
		{name: "branch referencing itself", nextSeq: 3001, reason: "referenced twice", make: func(t *testing.T, path string) {
			spoilPage(t, path, "branch", func(id int, p []byte) {
				binary.LittleEndian.PutUint64(p[16+8:], uint64(id))
			})
		}},
		{name: "two branch elements, one child", nextSeq: 3001, reason: "referenced twice", make: func(t *testing.T, path string) {
			spoilPage(t, path, "branch", func(_ int, p []byte) {
				copy(p[16+16+8:16+16+16], p[16+8:16+16])
			})
		}},
		{name: "leaf keys out of order", nextSeq: 3001, reason: "not above the previous", make: func(t *testing.T, path string) {
			spoilPage(t, path, "leaf", swapFirstKeys)
		}},
		{name: "branch keys out of order", nextSeq: 3001, reason: "page check", make: func(t *testing.T, path string) {
			spoilPage(t, path, "branch", swapFirstKeys)
		}},
		{name: "foreign bbolt file", nextSeq: 1, reason: "not a linegate buffer", make: func(t *testing.T, path string) {
			rawUpdate(t, path, func(tx *bolt.Tx) error {
				b, err := tx.CreateBucket([]byte("users"))
				if err != nil {
					return err
				}
				return b.Put([]byte("alice"), []byte("x"))
			})
		}},
		{name: "undecodable meta", nextSeq: 21, reason: "undecodable meta", make: func(t *testing.T, path string) {
			writeRealBuffer(t, path, 20)
			rawUpdate(t, path, func(tx *bolt.Tx) error {
				return tx.Bucket([]byte(bucketMeta)).Put([]byte(metaLastSeq), []byte{1, 2, 3})
			})
		}},
		{name: "unknown format version", nextSeq: 21, reason: "undecodable meta", make: func(t *testing.T, path string) {
			writeRealBuffer(t, path, 20)
			rawUpdate(t, path, func(tx *bolt.Tx) error {
				return tx.Bucket([]byte(bucketMeta)).Put([]byte(metaFormat), []byte{2})
			})
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := tempPath(t)
			tt.make(t, path)
			original, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			var ce *CorruptError
			if err := Verify(path); !errors.As(err, &ce) || ce.Path != path {
				t.Fatalf("Verify: %v, want a CorruptError", err)
			}
			t.Logf("Verify: %v", ce.Err)

			logs := &logBuffer{}
			q := openTest(t, Options{Path: path, Logger: logs.logger()})

			moved, _ := filepath.Glob(path + ".corrupt-*")
			if len(moved) != 1 {
				t.Fatalf("moved-aside files: %v", moved)
			}
			if b, _ := os.ReadFile(moved[0]); !bytes.Equal(b, original) {
				t.Fatal("the moved file is not the original")
			}
			out := logs.String()
			if !strings.Contains(out, "level=ERROR") || !strings.Contains(out, "path="+path) || !strings.Contains(out, "moved_to="+moved[0]) || !strings.Contains(out, tt.reason) {
				t.Fatalf("log does not name both paths and the reason %q:\n%s", tt.reason, out)
			}
			evs := eventsOfType(t, q, EventCorrupt)
			if len(evs) != 1 || attr(evs[0], "moved_to") != moved[0] || attr(evs[0], "error") == "" {
				t.Fatalf("events: %+v", evs)
			}
			if seq := mustAppend(t, q, sampleMessage(0, 1)); seq != tt.nextSeq {
				t.Fatalf("first seq after repair %d, want %d", seq, tt.nextSeq)
			}
			mustFlush(t, q)
			if got := seqsOf(readAll(t, q)); len(got) != 1 {
				t.Fatalf("fresh buffer holds %v", got)
			}
			mustClose(t, q)
			if err := Verify(path); err != nil {
				t.Fatalf("the fresh file does not verify: %v", err)
			}
		})
	}
}

func TestCorruptRecordsDeletedOnOpen(t *testing.T) {
	path := tempPath(t)
	writeRealBuffer(t, path, 50)
	rawUpdate(t, path, func(tx *bolt.Tx) error {
		b := tx.Bucket([]byte(bucketMsgs))
		for _, seq := range []byte{10, 11, 40} {
			key := []byte{0, 0, 0, 0, 0, 0, 0, seq}
			v := bytes.Clone(b.Get(key))
			v[len(v)/2] ^= 0x10
			if err := b.Put(key, v); err != nil {
				return err
			}
		}
		// A record under the wrong key is as unusable as a damaged one.
		return b.Put([]byte{0, 0, 0, 0, 0, 0, 0, 20}, bytes.Clone(b.Get([]byte{0, 0, 0, 0, 0, 0, 0, 21})))
	})
	var ce *CorruptError
	if err := Verify(path); !errors.As(err, &ce) || !strings.Contains(err.Error(), "4 unreadable records") {
		t.Fatalf("Verify: %v", err)
	}
	logs := &logBuffer{}
	q := openTest(t, Options{Path: path, Logger: logs.logger()})
	if moved, _ := filepath.Glob(path + ".corrupt-*"); len(moved) != 0 {
		t.Fatalf("a file with a few bad records was moved aside: %v", moved)
	}
	got := seqsOf(readAll(t, q))
	if len(got) != 46 || got[0] != 1 || got[len(got)-1] != 50 {
		t.Fatalf("kept %v", got)
	}
	for _, s := range got {
		if s == 10 || s == 11 || s == 20 || s == 40 {
			t.Fatalf("bad record %d returned", s)
		}
	}
	st := q.Stats()
	if st.Dropped != 4 || st.Messages != 46 || st.NextSeq != 51 {
		t.Fatalf("stats %+v", st)
	}
	evs := eventsOfType(t, q, EventCorrupt)
	if len(evs) != 1 || attr(evs[0], "dropped") != uint64(4) || attr(evs[0], "dropped_seq_from") != uint64(10) || attr(evs[0], "dropped_seq_to") != uint64(40) {
		t.Fatalf("events %+v", evs)
	}
	if !strings.Contains(logs.String(), "unreadable messages found") {
		t.Fatalf("no error logged:\n%s", logs)
	}
	mustClose(t, q)
	if err := Verify(path); err != nil {
		t.Fatalf("after repair: %v", err)
	}
}

func TestEmptyFileIsFresh(t *testing.T) {
	path := tempPath(t)
	os.WriteFile(path, nil, 0o600)
	q := openTest(t, Options{Path: path})
	if moved, _ := filepath.Glob(path + ".corrupt-*"); len(moved) != 0 {
		t.Fatalf("empty file moved aside: %v", moved)
	}
	if evs, _ := q.Events(10); len(evs) != 0 {
		t.Fatalf("events %+v", evs)
	}
	if seq := mustAppend(t, q, sampleMessage(0, 1)); seq != 1 {
		t.Fatalf("seq %d", seq)
	}
}

// spoilPage writes a real 3000-message buffer at path, then lets spoil
// change the bytes of the first page of type typ ("branch", "leaf") with at
// least two elements of 8-byte keys: a message bucket's page.
func spoilPage(t *testing.T, path, typ string, spoil func(id int, page []byte)) {
	t.Helper()
	writeRealBuffer(t, path, 3000)
	db, err := bolt.Open(path, 0o600, &bolt.Options{NoFreelistSync: true})
	if err != nil {
		t.Fatal(err)
	}
	ps := db.Info().PageSize
	var ids []int
	db.View(func(tx *bolt.Tx) error {
		for id := 2; ; id++ {
			info, err := tx.Page(id)
			if info == nil || err != nil {
				return err
			}
			if info.Type == typ && info.Count >= 2 {
				ids = append(ids, id)
			}
		}
	})
	db.Close()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range ids {
		p := b[id*ps : (id+1)*ps]
		ksize := binary.LittleEndian.Uint32(p[16+4:]) // branch: ksize at 4
		if typ == "leaf" {
			ksize = binary.LittleEndian.Uint32(p[16+8:])
		}
		if ksize != 8 {
			continue
		}
		spoil(id, p)
		if err := os.WriteFile(path, b, 0o600); err != nil {
			t.Fatal(err)
		}
		return
	}
	t.Fatalf("setup: no %s page with 8-byte keys among %v", typ, ids)
}

// swapFirstKeys swaps the keys of a page's first two elements (8 bytes each).
func swapFirstKeys(_ int, p []byte) {
	key := func(i int) []byte {
		elem := p[16+16*i:]
		pos := binary.LittleEndian.Uint32(elem[0:]) // branch: pos first
		if binary.LittleEndian.Uint16(p[8:]) == 0x02 {
			pos = binary.LittleEndian.Uint32(elem[4:]) // leaf: flags, pos
		}
		return elem[pos : pos+8]
	}
	var a [8]byte
	copy(a[:], key(0))
	copy(key(0), key(1))
	copy(key(1), a[:])
}
