// Package drivers defines what the collector needs from a protocol driver.
// Drivers import nothing else of linegate: they turn a device's raw values into
// samples, and the collector normalizes them.
package drivers

import (
	"context"
	"time"
)

// Quality of one sample, as the source reported it.
type Quality uint8

const (
	Good Quality = iota
	Uncertain
	Bad
)

func (q Quality) String() string {
	switch q {
	case Good:
		return "good"
	case Uncertain:
		return "uncertain"
	default:
		return "bad"
	}
}

// Sample is the raw value of one tag from one read.
type Sample struct {
	// Value is bool, int64, uint64, float64 or string; nil when Quality is Bad.
	Value   any
	Quality Quality
	// Err says why the sample is not Good (a Modbus exception, a timeout, ...).
	Err error
	// TS is the source timestamp; zero means "use the gateway's read time".
	TS time.Time
}

// Driver reads every configured tag of one device.
type Driver interface {
	// Read fills out (one slot per configured tag, in configuration order).
	// A fault that concerns only some tags is reported in their samples.
	// A non-nil error means the device as a whole is unreachable (no request
	// succeeded); every sample is then Bad with that error.
	Read(ctx context.Context, out []Sample) error
	// Close releases the connection. Read after Close reconnects.
	Close() error
}
