// Package buffer is linegate's store-and-forward queue: a bbolt file that
// holds every message from the moment the collector builds it until the MQTT
// broker has acknowledged it.
//
// Ordering and durability, in short:
//   - Append assigns the next seq and keeps the message in memory; a single
//     background goroutine writes everything appended since the last commit
//     in one fsync'd bbolt transaction every CommitInterval (group commit).
//   - Read returns only committed messages, so nothing is ever published that
//     a crash could take back; a kill -9 loses at most the messages of the
//     last commit window, and their seqs are then reused, which is safe
//     because they were never published.
//   - Ack deletes in the next group commit. A crash before that commit
//     republishes the message (at-least-once; the MES de-duplicates by seq).
//   - The file never grows past MaxSize; when full, the oldest messages are
//     dropped in the commit that needs the room, and a buffer_overflow event
//     says which.
package buffer

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	bolt "go.etcd.io/bbolt"
)

// Options configure a Queue. Only Path is required.
type Options struct {
	Path string
	// MaxSize caps the size of the file, in bytes: it never grows past it.
	// Default 1 GiB, minimum 256 KiB.
	MaxSize int64
	// CommitInterval is the group commit period, default 50ms: the window
	// of messages a kill -9 can lose, and the latency before a message can
	// be published.
	CommitInterval time.Duration
	// MaxAge, when set, drops messages older than this (by creation time),
	// oldest first, with a buffer_expired event: data nobody wants after a
	// long outage (Ignition's rolling max age). 0 keeps them until the size
	// cap needs the room.
	MaxAge     time.Duration
	Logger     *slog.Logger          // nil: discard
	Registerer prometheus.Registerer // nil: no metrics
	// ReadOnly opens an existing buffer for inspection (the buffer
	// commands): nothing is written, created, repaired or moved aside; a
	// file that is missing, empty or not a healthy linegate buffer is an
	// error, and Append, Ack and Close's final commit do nothing.
	ReadOnly bool
	Clock    func() time.Time // nil: time.Now; used for event timestamps and ages
}

// Stats is a cheap snapshot of the queue, kept in memory (initialised by
// one scan in Open, then maintained by each commit).
type Stats struct {
	Messages      int       // committed, not yet acknowledged
	Acked         int       // acknowledged, deleted with the next commit
	Bytes         int64     // encoded size of the messages in the file
	FileSize      int64     // size of the file after the last commit
	OldestSeq     uint64    // 0 when empty
	NextSeq       uint64    // seq the next Append gets
	OldestCreated time.Time // zero when empty
	Dropped       uint64    // messages ever dropped by the size cap or as unreadable (persisted)
	Pending       int       // appended, not yet committed
	Events        int       // committed events, not yet acknowledged
}

// Bucket and meta key names. Constants (not []byte vars) so that nothing
// package-level is mutable.
const (
	bucketMeta   = "meta"
	bucketMsgs   = "messages"
	bucketEvents = "events"

	metaFormat  = "format"        // 1 byte, formatVersion
	metaLastSeq = "last_seq"      // 8 bytes BE: last seq committed
	metaLastEv  = "last_event_id" // 8 bytes BE: last event ID committed
	metaDropped = "dropped_total" // 8 bytes BE: messages ever dropped

	formatVersion = 1
)

// Queue is the buffer. All methods are safe for concurrent use.
type Queue struct {
	path     string
	log      *slog.Logger
	clock    func() time.Time
	interval time.Duration
	maxAge   time.Duration // Options.MaxAge
	bud      budget
	met      *metrics

	// Lock order: commitMu, then dbMu, then mu or ackMu; never the other
	// way round.
	//
	//   - commitMu is outermost: the committer, Flush, Compact, Open's first
	//     commit and Close hold it across a whole commit, which takes dbMu
	//     shared (a compaction, exclusively). Events takes it only around
	//     its mark and lets go before it takes dbMu.
	//   - dbMu is held across bbolt transactions, so a transaction body
	//     may take mu or ackMu, and must never take commitMu or dbMu.
	//   - mu and ackMu are leaves: held for a few field reads or updates,
	//     never together, never while taking another of these locks, never
	//     across a bbolt call or a channel send.
	//
	// bbolt's own locks sit between dbMu and the leaves.

	// dbMu guards the db handle: readers (Read, Events) and commits hold
	// it shared, Compact and Close hold it exclusively to replace or close
	// the handle. bbolt serialises the writers itself.
	dbMu sync.RWMutex
	db   *bolt.DB

	// commitMu makes commits, compaction and Close take turns, so that the
	// in-memory counters always match the file.
	commitMu sync.Mutex

	// ackMu guards the acknowledgements waiting for the next commit. Read
	// consults them for every record, so they have their own lock instead of
	// contending with Append on mu.
	ackMu  sync.Mutex
	acks   map[uint64]struct{}
	evAcks map[uint64]struct{}

	readOnly bool // Options.ReadOnly: no committer, no writes

	mu            sync.Mutex // guards everything below
	closed        bool
	pending       []pendingRec // appended messages, seq order
	pendingBytes  int64
	pendingEvents []pendingRec
	unreadable    []uint64 // seqs Read could not decode; deleted by the next commit
	unreadableErr string
	nextSeq       uint64
	nextEventID   uint64
	lastSeq       uint64 // last seq committed (meta last_seq)
	lastEventID   uint64 // last event ID committed
	evMark        uint64 // events with ID <= evMark may have been handed out by Events
	overflowID    uint64 // newest buffer_overflow event written this run
	reserved      uint64 // seq ceiling in the sidecar file
	live          liveState
	fileSize      int64
	dropped       uint64 // persisted dropped_total
	commitErr     error  // last commit's error, nil when healthy
	errLogged     time.Time
	sidecarErr    bool
	released      time.Time // last maybeRelease; committer only (release.go)
	drops         dropLog
	memDropped    memDrop // messages dropped from memory, for the next commit's loss event

	committed chan struct{}
	// appended wakes the committer; appendN counts appends, so that it
	// sees when they pause (commit.go).
	appended chan struct{}
	appendN  atomic.Uint64
	// acked tells the committer that acknowledgements wait (commit.go).
	acked chan struct{}
	stop  context.CancelFunc
	done  chan struct{}

	// readBytes counts the record bytes Read has decoded since the last
	// release of mapped pages (release.go).
	readBytes atomic.Int64

	// readScratch is held by one Read at a time (see Read).
	readScratch atomic.Pointer[readScratch]

	recs recPool // records of committed messages, for the next appends

	disk diskState // committer only (commitMu)
}

// pendingRec is an encoded record waiting for a commit (without its CRC).
type pendingRec struct {
	id  uint64
	rec []byte
}

// liveState counts what the file holds.
type liveState struct {
	msgs          int
	bytes         int64 // sum of value lengths
	cost          int64 // sum of budget.cost
	oldestSeq     uint64
	oldestCreated time.Time
	events        int
	evCost        int64
}

// Append assigns m the next seq and queues it for the next group commit. It
// returns at once; the message becomes readable (and survives a crash) only
// after that commit. Append fails when m cannot be encoded or is too large
// for the buffer. While commits fail (a full disk), at most memCap bytes of
// messages wait in memory; beyond that the oldest waiting are dropped and
// announced by the next commit's buffer_overflow event.
func (q *Queue) Append(m Message) (uint64, error) {
	// Encode outside the lock: appenders only contend for the seq.
	rec, err := appendMessage(q.recs.get(messageSizeHint(&m)), &m)
	if err != nil {
		return 0, fmt.Errorf("buffer: append %s/%s: %w", m.Equipment, m.Class, err)
	}
	if c := q.bud.cost(len(rec) + crcSize); c > q.bud.maxRecord {
		return 0, fmt.Errorf("buffer: append %s/%s: message of %d bytes is too large for a buffer of max_size %d (limit about %d bytes)",
			m.Equipment, m.Class, len(rec)+crcSize, q.bud.maxFile, q.bud.maxRecord)
	}
	if q.readOnly {
		return 0, ErrReadOnly
	}
	q.mu.Lock()
	if q.closed {
		q.mu.Unlock()
		return 0, ErrClosed
	}
	seq := q.nextSeq
	q.nextSeq++
	setRecordID(rec, seq)
	q.pending = append(q.pending, pendingRec{id: seq, rec: rec})
	q.pendingBytes += int64(cap(rec)) // the memory it holds until the commit
	if q.commitErr != nil {
		q.shedPendingLocked()
	}
	q.mu.Unlock()
	q.appendN.Add(1)
	select {
	case q.appended <- struct{}{}:
	default:
	}
	q.met.appends.Inc()
	return seq, nil
}

// AppendEvent assigns e an ID and queues it for the next group commit.
// Events are not dropped to make room for messages; the buffer keeps the
// newest 1000 of them (and at most an eighth of the data budget).
func (q *Queue) AppendEvent(e Event) error {
	rec, err := appendEvent(make([]byte, 0, 64), &e)
	if err != nil {
		return fmt.Errorf("buffer: append event: %w", err)
	}
	if c := q.bud.cost(len(rec) + crcSize); c > q.bud.events {
		return fmt.Errorf("buffer: append event %s: %d bytes is too large", e.Type, len(rec))
	}
	if q.readOnly {
		return ErrReadOnly
	}
	q.mu.Lock()
	if q.closed {
		q.mu.Unlock()
		return ErrClosed
	}
	q.queueEventLocked(rec)
	q.mu.Unlock()
	// An event is committed like an append: soon, and not on a tick.
	select {
	case q.appended <- struct{}{}:
	default:
	}
	return nil
}

func (q *Queue) queueEventLocked(rec []byte) {
	id := q.nextEventID
	q.nextEventID++
	setRecordID(rec, id)
	q.pendingEvents = append(q.pendingEvents, pendingRec{id: id, rec: rec})
}

func (q *Queue) isClosed() bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.closed
}

// Flush commits everything pending now, instead of at the next tick.
func (q *Queue) Flush() error {
	q.commitMu.Lock()
	defer q.commitMu.Unlock()
	if q.isClosed() {
		return ErrClosed
	}
	if q.readOnly {
		return nil // nothing to commit
	}
	return q.commitLocked(false)
}

// Committed signals (without blocking the committer: capacity 1, dropped
// when full) after each commit that added messages or events. A reader
// waits on it, then Reads until it gets nothing.
func (q *Queue) Committed() <-chan struct{} { return q.committed }

// Read returns up to max committed messages with seq > after, in seq order.
// Messages acknowledged but not yet deleted are skipped. A record that fails
// its checksum is skipped, logged, and deleted (counted as dropped) by the
// next commit, so that one bad record cannot stall the uplink.
//
// The messages returned share memory (see batch): their readings are capped
// slices of one slice, and equal short strings are the same string.
func (q *Queue) Read(after uint64, max int) ([]Message, error) {
	var b Batch
	err := q.ReadBatch(&b, after, max)
	return b.Messages, err
}

// Batch holds the messages of one ReadBatch and the memory of their
// readings. Reading into the same Batch again reuses that memory, so a
// reader that is done with a batch (the uplink, once it has encoded the
// payloads) reads the next one without allocating it: the readings of a
// batch were a third of the agent's allocations.
type Batch struct {
	Messages []Message
	readings []Reading // backing of the Messages' readings
}

// maxKeptReadings bounds the readings a Batch keeps for the next read
// (about 1 MiB); a larger batch is allocated each time.
const maxKeptReadings = 1 << 13

// ReadBatch is Read into b: b.Messages becomes the result. The messages b
// held before, their readings and attributes must no longer be in use; the
// strings and values in them stay valid.
func (q *Queue) ReadBatch(b *Batch, after uint64, max int) error {
	clear(b.Messages)
	b.Messages = b.Messages[:0]
	if max <= 0 || after == math.MaxUint64 {
		return nil
	}
	q.dbMu.RLock()
	defer q.dbMu.RUnlock()
	if q.db == nil {
		return ErrClosed
	}
	// The scratch of the last Read: a concurrent Read finds none and makes
	// its own, the last one to finish keeps its.
	rs := q.readScratch.Swap(nil)
	if rs == nil {
		rs = &readScratch{names: newNameTable()}
	}
	defer q.readScratch.Store(rs)

	out := b.Messages
	reused := false // b.readings is handed out (in a pass before this one)
	var bad badRecords
	var start [8]byte
	binary.BigEndian.PutUint64(start[:], after+1)
	err := q.db.View(func(tx *bolt.Tx) error {
		bk := tx.Bucket([]byte(bucketMsgs))
		if bk == nil {
			return &CorruptError{Path: q.path, Err: errors.New("messages bucket missing")}
		}
		// Two passes, so that the readings of the whole batch are one
		// allocation: check the records and count their readings, then
		// decode. A record that the second pass refuses leaves the batch
		// short, so the passes repeat until it is full or the bucket ends.
		c := bk.Cursor()
		k, v := c.Seek(start[:])
		for k != nil && len(out) < max {
			recs, total := rs.recs[:0], 0
			for ; k != nil && len(recs) < max-len(out); k, v = c.Next() {
				seq := binary.BigEndian.Uint64(k)
				if q.isAcked(seq) {
					continue
				}
				body, err := checkRecord(v)
				var n int
				if err == nil {
					n, err = messageReadings(body)
				}
				if err != nil {
					bad.add(seq, err)
					continue
				}
				recs = append(recs, rawRecord{seq: seq, body: body})
				total += n
			}
			bt := batch{names: rs.names}
			switch {
			case total == 0:
			case !reused && cap(b.readings) >= total:
				bt.readings = b.readings[:total]
				clear(bt.readings) // the decoder expects zeroed readings
				reused = true
			default:
				bt.readings = make([]Reading, total)
				if !reused && total <= maxKeptReadings {
					b.readings = bt.readings
					reused = true
				}
			}
			if out == nil {
				out = make([]Message, 0, len(recs))
			}
			for _, r := range recs {
				m, err := bt.message(r.body)
				if err == nil && m.Seq != r.seq {
					err = fmt.Errorf("record holds seq %d", m.Seq)
				}
				if err != nil {
					bad.add(r.seq, err)
					continue
				}
				out = append(out, m)
				q.readBytes.Add(int64(len(r.body)))
			}
			// The bodies are the mmap, valid only in this transaction. A
			// huge batch's slice is not kept.
			clear(recs)
			if cap(recs) <= maxKeptRecs {
				rs.recs = recs[:0]
			}
		}
		return nil
	})
	if len(bad.seqs) > 0 {
		q.log.Error("buffer: unreadable messages skipped; they will be deleted and counted as dropped",
			"path", q.path, "count", len(bad.seqs), "error", bad.err)
		q.mu.Lock()
		q.unreadable = append(q.unreadable, bad.seqs...)
		q.unreadableErr = bad.err.Error()
		q.mu.Unlock()
		select {
		case q.acked <- struct{}{}: // deleted with the next commit
		default:
		}
	}
	if err != nil {
		clear(out)
		b.Messages = out[:0]
		return fmt.Errorf("buffer: read after %d: %w", after, err)
	}
	b.Messages = out
	return nil
}

// badRecords are the records a Read could not decode.
type badRecords struct {
	seqs []uint64
	seq  uint64 // of err
	err  error  // of the highest seq, as it is logged
}

func (b *badRecords) add(seq uint64, err error) {
	b.seqs = append(b.seqs, seq)
	if b.err == nil || seq > b.seq {
		b.seq, b.err = seq, fmt.Errorf("seq %d: %w", seq, err)
	}
}

// readScratch is what Read reuses from one call to the next.
type readScratch struct {
	names *nameTable
	recs  []rawRecord
}

// maxKeptRecs bounds the record slice that readScratch keeps.
const maxKeptRecs = 1024

// rawRecord is a checked message record, in the mmap.
type rawRecord struct {
	seq  uint64
	body []byte
}

func (q *Queue) isAcked(seq uint64) bool {
	q.ackMu.Lock()
	_, ok := q.acks[seq]
	q.ackMu.Unlock()
	return ok
}

// Ack marks messages as delivered (the broker's PUBACK). They are deleted
// in the next group commit, batched with the appends, so that a PUBACK does
// not cost an fsync of its own; until then Read skips them. If the process
// dies before that commit they are published again (at-least-once).
func (q *Queue) Ack(seqs ...uint64) error { return q.mark(q.acks, seqs) }

// Events returns up to max committed events, oldest first. Events that
// AckEvents acknowledged but the next commit has not deleted yet are
// skipped.
func (q *Queue) Events(max int) ([]Event, error) {
	if max <= 0 {
		return nil, nil
	}
	// Mark every committed event as handed out before reading them. A later
	// commit then never rewrites one of them (see extendOverflow): the
	// caller could otherwise publish and acknowledge the old version and
	// lose the extension. Holding commitMu makes the mark and the snapshot
	// read below agree on which commit they see.
	q.commitMu.Lock()
	q.mu.Lock()
	q.evMark = q.lastEventID
	q.mu.Unlock()
	q.commitMu.Unlock()

	q.dbMu.RLock()
	defer q.dbMu.RUnlock()
	if q.db == nil {
		return nil, ErrClosed
	}
	var out []Event
	var badEvents []uint64
	err := q.db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket([]byte(bucketEvents))
		if b == nil {
			return &CorruptError{Path: q.path, Err: errors.New("events bucket missing")}
		}
		c := b.Cursor()
		for k, v := c.First(); k != nil && len(out) < max; k, v = c.Next() {
			id := binary.BigEndian.Uint64(k)
			q.ackMu.Lock()
			_, acked := q.evAcks[id]
			q.ackMu.Unlock()
			if acked {
				continue
			}
			e, err := decodeEvent(v)
			if err == nil && e.ID != id {
				err = fmt.Errorf("record holds ID %d", e.ID)
			}
			if err != nil {
				// Skip it rather than fail every call; deleting it
				// through the ack path keeps the others flowing.
				q.log.Error("buffer: unreadable event skipped and deleted", "path", q.path, "id", id, "error", err)
				badEvents = append(badEvents, id)
				continue
			}
			out = append(out, e)
		}
		return nil
	})
	if len(badEvents) > 0 {
		q.ackMu.Lock()
		for _, id := range badEvents {
			q.evAcks[id] = struct{}{}
		}
		q.ackMu.Unlock()
	}
	if err != nil {
		return nil, fmt.Errorf("buffer: events: %w", err)
	}
	return out, nil
}

// AckEvents marks events as delivered; like Ack, they are deleted in the
// next group commit.
func (q *Queue) AckEvents(ids ...uint64) error { return q.mark(q.evAcks, ids) }

// mark records keys in an ack set (acks or evAcks) for the next commit.
func (q *Queue) mark(set map[uint64]struct{}, keys []uint64) error {
	if q.readOnly {
		return ErrReadOnly
	}
	if q.isClosed() {
		return ErrClosed
	}
	q.ackMu.Lock()
	for _, k := range keys {
		set[k] = struct{}{}
	}
	n := len(q.acks) + len(q.evAcks)
	q.ackMu.Unlock()
	wake := q.acked
	if n >= ackCommitBatch {
		wake = q.appended // enough for a commit of their own now
	}
	select {
	case wake <- struct{}{}:
	default:
	}
	return nil
}

// Stats returns counters kept in memory; it does no I/O.
//
// Messages counts what still waits for the broker: acknowledged messages
// are deleted only by the next commit of appends (commit.go), and are not
// counted meanwhile.
func (q *Queue) Stats() Stats {
	acked := q.ackedWaiting()
	q.mu.Lock()
	defer q.mu.Unlock()
	return Stats{
		Messages:      max(q.live.msgs-acked, 0),
		Acked:         min(acked, q.live.msgs),
		Bytes:         q.live.bytes,
		FileSize:      q.fileSize,
		OldestSeq:     q.live.oldestSeq,
		NextSeq:       q.nextSeq,
		OldestCreated: q.live.oldestCreated,
		Dropped:       q.dropped,
		Pending:       len(q.pending),
		Events:        q.live.events,
	}
}

// ackedWaiting is how many acknowledged messages the next commit deletes.
func (q *Queue) ackedWaiting() int {
	q.ackMu.Lock()
	defer q.ackMu.Unlock()
	return len(q.acks)
}

func (q *Queue) oldestAge() float64 {
	acked := q.ackedWaiting()
	q.mu.Lock()
	t, n := q.live.oldestCreated, q.live.msgs
	q.mu.Unlock()
	if t.IsZero() || n <= acked { // empty, or every message acknowledged
		return 0
	}
	return max(q.clock().Sub(t).Seconds(), 0)
}

// Close commits what is pending, stops the committer and closes the file.
// Calling it again returns nil.
func (q *Queue) Close() error {
	q.mu.Lock()
	if q.closed {
		q.mu.Unlock()
		return nil
	}
	q.closed = true
	q.mu.Unlock()

	// Stop the committer first, so that the final commit below is the last
	// one and nothing races the file close.
	q.stop()
	<-q.done

	q.commitMu.Lock()
	defer q.commitMu.Unlock()
	var errs []error
	q.dbMu.RLock()
	open := q.db != nil
	q.dbMu.RUnlock()
	if open && !q.readOnly {
		if err := q.commitLocked(false); err != nil {
			errs = append(errs, err)
		} else {
			// A clean stop records the exact last seq, so that a fresh
			// start (file lost later) continues without a gap.
			q.mu.Lock()
			last := q.lastSeq
			q.mu.Unlock()
			if err := writeSidecar(q.path, seqSidecar{value: last, clean: true}); err != nil {
				q.log.Warn("buffer: cannot write seq sidecar", "path", sidecarPath(q.path), "error", err)
			}
		}
	}
	q.flushDropLog()
	q.dbMu.Lock()
	if q.db != nil {
		if err := q.db.Close(); err != nil {
			errs = append(errs, fmt.Errorf("buffer: close %s: %w", q.path, err))
		}
		q.db = nil
	}
	q.dbMu.Unlock()
	q.met.unregister()
	return errors.Join(errs...)
}
