package modbus

import (
	"slices"
	"sync"
	"time"
)

// statsWindow is what the link figures cover: the last minute, in
// buckets so that an old busy spell drops out whole.
const (
	statsWindow = time.Minute
	statsBucket = 5 * time.Second
	numBuckets  = int(statsWindow / statsBucket)
)

// meter sums an amount (busy time, or polls) per bucket over the window.
type meter struct {
	mu      sync.Mutex
	created time.Time
	start   [numBuckets]int64 // bucket start, unix nanoseconds
	sum     [numBuckets]float64
}

func newMeter() *meter { return &meter{created: time.Now()} }

func (m *meter) add(at time.Time, v float64) {
	b := at.UnixNano() / int64(statsBucket) * int64(statsBucket)
	i := int(b/int64(statsBucket)) % numBuckets
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.start[i] != b {
		m.start[i], m.sum[i] = b, 0
	}
	m.sum[i] += v
}

// rate is the sum over the window per second of the window, which is
// shorter while the meter is younger than a minute.
func (m *meter) rate(now time.Time) float64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	span := min(now.Sub(m.created), statsWindow)
	if span <= 0 {
		return 0
	}
	var total float64
	oldest := now.Add(-statsWindow).UnixNano()
	for i := range numBuckets {
		if m.start[i] > oldest-int64(statsBucket) && m.start[i] <= now.UnixNano() {
			total += m.sum[i]
		}
	}
	return total / span.Seconds()
}

// LinkStats is the load of one shared port or TCP address over the last
// minute: how much of the time its line (or its connections, on average)
// was held by a poll or request, and how often each device on it polled.
type LinkStats struct {
	Link        string // serial:/dev/ttyUSB0 or tcp://host:port
	Utilisation float64
	Devices     []DeviceRate
}

// DeviceRate is one device's polls per second over the last minute.
type DeviceRate struct {
	Device         string
	Unit           byte
	PollsPerSecond float64
}

// Stats gives the figures of every link with a device on it, by link and
// device name.
func (p *Pool) Stats() []LinkStats {
	now := time.Now()
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []LinkStats
	for key, pl := range p.links {
		if len(pl.drivers) == 0 {
			continue
		}
		ls := LinkStats{Link: key, Utilisation: min(pl.busy.rate(now)/float64(pl.width), 1)}
		for _, d := range pl.drivers {
			ls.Devices = append(ls.Devices, DeviceRate{Device: d.name, Unit: d.unit, PollsPerSecond: d.polls.rate(now)})
		}
		slices.SortFunc(ls.Devices, func(a, b DeviceRate) int { return cmpString(a.Device, b.Device) })
		out = append(out, ls)
	}
	slices.SortFunc(out, func(a, b LinkStats) int { return cmpString(a.Link, b.Link) })
	return out
}

func cmpString(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}
