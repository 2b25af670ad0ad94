//go:build race

package uplink

// raceOn: the race detector changes allocation counts (sync.Pool drops,
// instrumented interface conversions).
const raceOn = true
