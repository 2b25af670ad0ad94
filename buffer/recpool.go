package buffer

import (
	"math/bits"
	"sync"
)

// recPool recycles the encoded records of committed messages. bbolt copies a
// value into its own pages when the transaction commits, so a record's
// memory is free once its commit succeeded, and the next Append of a
// message of about that size encodes into it instead of allocating: the
// records were a fifth of the agent's allocations at 10,000 tags.
//
// Records are kept by capacity class (powers of two), at most maxPooledBytes
// in all, so that a burst of large messages is not kept for good.
type recPool struct {
	mu      sync.Mutex
	classes [recClasses][][]byte
	bytes   int
}

const (
	minRecClass    = 7  // 128 B: a message of one reading
	recClasses     = 10 // up to 64 KiB; larger records are not pooled
	maxPooledBytes = 1 << 20
)

// get returns an empty slice with room for n bytes.
func (p *recPool) get(n int) []byte {
	c := max(bits.Len(uint(n-1)), minRecClass) // smallest class of cap >= n
	if i := c - minRecClass; i < recClasses {
		p.mu.Lock()
		if free := p.classes[i]; len(free) > 0 {
			b := free[len(free)-1]
			free[len(free)-1] = nil
			p.classes[i] = free[:len(free)-1]
			p.bytes -= cap(b)
			p.mu.Unlock()
			return b[:0]
		}
		p.mu.Unlock()
		// Allocated at the class size, so that it can go back to it.
		return make([]byte, 0, 1<<c)
	}
	return make([]byte, 0, n)
}

// put gives back records no longer referenced: their commit succeeded.
func (p *recPool) put(recs []pendingRec) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, r := range recs {
		c := cap(r.rec)
		i := bits.Len(uint(c)) - 1 - minRecClass // largest class of size <= cap
		if i < 0 || i >= recClasses || p.bytes+c > maxPooledBytes {
			continue
		}
		p.classes[i] = append(p.classes[i], r.rec)
		p.bytes += c
	}
}
