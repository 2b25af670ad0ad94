package collector

import "time"

// firstTick is the first point of the interval grid after now. Ticks sit on
// the wall-clock grid (every second at .000 for 1s), so that readings of
// several gateways line up and the schedule never drifts.
func firstTick(now time.Time, interval time.Duration) time.Time {
	return now.Truncate(interval).Add(interval)
}

// nextTick returns the tick after prev that is not already past at now, and
// how many ticks were skipped because a cycle overran. Skipped ticks are
// counted, not queued: a burst of catch-up reads would only overload a PLC
// that is already slow.
func nextTick(prev, now time.Time, interval time.Duration) (next time.Time, skipped int64) {
	next = prev.Add(interval)
	if late := now.Sub(next); late > 0 {
		skipped = int64(late/interval) + 1
		next = next.Add(time.Duration(skipped) * interval)
	}
	return next, skipped
}
