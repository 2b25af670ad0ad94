package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/linegate/linegate/configs"
	"github.com/linegate/linegate/drivers/modbus"
)

// benchTag is one tag of a simulated press, as both linegate's config and
// the limit program's modbus.Config see it.
type benchTag struct {
	name, class, register, typ string
	addr                       uint16
}

// simMap is the simulator's real points (drivers/sim), used first so that
// values move and every class gets readings.
var simMap = []benchTag{
	{"temperature", "process", "holding", "float32", 0},
	{"speed", "process", "input", "int16", 4},
	{"state", "equipment", "holding", "uint16", 10},
	{"good_parts", "equipment", "holding", "uint32", 12},
	{"cycle_time", "time", "holding", "uint16", 14},
	{"pressure", "process", "holding", "float32", 20},
	{"energy", "process", "holding", "int64", 30},
	{"strokes", "equipment", "holding", "uint64", 34},
	{"run_hours", "time", "holding", "float64", 40},
	{"force", "process", "holding", "float64", 44},
}

// maxTags is how many distinct tags a simulated unit has room for: the map,
// holding 64..199 and input 5..199 as uint16.
const maxTags = 10 + 136 + 195

// deviceTags lays out n tags of one device: the simulator's map first, then
// plain uint16 holding registers from 64 (process), then input registers
// (equipment): three messages per device and cycle, a few reads.
func deviceTags(n int) ([]benchTag, error) {
	if n < 1 || n > maxTags {
		return nil, fmt.Errorf("--tags %d: want 1..%d (a simulated unit has 200 registers per table)", n, maxTags)
	}
	tags := append([]benchTag(nil), simMap[:min(n, len(simMap))]...)
	for a := uint16(64); len(tags) < n && a < 200; a++ {
		tags = append(tags, benchTag{fmt.Sprintf("h%d", a), "process", "holding", "uint16", a})
	}
	for a := uint16(5); len(tags) < n && a < 200; a++ {
		tags = append(tags, benchTag{fmt.Sprintf("i%d", a), "equipment", "input", "uint16", a})
	}
	return tags, nil
}

// device is one simulated press: which sim process serves it, as which unit.
type device struct {
	name string
	addr string // host:port of its sim process
	unit byte
}

// layoutDevices spreads n devices over the sim addresses, perSim units each.
func layoutDevices(n, perSim int, sims []string) []device {
	out := make([]device, 0, n)
	for i := range n {
		out = append(out, device{name: fmt.Sprintf("press%03d", i+1), addr: sims[i/perSim], unit: byte(i%perSim + 1)})
	}
	return out
}

// driverConfig is the modbus.Config linegate builds from the YAML below
// (cmd/internal/agent/drivers.go: newModbusIn), for Plan() and the limit.
func driverConfig(d device, tags []benchTag, timeout time.Duration) modbus.Config {
	gap := configs.DefaultMaxGap
	if gap == 0 {
		gap = -1 // as newModbusIn: the config's 0 means "never bridge"
	}
	c := modbus.Config{Device: d.name, Address: "tcp://" + d.addr, UnitID: d.unit, Timeout: timeout, MaxGap: gap}
	for _, t := range tags {
		c.Tags = append(c.Tags, modbus.Tag{Name: t.name, Register: t.register, Address: t.addr, Type: t.typ})
	}
	return c
}

// plans returns every device's request plan, as linegate's driver makes it.
func plans(devs []device, tags []benchTag) ([][]modbus.Request, error) {
	out := make([][]modbus.Request, len(devs))
	for i, d := range devs {
		drv, err := modbus.New(driverConfig(d, tags, time.Second))
		if err != nil {
			return nil, err
		}
		out[i] = drv.Plan()
		drv.Close()
	}
	return out, nil
}

// agentConfig is what the bench hands linegate run.
type agentConfig struct {
	dir, broker, httpAddr string
	interval              time.Duration
	commit                time.Duration
	maxInflight           int
}

// writeConfig writes linegate's YAML into c.dir and returns its path.
func writeConfig(c agentConfig, devs []device, tags []benchTag) (string, error) {
	var b strings.Builder
	fmt.Fprintf(&b, "gateway: {id: bench, site: lab, area: bench, line: line1}\n")
	// commit 0 and maxInflight 0 leave linegate's defaults (the side-by-side
	// run measures the agent as shipped).
	fmt.Fprintf(&b, "buffer: {path: %s, max_size: 1GiB", filepath.Join(c.dir, "buffer.db"))
	if c.commit > 0 {
		fmt.Fprintf(&b, ", commit_interval: %s", c.commit)
	}
	fmt.Fprintf(&b, "}\nuplink: {brokers: [tcp://%s], topic_prefix: %s, qos: 1", c.broker, topicPrefix)
	if c.maxInflight > 0 {
		fmt.Fprintf(&b, ", max_inflight: %d", c.maxInflight)
	}
	b.WriteString("}\n")
	fmt.Fprintf(&b, "http: {listen: %s}\n", c.httpAddr)
	b.WriteString("devices:\n")
	for _, d := range devs {
		fmt.Fprintf(&b, "  - {name: %s, driver: modbus, address: tcp://%s, unit_id: %d, poll_interval: %s, timeout: 1s, tags: [\n", d.name, d.addr, d.unit, c.interval)
		for _, t := range tags {
			fmt.Fprintf(&b, "      {name: %s, class: %s, register: %s, address: %d, type: %s},\n", t.name, t.class, t.register, t.addr, t.typ)
		}
		b.WriteString("    ]}\n")
	}
	path := filepath.Join(c.dir, "linegate.yaml")
	return path, os.WriteFile(path, []byte(b.String()), 0o600)
}

// uint16Tags lays out n plain uint16 holding registers from 64 (the
// simulator's registers no point of its map uses), one message per device
// and cycle: the side-by-side load, which Telegraf reads the same way.
func uint16Tags(n int) ([]benchTag, error) {
	const first, last = 64, 199
	if n < 1 || n > last-first+1 {
		return nil, fmt.Errorf("%d tags: want 1..%d uint16 holding registers (%d..%d)", n, last-first+1, first, last)
	}
	tags := make([]benchTag, n)
	for i := range tags {
		a := uint16(first + i)
		tags[i] = benchTag{fmt.Sprintf("h%d", a), "process", "holding", "uint16", a}
	}
	return tags, nil
}

const (
	topicPrefix      = "bench"
	limitTopicPrefix = "benchlimit"
)
