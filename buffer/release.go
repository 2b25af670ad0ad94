package buffer

import (
	"time"

	bolt "go.etcd.io/bbolt"
)

// bbolt reads the file through a shared memory map, and every page a read
// or a commit touches stays mapped into the process. After an outage the
// drain reads the whole backlog, so the agent's resident memory grew by
// the size of the file (30 MB for a minute of 10,000 tags) and stayed
// there. The pages are the OS's page cache either way; unmapping them from
// the process once the file is large keeps the agent's RSS to its own
// memory. A page needed again is mapped again on first touch (a minor
// fault, from the page cache).
const (
	// releaseAbove is the file size from which mapped pages are released:
	// below it the mapping is small and stays.
	releaseAbove = 4 << 20
	// releaseEvery paces the releases, or releaseRead bytes read from the
	// file (a drain reads 15 MB/s): whichever comes first.
	releaseEvery = time.Second
	releaseRead  = 2 << 20
)

// maybeRelease unmaps the file's pages from the process when the file is
// large, every releaseEvery or releaseRead bytes read. The committer calls
// it; commitMu is held, so the file is not remapped meanwhile (and the read
// transaction below holds bbolt's mmap lock besides).
func (q *Queue) maybeRelease(now time.Time) {
	if now.Sub(q.released) < releaseEvery && q.readBytes.Load() < releaseRead {
		return
	}
	q.released = now
	q.readBytes.Store(0)
	q.mu.Lock()
	small := q.fileSize < releaseAbove // as of the last commit: no transaction needed to know
	q.mu.Unlock()
	if small {
		return
	}
	q.dbMu.RLock()
	defer q.dbMu.RUnlock()
	if q.db == nil {
		return
	}
	_ = q.db.View(func(tx *bolt.Tx) error {
		if size := tx.Size(); size >= releaseAbove {
			if err := releaseMapped(tx.DB().Info().Data, size); err != nil {
				q.log.Debug("buffer: cannot release mapped pages", "path", q.path, "err", err)
			}
		}
		return nil
	})
}
