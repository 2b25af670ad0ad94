//go:build !race

package uplink

const raceOn = false
