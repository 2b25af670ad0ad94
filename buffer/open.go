package buffer

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"runtime/debug"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
)

// Open opens the buffer file at opts.Path, creating it (0600, and its
// directory 0700) if missing, and starts the committer.
//
// A file that is not a healthy linegate buffer (not a bbolt file,
// truncated, failing bbolt's consistency check, foreign buckets, or an
// undecodable meta) is moved aside to "<path>.corrupt-<UTC time>", logged
// as an Error naming both paths, and replaced by a fresh file whose first
// event is buffer_corrupt (attrs moved_to, error). Seq then continues after
// the ceiling kept in "<path>.seq" (see seqfile.go), so the MES never sees
// a seq twice. Single records that fail their checksum are deleted, counted
// as dropped and reported in a buffer_corrupt event; the rest is kept.
//
// A file written with a larger max_size is trimmed (oldest first, with a
// buffer_overflow event) and compacted to fit the new cap.
//
// When another process has the file open, Open fails after about a second
// with an error matching ErrInUse.
func Open(opts Options) (*Queue, error) {
	if opts.Path == "" {
		return nil, errors.New("buffer: no path")
	}
	maxSize := opts.MaxSize
	if maxSize == 0 {
		maxSize = DefaultMaxSize
	}
	if err := validateMaxSize(maxSize); err != nil {
		return nil, err
	}
	interval := opts.CommitInterval
	if interval == 0 {
		interval = DefaultCommitInterval
	}
	if opts.MaxAge < 0 {
		return nil, fmt.Errorf("buffer: negative max age %v", opts.MaxAge)
	}
	if interval < 0 {
		return nil, fmt.Errorf("buffer: negative commit interval %v", interval)
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	clock := opts.Clock
	if clock == nil {
		clock = time.Now
	}
	path := filepath.Clean(opts.Path)
	if opts.ReadOnly {
		return openReadOnly(path, maxSize, interval, log, clock, opts.Registerer)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("buffer: create directory of %s: %w", path, err)
	}

	side, haveSide, err := readSidecar(path)
	if err != nil {
		log.Warn("buffer: ignoring unreadable seq sidecar", "path", sidecarPath(path), "error", err)
	}

	vr, err := verifyFile(path)
	var repaired *CorruptError
	var movedTo string
	if errors.As(err, &repaired) {
		if movedTo, err = moveAside(path, clock(), log, repaired); err != nil {
			return nil, err
		}
		vr = verifyResult{fresh: true}
	} else if err != nil {
		return nil, err
	}

	var db *bolt.DB
	err = guard(path, func() (err error) { db, err = openBolt(path, maxSize, false); return err })
	var ce *CorruptError
	if errors.As(err, &ce) && repaired == nil {
		// Verify passed but bbolt's own open scan failed: repair the same way.
		repaired = ce
		if movedTo, err = moveAside(path, clock(), log, ce); err != nil {
			return nil, err
		}
		vr = verifyResult{fresh: true}
		err = guard(path, func() (err error) { db, err = openBolt(path, maxSize, false); return err })
	}
	if err != nil {
		return nil, err
	}
	// A compaction interrupted by a crash left its copy: worthless (the
	// rename never happened) and up to the buffer's size on a small disk.
	// Removed only now that the buffer's lock is ours.
	if err := os.Remove(path + ".compact"); err == nil {
		log.Warn("buffer: removed the copy left by an interrupted compaction", "path", path+".compact")
	}

	q := &Queue{
		path:      path,
		log:       log,
		clock:     clock,
		interval:  interval,
		maxAge:    opts.MaxAge,
		bud:       newBudget(maxSize, db.Info().PageSize),
		db:        db,
		acks:      make(map[uint64]struct{}),
		evAcks:    make(map[uint64]struct{}),
		committed: make(chan struct{}, 1),
		appended:  make(chan struct{}, 1),
		acked:     make(chan struct{}, 1),
		done:      make(chan struct{}),
	}
	// Set before the first write transaction; see budget.
	db.AllocSize, db.MaxSize = q.bud.allocSize, q.bud.boltMax
	if q.met, err = newMetrics(opts.Registerer, func() float64 { return float64(q.Stats().Messages) }, q.oldestAge); err != nil {
		db.Close()
		return nil, fmt.Errorf("buffer %s: %w", path, err)
	}
	if err := q.load(&vr, side, haveSide); err != nil {
		db.Close()
		q.met.unregister()
		return nil, err
	}
	if st, err := os.Stat(path); err == nil {
		q.fileSize = st.Size()
		if st.Mode().Perm()&^0o600 != 0 {
			// The file holds production data; keep it private even if an
			// older install or a copy widened it.
			_ = os.Chmod(path, 0o600)
		}
	}
	if repaired != nil {
		e := Event{Type: EventCorrupt, TS: clock().UTC(), Attrs: []Attr{
			{Key: "moved_to", Value: movedTo},
			{Key: "error", Value: repaired.Err.Error()},
		}}
		rec, err := appendEvent(nil, &e)
		if err == nil {
			q.mu.Lock()
			q.queueEventLocked(rec)
			q.mu.Unlock()
		}
	}

	// Commit the repair events, and apply the size budget now: the file may
	// have been written with a larger max_size.
	q.commitMu.Lock()
	err = q.commitLocked(q.live.cost+q.live.evCost > q.bud.data)
	if err == nil && q.fileSize > q.bud.maxFile {
		q.log.Warn("buffer: file is larger than max_size (lowered?); compacting it",
			"path", path, "file_bytes", q.fileSize, "max_size", q.bud.maxFile)
		err = q.compactLocked()
	}
	if err == nil {
		if rerr := q.makeReserve(); rerr != nil {
			q.log.Warn("buffer: cannot reserve room for a full disk; when the disk fills, acknowledgements wait for room",
				"path", path, "bytes", reserveSize(maxSize), "error", rerr)
		}
	}
	q.commitMu.Unlock()
	if err != nil {
		q.dbMu.Lock()
		if q.db != nil {
			q.db.Close()
			q.db = nil
		}
		q.dbMu.Unlock()
		q.met.unregister()
		return nil, err
	}

	ctx, cancel := context.WithCancel(context.Background())
	q.stop = cancel
	go q.run(ctx)
	return q, nil
}

// load creates the buckets of a fresh file, reads the meta, and initialises
// the in-memory counters with one scan, so that Stats never scans.
func (q *Queue) load(vr *verifyResult, side seqSidecar, haveSide bool) error {
	if vr.fresh {
		err := q.db.Update(func(tx *bolt.Tx) error {
			meta, err := tx.CreateBucketIfNotExists([]byte(bucketMeta))
			if err != nil {
				return err
			}
			if err := meta.Put([]byte(metaFormat), []byte{formatVersion}); err != nil {
				return err
			}
			for _, name := range []string{bucketMsgs, bucketEvents} {
				if _, err := tx.CreateBucketIfNotExists([]byte(name)); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("buffer: initialise %s: %w", q.path, err)
		}
	}
	var lastSeq, lastEv, maxKey, maxEv uint64
	var live liveState
	err := q.db.View(func(tx *bolt.Tx) error {
		meta := tx.Bucket([]byte(bucketMeta))
		mb, eb := tx.Bucket([]byte(bucketMsgs)), tx.Bucket([]byte(bucketEvents))
		if meta == nil || mb == nil || eb == nil {
			return &CorruptError{Path: q.path, Err: errors.New("buckets missing")}
		}
		lastSeq, lastEv, q.dropped = getU64(meta, metaLastSeq), getU64(meta, metaLastEv), getU64(meta, metaDropped)
		c := mb.Cursor()
		for k, v := c.First(); k != nil; k, v = c.Next() {
			live.addMsg(len(v), q.bud.cost(len(v)))
			maxKey = binary.BigEndian.Uint64(k)
		}
		if k, v := c.First(); k != nil {
			live.oldestSeq = binary.BigEndian.Uint64(k)
			if body, err := checkRecord(v); err == nil {
				live.oldestCreated, _ = recordCreated(body)
			}
		}
		c = eb.Cursor()
		for k, v := c.First(); k != nil; k, v = c.Next() {
			live.events++
			live.evCost += q.bud.cost(len(v))
			maxEv = binary.BigEndian.Uint64(k)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("buffer: load %s: %w", q.path, err)
	}

	last := max(lastSeq, maxKey)
	switch {
	case vr.fresh && haveSide:
		last = max(last, side.value)
	case haveSide && side.clean && side.value > last:
		q.log.Warn("buffer: file is behind the seq sidecar (an older copy put back?); continuing after the sidecar's seq",
			"path", q.path, "file_last_seq", last, "sidecar_seq", side.value)
		last = side.value
	}
	q.live = live
	q.lastSeq, q.nextSeq = last, last+1
	q.lastEventID = max(lastEv, maxEv)
	q.nextEventID = q.lastEventID + 1
	if haveSide {
		q.reserved = side.value
	}
	q.met.bytes.Set(float64(live.bytes))

	if len(vr.badMsgs) > 0 {
		q.log.Error("buffer: unreadable messages found; deleting them (counted as dropped)",
			"path", q.path, "count", len(vr.badMsgs), "error", vr.badErr)
		q.unreadable = vr.badMsgs
		q.unreadableErr = vr.badErr.Error()
	}
	if len(vr.badEvents) > 0 {
		q.log.Error("buffer: unreadable events found; deleting them", "path", q.path, "count", len(vr.badEvents))
		for _, id := range vr.badEvents {
			q.evAcks[id] = struct{}{}
		}
	}
	return nil
}

func getU64(b *bolt.Bucket, key string) uint64 {
	v := b.Get([]byte(key))
	if len(v) != 8 {
		return 0
	}
	return binary.BigEndian.Uint64(v)
}

// Verify checks the buffer file at path read-only, the way Open does before
// using it, and repairs nothing. It returns nil for a healthy or missing
// file, an error matching ErrInUse while another process (linegate) has it
// open, a *CorruptError when Open would move the file aside or delete
// records, or the I/O error that prevented the check.
func Verify(path string) error {
	vr, err := verifyFile(filepath.Clean(path))
	if err != nil {
		return err
	}
	if n := len(vr.badMsgs) + len(vr.badEvents); n > 0 {
		return &CorruptError{Path: path, Err: fmt.Errorf("%d unreadable records: %w", n, vr.badErr)}
	}
	return nil
}

type verifyResult struct {
	fresh     bool // no file, an empty file, or a bbolt file without buckets
	badMsgs   []uint64
	badEvents []uint64
	badErr    error
}

// verifyFile checks the file before Open writes to it. It opens it
// read-only and touches every page the read-write open will need, inside
// guard: bbolt reads pages through mmap, and a truncated or garbled file
// makes it read past the mapping, which is a fatal fault unless the
// goroutine asked for faults to become panics. bbolt's read-write open then
// rebuilds the freelist in a goroutine of its own, where a fault could not
// be caught; by then every page it visits has been visited here.
func verifyFile(path string) (verifyResult, error) {
	var vr verifyResult
	st, err := os.Stat(path)
	if errors.Is(err, fs.ErrNotExist) {
		vr.fresh = true
		return vr, nil
	}
	if err != nil {
		return vr, fmt.Errorf("buffer: %w", err)
	}
	if st.IsDir() {
		return vr, fmt.Errorf("buffer: %s is a directory", path)
	}
	if st.Size() == 0 {
		vr.fresh = true
		return vr, nil
	}
	var db *bolt.DB
	err = guard(path, func() error {
		var err error
		if db, err = openBolt(path, MinMaxSize, true); err != nil {
			return err
		}
		// bbolt validated the meta pages; walk the tree ourselves before
		// bbolt follows it (see checkPages).
		if err := checkFilePages(path, st.Size()); err != nil {
			return err
		}
		return verifyDB(path, db, st.Size(), &vr)
	})
	if db != nil {
		_ = db.Close()
	}
	return vr, err
}

func verifyDB(path string, db *bolt.DB, fileSize int64, vr *verifyResult) error {
	corrupt := func(format string, args ...any) error {
		return &CorruptError{Path: path, Err: fmt.Errorf(format, args...)}
	}
	return db.View(func(tx *bolt.Tx) error {
		if tx.Size() > fileSize {
			return corrupt("truncated: the file has %d bytes, its meta page says %d", fileSize, tx.Size())
		}
		buckets := 0
		err := tx.ForEach(func(name []byte, _ *bolt.Bucket) error {
			switch string(name) {
			case bucketMeta, bucketMsgs, bucketEvents:
				buckets++
				return nil
			default:
				return corrupt("not a linegate buffer: unknown bucket %q", truncate(string(name), 40))
			}
		})
		if err != nil {
			return err
		}
		if buckets == 0 {
			// A bbolt file that was created but never got its buckets
			// (crash during the first open).
			vr.fresh = true
			return nil
		}
		meta := tx.Bucket([]byte(bucketMeta))
		if meta == nil {
			return corrupt("meta bucket missing")
		}
		if err := checkMeta(meta); err != nil {
			return corrupt("undecodable meta: %v", err)
		}
		for _, name := range []string{bucketMsgs, bucketEvents} {
			b := tx.Bucket([]byte(name))
			if b == nil {
				return corrupt("%s bucket missing", name)
			}
			c := b.Cursor()
			for k, v := c.First(); k != nil; k, v = c.Next() {
				if v == nil || len(k) != 8 {
					return corrupt("%s: unexpected key %x", name, k)
				}
				id := binary.BigEndian.Uint64(k)
				body, err := checkRecord(v)
				if err == nil && binary.BigEndian.Uint64(body[1:recordHeader]) != id {
					err = errors.New("record stored under another key")
				}
				if err != nil {
					if vr.badErr == nil {
						vr.badErr = fmt.Errorf("%s %d: %w", name, id, err)
					}
					if name == bucketMsgs {
						vr.badMsgs = append(vr.badMsgs, id)
					} else {
						vr.badEvents = append(vr.badEvents, id)
					}
				}
			}
		}
		return nil
	})
}

// checkFilePages runs checkPages on the file at path.
func checkFilePages(path string, size int64) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("buffer: %w", err)
	}
	defer f.Close()
	if err := checkPages(f, size); err != nil {
		return &CorruptError{Path: path, Err: fmt.Errorf("page check: %w", err)}
	}
	return nil
}

func checkMeta(meta *bolt.Bucket) error {
	v := meta.Get([]byte(metaFormat))
	if len(v) != 1 || v[0] != formatVersion {
		return fmt.Errorf("format %x, want %d", v, formatVersion)
	}
	for _, k := range []string{metaLastSeq, metaLastEv, metaDropped} {
		if v := meta.Get([]byte(k)); v != nil && len(v) != 8 {
			return fmt.Errorf("%s has %d bytes, want 8", k, len(v))
		}
	}
	return nil
}

// openBolt opens the file with the buffer's bbolt options and sorts the
// failures: lock timeout (in use), I/O or permission errors (returned as
// they are: moving the file aside would not help), and anything else bbolt
// says about the content (corrupt).
func openBolt(path string, maxSize int64, readOnly bool) (*bolt.DB, error) {
	// The page size is only known once the file is open: Open corrects
	// MaxSize then, before the first write.
	db, err := bolt.Open(path, 0o600, boltOptions(newBudget(maxSize, os.Getpagesize()).boltMax, readOnly))
	if err == nil {
		return db, nil
	}
	if errors.Is(err, berrors.ErrTimeout) {
		return nil, &inUseError{path: path}
	}
	var errno syscall.Errno
	var pe *fs.PathError
	if errors.As(err, &errno) || errors.As(err, &pe) {
		return nil, fmt.Errorf("buffer: open %s: %w", path, err)
	}
	return nil, &CorruptError{Path: path, Err: err}
}

// guard runs fn with memory faults turned into panics, and turns a panic
// into a CorruptError: bbolt trusts the page numbers it reads from the
// file, and on a damaged file they point anywhere.
func guard(path string, fn func() error) (err error) {
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if r := recover(); r != nil {
			err = &CorruptError{Path: path, Err: fmt.Errorf("reading the file crashed bbolt: %v", r)}
		}
	}()
	return fn()
}

// moveAside renames a corrupt file out of the way, keeping it for
// inspection, and makes the rename durable before a fresh file is created
// at path.
func moveAside(path string, now time.Time, log *slog.Logger, cause *CorruptError) (string, error) {
	base := path + ".corrupt-" + now.UTC().Format("20060102T150405Z")
	dst := base
	for i := 2; ; i++ {
		if _, err := os.Lstat(dst); errors.Is(err, fs.ErrNotExist) {
			break
		}
		dst = fmt.Sprintf("%s-%d", base, i)
	}
	if err := os.Rename(path, dst); err != nil {
		return "", fmt.Errorf("%w; moving it aside to %s failed: %v", cause, dst, err)
	}
	if err := syncDir(filepath.Dir(path)); err != nil {
		return "", fmt.Errorf("%w; moved to %s but syncing the directory failed: %v", cause, dst, err)
	}
	log.Error("BUFFER FILE CORRUPT: moved aside, starting a fresh buffer; messages in the old file will not be sent",
		"path", path, "moved_to", dst, "error", cause.Err)
	return dst, nil
}

// openReadOnly opens path for inspection only. A diagnostic must never
// change what it inspects: an engineer who points "buffer stats" at the
// wrong file (the config) must not find it renamed and replaced.
func openReadOnly(path string, maxSize int64, interval time.Duration, log *slog.Logger, clock func() time.Time, reg prometheus.Registerer) (*Queue, error) {
	st, err := os.Stat(path)
	switch {
	case err != nil:
		return nil, fmt.Errorf("buffer: %w", err)
	case st.IsDir():
		return nil, fmt.Errorf("buffer: %s is a directory", path)
	case st.Size() == 0:
		return nil, fmt.Errorf("buffer: %s is empty: not a linegate buffer (nothing was changed)", path)
	}
	vr, err := verifyFile(path)
	var ce *CorruptError
	switch {
	case errors.As(err, &ce):
		return nil, fmt.Errorf("buffer: %s is not a healthy linegate buffer (%v); nothing was changed: only linegate run, or buffer compact/drop, move a corrupt buffer aside", path, ce.Err)
	case err != nil:
		return nil, err
	case vr.fresh:
		return nil, fmt.Errorf("buffer: %s is a bbolt file without linegate's buckets: not a linegate buffer (nothing was changed)", path)
	}
	var db *bolt.DB
	if err := guard(path, func() (err error) { db, err = openBolt(path, maxSize, true); return err }); err != nil {
		return nil, err
	}
	q := &Queue{
		path: path, log: log, clock: clock, interval: interval, readOnly: true,
		bud:       newBudget(maxSize, db.Info().PageSize),
		db:        db,
		acks:      make(map[uint64]struct{}),
		evAcks:    make(map[uint64]struct{}),
		committed: make(chan struct{}, 1),
		appended:  make(chan struct{}, 1),
		acked:     make(chan struct{}, 1),
		done:      make(chan struct{}),
		stop:      func() {},
		fileSize:  st.Size(),
	}
	close(q.done) // no committer
	if q.met, err = newMetrics(reg, func() float64 { return float64(q.Stats().Messages) }, q.oldestAge); err != nil {
		db.Close()
		return nil, fmt.Errorf("buffer %s: %w", path, err)
	}
	vr.badMsgs, vr.badEvents = nil, nil // reported by Verify; never deleted here
	if err := q.load(&vr, seqSidecar{}, false); err != nil {
		db.Close()
		q.met.unregister()
		return nil, err
	}
	return q, nil
}
