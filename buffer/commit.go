package buffer

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"slices"
	"time"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
)

// Event types the buffer itself emits.
const (
	EventOverflow = "buffer_overflow"
	EventCorrupt  = "buffer_corrupt"
	EventExpired  = "buffer_expired"
)

const (
	// dropLogEvery rate-limits the Warn about dropped messages: when the
	// buffer is full every commit drops a few, and one line per commit
	// would flood the log. Each line covers the seqs dropped since the last.
	dropLogEvery = 10 * time.Second
	// errLogEvery rate-limits the Error about failing commits.
	errLogEvery = time.Minute
	// maxBackstopAttempts bounds the retries when bbolt refuses to grow
	// the file (see commitTx).
	maxBackstopAttempts = 12
)

// run is the committer: the one goroutine that writes the file, owned by the
// Queue (started by Open, stopped by Close).
//
// A commit starts when appends pause for interval/quietDivisor (2 ms at the
// default 50 ms) or interval/burstDivisor (10 ms) after the first append
// since the last commit, whichever is first. Collectors poll on the same
// clock and append in bursts: a commit at a fixed tick kept a burst waiting
// for the tick, up to the whole interval; committing when the burst pauses,
// and in slices while a long one goes on, lets the uplink publish the first
// readings while the last are read.
//
// Nothing else wakes it on a clock: an idle gateway must not spend CPU, and
// every commit is an fsync pair, flash wear on a line PC's eMMC. Events
// count as appends. Acknowledgements ride along with the next commit; alone
// they are committed only after ackCommitDelay, or at once when
// ackCommitBatch of them wait (a drain with nothing appended). An
// acknowledgement lost to a crash only sends its message again, which
// at-least-once delivery allows. A failed commit is retried every interval.
func (q *Queue) run(ctx context.Context) {
	defer close(q.done)
	// later is armed only while work waits without an append: acks alone
	// (ackCommitDelay) or a failed commit (interval).
	later := time.NewTimer(time.Hour)
	later.Stop()
	defer later.Stop()
	armed := false
	timer := time.NewTimer(q.interval)
	timer.Stop() // armed by settle
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-q.acked:
			if !armed {
				later.Reset(ackCommitDelay)
				armed = true
			}
			continue
		case <-later.C:
		case <-q.appended:
			if !q.settle(ctx, timer) {
				return
			}
		}
		later.Stop()
		armed = false
		q.commitMu.Lock()
		// Errors are logged and counted by commitLocked; the work stays
		// pending and is retried.
		err := q.commitLocked(false)
		q.maybeRelease(time.Now())
		q.maybeDiskRoom(time.Now())
		q.commitMu.Unlock()
		if err != nil {
			later.Reset(q.interval)
			armed = true
		}
	}
}

// ackCommitDelay bounds how long acknowledgements wait for a commit of
// appends to ride along with; ackCommitBatch is how many make a commit of
// their own at once.
const (
	ackCommitDelay = 5 * time.Second
	ackCommitBatch = 4096
)

// quietDivisor sets the pause in appends that ends a burst: interval/25.
// burstDivisor bounds the wait within a burst: interval/5, so that a long
// burst is committed, and published, in slices while it goes on.
const (
	quietDivisor = 25
	burstDivisor = 5
)

// settle waits until appends pause or interval/burstDivisor has passed
// since the first; false when ctx is done.
func (q *Queue) settle(ctx context.Context, timer *time.Timer) bool {
	quiet := q.interval / quietDivisor
	deadline := time.Now().Add(q.interval / burstDivisor)
	for {
		n := q.appendN.Load()
		wait := min(quiet, time.Until(deadline))
		if wait <= 0 {
			break
		}
		timer.Reset(wait)
		select {
		case <-ctx.Done():
			return false
		case <-timer.C:
		}
		if q.appendN.Load() == n {
			break
		}
	}
	// This commit takes every append signalled meanwhile.
	select {
	case <-q.appended:
	default:
	}
	return true
}

// work is everything one group commit takes over from the queue.
type work struct {
	msgs      []pendingRec
	events    []pendingRec
	acks      []uint64
	evAcks    []uint64
	bad       []uint64
	badErr    string
	mem       memDrop // messages dropped from memory (disk full)
	mark      uint64
	firstDone bool // acks, events and bad records are committed
}

func (w *work) empty() bool {
	return len(w.msgs) == 0 && len(w.events) == 0 && len(w.acks) == 0 && len(w.evAcks) == 0 && len(w.bad) == 0 && w.mem.n == 0
}

// txInput is what one bbolt transaction does.
type txInput struct {
	msgs    []pendingRec // new messages, seq order
	events  []pendingRec
	acks    []uint64
	evAcks  []uint64
	bad     []uint64 // unreadable message seqs to delete
	badErr  string
	trimTo  int64  // > 0: keep at most this cost of messages (backstop)
	dropNew bool   // drop all of msgs: bbolt cannot fit even one alone
	mark    uint64 // events with ID <= mark may have been handed out
	mem     memDrop
	delDone bool // commitTx committed acks, bad records and mem on their own
}

// txOutcome is the queue state after a transaction, applied to the Queue
// only once bbolt committed it.
type txOutcome struct {
	live        liveState
	lastSeq     uint64
	lastEventID uint64
	dropped     uint64 // persisted total
	overflowID  uint64
	dropFrom    uint64 // overflow drops of this transaction
	dropTo      uint64
	dropN       uint64
	expFrom     uint64 // messages dropped for max_age in this transaction
	expTo       uint64
	expN        uint64
	badN        uint64
	evDropped   uint64
	added       bool
}

// commitLocked is one group commit: everything appended, acknowledged or
// found unreadable since the last one. commitMu must be held. force runs a
// transaction even when nothing is pending (Open uses it to apply the size
// budget to a file written with a larger max_size).
func (q *Queue) commitLocked(force bool) error {
	q.mu.Lock()
	w := work{msgs: q.pending, events: q.pendingEvents, bad: q.unreadable, badErr: q.unreadableErr, mark: q.evMark, mem: q.memDropped}
	q.pending, q.pendingEvents, q.unreadable, q.pendingBytes, q.memDropped = nil, nil, nil, 0, memDrop{}
	q.mu.Unlock()
	q.ackMu.Lock()
	for s := range q.acks {
		w.acks = append(w.acks, s)
	}
	for id := range q.evAcks {
		w.evAcks = append(w.evAcks, id)
	}
	q.ackMu.Unlock()
	if w.empty() && !force {
		return nil
	}

	q.dbMu.RLock()
	defer q.dbMu.RUnlock()
	if q.db == nil {
		// Only after a compaction that could not reopen the file.
		q.requeue(&w)
		q.noteCommitErr(ErrClosed)
		return ErrClosed
	}
	start := time.Now()
	msgs := w.msgs
	added, err := q.applyWork(&w)
	q.met.commitSeconds.Observe(time.Since(start).Seconds())
	if err != nil {
		q.requeue(&w)
		q.noteCommitErr(err)
		return fmt.Errorf("buffer: commit %s: %w", q.path, err)
	}
	// Written (bbolt copied them into its pages) or dropped: the records
	// are free for the next appends.
	q.recs.put(msgs)
	q.noteCommitOK()
	if added {
		select {
		case q.committed <- struct{}{}:
		default:
		}
	}
	return nil
}

// applyWork writes w in transactions of at most budget.chunk of new data
// each. Usually that is one transaction; a burst larger than a quarter of
// the budget is split because the pages a transaction frees (dropped old
// messages) can only be reused by the transactions after it.
func (q *Queue) applyWork(w *work) (added bool, err error) {
	for !w.firstDone || len(w.msgs) > 0 {
		in := txInput{mark: w.mark}
		if !w.firstDone {
			in.acks, in.evAcks, in.events, in.bad, in.badErr, in.mem = w.acks, w.evAcks, w.events, w.bad, w.badErr, w.mem
		}
		if q.disk.full {
			in.trimTo = q.disk.cap // the file cannot grow
		}
		n, size := 0, int64(0)
		for n < len(w.msgs) {
			c := q.bud.cost(len(w.msgs[n].rec) + crcSize)
			if n > 0 && size+c > q.bud.chunk {
				break
			}
			size += c
			n++
		}
		in.msgs = w.msgs[:n]
		done, a, err := q.commitTx(&in)
		if in.delDone {
			// Committed on their own: not to be retried (and the loss
			// they announced not announced twice).
			w.bad, w.mem = nil, memDrop{}
		}
		if err != nil {
			return added, err
		}
		added = added || a
		w.firstDone = true
		w.msgs = w.msgs[done:]
	}
	return added, nil
}

// commitTx runs one transaction. When bbolt refuses to grow the file
// (ErrMaxSizeReached: the budget's estimate was short, or free space is too
// fragmented for a large value), it makes room and retries: first by
// trimming the oldest messages in a transaction of their own (pages freed
// by it are reusable by the retry), then by writing fewer new messages, and
// for a single message that cannot fit at all, by dropping it. It returns
// how many of in.msgs are done (written or dropped).
func (q *Queue) commitTx(in *txInput) (int, bool, error) {
	for attempt := 0; ; attempt++ {
		out, err := q.runTx(in)
		if err == nil {
			if attempt > 0 {
				q.log.Warn("buffer: the file cap was reached before the data budget; dropped extra old messages to make room",
					"path", q.path, "retries", attempt, "max_size", q.bud.maxFile)
			}
			return len(in.msgs), out.added, nil
		}
		full := isDiskFull(err)
		if !errors.Is(err, berrors.ErrMaxSizeReached) && !full || attempt == maxBackstopAttempts {
			return 0, false, err
		}
		if full && q.noteDiskFull(err) {
			continue // the reserve's room is free now: try again as is
		}
		if !in.delDone && (len(in.acks) > 0 || len(in.evAcks) > 0 || len(in.bad) > 0 || in.mem.n > 0) {
			// Acknowledgements free space whatever the new messages
			// need: commit them (and the loss already known) first, on
			// their own.
			del := txInput{acks: in.acks, evAcks: in.evAcks, bad: in.bad, badErr: in.badErr, mem: in.mem, mark: in.mark}
			if _, err := q.runTx(&del); err == nil {
				in.acks, in.evAcks, in.bad, in.mem, in.delDone = nil, nil, nil, memDrop{}, true
				continue
			}
		}
		q.mu.Lock()
		live := q.live
		q.mu.Unlock()
		q.log.Debug("buffer: file cap reached before the data budget; making room and retrying",
			"path", q.path, "messages", live.msgs, "attempt", attempt+1)
		switch {
		case live.msgs > 0:
			// Drop about what the new messages need, doubling with
			// every retry (free pages may be too fragmented to reuse):
			// halving the backlog at once threw away half the buffer
			// for a few kilobytes.
			// This trim may use the reserve above bbolt's usual cap
			// (see budget): deleting needs fresh pages too. Only the
			// committer writes, so changing the field between
			// transactions races with nothing.
			var need int64
			for _, m := range in.msgs {
				need += q.bud.cost(len(m.rec) + crcSize)
			}
			drop := max(need, int64(q.bud.pageSize)) << min(attempt, 40)
			trim := txInput{trimTo: max(live.cost-drop, 1), mark: in.mark}
			q.db.MaxSize = int(q.bud.maxFile)
			_, err := q.runTx(&trim)
			q.db.MaxSize = q.bud.boltMax
			if err != nil && !errors.Is(err, berrors.ErrMaxSizeReached) {
				return 0, false, err
			}
		case len(in.msgs) > 1:
			in.msgs = in.msgs[:len(in.msgs)/2]
		default:
			in.dropNew = true
		}
	}
}

// runTx runs one bbolt transaction and, once it is committed (fsync'd),
// applies its outcome to the in-memory state.
func (q *Queue) runTx(in *txInput) (txOutcome, error) {
	if n := len(in.msgs); n > 0 {
		q.reserveSeq(in.msgs[n-1].id)
	}
	q.mu.Lock()
	base := txOutcome{live: q.live, lastSeq: q.lastSeq, lastEventID: q.lastEventID, dropped: q.dropped, overflowID: q.overflowID}
	q.mu.Unlock()
	var out txOutcome
	err := q.db.Update(func(tx *bolt.Tx) error {
		out = base
		return q.txBody(tx, in, &out)
	})
	if err != nil {
		return out, err
	}
	q.applyOutcome(in, &out)
	return out, nil
}

// reserveSeq raises the sidecar's seq ceiling before a transaction commits
// seqs above it (see seqfile.go). It is written first so that the ceiling
// is never below a committed seq. A failure is logged, not fatal: the data
// matters more than de-duplication after a lost file.
func (q *Queue) reserveSeq(last uint64) {
	q.mu.Lock()
	need := last > q.reserved
	q.mu.Unlock()
	if !need {
		return
	}
	v := last + seqReserveBlock
	err := writeSidecar(q.path, seqSidecar{value: v})
	q.mu.Lock()
	defer q.mu.Unlock()
	if err != nil {
		if !q.sidecarErr {
			q.log.Error("buffer: cannot write seq sidecar; seqs may repeat if the buffer file is lost",
				"path", sidecarPath(q.path), "error", err)
			q.sidecarErr = true
		}
		return
	}
	q.sidecarErr = false
	q.reserved = v
}

func putU64(b *bolt.Bucket, key string, v uint64) error {
	var buf [8]byte
	binary.BigEndian.PutUint64(buf[:], v)
	return b.Put([]byte(key), buf[:])
}

// txBody is the content of one commit transaction. Order matters:
//  1. deletions first (acks, unreadable records, event acks): they may make
//     the room step 3 needs;
//  2. new events, so that step 3 knows the room they take;
//  3. drop the oldest messages (already stored, then new ones) until the new
//     ones fit the budget, and store the rest;
//  4. one buffer_overflow event for the drops, in this same transaction so
//     that a drop is never committed without its event;
//  5. cap the events;
//  6. the oldest message and the meta (last seq, last event ID, dropped
//     total), so that seq survives even when every message is deleted.
func (q *Queue) txBody(tx *bolt.Tx, in *txInput, out *txOutcome) error {
	mb, eb, meta := tx.Bucket([]byte(bucketMsgs)), tx.Bucket([]byte(bucketEvents)), tx.Bucket([]byte(bucketMeta))
	if mb == nil || eb == nil || meta == nil {
		return &CorruptError{Path: q.path, Err: errors.New("buckets missing")}
	}
	mb.FillPercent, eb.FillPercent = fillPercent, fillPercent
	var key [8]byte

	del := func(b *bolt.Bucket, id uint64) (int, bool, error) {
		binary.BigEndian.PutUint64(key[:], id)
		v := b.Get(key[:])
		if v == nil {
			return 0, false, nil
		}
		n := len(v)
		return n, true, b.Delete(key[:])
	}

	// 1. Deletions.
	for _, s := range in.acks {
		n, ok, err := del(mb, s)
		if err != nil {
			return err
		}
		if ok {
			out.live.removeMsg(n, q.bud.cost(n))
		}
	}
	var badFrom, badTo uint64
	for _, s := range in.bad {
		n, ok, err := del(mb, s)
		if err != nil {
			return err
		}
		if ok {
			out.live.removeMsg(n, q.bud.cost(n))
			if out.badN == 0 || s < badFrom {
				badFrom = s
			}
			badTo = max(badTo, s)
			out.badN++
		}
	}
	for _, id := range in.evAcks {
		n, ok, err := del(eb, id)
		if err != nil {
			return err
		}
		if ok {
			out.live.removeEvent(n, q.bud.cost(n))
		}
	}

	// 2. New events.
	for _, e := range in.events {
		if err := q.putEvent(eb, e.id, e.rec, out); err != nil {
			return err
		}
	}

	// 2b. Expire what is older than max_age, oldest first. Seq order is
	// creation order (a clock step aside): the scan stops at the first
	// message young enough.
	if q.maxAge > 0 && out.live.msgs > 0 {
		cutoff := q.clock().Add(-q.maxAge)
		var expired []uint64
		c := mb.Cursor()
		for k, v := c.First(); k != nil; k, v = c.Next() {
			body, err := checkRecord(v)
			if err != nil {
				break // unreadable: Read reports it, the size cap may drop it
			}
			created, err := recordCreated(body)
			if err != nil || !created.Before(cutoff) {
				break
			}
			out.live.removeMsg(len(v), q.bud.cost(len(v)))
			expired = append(expired, binary.BigEndian.Uint64(k))
		}
		for _, s := range expired {
			binary.BigEndian.PutUint64(key[:], s)
			if err := mb.Delete(key[:]); err != nil {
				return err
			}
			if out.expN == 0 {
				out.expFrom = s
			}
			out.expTo = s
			out.expN++
		}
	}

	// 3. Make room for the new messages, oldest first. The room kept for
	// the overflow event avoids evicting one more message for it.
	need := int64(0)
	for _, m := range in.msgs {
		need += q.bud.cost(len(m.rec) + crcSize)
	}
	target := q.bud.data - out.live.evCost - q.bud.cost(96)
	if in.trimTo > 0 {
		target = min(target, in.trimTo)
	}
	over := out.live.cost + need - target
	if in.dropNew {
		over = max(over, out.live.cost+need)
	}
	if over > 0 && out.live.msgs > 0 {
		var victims []uint64
		c := mb.Cursor()
		for k, v := c.First(); k != nil && over > 0; k, v = c.Next() {
			cost := q.bud.cost(len(v))
			over -= cost
			out.live.removeMsg(len(v), cost)
			victims = append(victims, binary.BigEndian.Uint64(k))
		}
		// Delete after iterating: deleting under a bbolt cursor skips keys.
		for _, s := range victims {
			binary.BigEndian.PutUint64(key[:], s)
			if err := mb.Delete(key[:]); err != nil {
				return err
			}
			out.noteDrop(s)
		}
	}
	keep := in.msgs
	for over > 0 && len(keep) > 0 {
		over -= q.bud.cost(len(keep[0].rec) + crcSize)
		out.noteDrop(keep[0].id)
		keep = keep[1:]
	}
	for _, m := range keep {
		v := sealRecord(m.rec)
		binary.BigEndian.PutUint64(key[:], m.id)
		if err := mb.Put(key[:], v); err != nil {
			return err
		}
		out.live.addMsg(len(v), q.bud.cost(len(v)))
		out.added = true
	}
	if n := len(in.msgs); n > 0 {
		out.lastSeq = max(out.lastSeq, in.msgs[n-1].id)
	}

	// 4. Events for what was lost.
	if in.mem.n > 0 {
		if out.dropN == 0 || in.mem.from < out.dropFrom {
			out.dropFrom = in.mem.from
		}
		out.dropTo = max(out.dropTo, in.mem.to)
		out.dropN += in.mem.n
	}
	if out.dropN > 0 {
		out.dropped += out.dropN
		if err := q.putOverflowEvent(eb, in.mark, out); err != nil {
			return err
		}
	}
	if out.expN > 0 {
		out.dropped += out.expN
		e := Event{Type: EventExpired, TS: q.clock().UTC(), Attrs: []Attr{
			{Key: "dropped_seq_from", Value: out.expFrom},
			{Key: "dropped_seq_to", Value: out.expTo},
			{Key: "dropped", Value: out.expN},
			{Key: "max_age_s", Value: q.maxAge.Seconds()},
		}}
		if err := q.putNewEvent(eb, &e, out); err != nil {
			return err
		}
	}
	if out.badN > 0 {
		out.dropped += out.badN
		e := Event{Type: EventCorrupt, TS: q.clock().UTC(), Attrs: []Attr{
			{Key: "error", Value: "unreadable messages deleted: " + in.badErr},
			{Key: "dropped_seq_from", Value: badFrom},
			{Key: "dropped_seq_to", Value: badTo},
			{Key: "dropped", Value: out.badN},
		}}
		if err := q.putNewEvent(eb, &e, out); err != nil {
			return err
		}
	}

	// 5. Cap the events, oldest first, but never a loss event: trimming
	// the buffer_overflow that says where a loss began would make the
	// loss silent. When only loss events are left, the two oldest that
	// were not handed out yet are merged into one.
	for out.live.events > maxEvents || out.live.evCost > q.bud.events {
		done, err := q.trimEvent(eb, in.mark, out)
		if err != nil {
			return err
		}
		if !done {
			break // every event left announces a loss and is being sent
		}
	}

	// 6. Oldest message and meta.
	out.live.oldestSeq, out.live.oldestCreated = 0, time.Time{}
	if k, v := mb.Cursor().First(); k != nil {
		out.live.oldestSeq = binary.BigEndian.Uint64(k)
		if body, err := checkRecord(v); err == nil {
			out.live.oldestCreated, _ = recordCreated(body)
		}
	}
	if err := putU64(meta, metaLastSeq, out.lastSeq); err != nil {
		return err
	}
	if err := putU64(meta, metaLastEv, out.lastEventID); err != nil {
		return err
	}
	return putU64(meta, metaDropped, out.dropped)
}

func (o *txOutcome) noteDrop(seq uint64) {
	if o.dropN == 0 || seq < o.dropFrom {
		o.dropFrom = seq
	}
	o.dropTo = max(o.dropTo, seq)
	o.dropN++
}

func (l *liveState) addMsg(n int, cost int64) {
	l.msgs++
	l.bytes += int64(n)
	l.cost += cost
}

func (l *liveState) removeMsg(n int, cost int64) {
	l.msgs--
	l.bytes -= int64(n)
	l.cost -= cost
}

func (l *liveState) removeEvent(n int, cost int64) {
	l.events--
	l.evCost -= cost
}

// putEvent stores an encoded event record (without CRC) under id.
func (q *Queue) putEvent(eb *bolt.Bucket, id uint64, rec []byte, out *txOutcome) error {
	v := sealRecord(rec)
	var key [8]byte
	binary.BigEndian.PutUint64(key[:], id)
	if err := eb.Put(key[:], v); err != nil {
		return err
	}
	out.live.events++
	out.live.evCost += q.bud.cost(len(v))
	out.lastEventID = max(out.lastEventID, id)
	out.added = true
	return nil
}

// putNewEvent assigns e the next event ID and stores it. An ID taken by a
// transaction that then fails is simply skipped.
func (q *Queue) putNewEvent(eb *bolt.Bucket, e *Event, out *txOutcome) error {
	q.mu.Lock()
	e.ID = q.nextEventID
	q.nextEventID++
	q.mu.Unlock()
	rec, err := appendEvent(nil, e)
	if err != nil {
		return err
	}
	return q.putEvent(eb, e.ID, rec, out)
}

// putOverflowEvent records this transaction's drops. While the previous
// buffer_overflow event has not been handed to the uplink yet (its ID is
// above the Events mark), it is extended instead of adding one more: a
// broker outage with a full buffer drops a little in every commit, and one
// event per commit (20 a second) would soon push the first ones, which say
// where the loss began, out of the 1000 kept. Drops are always the oldest
// messages, so the extended range has no kept message inside it (only
// messages that were delivered and acknowledged in between).
func (q *Queue) putOverflowEvent(eb *bolt.Bucket, mark uint64, out *txOutcome) error {
	from, to, n := out.dropFrom, out.dropTo, out.dropN
	if out.overflowID > mark {
		var key [8]byte
		binary.BigEndian.PutUint64(key[:], out.overflowID)
		if v := eb.Get(key[:]); v != nil {
			if prev, err := decodeEvent(v); err == nil && prev.Type == EventOverflow {
				if pf, pt, pn, ok := overflowRange(prev); ok && pt < from {
					out.live.removeEvent(len(v), q.bud.cost(len(v)))
					e := overflowEvent(out.overflowID, q.clock().UTC(), pf, to, pn+n)
					rec, err := appendEvent(nil, &e)
					if err != nil {
						return err
					}
					return q.putEvent(eb, e.ID, rec, out)
				}
			}
		}
	}
	e := overflowEvent(0, q.clock().UTC(), from, to, n)
	if err := q.putNewEvent(eb, &e, out); err != nil {
		return err
	}
	out.overflowID = e.ID
	return nil
}

func overflowEvent(id uint64, ts time.Time, from, to, n uint64) Event {
	return Event{ID: id, Type: EventOverflow, TS: ts, Attrs: []Attr{
		{Key: "dropped_seq_from", Value: from},
		{Key: "dropped_seq_to", Value: to},
		{Key: "dropped", Value: n},
	}}
}

func overflowRange(e Event) (from, to, n uint64, ok bool) {
	var got int
	for _, a := range e.Attrs {
		v, isU := a.Value.(uint64)
		if !isU {
			continue
		}
		switch a.Key {
		case "dropped_seq_from":
			from, got = v, got|1
		case "dropped_seq_to":
			to, got = v, got|2
		case "dropped":
			n, got = v, got|4
		}
	}
	return from, to, n, got == 7
}

// applyOutcome makes a committed transaction's outcome the queue's state.
func (q *Queue) applyOutcome(in *txInput, out *txOutcome) {
	var size int64
	if st, err := os.Stat(q.path); err == nil {
		size = st.Size()
	}
	q.ackMu.Lock()
	for _, s := range in.acks {
		delete(q.acks, s)
	}
	for _, id := range in.evAcks {
		delete(q.evAcks, id)
	}
	q.ackMu.Unlock()

	q.mu.Lock()
	q.live = out.live
	q.lastSeq = out.lastSeq
	q.lastEventID = max(q.lastEventID, out.lastEventID)
	q.dropped = out.dropped
	q.overflowID = out.overflowID
	if size > 0 {
		q.fileSize = size
	}
	logDrops := q.drops.add(out, q.clock())
	live, fileSize := q.live, q.fileSize
	q.mu.Unlock()

	q.met.commits.Inc()
	q.met.bytes.Set(float64(live.bytes))
	q.met.fileBytes.Set(float64(fileSize))
	if n := out.dropN + out.badN + out.expN; n > 0 {
		q.met.dropped.Add(float64(n))
	}
	if logDrops != nil {
		q.logDrops(logDrops)
	}
}

// dropLog accumulates drops between two log lines.
type dropLog struct {
	from, to, n uint64
	expired     uint64 // messages dropped for max_age
	events      uint64
	last        time.Time
}

// add records a transaction's drops; it returns the accumulated drops when
// it is time to log them.
func (d *dropLog) add(out *txOutcome, now time.Time) *dropLog {
	if out.dropN == 0 && out.evDropped == 0 && out.expN == 0 {
		return nil
	}
	d.expired += out.expN
	if out.dropN > 0 {
		if d.n == 0 || out.dropFrom < d.from {
			d.from = out.dropFrom
		}
		d.to = max(d.to, out.dropTo)
		d.n += out.dropN
	}
	d.events += out.evDropped
	if !d.last.IsZero() && now.Sub(d.last) < dropLogEvery {
		return nil
	}
	r := *d
	*d = dropLog{last: now}
	return &r
}

func (q *Queue) logDrops(d *dropLog) {
	if d.n > 0 {
		q.log.Warn("buffer full: dropped oldest messages",
			"path", q.path, "dropped", d.n, "seq_from", d.from, "seq_to", d.to, "max_size", q.bud.maxFile)
	}
	if d.expired > 0 {
		q.log.Warn("buffer: dropped messages older than max_age", "path", q.path, "dropped", d.expired, "max_age", q.maxAge)
	}
	if d.events > 0 {
		q.log.Warn("buffer: event limit reached: dropped oldest events", "path", q.path, "dropped", d.events)
	}
}

// flushDropLog logs drops still waiting for the rate limit (Close).
func (q *Queue) flushDropLog() {
	q.mu.Lock()
	d := q.drops
	q.drops = dropLog{}
	q.mu.Unlock()
	if d.n > 0 || d.events > 0 || d.expired > 0 {
		q.logDrops(&d)
	}
}

// requeue gives back what a failed commit did not write, ahead of what was
// appended meanwhile, so that the next commit retries it in seq order.
func (q *Queue) requeue(w *work) {
	q.mu.Lock()
	defer q.mu.Unlock()
	// pendingBytes holds what was appended meanwhile; add what comes back
	// (not a walk of everything pending on every retry).
	for _, m := range w.msgs {
		q.pendingBytes += int64(cap(m.rec))
	}
	q.pending = slices.Concat(w.msgs, q.pending)
	if !w.firstDone {
		q.memDropped.add(w.mem)
	}
	q.shedPendingLocked()
	if !w.firstDone {
		q.pendingEvents = slices.Concat(w.events, q.pendingEvents)
		q.unreadable = slices.Concat(w.bad, q.unreadable)
		if q.unreadableErr == "" {
			q.unreadableErr = w.badErr
		}
	}
}

func (q *Queue) noteCommitErr(err error) {
	q.met.commitErrors.Inc()
	q.mu.Lock()
	q.commitErr = err
	now := time.Now()
	logIt := q.errLogged.IsZero() || now.Sub(q.errLogged) >= errLogEvery
	if logIt {
		q.errLogged = now
	}
	pending := len(q.pending)
	q.mu.Unlock()
	if logIt {
		q.log.Error("buffer: commit failed; messages stay in memory and are retried",
			"path", q.path, "pending", pending, "error", err)
	}
}

func (q *Queue) noteCommitOK() {
	q.mu.Lock()
	failed := q.commitErr != nil
	q.commitErr, q.errLogged = nil, time.Time{}
	q.mu.Unlock()
	if failed {
		q.log.Info("buffer: commits succeed again", "path", q.path)
	}
}

// isLoss reports whether an event announces lost messages: it is never
// trimmed by the event cap.
func isLoss(typ string) bool {
	return typ == EventOverflow || typ == EventCorrupt || typ == EventExpired || typ == EventDropped
}

// trimEvent makes room in the events bucket: it deletes the oldest event
// that announces no loss or, when there is none, merges the two oldest
// buffer_overflow events above mark (not handed out, so no published event
// changes) into the second. It reports whether it freed anything.
func (q *Queue) trimEvent(eb *bolt.Bucket, mark uint64, out *txOutcome) (bool, error) {
	var overflows [][2][]byte // key, value of the mergeable overflow events, oldest first
	c := eb.Cursor()
	for k, v := c.First(); k != nil; k, v = c.Next() {
		typ := ""
		if e, err := decodeEvent(v); err == nil {
			typ = e.Type
			if typ == EventOverflow && binary.BigEndian.Uint64(k) > mark && len(overflows) < 2 {
				overflows = append(overflows, [2][]byte{k, v})
			}
		}
		if isLoss(typ) {
			continue
		}
		out.live.removeEvent(len(v), q.bud.cost(len(v)))
		if err := eb.Delete(k); err != nil {
			return false, err
		}
		out.evDropped++
		return true, nil
	}
	if len(overflows) < 2 {
		return false, nil
	}
	a, _ := decodeEvent(overflows[0][1])
	b, _ := decodeEvent(overflows[1][1])
	af, at, an, okA := overflowRange(a)
	bf, bt, bn, okB := overflowRange(b)
	if !okA || !okB {
		return false, nil
	}
	// The merged range spans both; what lies between them was delivered,
	// or is announced by an event in between, which stays.
	merged := overflowEvent(b.ID, b.TS, min(af, bf), max(at, bt), an+bn)
	rec, err := appendEvent(nil, &merged)
	if err != nil {
		return false, err
	}
	for _, kv := range overflows {
		out.live.removeEvent(len(kv[1]), q.bud.cost(len(kv[1])))
	}
	if err := eb.Delete(overflows[0][0]); err != nil {
		return false, err
	}
	if err := q.putEvent(eb, b.ID, rec, out); err != nil {
		return false, err
	}
	return true, nil
}
