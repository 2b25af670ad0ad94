package collector

import (
	"time"

	"github.com/linegate/linegate/buffer"
	"github.com/linegate/linegate/drivers"
)

// tagDesc is a Tag as a device holds it. Most tags are plain (a number,
// maybe scaled, with a deadband or a counter), and for them the fields
// here are the whole description, in 104 bytes instead of a Tag's 248: at
// 100,000 tags that is 14 MB of live heap, and half as much again that the
// garbage collector lets the heap grow by. A tag with any other rule (maps,
// limits, states, alarms, timestamps, staleness, duration units) keeps its
// full Tag.
type tagDesc struct {
	Name, Class, Unit       string
	Scale, Offset, Deadband float64
	ReportEvery             time.Duration
	CounterBits             int
	Float32, Counter        bool
	full                    *Tag // nil for a plain tag
}

// describe returns t's description.
func describe(t Tag) tagDesc {
	d := tagDesc{Name: t.Name, Class: t.Class, Unit: t.Unit, Scale: t.Scale, Offset: t.Offset, Deadband: t.Deadband,
		ReportEvery: t.ReportEvery, CounterBits: t.CounterBits, Float32: t.Float32, Counter: t.Counter}
	if !d.equalPlain(t) {
		d.full = &t
	}
	return d
}

// plain is the Tag of a plain description. Location only matters with a
// Timestamp, so a plain tag drops it (the config gives every tag its
// device's zone).
func (d *tagDesc) plain() Tag {
	return Tag{Name: d.Name, Class: d.Class, Unit: d.Unit, Scale: d.Scale, Offset: d.Offset, Deadband: d.Deadband,
		ReportEvery: d.ReportEvery, CounterBits: d.CounterBits, Float32: d.Float32, Counter: d.Counter}
}

// equalPlain says whether t is its plain description's Tag, Location
// aside when there is no Timestamp.
func (d *tagDesc) equalPlain(t Tag) bool {
	if t.Timestamp == "" {
		t.Location = nil
	}
	p := d.plain()
	return p.Name == t.Name && p.Class == t.Class && p.Unit == t.Unit && p.Scale == t.Scale && p.Offset == t.Offset &&
		p.Deadband == t.Deadband && p.ReportEvery == t.ReportEvery && p.CounterBits == t.CounterBits &&
		p.Float32 == t.Float32 && p.Counter == t.Counter && t.States == nil && t.ToSeconds == 0 && t.Map == nil &&
		t.Limits == nil && t.DeadbandPercent == 0 && !t.State && t.StateBits == nil && t.DefaultState == "" &&
		t.Alarms == nil && t.Timestamp == "" && t.Location == nil && t.StaleAfter == 0
}

// normalize is Tag.normalize; a plain tag's Tag is built on the stack.
func (d *tagDesc) normalize(s drivers.Sample, st *tagState, now time.Time) (buffer.Reading, bool) {
	if d.full != nil {
		return d.full.normalize(s, st, now)
	}
	t := d.plain()
	return t.normalize(s, st, now)
}

// isState is Tag.isState: only a full description can be a state.
func (d *tagDesc) isState() bool { return d.full != nil && d.full.isState() }

// unit is Tag.unit.
func (d *tagDesc) unit() string {
	if d.full != nil {
		return d.full.unit()
	}
	return d.Unit
}

// Compact replaces d.Tags by the description the collector keeps of them
// (New and Replace do it for a device not compacted yet). A caller that
// builds many devices compacts each once built, so that the full Tags of
// all of them and their descriptions are not live at the same time; a
// compacted device's Tags are nil.
func (d *Device) Compact() {
	if d.descs == nil {
		d.descs = describeAll(d.Tags)
	}
	d.Tags = nil
}

// descriptions are d's tags as described, compacted or not.
func (d *Device) descriptions() []tagDesc {
	if d.descs != nil {
		return d.descs
	}
	return describeAll(d.Tags)
}

// describeAll describes tags.
func describeAll(tags []Tag) []tagDesc {
	out := make([]tagDesc, len(tags))
	for i, t := range tags {
		out[i] = describe(t)
	}
	return out
}
