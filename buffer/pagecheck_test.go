package buffer

import (
	"bytes"
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

// TestCorruptFileStartLoop starts the buffer 20 times, each time on a file
// with an in-bounds fault (a branch referencing itself or a sibling's child,
// keys out of order): a crash loop would be the agent dying at every
// restart. Every start moves the file aside and opens a fresh buffer.
func TestCorruptFileStartLoop(t *testing.T) {
	dir := t.TempDir()
	spoils := []struct {
		typ   string
		spoil func(int, []byte)
	}{
		{"branch", func(id int, p []byte) { binary.LittleEndian.PutUint64(p[16+8:], uint64(id)) }},
		{"branch", func(_ int, p []byte) { copy(p[16+16+8:16+16+16], p[16+8:16+16]) }},
		{"leaf", swapFirstKeys},
		{"branch", swapFirstKeys},
	}
	bad := make([][]byte, len(spoils))
	for i, s := range spoils {
		p := filepath.Join(dir, "spoiled.db")
		spoilPage(t, p, s.typ, s.spoil)
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		bad[i] = b
		os.Remove(p)
		os.Remove(sidecarPath(p))
	}
	path := filepath.Join(dir, "buffer.db")
	for start := range 20 {
		if err := os.WriteFile(path, bad[start%len(bad)], 0o600); err != nil {
			t.Fatal(err)
		}
		q := openTest(t, Options{Path: path})
		if evs := eventsOfType(t, q, EventCorrupt); len(evs) != 1 {
			t.Fatalf("start %d: buffer_corrupt events %+v", start, evs)
		}
		mustAppend(t, q, sampleMessage(0, 1))
		mustClose(t, q)
	}
	moved, _ := filepath.Glob(path + ".corrupt-*")
	if len(moved) != 20 {
		t.Fatalf("%d files moved aside after 20 starts, want 20", len(moved))
	}
	t.Logf("20 starts on corrupt files: 20 moved aside, 20 fresh buffers")
}

// TestCheckPagesHealthy: the walk accepts what bbolt writes, with inline
// and nested buckets, overflow pages and a synced freelist.
func TestCheckPagesHealthy(t *testing.T) {
	for _, synced := range []bool{false, true} {
		b := smallBoltFile(t, synced)
		if err := checkPages(bytes.NewReader(b), int64(len(b))); err != nil {
			t.Fatalf("freelist synced %v: %v", synced, err)
		}
	}
	path := tempPath(t)
	writeRealBuffer(t, path, 3000)
	if err := checkFilePages(path, fileSize(t, path)); err != nil {
		t.Fatal(err)
	}
}

// smallBoltFile is a bbolt file of 512-byte pages: a seed for the fuzzer.
func smallBoltFile(t testing.TB, freelistSync bool) []byte {
	t.Helper()
	path := filepath.Join(t.TempDir(), "small.db")
	db, err := bolt.Open(path, 0o600, &bolt.Options{PageSize: 512, NoFreelistSync: !freelistSync})
	if err != nil {
		t.Fatal(err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		msgs, err := tx.CreateBucket([]byte(bucketMsgs))
		if err != nil {
			return err
		}
		var k [8]byte
		for i := range 60 {
			binary.BigEndian.PutUint64(k[:], uint64(i))
			if err := msgs.Put(k[:], bytes.Repeat([]byte{byte(i)}, 20+i%7*90)); err != nil {
				return err
			}
		}
		if err := msgs.Put([]byte("big"), make([]byte, 1500)); err != nil { // overflow pages
			return err
		}
		inline, err := tx.CreateBucket([]byte(bucketMeta))
		if err != nil {
			return err
		}
		nested, err := inline.CreateBucket([]byte("nested"))
		if err != nil {
			return err
		}
		return nested.Put([]byte("k"), []byte("v"))
	})
	if err == nil {
		// Free some pages.
		err = db.Update(func(tx *bolt.Tx) error {
			var k [8]byte
			for i := range 20 {
				binary.BigEndian.PutUint64(k[:], uint64(i))
				if err := tx.Bucket([]byte(bucketMsgs)).Delete(k[:]); err != nil {
					return err
				}
			}
			return nil
		})
	}
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// FuzzCheckPages: whatever the bytes, the page walk returns (no panic, no
// unbounded recursion or allocation), and an error for a file it cannot
// read.
func FuzzCheckPages(f *testing.F) {
	f.Add(smallBoltFile(f, false))
	f.Add(smallBoltFile(f, true))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		err := checkPages(bytes.NewReader(b), int64(len(b)))
		if len(b) < 2*minPageSize && err == nil {
			t.Fatalf("%d bytes accepted", len(b))
		}
		var ce *CorruptError
		if errors.As(err, &ce) {
			t.Fatalf("checkPages wraps: %v", err) // checkFilePages does
		}
		if err != nil {
			return
		}
		// Accepted: bbolt's read-write open (its freelist rebuild walks
		// the tree in a goroutine, panicking on what it finds) and a scan
		// of every bucket must survive it.
		path := filepath.Join(t.TempDir(), "f.db")
		if err := os.WriteFile(path, b, 0o600); err != nil {
			t.Fatal(err)
		}
		_ = guard(path, func() error {
			db, err := bolt.Open(path, 0o600, &bolt.Options{NoFreelistSync: true, Timeout: time.Second})
			if err != nil {
				return err
			}
			defer db.Close()
			return db.View(func(tx *bolt.Tx) error {
				return tx.ForEach(func(_ []byte, bk *bolt.Bucket) error {
					return bk.ForEach(func(_, _ []byte) error { return nil })
				})
			})
		})
	})
}
