package collector

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/linegate/linegate/buffer"
	"github.com/linegate/linegate/drivers"
)

// wordDriver stands for a PLC of uint16 registers. The values are boxed up
// front, so a benchmark measures the collector and not the driver; each
// read returns the other of two sets, so every value changes every cycle.
type wordDriver struct {
	vals  [2][]any
	reads int
}

func newWordDriver(tags int) *wordDriver {
	d := &wordDriver{}
	for i := range tags {
		d.vals[0] = append(d.vals[0], uint64(1000+i))
		d.vals[1] = append(d.vals[1], uint64(2000+i))
	}
	return d
}

func (d *wordDriver) Read(_ context.Context, out []drivers.Sample) error {
	vs := d.vals[d.reads%2]
	d.reads++
	for i := range out {
		out[i] = drivers.Sample{Value: vs[i]}
	}
	return nil
}

func (d *wordDriver) Close() error { return nil }

type discardSink struct{}

func (discardSink) Append(buffer.Message) (uint64, error) { return 0, nil }
func (discardSink) AppendEvent(buffer.Event) error        { return nil }

// wordDevices is n devices of tags plain uint16 tags each.
func wordDevices(n, tags int, tag func(i int) Tag) []Device {
	var devs []Device
	for d := range n {
		dev := Device{Name: fmt.Sprintf("dev%03d", d), Interval: time.Second, Driver: newWordDriver(tags)}
		for i := range tags {
			dev.Tags = append(dev.Tags, tag(i))
		}
		devs = append(devs, dev)
	}
	return devs
}

// BenchmarkPollObserve is one poll cycle of a device of 100 uint16 tags:
// read, normalize, the status page's last readings, and the messages.
// "deadband" holds most readings back, as a steady plant does.
func BenchmarkPollObserve(b *testing.B) {
	for _, bc := range []struct {
		name string
		tag  func(i int) Tag
	}{
		{"plain", func(i int) Tag { return Tag{Name: fmt.Sprintf("t%03d", i), Class: "process"} }},
		{"deadband", func(i int) Tag {
			return Tag{Name: fmt.Sprintf("t%03d", i), Class: "process", Deadband: 5000, ReportEvery: time.Hour}
		}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			c, err := New(Options{Devices: wordDevices(1, 100, bc.tag), Sink: discardSink{}})
			if err != nil {
				b.Fatal(err)
			}
			ctx := context.Background()
			d := c.devices[0]
			b.ReportAllocs()
			for b.Loop() {
				c.poll(ctx, d)
			}
		})
	}
}

// BenchmarkPollObserveParallel polls 100 devices from parallel goroutines,
// as Run does: the devices must not contend on shared locks.
func BenchmarkPollObserveParallel(b *testing.B) {
	const devices = 100
	c, err := New(Options{Devices: wordDevices(devices, 100, func(i int) Tag {
		return Tag{Name: fmt.Sprintf("t%03d", i), Class: "process"}
	}), Sink: discardSink{}})
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	next := make(chan *device, devices)
	for _, d := range c.devices {
		next <- d
	}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		// Each goroutine owns one device at a time: a device is polled by
		// one goroutine only, as in Run.
		d := <-next
		defer func() { next <- d }()
		for pb.Next() {
			c.poll(ctx, d)
		}
	})
}
