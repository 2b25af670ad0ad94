package main

import (
	"bytes"
	"context"
	"encoding/json"
	"math"
	"path/filepath"
	"testing"
	"time"

	"github.com/linegate/linegate/drivers/sim"
	"github.com/linegate/linegate/internal/testkit"
)

// oeeGoldenDevice: a press with the night shift of the spring DST change
// in its plan, rejects counted, an ideal cycle of 2 s, and its counters
// far from the state so a failing state register fails only the state.
const oeeGoldenDevice = `    timezone: Europe/Berlin
    shifts: ["06:00", "14:00", "22:00"]
    state_times_every: 12h
    oee:
      state_tag: state
      run: [running]
      planned_stop: [break]
      unplanned_stop: [stopped, fault]
      total_counter: strokes
      rejects_counter: rejects
      ideal_cycle_time: 2s
    tags:
      - {name: state, class: equipment, register: holding, address: 10, type: uint16, states: {0: stopped, 1: running, 2: break, 3: fault}, report_every: 12h}
      - {name: strokes, class: equipment, register: holding, address: 110, type: uint16, counter: true}
      - {name: rejects, class: equipment, register: holding, address: 130, type: uint16, counter: true}
`

// oeeFinal is one closed shift's OEE as published.
type oeeFinal struct {
	shift                          string
	a, p, q, oee                   float64
	run, planned, unplanned, unkwn float64
	total, good                    uint64
}

// TestOEEGolden runs shifts through the simulator, the Modbus driver, the
// collector and the JSON encoder, compares the payloads with
// testdata/normalization/oee_*.json (-update rewrites them), and checks the
// final figures of each closed shift against a hand computation.
func TestOEEGolden(t *testing.T) {
	h := func(l *sim.PressLine, addr uint16, words ...uint16) { l.Set(1, "holding", addr, words...) }
	z := func(s string) time.Time {
		ts, err := time.Parse(time.RFC3339, s)
		if err != nil {
			t.Fatal(err)
		}
		return ts
	}
	line := sim.NewPressLine(sim.Options{Addr: "127.0.0.1:0", Units: []byte{1}})
	if err := line.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { line.Stop() })
	line.Freeze(true)

	t.Run("oee_dst.json", func(t *testing.T) {
		// The night shift 22:00..06:00 of 2026-03-29 in Berlin: the clocks
		// jump from 02:00 to 03:00, so it lasts 7 h (25200 s).
		got := runGolden(t, line, oeeGoldenDevice, []goldenStep{
			{name: "22:00 CET: running, strokes 65000, rejects 10 (no deltas yet)", ts: z("2026-03-28T21:00:00Z"), set: func(l *sim.PressLine) {
				h(l, 10, 1)
				h(l, 110, 65000)
				h(l, 130, 10)
			}},
			{name: "00:00: strokes roll over 65000 → 2964 (3500 parts), rejects +35", ts: z("2026-03-28T23:00:00Z"), set: func(l *sim.PressLine) {
				h(l, 110, 2964)
				h(l, 130, 45)
			}},
			{name: "01:00: fault after 3 h of run; +1600 parts, +10 rejects", ts: z("2026-03-29T00:00:00Z"), set: func(l *sim.PressLine) {
				h(l, 10, 3)
				h(l, 110, 4564)
				h(l, 130, 55)
			}},
			{name: "01:30: the state register fails (bad read): unknown, never run", ts: z("2026-03-29T00:30:00Z"), set: func(l *sim.PressLine) {
				l.Fail(1, "holding", 10, true)
			}},
			{name: "03:00 CEST (the clocks jumped at 02:00): still a bad read", ts: z("2026-03-29T01:00:00Z")},
			{name: "03:15: readable again: break (planned) after 45 min unknown", ts: z("2026-03-29T01:15:00Z"), set: func(l *sim.PressLine) {
				l.Fail(1, "holding", 10, false)
				h(l, 10, 2)
			}},
			{name: "03:45: running after a 30 min break", ts: z("2026-03-29T01:45:00Z"), set: func(l *sim.PressLine) { h(l, 10, 1) }},
			{name: "05:59: +3800 parts, +40 rejects", ts: z("2026-03-29T03:59:00Z"), set: func(l *sim.PressLine) {
				h(l, 110, 8364)
				h(l, 130, 95)
			}},
			{name: "06:00:05 CEST: shift change: the night shift's finals (7 h), then the 06:00 shift", ts: z("2026-03-29T04:00:05Z")},
		}, nil)
		compareGolden(t, "oee_dst.json", got)
		// By hand: run 21:00–00:00Z 10800 s + 01:45–04:00Z 8100 s = 18900 s;
		// unplanned (fault) 1800 s; unknown (bad read) 2700 s; planned
		// (break) 1800 s; together 25200 s = 7 h.
		// Parts 3500 (rollover: 65536-65000+2964) + 1600 + 3800 = 8900;
		// rejects 35 + 10 + 40 = 85, good 8815.
		// availability = 18900 / (18900 + 1800 + 2700) = 18900/23400
		// performance  = 2 s × 8900 / 18900 s = 17800/18900
		// quality      = 8815 / 8900
		checkFinals(t, got, []oeeFinal{{shift: "22:00",
			a: 18900.0 / 23400, p: 17800.0 / 18900, q: 8815.0 / 8900, oee: 18900.0 / 23400 * 17800 / 18900 * 8815 / 8900,
			run: 18900, planned: 1800, unplanned: 1800, unkwn: 2700, total: 8900, good: 8815}})
	})

	t.Run("oee_restart.json", func(t *testing.T) {
		// The 06:00 shift of 2026-11-27 (05:00Z): the gateway runs an hour,
		// stops, and starts again at 08:00 Berlin.
		first := runGolden(t, line, oeeGoldenDevice, []goldenStep{
			{name: "06:00: running, strokes 100, rejects 0", ts: z("2026-11-27T05:00:00Z"), set: func(l *sim.PressLine) {
				h(l, 10, 1)
				h(l, 110, 100)
				h(l, 130, 0)
			}},
			{name: "07:00: +1700 parts, +20 rejects; then the gateway stops", ts: z("2026-11-27T06:00:00Z"), set: func(l *sim.PressLine) {
				h(l, 110, 1800)
				h(l, 130, 20)
			}},
		}, nil)
		second := runGolden(t, line, oeeGoldenDevice, []goldenStep{
			{name: "08:00: restarted mid-shift: 06:00–08:00 is unknown, no deltas yet", ts: z("2026-11-27T07:00:00Z"), set: func(l *sim.PressLine) {
				h(l, 110, 3500)
				h(l, 130, 20)
			}},
			{name: "10:00: fault; +3000 parts, +30 rejects", ts: z("2026-11-27T09:00:00Z"), set: func(l *sim.PressLine) {
				h(l, 10, 3)
				h(l, 110, 6500)
				h(l, 130, 50)
			}},
			{name: "11:00: running", ts: z("2026-11-27T10:00:00Z"), set: func(l *sim.PressLine) { h(l, 10, 1) }},
			{name: "13:59: +4000 parts, +40 rejects", ts: z("2026-11-27T12:59:00Z"), set: func(l *sim.PressLine) {
				h(l, 110, 10500)
				h(l, 130, 90)
			}},
			{name: "14:00:05: shift change: the finals of the 06:00 shift, as the restarted gateway knows it", ts: z("2026-11-27T13:00:05Z")},
		}, nil)
		got := append(bytes.TrimSuffix(first, []byte("\n]\n")), ",\n"...)
		got = append(got, bytes.TrimPrefix(second, []byte("[\n"))...)
		compareGolden(t, "oee_restart.json", got)
		// By hand (the restarted gateway's totals): unknown 05:00–07:00Z
		// 7200 s; run 07:00–09:00Z 7200 s + 10:00–13:00Z 10800 s = 18000 s;
		// unplanned 3600 s; 28800 s in all. Parts 3000 + 4000 = 7000,
		// rejects 70, good 6930.
		checkFinals(t, got, []oeeFinal{{shift: "06:00",
			a: 18000.0 / 28800, p: 2 * 7000.0 / 18000, q: 6930.0 / 7000, oee: 18000.0 / 28800 * 14000 / 18000 * 6930 / 7000,
			run: 18000, planned: 0, unplanned: 3600, unkwn: 7200, total: 7000, good: 6930}})
	})
}

func compareGolden(t *testing.T, file string, got []byte) {
	t.Helper()
	if !json.Valid(got) {
		t.Fatalf("golden text is not JSON:\n%s", got)
	}
	testkit.Golden(t, filepath.Join("..", "..", "testdata", "normalization", file), got)
}

// checkFinals finds the final OEE readings in the golden text and compares
// them, and the inputs on reading oee, with the hand computations.
func checkFinals(t *testing.T, golden []byte, want []oeeFinal) {
	t.Helper()
	var steps []struct {
		Published []json.RawMessage `json:"published"`
	}
	if err := json.Unmarshal(golden, &steps); err != nil {
		t.Fatal(err)
	}
	type reading struct {
		Tag            string   `json:"tag"`
		Value          *float64 `json:"value"`
		Shift          string   `json:"shift"`
		Final          bool     `json:"final"`
		RunS           float64  `json:"run_s"`
		PlannedStopS   float64  `json:"planned_stop_s"`
		UnplannedStopS float64  `json:"unplanned_stop_s"`
		UnknownS       float64  `json:"unknown_s"`
		Total          uint64   `json:"total_count"`
		Good           uint64   `json:"good_count"`
	}
	var finals []map[string]reading
	for _, s := range steps {
		for _, p := range s.Published {
			var m struct {
				Class    string    `json:"class"`
				Readings []reading `json:"readings"`
			}
			if err := json.Unmarshal(p, &m); err != nil || m.Class != "time" {
				continue
			}
			var f map[string]reading
			for _, r := range m.Readings {
				if r.Final && (r.Tag == "oee" || r.Tag == "oee_availability" || r.Tag == "oee_performance" || r.Tag == "oee_quality") {
					if f == nil || f[r.Tag].Tag != "" {
						f = map[string]reading{}
						finals = append(finals, f)
					}
					f[r.Tag] = r
				}
			}
		}
	}
	if len(finals) != len(want) {
		t.Fatalf("%d closed shifts published, want %d", len(finals), len(want))
	}
	for i, w := range want {
		f := finals[i]
		for tag, v := range map[string]float64{"oee_availability": w.a, "oee_performance": w.p, "oee_quality": w.q, "oee": w.oee} {
			r := f[tag]
			if r.Value == nil || math.Abs(*r.Value-v) > 1e-12 || r.Shift != w.shift {
				t.Errorf("shift %s: %s = %v (shift %q), by hand %v", w.shift, tag, r.Value, r.Shift, v)
			}
		}
		o := f["oee"]
		if o.RunS != w.run || o.PlannedStopS != w.planned || o.UnplannedStopS != w.unplanned || o.UnknownS != w.unkwn || o.Total != w.total || o.Good != w.good {
			t.Errorf("shift %s: inputs %+v, by hand %+v", w.shift, o, w)
		}
	}
}
