package main

import (
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/linegate/linegate/internal/testkit"
)

// TestSoak runs linegate for LINEGATE_SOAK_DURATION (default 30m) under
// LINEGATE_SOAK=1, never in CI: Mosquitto (persistent, and a persistent
// MES session) restarts and every device drops off the network, in turn,
// every cycle. RSS and goroutines are sampled every 10 s; their slopes are
// printed, they must stay flat, and after the last drain no seq is missing.
func TestSoak(t *testing.T) {
	if os.Getenv("LINEGATE_SOAK") != "1" {
		t.Skip("soak test: set LINEGATE_SOAK=1 (and LINEGATE_SOAK_DURATION, default 30m)")
	}
	total := 30 * time.Minute
	if v := os.Getenv("LINEGATE_SOAK_DURATION"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			t.Fatalf("LINEGATE_SOAK_DURATION: %v", err)
		}
		total = d
	}
	r := newRig(t, rigOptions{devices: 4, persistence: true, devProxy: true})
	p := r.start()
	testkit.WaitFor(t, 20*time.Second, "live messages", func() bool { return r.mes.has(10) })

	type sample struct {
		at         time.Duration
		rss, gorou float64
	}
	var samples []sample
	start := time.Now()
	take := func() {
		samples = append(samples, sample{time.Since(start), r.metric("process_resident_memory_bytes"), r.metric("go_goroutines")})
	}
	const cycle = 40 * time.Second
	cycles, restarts, flaps := 0, 0, 0
	for time.Since(start) < total {
		cycleStart := time.Now()
		take()
		// A device flap: the line's network goes away for 5 s.
		r.devProxy.set(proxyDown)
		r.devProxy.cut()
		time.Sleep(5 * time.Second) // the flap's length is the scenario
		r.devProxy.set(proxyUp)
		flaps++
		time.Sleep(10 * time.Second)
		take()
		// A broker restart.
		r.broker.Stop()
		time.Sleep(3 * time.Second) // the broker's downtime is the scenario
		r.broker.Start()
		restarts++
		testkit.WaitFor(t, 30*time.Second, "MES back", r.mes.subscribed.Load)
		for time.Since(cycleStart) < cycle {
			time.Sleep(10 * time.Second)
			take()
		}
		if !p.alive() {
			t.Fatalf("linegate died in cycle %d:\n%s", cycles, tail(p.log(), 4000))
		}
		cycles++
	}
	last := r.waitDrained(120 * time.Second)
	take()

	got := map[uint64]bool{}
	dups := 0
	for _, a := range r.mes.dataArrivals() {
		if got[a.seq] {
			dups++
		}
		got[a.seq] = true
	}
	var missing []uint64
	delivered := 0
	for s := uint64(1); s <= last; s++ {
		if !got[s] {
			missing = append(missing, s)
		} else {
			delivered++
		}
	}
	if len(missing) > 0 {
		t.Errorf("%d seqs missing, first %v", len(missing), missing[:min(len(missing), 10)])
	}

	// Slopes by least squares over the samples after the first cycle (warm-up).
	warm := samples[min(len(samples)-1, 4):]
	slope := func(v func(sample) float64) float64 {
		var n, sx, sy, sxx, sxy float64
		for _, s := range warm {
			x := s.at.Minutes()
			y := v(s)
			n++
			sx, sy, sxx, sxy = sx+x, sy+y, sxx+x*x, sxy+x*y
		}
		if d := n*sxx - sx*sx; d != 0 {
			return (n*sxy - sx*sy) / d
		}
		return 0
	}
	rssSlope := slope(func(s sample) float64 { return s.rss / (1 << 20) })
	gSlope := slope(func(s sample) float64 { return s.gorou })
	third := max(len(warm)/3, 1)
	peak := func(ss []sample, v func(sample) float64) float64 {
		m := 0.0
		for _, s := range ss {
			m = max(m, v(s))
		}
		return m
	}
	g := func(s sample) float64 { return s.gorou }
	rss := func(s sample) float64 { return s.rss / (1 << 20) }
	if early, late := peak(warm[:third], g), peak(warm[len(warm)-third:], g); late > early+5 {
		t.Errorf("goroutines grew: at most %.0f in the first third, %.0f in the last", early, late)
	}
	if early, late := peak(warm[:third], rss), peak(warm[len(warm)-third:], rss); late > early*1.5+4 {
		t.Errorf("RSS grew: at most %.1f MiB in the first third, %.1f MiB in the last", early, late)
	}
	var trace string
	for _, s := range samples {
		trace += fmt.Sprintf(" %s:%.1fMiB/%.0f", s.at.Round(time.Second), s.rss/(1<<20), s.gorou)
	}
	t.Logf("soak %v: %d cycles, %d broker restarts, %d device flaps; created %d, delivered %d of them, missing %d, duplicated %d; RSS %.1f→%.1f MiB (max %.1f), slope %+.3f MiB/min; goroutines %.0f→%.0f (max %.0f), slope %+.3f/min",
		time.Since(start).Round(time.Second), cycles, restarts, flaps, last, delivered, len(missing), dups,
		warm[0].rss/(1<<20), samples[len(samples)-1].rss/(1<<20), peak(samples, rss), rssSlope,
		warm[0].gorou, samples[len(samples)-1].gorou, peak(samples, g), gSlope)
	t.Logf("samples (time:RSS/goroutines):%s", trace)
}
