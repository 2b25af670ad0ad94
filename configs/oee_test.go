package configs

import (
	"os"
	"strings"
	"testing"
)

const oeeBase = `gateway: {id: gw1, site: s, area: a, line: l}
buffer: {path: /tmp/x.db}
uplink: {brokers: [tcp://127.0.0.1:1884]}
devices:
  - name: press01
    driver: modbus
    address: tcp://127.0.0.1:502
    oee:
      state_tag: state
      run: [running]
      planned_stop: [break]
      unplanned_stop: [stopped, fault]
      total_counter: strokes
      good_counter: good_parts
      ideal_cycle_time: 2s
    tags:
      - {name: state, class: equipment, register: holding, address: 10, type: uint16, states: {0: stopped, 1: running, 2: break, 3: fault}}
      - {name: strokes, class: equipment, register: holding, address: 11, type: uint16, counter: true}
      - {name: good_parts, class: equipment, register: holding, address: 12, type: uint32, counter: true}
      - {name: mode, class: equipment, register: holding, address: 14, type: uint16}
`

func TestOEEBlock(t *testing.T) {
	cfg, err := Parse("linegate.yaml", []byte(oeeBase), env(nil))
	if err != nil {
		t.Fatal(err)
	}
	o := cfg.Devices[0].OEE
	want := map[string]string{"running": OEERun, "break": OEEPlannedStop, "stopped": OEEUnplannedStop, "fault": OEEUnplannedStop}
	for k, v := range want {
		if o.Categories[k] != v {
			t.Errorf("category of %s = %q, want %q", k, o.Categories[k], v)
		}
	}
	if o.IdealCycleSeconds != 2 {
		t.Errorf("ideal cycle %v s, want 2", o.IdealCycleSeconds)
	}
	if got := o.String(); got != "state state, total strokes, good good_parts, ideal 2s" {
		t.Errorf("String() = %q", got)
	}

	// A catalogue with codes names a plain integer tag's states; a list
	// overrides one state; a rate gives the cycle.
	text := strings.NewReplacer(
		"      run: [running]\n      planned_stop: [break]\n      unplanned_stop: [stopped, fault]\n",
		"      states_catalogue: packml\n      planned_stop: [Idle]\n",
		"state_tag: state", "state_tag: mode",
		"ideal_cycle_time: 2s", "ideal_rate_per_min: 40",
		"good_counter: good_parts", "rejects_counter: good_parts").Replace(oeeBase)
	cfg, err = Parse("linegate.yaml", []byte(text), env(nil))
	if err != nil {
		t.Fatal(err)
	}
	d := cfg.Devices[0]
	o = d.OEE
	for k, v := range map[string]string{"execute": OEERun, "idle": OEEPlannedStop, "held": OEEUnplannedStop, "undefined": OEEUnknown} {
		if o.Categories[k] != v {
			t.Errorf("packml: category of %s = %q, want %q", k, o.Categories[k], v)
		}
	}
	if d.Tags[3].States[6] != "execute" || len(d.Tags[3].States) != 18 || !d.Tags[3].IsState() {
		t.Errorf("packml codes not given to tag mode: %v", d.Tags[3].States)
	}
	if o.IdealCycleSeconds != 1.5 {
		t.Errorf("ideal cycle %v s from 40/min, want 1.5", o.IdealCycleSeconds)
	}

	// Weihenstephan names the states by name: the tag's own codes.
	text = strings.NewReplacer(
		"      run: [running]\n      planned_stop: [break]\n      unplanned_stop: [stopped, fault]\n",
		"      states_catalogue: weihenstephan\n",
		"states: {0: stopped, 1: running, 2: break, 3: fault}", `states: {1: Off, 2: Stopped, 64: Operating, 16: Lack, 32: "Tailback Branch Line"}`).Replace(oeeBase)
	cfg, err = Parse("linegate.yaml", []byte(text), env(nil))
	if err != nil {
		t.Fatal(err)
	}
	if c := cfg.Devices[0].OEE.Categories; c["operating"] != OEERun || c["tailbackbranchline"] != OEEUnplannedStop {
		t.Errorf("weihenstephan categories %v", c)
	}

	// EUROMAP 84's status codes.
	text = strings.NewReplacer(
		"      run: [running]\n      planned_stop: [break]\n      unplanned_stop: [stopped, fault]\n",
		"      states_catalogue: euromap84\n",
		"state_tag: state", "state_tag: mode").Replace(oeeBase)
	cfg, err = Parse("linegate.yaml", []byte(text), env(nil))
	if err != nil {
		t.Fatal(err)
	}
	if d := cfg.Devices[0]; d.Tags[3].States[5] != "controlled_run" || d.OEE.Categories["controlledrun"] != OEERun || d.OEE.Categories["offline"] != OEEUnknown {
		t.Errorf("euromap84: states %v, categories %v", d.Tags[3].States, d.OEE.Categories)
	}
}

func TestOEEErrors(t *testing.T) {
	tests := []struct {
		name     string
		from, to string
		want     string
	}{
		{"no state tag", "      state_tag: state\n", "", `linegate.yaml:9: device press01: oee.state_tag: required`},
		{"unknown state tag", "state_tag: state", "state_tag: stat", `linegate.yaml:9: device press01: oee.state_tag: no tag "stat" in this device`},
		{"not a state tag", "state_tag: state", "state_tag: mode", `oee.state_tag: tag mode is no state tag`},
		{"unknown catalogue", "      run: [running]\n", "      run: [running]\n      states_catalogue: isa95\n", `linegate.yaml:11: device press01: oee.states_catalogue: unknown catalogue "isa95" (packml | weihenstephan | euromap84)`},
		{"no run", "      run: [running]\n", "", `oee.run: required`},
		{"a state no list has", "unplanned_stop: [stopped, fault]", "unplanned_stop: [stopped]", `oee.run: state fault of tag state is under none of run, planned_stop, unplanned_stop`},
		{"a state in two lists", "planned_stop: [break]", "planned_stop: [break, fault]", `oee.unplanned_stop: fault is also under planned_stop`},
		{"no such state", "run: [running]", "run: [running, runing]", `oee.run: runing is no state of tag state (stopped, running, break, fault)`},
		{"key typo", "total_counter: strokes", "total_count: strokes", `unknown key "total_count"`},
		{"no total", "      total_counter: strokes\n", "", `oee.total_counter: required`},
		{"total is no counter", "total_counter: strokes", "total_counter: mode", `oee.total_counter: tag mode is no counter (counter: true)`},
		{"no good or rejects", "      good_counter: good_parts\n", "", `oee.good_counter: quality needs good_counter or rejects_counter`},
		{"good and rejects", "good_counter: good_parts", "good_counter: good_parts\n      rejects_counter: strokes", `oee.rejects_counter: give good_counter or rejects_counter, not both`},
		{"good is total", "good_counter: good_parts", "good_counter: strokes", `oee.total_counter: strokes cannot count all parts`},
		{"no ideal", "      ideal_cycle_time: 2s\n", "", `oee.ideal_cycle_time: performance needs ideal_cycle_time`},
		{"both ideals", "ideal_cycle_time: 2s", "ideal_cycle_time: 2s\n      ideal_rate_per_min: 30", `oee.ideal_rate_per_min: give ideal_cycle_time or ideal_rate_per_min, not both`},
		{"negative rate", "ideal_cycle_time: 2s", "ideal_rate_per_min: -3", `oee.ideal_rate_per_min: -3 must be a positive number`},
		{"a tag named like a reading", "name: mode,", "name: oee_quality,", `oee: publishes a reading oee_quality, and tag oee_quality has that name`},
		{"catalogue with a state it lacks", "      run: [running]\n      planned_stop: [break]\n      unplanned_stop: [stopped, fault]\n", "      states_catalogue: packml\n", `state running, break, fault of tag state is under none of`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			text := strings.Replace(oeeBase, tt.from, tt.to, 1)
			if text == oeeBase {
				t.Fatalf("replacement %q not found", tt.from)
			}
			_, err := Parse("linegate.yaml", []byte(text), env(nil))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error:\n%v\nwant it to contain:\n%s", err, tt.want)
			}
		})
	}
}

// TestOEEDocExample: the example device of collector/OEE.md validates.
func TestOEEDocExample(t *testing.T) {
	doc, err := os.ReadFile("../collector/OEE.md")
	if err != nil {
		t.Fatal(err)
	}
	_, rest, _ := strings.Cut(string(doc), "```yaml\n")
	example, _, _ := strings.Cut(rest, "```")
	text := "gateway: {id: gw1, site: s, area: a, line: l}\nbuffer: {path: /tmp/x.db}\nuplink: {brokers: [tcp://127.0.0.1:1884]}\ndevices:\n" + example
	cfg, err := Parse("OEE.md", []byte(text), env(nil))
	if err != nil {
		t.Fatal(err)
	}
	if o := cfg.Devices[0].OEE; o.Categories["noorder"] != OEEPlannedStop || o.IdealCycleSeconds != 2.4 {
		t.Errorf("example: categories %v, ideal %v s", o.Categories, o.IdealCycleSeconds)
	}
}
