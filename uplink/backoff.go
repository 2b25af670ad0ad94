package uplink

import (
	"math/rand/v2"
	"time"
)

// backoff is a capped exponential delay between connection attempts. A
// jitter of up to -20% keeps the gateways of a plant from reconnecting in
// lock step after the broker comes back.
type backoff struct {
	min, max time.Duration
	cur      time.Duration
}

func (b *backoff) next() time.Duration {
	if b.cur < b.min {
		b.cur = b.min
	}
	d := b.cur
	b.cur *= 2
	if b.cur > b.max || b.cur <= 0 {
		b.cur = b.max
	}
	if j := int64(d / 5); j > 0 {
		d -= time.Duration(rand.Int64N(j))
	}
	return d
}

func (b *backoff) reset() { b.cur = 0 }
