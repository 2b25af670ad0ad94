package commands

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	bolt "go.etcd.io/bbolt"
)

// LedgerFile is the ledger's name, beside the buffer file.
const LedgerFile = "commands.db"

// DefaultKeep is how long an id is remembered after its command expired.
// A command is never executed after it expired, so a replay later than
// that is rejected as expired anyway; the margin covers a gateway clock
// that is stepped back.
const DefaultKeep = 24 * time.Hour

var (
	idsBucket    = []byte("ids")
	expiryBucket = []byte("expiry") // 8 bytes expires (unix ns, big-endian) + id → nothing, for pruning
)

// Ledger remembers every command id the gateway has seen, so that a
// command is executed at most once per id: across a reconnect (the broker
// sends a QoS 1 message again when its PUBACK was lost) and a restart.
// An id is written, and synced, before its command is executed.
type Ledger struct {
	db   *bolt.DB
	keep time.Duration
}

// Entry is what the ledger holds for one id.
type Entry struct {
	Seen    time.Time `json:"seen"`
	Expires time.Time `json:"expires"`
	Device  string    `json:"device"`
	Result  string    `json:"result,omitempty"` // "" while running, or after a crash during it
}

// OpenLedger opens (or creates) the ledger file at path (0600).
func OpenLedger(path string, keep time.Duration) (*Ledger, error) {
	if keep <= 0 {
		keep = DefaultKeep
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("command ledger: %w", err)
	}
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: time.Second})
	if err != nil {
		return nil, fmt.Errorf("command ledger %s: %w", path, err)
	}
	if err := db.Update(func(tx *bolt.Tx) error {
		if _, err := tx.CreateBucketIfNotExists(idsBucket); err != nil {
			return err
		}
		_, err := tx.CreateBucketIfNotExists(expiryBucket)
		return err
	}); err != nil {
		db.Close()
		return nil, fmt.Errorf("command ledger %s: %w", path, err)
	}
	return &Ledger{db: db, keep: keep}, nil
}

// Close closes the file.
func (l *Ledger) Close() error { return l.db.Close() }

// Claim records id as seen now, unless it was seen before: then it
// returns false and the first entry. Entries whose command expired more
// than keep ago are pruned in the same transaction.
func (l *Ledger) Claim(id, device string, expires, now time.Time) (first bool, prev Entry, err error) {
	err = l.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(idsBucket)
		if v := b.Get([]byte(id)); v != nil {
			if jerr := json.Unmarshal(v, &prev); jerr != nil {
				prev = Entry{} // unreadable, but seen: still refused
			}
			return nil
		}
		first = true
		v, _ := json.Marshal(Entry{Seen: now.UTC(), Expires: expires.UTC(), Device: device})
		if err := b.Put([]byte(id), v); err != nil {
			return err
		}
		x := tx.Bucket(expiryBucket)
		if err := x.Put(expiryKey(expires, id), nil); err != nil {
			return err
		}
		return l.prune(b, x, now)
	})
	if err != nil {
		return false, Entry{}, fmt.Errorf("command ledger: %w", err)
	}
	return first, prev, nil
}

// prune deletes up to 64 of the oldest entries whose command expired more
// than keep ago: per claim, which keeps up with any rate a device accepts
// without a scan of the whole file.
func (l *Ledger) prune(ids, x *bolt.Bucket, now time.Time) error {
	limit := expiryKey(now.Add(-l.keep), "")
	c := x.Cursor()
	var dead [][]byte
	for k, _ := c.First(); k != nil && len(dead) < 64 && bytes.Compare(k, limit) < 0; k, _ = c.Next() {
		dead = append(dead, append([]byte(nil), k...))
	}
	for _, k := range dead {
		if err := x.Delete(k); err != nil {
			return err
		}
		if err := ids.Delete(k[8:]); err != nil {
			return err
		}
	}
	return nil
}

func expiryKey(t time.Time, id string) []byte {
	k := make([]byte, 8, 8+len(id))
	binary.BigEndian.PutUint64(k, uint64(max(t.UnixNano(), 0)))
	return append(k, id...)
}

// Finish records the result of id's command.
func (l *Ledger) Finish(id, result string) error {
	return l.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(idsBucket)
		v := b.Get([]byte(id))
		if v == nil {
			return errors.New("command ledger: finish of an unknown id")
		}
		var e Entry
		if err := json.Unmarshal(v, &e); err != nil {
			return err
		}
		e.Result = result
		nv, _ := json.Marshal(e)
		return b.Put([]byte(id), nv)
	})
}

// Len is the number of ids remembered.
func (l *Ledger) Len() int {
	n := 0
	_ = l.db.View(func(tx *bolt.Tx) error {
		n = tx.Bucket(idsBucket).Stats().KeyN
		return nil
	})
	return n
}
