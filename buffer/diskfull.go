package buffer

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"syscall"
	"time"
)

// A full file system (ENOSPC, or EDQUOT: the quota) is handled like a full
// buffer: the file cannot grow, so the oldest messages make room for the new
// ones and a buffer_overflow event says which, until the disk has room
// again. Three things make that possible on a disk with no byte left:
//
//   - a reserve file beside the buffer (<path>.reserve, allocated at Open)
//     is deleted at the first ENOSPC: its room lets the transaction that
//     deletes acknowledged messages, drops the oldest and writes the loss
//     event go through;
//   - acknowledgements are committed in a transaction of their own when a
//     commit is refused, so a broker that is back frees space whatever the
//     new messages need;
//   - while the disk is full, new messages are held to what the file held
//     when it stopped growing (diskState.cap), and messages waiting in
//     memory for a commit are capped (memCap): the oldest go first, counted
//     into the next loss event.
//
// The committer tries to allocate the reserve again every diskRetryEvery;
// when that succeeds the disk has room and the cap is lifted.
const (
	diskRetryEvery = 5 * time.Second
	// minReserve and maxReserve bound the reserve: max_size/64 between them.
	minReserve = 64 << 10
	maxReserve = 4 << 20
	// maxPendingMem bounds the memory held by messages waiting for a commit
	// while commits fail.
	maxPendingMem = 8 << 20
)

// diskState is the committer's view of the disk; commitMu guards it.
type diskState struct {
	full    bool
	since   time.Time
	cap     int64 // > 0: live message cost the file holds without growing
	reserve bool  // the reserve file is allocated
	retried time.Time
}

// isDiskFull reports whether err says the file system (or the quota) has no
// room. bbolt formats some errors with %s, so the text is checked too.
func isDiskFull(err error) bool {
	if err == nil {
		return false
	}
	if errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT) {
		return true
	}
	s := err.Error()
	return strings.Contains(s, syscall.ENOSPC.Error()) || strings.Contains(s, syscall.EDQUOT.Error())
}

func reservePath(path string) string { return path + ".reserve" }

func reserveSize(maxFile int64) int64 { return min(max(maxFile/64, minReserve), maxReserve) }

// memCap is how many bytes of messages may wait in memory while commits
// fail.
func (q *Queue) memCap() int64 { return min(max(q.bud.chunk, 64<<10), maxPendingMem) }

// makeReserve allocates the reserve file; on failure nothing is left behind.
func (q *Queue) makeReserve() error {
	p := reservePath(q.path)
	f, err := os.OpenFile(p, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("buffer: reserve %s: %w", p, err)
	}
	err = allocate(f, reserveSize(q.bud.maxFile))
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		_ = os.Remove(p)
		return fmt.Errorf("buffer: reserve %s: %w", p, err)
	}
	q.disk.reserve = true
	return nil
}

// noteDiskFull is called by the committer when bbolt could not write for
// lack of room. The first time, it gives the reserve back to the file
// system and reports true: the commit can be retried as it is, and the
// messages may take half the reserve; the other half stays free for what a
// commit writes besides them (copies of the pages it changes, the loss
// event). A later refusal (something else took the room) lowers the cap
// below what the file holds now, and the commit trims to make room.
func (q *Queue) noteDiskFull(err error) bool {
	q.mu.Lock()
	cost := q.live.cost
	q.mu.Unlock()
	if !q.disk.full {
		q.disk.full, q.disk.since, q.disk.retried = true, time.Now(), time.Now()
		released := false
		if q.disk.reserve {
			released = os.Remove(reservePath(q.path)) == nil
			q.disk.reserve = false
		}
		q.met.diskFull.Set(1)
		q.log.Error("buffer: disk full; dropping the oldest messages as if the buffer were full, with a buffer_overflow event",
			"path", q.path, "reserve_released", released, "error", err)
		if released {
			q.disk.cap = cost + reserveSize(q.bud.maxFile)/2
			return true
		}
	}
	if c := cost - cost/8; c > 0 && (q.disk.cap == 0 || c < q.disk.cap) {
		q.disk.cap = c
	}
	return false
}

// maybeDiskRoom runs after a commit while the disk is full: every
// diskRetryEvery it tries to allocate the reserve again, and when that
// works the disk has room and the cap is lifted.
func (q *Queue) maybeDiskRoom(now time.Time) {
	if !q.disk.full || now.Sub(q.disk.retried) < diskRetryEvery {
		return
	}
	q.disk.retried = now
	if err := q.makeReserve(); err != nil {
		q.log.Debug("buffer: disk still full", "path", q.path, "error", err)
		return
	}
	q.log.Info("buffer: disk has room again", "path", q.path, "full_for", now.Sub(q.disk.since).Round(time.Second))
	q.disk = diskState{reserve: true}
	q.met.diskFull.Set(0)
}

// memDrop is a run of messages dropped from memory before their commit.
type memDrop struct{ from, to, n uint64 }

func (d *memDrop) add(o memDrop) {
	if o.n == 0 {
		return
	}
	if d.n == 0 || o.from < d.from {
		d.from = o.from
	}
	d.to = max(d.to, o.to)
	d.n += o.n
}

// shedPendingLocked drops the oldest messages waiting in memory until they
// fit memCap; q.mu must be held. They are announced by the next commit's
// buffer_overflow event.
func (q *Queue) shedPendingLocked() {
	limit := q.memCap()
	i := 0
	for q.pendingBytes > limit && i < len(q.pending) {
		m := q.pending[i]
		q.pendingBytes -= int64(cap(m.rec))
		q.memDropped.add(memDrop{from: m.id, to: m.id, n: 1})
		i++
	}
	if i > 0 {
		clear(q.pending[:i])
		q.pending = q.pending[i:]
	}
}
