package configs

import (
	"fmt"
	"math"
	"slices"
	"strings"
	"time"
)

// OEE is a device's oee: block: which state tag says whether the machine
// runs, which counters count its parts, and how fast it could make them
// (collector/OEE.md).
type OEE struct {
	StateTag string `yaml:"state_tag"`
	// StatesCatalogue names a standard state model whose states are
	// categorised already (oee_catalogues.go): packml | weihenstephan |
	// euromap84. Run, PlannedStop and UnplannedStop override it per state.
	StatesCatalogue string   `yaml:"states_catalogue"`
	Run             []string `yaml:"run"`
	PlannedStop     []string `yaml:"planned_stop"`
	UnplannedStop   []string `yaml:"unplanned_stop"`
	// TotalCounter counts every part made; GoodCounter the good ones, or
	// RejectsCounter the bad ones (good = total - rejects).
	TotalCounter   string `yaml:"total_counter"`
	GoodCounter    string `yaml:"good_counter"`
	RejectsCounter string `yaml:"rejects_counter"`
	// IdealCycleTime is the fastest cycle per part; IdealRatePerMin says
	// the same as parts per minute. One of the two.
	IdealCycleTime  Duration `yaml:"ideal_cycle_time"`
	IdealRatePerMin float64  `yaml:"ideal_rate_per_min"`

	// Categories maps every state the tag can take, by StateKey, to
	// OEERun, OEEPlannedStop, OEEUnplannedStop or OEEUnknown; set by
	// validation.
	Categories map[string]string `yaml:"-"`
	// IdealCycleSeconds is IdealCycleTime or 60/IdealRatePerMin.
	IdealCycleSeconds float64 `yaml:"-"`
}

// The categories of a state for OEE.
const (
	OEERun           = "run"
	OEEPlannedStop   = "planned_stop"
	OEEUnplannedStop = "unplanned_stop"
	OEEUnknown       = "unknown"
)

// OEEReadings are the names of the readings an oee: block publishes; no
// tag of the device may take one.
var OEEReadings = []string{"oee", "oee_availability", "oee_performance", "oee_quality"}

// StateKey is how oee: matches state names: without case, spaces, "_" or
// "-", so that PackML's "Execute", an OPC UA "EXECUTE" and a configured
// execute are one state.
func StateKey(s string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(s) {
		if r != ' ' && r != '_' && r != '-' {
			b.WriteRune(r)
		}
	}
	return b.String()
}

// oee checks a device's oee: block and resolves its categories; a catalogue
// with codes names the codes of a state tag that has none.
func (v *validator) oee(i int, where string) {
	d := &v.cfg.Devices[i]
	o := d.OEE
	if o == nil {
		return
	}
	n := valueOf(v.nodes.device(i), "oee")
	if n == nil {
		n = noNode
	}
	bad := func(key, format string, args ...any) {
		v.addf(keyLine(n, key), where, "oee."+key+": "+format, args...)
	}
	tagNamed := func(name string) *Tag {
		for j := range d.Tags {
			if d.Tags[j].Name == name {
				return &d.Tags[j]
			}
		}
		return nil
	}
	for _, t := range d.Tags {
		if slices.Contains(OEEReadings, t.Name) {
			v.addf(keyLine(n, "state_tag"), where, "oee: publishes a reading %s, and tag %s has that name", t.Name, t.Name)
		}
	}

	var cat []catalogueState
	if o.StatesCatalogue != "" {
		var ok bool
		if cat, ok = catalogues[o.StatesCatalogue]; !ok {
			bad("states_catalogue", "unknown catalogue %q (%s)", o.StatesCatalogue, quoteList(CatalogueNames))
		}
	}
	st := tagNamed(o.StateTag)
	switch {
	case o.StateTag == "":
		bad("state_tag", "required: the state tag whose states say run, planned stop or unplanned stop")
	case st == nil:
		bad("state_tag", "no tag %q in this device", o.StateTag)
	case !st.IsState() && len(cat) > 0 && cat[0].code >= 0 && plainInteger(*st, d.Driver):
		st.States = map[int64]string{}
		for _, c := range cat {
			st.States[c.code] = c.name
		}
	case !st.IsState():
		hint := "states, state_bits or state: true"
		if len(cat) > 0 && cat[0].code >= 0 {
			hint += ", or a plain integer tag the catalogue names the codes of"
		}
		bad("state_tag", "tag %s is no state tag (%s)", o.StateTag, hint)
	}

	o.Categories = map[string]string{}
	for _, c := range cat {
		o.Categories[StateKey(c.name)] = c.cat
	}
	var known []string // the states the tag can take; nil = any string
	if st != nil {
		known = stateNames(*st)
	}
	listed := map[string]string{}
	for _, l := range []struct {
		key, cat string
		names    []string
	}{{"run", OEERun, o.Run}, {"planned_stop", OEEPlannedStop, o.PlannedStop}, {"unplanned_stop", OEEUnplannedStop, o.UnplannedStop}} {
		for _, s := range l.names {
			k := StateKey(s)
			switch {
			case k == "":
				bad(l.key, "an empty state name")
			case listed[k] != "" && listed[k] != l.key:
				bad(l.key, "%s is also under %s", s, listed[k])
			case known != nil && !slices.ContainsFunc(known, func(n string) bool { return StateKey(n) == k }):
				bad(l.key, "%s is no state of tag %s (%s)", s, o.StateTag, strings.Join(known, ", "))
			}
			listed[k] = l.key
			o.Categories[k] = l.cat
		}
	}
	if len(o.Run) == 0 && len(cat) == 0 {
		bad("run", "required (the states in which the machine produces), or states_catalogue: %s", quoteList(CatalogueNames))
	}
	var loose []string
	for _, s := range known {
		if _, ok := o.Categories[StateKey(s)]; !ok {
			loose = append(loose, s)
		}
	}
	if len(loose) > 0 && st != nil {
		bad("run", "state %s of tag %s is under none of run, planned_stop, unplanned_stop", strings.Join(loose, ", "), o.StateTag)
	}

	counter := func(key, name string) {
		if name == "" {
			return
		}
		switch t := tagNamed(name); {
		case t == nil:
			bad(key, "no tag %q in this device", name)
		case !t.Counter:
			bad(key, "tag %s is no counter (counter: true)", name)
		}
	}
	if o.TotalCounter == "" {
		bad("total_counter", "required: the counter of every part made")
	}
	counter("total_counter", o.TotalCounter)
	counter("good_counter", o.GoodCounter)
	counter("rejects_counter", o.RejectsCounter)
	switch {
	case o.GoodCounter == "" && o.RejectsCounter == "":
		bad("good_counter", "quality needs good_counter or rejects_counter")
	case o.GoodCounter != "" && o.RejectsCounter != "":
		bad("rejects_counter", "give good_counter or rejects_counter, not both")
	case o.TotalCounter != "" && (o.GoodCounter == o.TotalCounter || o.RejectsCounter == o.TotalCounter):
		bad("total_counter", "%s cannot count all parts and the good or rejected ones", o.TotalCounter)
	}

	rate := o.IdealRatePerMin
	switch {
	case o.IdealCycleTime != 0 && rate != 0:
		bad("ideal_rate_per_min", "give ideal_cycle_time or ideal_rate_per_min, not both")
	case o.IdealCycleTime < 0:
		bad("ideal_cycle_time", "%s must be positive", o.IdealCycleTime)
	case o.IdealCycleTime > 0:
		o.IdealCycleSeconds = time.Duration(o.IdealCycleTime).Seconds()
	case rate < 0 || math.IsNaN(rate) || math.IsInf(rate, 0):
		bad("ideal_rate_per_min", "%v must be a positive number of parts per minute", rate)
	case rate > 0:
		o.IdealCycleSeconds = 60 / rate
	default:
		bad("ideal_cycle_time", "performance needs ideal_cycle_time (e.g. 2.4s) or ideal_rate_per_min")
	}
}

// plainInteger says whether t is an integer tag that does nothing else, so
// a catalogue may name its codes.
func plainInteger(t Tag, driver string) bool {
	if driver == "modbus" && !isInteger(t.Type) {
		return false
	}
	return t.Scale == nil && t.Offset == 0 && t.Deadband == 0 && t.RawRange == nil && t.Limits == nil &&
		!t.Counter && len(t.Alarms) == 0 && t.Timestamp == ""
}

// stateNames are the states a state tag can take; nil for state: true (any
// string).
func stateNames(t Tag) []string {
	var out []string
	switch {
	case len(t.StateBits) > 0:
		for _, b := range t.StateBits {
			out = append(out, b.State)
		}
		if t.DefaultState != "" {
			out = append(out, t.DefaultState)
		}
	case len(t.States) > 0:
		codes := make([]int64, 0, len(t.States))
		for c := range t.States {
			codes = append(codes, c)
		}
		slices.Sort(codes)
		for _, c := range codes {
			if !slices.Contains(out, t.States[c]) {
				out = append(out, t.States[c])
			}
		}
	}
	return out
}

// String is the block in one line, for display.
func (o *OEE) String() string {
	if o == nil {
		return ""
	}
	parts := fmt.Sprintf("state %s, total %s", o.StateTag, o.TotalCounter)
	if o.GoodCounter != "" {
		parts += ", good " + o.GoodCounter
	} else {
		parts += ", rejects " + o.RejectsCounter
	}
	return parts + fmt.Sprintf(", ideal %gs", o.IdealCycleSeconds)
}
