package buffer

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	bolt "go.etcd.io/bbolt"
)

// compactTxBytes bounds one transaction of the copy: bbolt keeps a
// transaction's dirty pages in memory until commit.
const compactTxBytes = 4 << 20

// Compact rewrites the file with only its live records, giving the free
// pages back to the file system (bbolt reuses free pages but never shrinks
// a file). It commits what is pending first.
//
// It needs the file to itself for its duration: Read, Ack, Events and
// commits wait (Append keeps working, in memory), which takes seconds for a
// large file. Between closing the old file and opening the new one the file
// lock is briefly released. It is meant for `linegate buffer compact` with
// the service stopped; Open also uses it when a file is over max_size.
func (q *Queue) Compact() error {
	q.commitMu.Lock()
	defer q.commitMu.Unlock()
	if q.isClosed() {
		return ErrClosed
	}
	if err := q.commitLocked(false); err != nil {
		return err
	}
	return q.compactLocked()
}

// compactLocked copies the live records into <path>.compact, then renames
// it over the file. commitMu must be held.
func (q *Queue) compactLocked() error {
	q.dbMu.Lock()
	defer q.dbMu.Unlock()
	if q.db == nil {
		return ErrClosed
	}
	tmp := q.path + ".compact"
	if err := os.Remove(tmp); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("buffer: compact %s: %w", q.path, err)
	}
	// The copy needs no fsync per transaction (NoSync): the temporary file
	// is worthless until it is complete, and it is synced once before the
	// rename makes it the buffer.
	opts := boltOptions(q.bud.boltMax, false)
	opts.NoSync = true
	dst, err := bolt.Open(tmp, 0o600, opts)
	if err != nil {
		return fmt.Errorf("buffer: compact %s: %w", q.path, err)
	}
	dst.AllocSize, dst.MaxSize = q.bud.allocSize, q.bud.boltMax
	err = copyBuckets(q.db, dst)
	if err == nil {
		err = dst.Sync()
	}
	if cerr := dst.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("buffer: compact %s: %w", q.path, err)
	}

	// Close before rename: Windows cannot rename over an open file, and the
	// old handle must not outlive its file.
	if err := q.db.Close(); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("buffer: compact %s: close: %w", q.path, err)
	}
	q.db = nil
	renameErr := os.Rename(tmp, q.path)
	if renameErr == nil {
		renameErr = syncDir(filepath.Dir(q.path))
	} else {
		os.Remove(tmp)
	}
	// Reopen whichever file is now at path (the old one if the rename
	// failed). The pages were all visited by the copy, so this cannot hit
	// an unchecked page.
	db, err := openBolt(q.path, q.bud.maxFile, false)
	if err != nil {
		return fmt.Errorf("buffer: compact %s: reopen (the queue is unusable, restart linegate): %w", q.path, errors.Join(renameErr, err))
	}
	db.AllocSize, db.MaxSize = q.bud.allocSize, q.bud.boltMax
	q.db = db
	if renameErr != nil {
		return fmt.Errorf("buffer: compact %s: %w", q.path, renameErr)
	}
	if st, err := os.Stat(q.path); err == nil {
		q.mu.Lock()
		q.fileSize = st.Size()
		q.mu.Unlock()
		q.met.fileBytes.Set(float64(st.Size()))
	}
	return nil
}

// copyBuckets copies the three buckets from src to dst in transactions of
// at most compactTxBytes. The source read transaction stays open for the
// whole copy, so the values bbolt hands out (pointers into its mmap) stay
// valid until the destination has committed them.
func copyBuckets(src, dst *bolt.DB) error {
	return src.View(func(stx *bolt.Tx) error {
		for _, name := range []string{bucketMeta, bucketEvents, bucketMsgs} {
			sb := stx.Bucket([]byte(name))
			if sb == nil {
				return fmt.Errorf("%s bucket missing", name)
			}
			c := sb.Cursor()
			k, v := c.First()
			first := true
			for first || k != nil {
				first = false
				err := dst.Update(func(dtx *bolt.Tx) error {
					db, err := dtx.CreateBucketIfNotExists([]byte(name))
					if err != nil {
						return err
					}
					db.FillPercent = fillPercent
					size := 0
					for ; k != nil && size < compactTxBytes; k, v = c.Next() {
						if err := db.Put(k, v); err != nil {
							return err
						}
						size += len(k) + len(v)
					}
					return nil
				})
				if err != nil {
					return err
				}
			}
		}
		return nil
	})
}
