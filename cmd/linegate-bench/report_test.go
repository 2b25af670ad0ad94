package main

import (
	"testing"
	"time"
)

func TestReportLoadChecks(t *testing.T) {
	cases := []struct {
		name          string
		devices, tags int
		cpu           float64
		rssMiB        int64
		want          map[string]bool // check name → pass
		absent        []string
	}{
		{name: "10,000 tags under 30 MiB", devices: 100, tags: 100, cpu: 3, rssMiB: 29,
			want:   map[string]bool{"CPU": true, "peak RSS": true, "peak RSS, 10,000 tags": true},
			absent: []string{"CPU, 100,000 tags"}},
		{name: "10,000 tags at 35 MiB: the load target passes, the footprint fails", devices: 100, tags: 100, cpu: 3, rssMiB: 35,
			want: map[string]bool{"peak RSS": true, "peak RSS, 10,000 tags": false}},
		{name: "100,000 tags within 25 % and 100 MiB", devices: 400, tags: 250, cpu: 20, rssMiB: 90,
			want:   map[string]bool{"CPU, 100,000 tags": true, "peak RSS, 100,000 tags": true},
			absent: []string{"CPU", "peak RSS", "peak RSS, 10,000 tags"}},
		{name: "100,000 tags over", devices: 400, tags: 250, cpu: 26, rssMiB: 120,
			want: map[string]bool{"CPU, 100,000 tags": false, "peak RSS, 100,000 tags": false}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := &report{o: options{devices: tc.devices, tags: tc.tags, interval: time.Second, commit: 50 * time.Millisecond}}
			r.CPUPercent, r.PeakRSSBytes = tc.cpu, tc.rssMiB<<20
			r.finish()
			got := map[string]bool{}
			for _, c := range r.Checks {
				got[c.Name] = c.Pass
			}
			for k, v := range tc.want {
				if p, ok := got[k]; !ok || p != v {
					t.Errorf("check %q: pass %v (present %v), want %v", k, p, ok, v)
				}
			}
			for _, k := range tc.absent {
				if _, ok := got[k]; ok {
					t.Errorf("check %q present, want it absent", k)
				}
			}
		})
	}
}
