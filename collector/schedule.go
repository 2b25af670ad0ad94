package collector

import "time"

// firstTick is the first point of the interval grid after now. Ticks sit on
// the wall-clock grid (every second at .000 for 1s), so that readings of
// several gateways line up and the schedule never drifts.
//
// The tick is now plus the distance to the grid, not the grid point itself:
// Truncate drops the monotonic clock reading, and a schedule measured on
// the wall clock stops for as long as the clock is stepped back (NTP, an
// operator, a PLC time sync) — ten minutes back silenced every device for
// ten minutes. Measured from now, every later tick keeps now's monotonic
// reading (Add keeps it), so steps of the wall clock move the stamps, never
// the schedule. After a step the grid is off by the step until a restart.
func firstTick(now time.Time, interval time.Duration) time.Time {
	return now.Add(now.Truncate(interval).Add(interval).Sub(now))
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
