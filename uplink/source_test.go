package uplink

import (
	"slices"
	"sync"
	"time"

	"github.com/linegate/linegate/buffer"
)

// memSource is an in-memory stand-in for buffer.Queue with the same
// contract: Read returns messages with seq > after in ascending order, Ack
// and AckEvents delete, Committed signals after each append.
type memSource struct {
	mu        sync.Mutex
	msgs      []buffer.Message // ascending seq; acknowledged ones are in gone until trimmed
	gone      map[uint64]bool
	events    []buffer.Event
	seq, evID uint64
	committed chan struct{}

	outstanding    map[uint64]bool // read and not yet acknowledged
	maxOutstanding int
	acked          int
	readErr        error
}

var (
	_ Source = (*memSource)(nil)
	_ Source = (*buffer.Queue)(nil) // the real one, which cmd wires in
)

func newMemSource() *memSource {
	return &memSource{committed: make(chan struct{}, 1), outstanding: map[uint64]bool{}, gone: map[uint64]bool{}}
}

// add appends a message with the next seq and returns the seq.
func (s *memSource) add(m buffer.Message) uint64 {
	s.mu.Lock()
	s.seq++
	m.Seq = s.seq
	s.msgs = append(s.msgs, m)
	s.mu.Unlock()
	s.signal()
	return m.Seq
}

// addN appends n process messages of one reading, created now.
func (s *memSource) addN(n int) {
	for range n {
		now := time.Now().UTC()
		s.add(buffer.Message{Created: now, Equipment: "press01", Class: "process",
			Readings: []buffer.Reading{{Tag: "temperature", Value: 23.5, Unit: "degC", TS: now}}})
	}
}

func (s *memSource) addEvent(e buffer.Event) {
	s.mu.Lock()
	s.evID++
	e.ID = s.evID
	s.events = append(s.events, e)
	s.mu.Unlock()
	s.signal()
}

func (s *memSource) signal() {
	select {
	case s.committed <- struct{}{}:
	default:
	}
}

func (s *memSource) ReadBatch(b *buffer.Batch, after uint64, limit int) error {
	out, err := s.read(after, limit, b.Messages[:0])
	b.Messages = out
	return err
}

func (s *memSource) read(after uint64, limit int, out []buffer.Message) ([]buffer.Message, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.readErr != nil {
		return out, s.readErr
	}
	i, _ := slices.BinarySearchFunc(s.msgs, after+1, func(m buffer.Message, seq uint64) int {
		switch {
		case m.Seq < seq:
			return -1
		case m.Seq > seq:
			return 1
		}
		return 0
	})
	for ; i < len(s.msgs) && len(out) < limit; i++ {
		if m := s.msgs[i]; !s.gone[m.Seq] {
			out = append(out, m)
			s.outstanding[m.Seq] = true
		}
	}
	s.maxOutstanding = max(s.maxOutstanding, len(s.outstanding))
	return out, nil
}

func (s *memSource) Ack(seqs ...uint64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, seq := range seqs {
		delete(s.outstanding, seq)
		if seq == 0 || seq > s.seq || s.gone[seq] || len(s.msgs) == 0 || seq < s.msgs[0].Seq {
			continue // unknown or already deleted
		}
		s.gone[seq] = true
		s.acked++
	}
	// Acks come mostly in order: drop the acknowledged head.
	for len(s.msgs) > 0 && s.gone[s.msgs[0].Seq] {
		delete(s.gone, s.msgs[0].Seq)
		s.msgs = s.msgs[1:]
	}
	return nil
}

func (s *memSource) Events(limit int) ([]buffer.Event, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.events[:min(limit, len(s.events))]), nil
}

func (s *memSource) AckEvents(ids ...uint64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.events = slices.DeleteFunc(s.events, func(e buffer.Event) bool { return slices.Contains(ids, e.ID) })
	return nil
}

func (s *memSource) Committed() <-chan struct{} { return s.committed }

func (s *memSource) Stats() buffer.Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	return buffer.Stats{NextSeq: s.seq + 1, Messages: len(s.msgs) - len(s.gone)}
}

// pending reports the messages and events not yet acknowledged.
func (s *memSource) pending() (msgs, events int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.msgs) - len(s.gone), len(s.events)
}

func (s *memSource) setReadErr(err error) {
	s.mu.Lock()
	s.readErr = err
	s.mu.Unlock()
}
