package buffer

import (
	"fmt"
	"runtime"
	"time"

	bolt "go.etcd.io/bbolt"
)

const (
	// DefaultMaxSize is the file size cap when Options.MaxSize is 0.
	DefaultMaxSize = 1 << 30
	// MinMaxSize is the smallest cap Open accepts: below it the fixed bbolt
	// overhead (meta pages, growth step, copy-on-write headroom) leaves too
	// little room for data to be useful.
	MinMaxSize = 256 << 10
	// DefaultCommitInterval is the group commit period when
	// Options.CommitInterval is 0.
	DefaultCommitInterval = 50 * time.Millisecond

	// maxEvents bounds the event bucket: events are tiny and never dropped
	// for messages, but a flapping device must not fill the buffer with them.
	maxEvents = 1000

	// boltLockTimeout bounds the wait for the file lock, so that a second
	// linegate on the same file fails at once with a clear error instead of
	// hanging (bbolt's default is to wait forever).
	boltLockTimeout = time.Second
)

// bbolt's page layout, used by the cost model below (go.etcd.io/bbolt
// internal/common: page header 16 bytes, leaf element header 16 bytes).
const (
	pageHeaderSize = 16
	leafElemSize   = 16
	keySize        = 8
)

// budget turns MaxSize into the limits the queue enforces itself. The file
// cap has three layers:
//
//  1. bbolt's own Options.MaxSize: bbolt refuses (ErrMaxSizeReached) any
//     commit that would grow the file past it. This is the hard guarantee,
//     whatever our estimates say. It is set a small reserve below MaxSize
//     (boltMax), see 3.
//  2. A data budget below it, so that layer 1 practically never triggers:
//     live records (in estimated page bytes) may use half of the usable
//     file. The other half is headroom for what bbolt needs besides live
//     leaves: copy-on-write (every commit writes new copies of the pages it
//     touches; the old copies are only reusable from the next transaction
//     on, and not while a reader still sees them), branch pages, and free
//     space too fragmented for a multi-page value.
//  3. If bbolt refuses anyway, the commit trims the oldest messages in a
//     transaction of its own and retries (commit.go). Deleting needs fresh
//     pages too (copy-on-write of the leaf, branch and root pages), and a
//     file full of live data has none: that trim alone may use the reserve
//     between boltMax and MaxSize.
//
// When a commit would go over the data budget the oldest messages are
// dropped in that same commit (see commit.go).
type budget struct {
	maxFile   int64 // Options.MaxSize
	boltMax   int   // bbolt's MaxSize outside the backstop trim
	pageSize  int
	allocSize int   // bbolt DB.AllocSize
	data      int64 // cost of all live records (messages + events)
	events    int64 // cost of live events
	maxRecord int64 // largest single record cost Append accepts
	chunk     int64 // largest cost of new records written in one transaction
}

func newBudget(maxFile int64, pageSize int) budget {
	b := budget{maxFile: maxFile, pageSize: pageSize}
	// bbolt grows a file that is mapped larger than AllocSize by "needed +
	// AllocSize", and refuses the growth when that passes MaxSize; smaller
	// files grow to the mmap size (a power of two). Scaling the step with the
	// cap keeps a few steps of growth for small caps and amortises
	// truncate+fsync for big ones (bbolt's default is 16 MiB).
	alloc := int(maxFile / 32)
	alloc -= alloc % pageSize
	b.allocSize = max(min(alloc, 16<<20), 2*pageSize)
	// The trim's reserve: one growth step plus the pages a delete rewrites
	// (leaf, branch, bucket root, tree root).
	b.boltMax = int(maxFile) - b.allocSize - 4*pageSize
	usable := mmapFloor(int64(b.boltMax)) - int64(b.allocSize) - 4*int64(pageSize)
	b.data = usable / 2
	b.events = b.data / 8
	b.maxRecord = b.data / 8
	// New records are written in transactions of at most a quarter of the
	// budget: the pages one transaction frees become reusable only in the
	// next one, so a burst as large as the budget written in one
	// transaction would need twice the room.
	b.chunk = b.data / 4
	return b
}

// mmapFloor is the largest file size bbolt can reach under a cap of n. On
// Windows bbolt grows the file to its whole mapping, and mappings double
// from 32 KiB to 1 GiB, then grow by 1 GiB; elsewhere the file grows by
// pages and n itself is reachable.
func mmapFloor(n int64) int64 {
	if runtime.GOOS != "windows" {
		return n
	}
	if n >= 1<<30 {
		return n - n%(1<<30)
	}
	f := int64(32 << 10)
	for f*2 <= n {
		f *= 2
	}
	return f
}

// cost estimates the file bytes a record of n value bytes occupies in a
// leaf page (bbolt leaves are filled to 100% here, see fillPercent).
// Small records share a page: the cost is the page divided by how many fit.
// Records larger than half a page go two or more to a node (bbolt keeps at
// least two keys per node), spanning whole pages: about one half page is
// wasted per record.
func (b budget) cost(n int) int64 {
	e := leafElemSize + keySize + n
	usable := b.pageSize - pageHeaderSize
	if 2*e <= usable {
		perPage := usable / e
		return int64((b.pageSize + perPage - 1) / perPage)
	}
	return int64(e + b.pageSize/2 + pageHeaderSize)
}

// fillPercent for both buckets: keys only ever grow (seq, event ID), so
// bbolt's default of 50% would leave every leaf half empty forever.
const fillPercent = 1.0

// boltOptions are the bbolt settings for the buffer file. Every field that
// matters is set explicitly, with the reason.
func boltOptions(boltMax int, readOnly bool) *bolt.Options {
	return &bolt.Options{
		Timeout:  boltLockTimeout,
		ReadOnly: readOnly,
		// The hard file cap; see budget.
		MaxSize: boltMax,
		// NoSync stays false: the fsync at the end of every commit IS the
		// durability promise ("appended to bbolt before it is published").
		// Without it a power cut could lose messages the broker never got,
		// or tear the file. Group commit is what keeps the fsync rate low.
		NoSync: false,
		// The freelist is not written to the file. A full buffer has many
		// free pages (the broker was down, then everything was delivered):
		// a synced freelist would be rewritten, 8 bytes per free page, in
		// every commit, i.e. megabytes per commit for a 1 GiB file. Without
		// it bbolt rebuilds the freelist by walking the tree on Open, which
		// Open does anyway (it checks every record's CRC).
		NoFreelistSync: true,
		// The hashmap freelist finds runs of contiguous free pages (needed
		// by values larger than a page) in O(1) instead of scanning an
		// array; bbolt documents it as faster in almost all cases.
		FreelistType: bolt.FreelistMapType,
		// InitialMmapSize stays 0: bbolt grows a small file to its mmap size,
		// so a large initial mapping could push the file past the cap.
		InitialMmapSize: 0,
		// Keep the OS page size (bbolt's default): a file created elsewhere
		// keeps its own page size anyway, read from its meta page.
		PageSize: 0,
		// bbolt's per-tx statistics are not used.
		NoStatistics: true,
	}
}

func validateMaxSize(n int64) error {
	if n < MinMaxSize {
		return fmt.Errorf("buffer max_size %d bytes is below the minimum of %d (256 KiB)", n, MinMaxSize)
	}
	return nil
}
