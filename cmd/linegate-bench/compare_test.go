package main

import (
	"testing"
)

func TestSpreadOf3(t *testing.T) {
	cases := []struct {
		name string
		in   []float64
		want spread3
	}{
		{name: "none", in: nil, want: spread3{}},
		{name: "one", in: []float64{2}, want: spread3{2, 2, 2}},
		{name: "odd", in: []float64{3, 1, 2}, want: spread3{1, 2, 3}},
		{name: "even: mean of the middle two", in: []float64{4, 1, 3, 2}, want: spread3{1, 2.5, 4}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			in := append([]float64(nil), tc.in...)
			if got := spreadOf3(tc.in); got != tc.want {
				t.Fatalf("got %+v, want %+v", got, tc.want)
			}
			for i := range in {
				if in[i] != tc.in[i] {
					t.Fatal("spreadOf3 reordered its input")
				}
			}
		})
	}
}

func run2(agent string, pair int, cpu float64, rssMiB int64) sideRun {
	return sideRun{Agent: agent, Pair: pair, CPUPercent: cpu, PeakRSSBytes: rssMiB << 20, IOAccounting: true}
}

func TestPairRatios(t *testing.T) {
	cases := []struct {
		name     string
		runs     []sideRun
		cpu, rss []float64
	}{
		{name: "two pairs",
			runs: []sideRun{run2("linegate", 1, 1, 20), run2("telegraf", 1, 2, 25), run2("linegate", 2, 3, 20), run2("telegraf", 2, 2, 40)},
			cpu:  []float64{0.5, 1.5}, rss: []float64{0.8, 0.5}},
		{name: "a pair without its Telegraf run is left out",
			runs: []sideRun{run2("linegate", 1, 1, 20), run2("telegraf", 1, 4, 40), run2("linegate", 2, 3, 20)},
			cpu:  []float64{0.25}, rss: []float64{0.5}},
		{name: "Telegraf at zero CPU gives no CPU ratio",
			runs: []sideRun{run2("linegate", 1, 1, 20), run2("telegraf", 1, 0, 20)},
			cpu:  nil, rss: []float64{1}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cpu, rss := pairRatios(tc.runs)
			if !floatsEqual(cpu, tc.cpu) || !floatsEqual(rss, tc.rss) {
				t.Fatalf("got cpu %v rss %v, want %v %v", cpu, rss, tc.cpu, tc.rss)
			}
		})
	}
}

func floatsEqual(a, b []float64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if d := a[i] - b[i]; d > 1e-9 || d < -1e-9 {
			return false
		}
	}
	return true
}

func TestSideLoadChecks(t *testing.T) {
	cases := []struct {
		name string
		load string
		runs []sideRun
		want map[string]bool // check name → pass
	}{
		{name: "idle passes: below 0.1 % and below Telegraf",
			load: "1x1",
			runs: []sideRun{run2("linegate", 1, 0.05, 10), run2("telegraf", 1, 0.2, 20), run2("linegate", 2, 0.07, 10), run2("telegraf", 2, 0.1, 20)},
			want: map[string]bool{"1x1 linegate CPU": true, "1x1 CPU ÷ Telegraf": true, "1x1 RSS ÷ Telegraf": true}},
		{name: "idle fails the absolute target though below Telegraf",
			load: "1x1",
			runs: []sideRun{run2("linegate", 1, 0.2, 30), run2("telegraf", 1, 0.4, 20)},
			want: map[string]bool{"1x1 linegate CPU": false, "1x1 CPU ÷ Telegraf": true, "1x1 RSS ÷ Telegraf": false}},
		{name: "10x20 at half of Telegraf passes, the median decides",
			load: "10x20",
			runs: []sideRun{run2("linegate", 1, 1, 20), run2("telegraf", 1, 2, 25), run2("linegate", 2, 1, 20), run2("telegraf", 2, 4, 25), run2("linegate", 3, 3, 20), run2("telegraf", 3, 2, 25)},
			want: map[string]bool{"10x20 CPU ÷ Telegraf": true, "10x20 RSS ÷ Telegraf": true}},
		{name: "100x100 above a third fails",
			load: "100x100",
			runs: []sideRun{run2("linegate", 1, 4, 30), run2("telegraf", 1, 10, 30)},
			want: map[string]bool{"100x100 CPU ÷ Telegraf": false, "100x100 RSS ÷ Telegraf": true}},
		{name: "a load without targets has no checks",
			load: "5x5",
			runs: []sideRun{run2("linegate", 1, 4, 30), run2("telegraf", 1, 10, 30)},
			want: map[string]bool{}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			l := sideLoad{Name: tc.load, Runs: tc.runs}
			l.finish()
			got := map[string]bool{}
			for _, c := range l.Checks {
				got[c.Name] = c.Pass
			}
			if len(got) != len(tc.want) {
				t.Fatalf("checks %v, want %v", got, tc.want)
			}
			for k, v := range tc.want {
				if p, ok := got[k]; !ok || p != v {
					t.Fatalf("check %q: pass %v (present %v), want %v; all %+v", k, p, ok, v, l.Checks)
				}
			}
		})
	}
}
