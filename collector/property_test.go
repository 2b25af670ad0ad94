package collector

import (
	"math"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/linegate/linegate/buffer"
	"github.com/linegate/linegate/drivers"
)

// TestCounterProperties drives counters of every width through random
// increments, rollovers and operator resets, and checks what the MES sums:
// a delta is never larger than the true count since the last reading, except
// for a reset from the top quarter of the range, which cannot be told from a
// rollover and then counts at most the distance to the top on top; without
// resets, the deltas add up exactly to the parts produced.
func TestCounterProperties(t *testing.T) {
	for _, bits := range []int{16, 32, 64} {
		for seed := uint64(1); seed <= 20; seed++ {
			rng := rand.New(rand.NewPCG(seed, uint64(bits)))
			mask := uint64(math.MaxUint64)
			if bits < 64 {
				mask = 1<<bits - 1
			}
			quarter := mask/4 + 1
			maxInc := uint64(1000)
			tag := Tag{Counter: true, CounterBits: bits}
			var st tagState
			// Start anywhere, often close to the top so that wraps happen.
			plc := mask - rng.Uint64N(5000)
			if rng.IntN(3) == 0 {
				plc = rng.Uint64() & mask
			}
			resets := rng.IntN(2) == 0
			var produced, counted uint64
			for i := 0; i < 2000; i++ {
				prev := plc
				inc := rng.Uint64N(maxInc + 1)
				reset := resets && rng.IntN(50) == 0
				if reset {
					plc = inc // reset to 0, then counted on
				} else {
					plc = (plc + inc) & mask
				}
				produced += inc
				var raw any = int64(plc)
				switch {
				case bits == 64:
					raw = plc
				case bits == 16 && rng.IntN(2) == 0:
					raw = int64(int16(plc)) // a signed INT counter
				}
				r, _ := tag.normalize(good(raw), &st, t0)
				d, ok := attr(r, "delta").(uint64)
				if i == 0 {
					if ok {
						t.Fatalf("bits %d seed %d: delta on the first reading", bits, seed)
					}
					produced = 0
					continue
				}
				if !ok {
					t.Fatalf("bits %d seed %d step %d: no delta", bits, seed, i)
				}
				counted += d
				bound := inc
				if reset && prev >= mask-quarter {
					bound = inc + (mask - prev) + 1
				}
				if d > bound || d > mask/2+1 {
					t.Fatalf("bits %d seed %d step %d: %d -> %d (reset %v) delta %d, bound %d", bits, seed, i, prev, plc, reset, d, bound)
				}
				if !reset && d != inc {
					t.Fatalf("bits %d seed %d step %d: %d -> %d delta %d, want %d", bits, seed, i, prev, plc, d, inc)
				}
			}
			if !resets && counted != produced {
				t.Fatalf("bits %d seed %d: deltas add up to %d, %d produced", bits, seed, counted, produced)
			}
		}
	}
}

// TestDeadbandProperties feeds random walks to deadbanded tags and checks
// the report-by-exception contract: a value is held back only while it is
// within the deadband of the last reported one and the heartbeat is not
// due; a value that moved by the deadband or more is always reported; the
// MES never goes longer than report_every without a reading.
func TestDeadbandProperties(t *testing.T) {
	for seed := uint64(1); seed <= 50; seed++ {
		rng := rand.New(rand.NewPCG(seed, 42))
		tag := Tag{Deadband: 0.05 + rng.Float64(), ReportEvery: time.Duration(5+rng.IntN(30)) * time.Second}
		if rng.IntN(2) == 0 {
			tag = Tag{Limits: &[2]float64{0, 100}, DeadbandPercent: 0.5 + rng.Float64()*2, ReportEvery: tag.ReportEvery}
		}
		db := tag.deadband()
		var st tagState
		v := 50.0
		var lastReported float64
		var lastAt time.Time
		var lastQuality buffer.Quality
		now := t0
		for i := 0; i < 3000; i++ {
			now = now.Add(time.Duration(200+rng.IntN(1800)) * time.Millisecond)
			v += (rng.Float64() - 0.5) * db * 1.5
			r, ok := tag.normalize(drivers.Sample{Value: v}, &st, now)
			moved := math.Abs(v-lastReported) >= db
			due := now.Sub(lastAt) >= tag.ReportEvery
			qualityChanged := r.Quality != lastQuality // leaving the limits
			switch {
			case i == 0 && !ok:
				t.Fatalf("seed %d: first value held back", seed)
			case i > 0 && ok != (moved || due || qualityChanged):
				t.Fatalf("seed %d step %d: %v (last reported %v, deadband %v, %v since) reported %v", seed, i, v, lastReported, db, now.Sub(lastAt), ok)
			}
			if ok {
				lastReported, lastAt, lastQuality = v, now, r.Quality
			}
		}
	}
}
