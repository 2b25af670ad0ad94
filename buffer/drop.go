package buffer

import (
	"encoding/binary"
	"errors"
	"fmt"

	bolt "go.etcd.io/bbolt"
)

// EventDropped reports messages an operator deleted (linegate buffer drop).
const EventDropped = "buffer_dropped"

// DropBefore deletes every committed message with seq < before, at an
// operator's request (a backlog the MES will never want), and returns how
// many it deleted. The loss is not silent: a buffer_dropped event with
// dropped_seq_from, dropped_seq_to and dropped goes to the MES, and a
// warning to the log. The messages go through the acknowledgement path, so
// the commit that deletes them keeps the statistics right; DropBefore
// commits before it returns.
func (q *Queue) DropBefore(before uint64) (int, error) {
	var seqs []uint64
	q.dbMu.RLock()
	if q.db == nil {
		q.dbMu.RUnlock()
		return 0, ErrClosed
	}
	err := q.db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket([]byte(bucketMsgs))
		if b == nil {
			return &CorruptError{Path: q.path, Err: errors.New("messages bucket missing")}
		}
		c := b.Cursor()
		for k, _ := c.First(); k != nil; k, _ = c.Next() {
			seq := binary.BigEndian.Uint64(k)
			if seq >= before {
				break
			}
			if !q.isAcked(seq) {
				seqs = append(seqs, seq)
			}
		}
		return nil
	})
	q.dbMu.RUnlock()
	if err != nil {
		return 0, fmt.Errorf("buffer: drop before %d: %w", before, err)
	}
	if len(seqs) == 0 {
		return 0, nil
	}
	from, to := seqs[0], seqs[len(seqs)-1]
	if err := q.Ack(seqs...); err != nil {
		return 0, err
	}
	if err := q.AppendEvent(Event{Type: EventDropped, TS: q.clock().UTC(), Attrs: []Attr{
		{Key: "reason", Value: "operator"},
		{Key: "dropped_seq_from", Value: from},
		{Key: "dropped_seq_to", Value: to},
		{Key: "dropped", Value: uint64(len(seqs))},
	}}); err != nil {
		return 0, err
	}
	q.log.Warn("buffer: messages dropped by the operator", "path", q.path, "from_seq", from, "to_seq", to, "count", len(seqs))
	if err := q.Flush(); err != nil {
		return 0, err
	}
	return len(seqs), nil
}
