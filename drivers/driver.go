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
	// Bits is the width of the source's integer type (8, 16, 32, 64) when
	// the driver learns it from the device (OPC UA's UInt16, Int32 ...);
	// 0 when the configuration says it. A counter rolls over at this width.
	Bits uint8
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

// Change is one tag's new sample in a subscription.
type Change struct {
	Index  int // tag index, in configuration order
	Sample Sample
}

// Subscriber is a driver the device pushes changes through (OPC UA
// subscriptions) instead of being polled. The collector uses Subscribe
// instead of Read when a driver implements it and is configured to.
type Subscriber interface {
	Driver
	// Subscribe runs until ctx is done or the subscription cannot go on.
	// It calls deliver, from one goroutine, with the changes of each
	// publish (one publishing interval), and state with a non-nil error when
	// the device becomes unreachable (after delivering every tag Bad with
	// that error) and with nil when it is reachable again. It reconnects by
	// itself; it returns only when ctx is done (nil) or on a configuration
	// error that retrying cannot mend.
	Subscribe(ctx context.Context, deliver func([]Change), state func(error)) error
}
