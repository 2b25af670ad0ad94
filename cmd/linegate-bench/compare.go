package main

import (
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"
)

// sideRun is what one run of one agent (linegate or Telegraf) measured.
type sideRun struct {
	Agent   string  `json:"agent"` // "linegate" or "telegraf"
	Pair    int     `json:"pair"`  // 1-based
	Seconds float64 `json:"window_seconds"`

	CPUPercent      float64 `json:"cpu_percent_of_one_core"` // utime+stime over the window
	SchedCPUPercent float64 `json:"cpu_percent_schedstat"`   // the same from schedstat, in ns (threads alive at both ends)
	PeakRSSBytes    int64   `json:"peak_rss_bytes"`          // VmHWM at the end of the window
	EndRSSBytes     int64   `json:"end_rss_bytes"`           // VmRSS at the end of the window
	Threads         int     `json:"threads"`
	WakeupsPerSec   float64 `json:"wakeups_per_sec"` // context switches, all threads
	ReadingsPerSec  float64 `json:"readings_per_sec"`
	MessagesPerSec  float64 `json:"messages_per_sec"`
	IOAccounting    bool    `json:"io_accounting"`
	WriteBytes      uint64  `json:"write_bytes"`
	BytesPerReading float64 `json:"write_bytes_per_reading"`

	// fsyncs: strace -f -c over its own window (after the measuring one,
	// so that ptrace's cost is not in the CPU figure), and for linegate
	// its commit counter × 2 over the measuring window.
	StraceSeconds          float64 `json:"strace_seconds"`
	StraceFsyncs           int64   `json:"strace_fsyncs"`
	FsyncsPerSec           float64 `json:"fsyncs_per_sec_strace"`
	CommitsPerSec          float64 `json:"commits_per_sec,omitempty"`
	CommitFsyncsPerSec     float64 `json:"fsyncs_per_sec_from_commits,omitempty"`
	ExpectedReadingsPerSec float64 `json:"expected_readings_per_sec"`
	LogProblems            int     `json:"log_warnings_errors"`
	LastLogProblem         string  `json:"last_log_warning_error,omitempty"`
}

// spread3 is min, median and max.
type spread3 struct {
	Min    float64 `json:"min"`
	Median float64 `json:"median"`
	Max    float64 `json:"max"`
}

// spreadOf3 returns min/median/max of v (the median of an even count is
// the mean of the two middle values); zero for no values.
func spreadOf3(v []float64) spread3 {
	if len(v) == 0 {
		return spread3{}
	}
	s := slices.Clone(v)
	slices.Sort(s)
	m := s[len(s)/2]
	if len(s)%2 == 0 {
		m = (s[len(s)/2-1] + s[len(s)/2]) / 2
	}
	return spread3{s[0], m, s[len(s)-1]}
}

// sideLoad is one load's runs and what follows from them.
type sideLoad struct {
	Name     string    `json:"name"` // e.g. "10x20"
	Devices  int       `json:"devices"`
	Tags     int       `json:"tags_per_device"`
	Interval string    `json:"interval"`
	Runs     []sideRun `json:"runs"`

	CPURatio spread3 `json:"cpu_ratio_linegate_over_telegraf"` // over the pairs
	RSSRatio spread3 `json:"rss_ratio_linegate_over_telegraf"`
	// Absolute figures, over each agent's runs.
	Linegate sideSummary `json:"linegate"`
	Telegraf sideSummary `json:"telegraf"`
	Checks   []check     `json:"checks"`
}

type sideSummary struct {
	CPUPercent      spread3 `json:"cpu_percent"`
	SchedCPUPercent spread3 `json:"cpu_percent_schedstat"`
	PeakRSSMiB      spread3 `json:"peak_rss_mib"`
	EndRSSMiB       spread3 `json:"end_rss_mib"`
	WakeupsPerSec   spread3 `json:"wakeups_per_sec"`
	FsyncsPerSec    spread3 `json:"fsyncs_per_sec_strace"`
	CommitFsyncs    spread3 `json:"fsyncs_per_sec_from_commits"`
	BytesPerReading spread3 `json:"write_bytes_per_reading"`
	ReadingsPerSec  spread3 `json:"readings_per_sec"`
	IOAccounting    bool    `json:"io_accounting"`
}

func summarize(runs []sideRun, agent string) sideSummary {
	var s sideSummary
	var cpu, scpu, hwm, rss, wk, fs, cf, bpr, rps []float64
	s.IOAccounting = true
	for _, r := range runs {
		if r.Agent != agent {
			continue
		}
		cpu = append(cpu, r.CPUPercent)
		scpu = append(scpu, r.SchedCPUPercent)
		hwm = append(hwm, float64(r.PeakRSSBytes)/(1<<20))
		rss = append(rss, float64(r.EndRSSBytes)/(1<<20))
		wk = append(wk, r.WakeupsPerSec)
		fs = append(fs, r.FsyncsPerSec)
		cf = append(cf, r.CommitFsyncsPerSec)
		bpr = append(bpr, r.BytesPerReading)
		rps = append(rps, r.ReadingsPerSec)
		s.IOAccounting = s.IOAccounting && r.IOAccounting
	}
	s.SchedCPUPercent = spreadOf3(scpu)
	s.CPUPercent, s.PeakRSSMiB, s.EndRSSMiB = spreadOf3(cpu), spreadOf3(hwm), spreadOf3(rss)
	s.WakeupsPerSec, s.FsyncsPerSec, s.CommitFsyncs = spreadOf3(wk), spreadOf3(fs), spreadOf3(cf)
	s.BytesPerReading, s.ReadingsPerSec = spreadOf3(bpr), spreadOf3(rps)
	return s
}

// pairRatios returns linegate ÷ Telegraf of CPU and of peak RSS for every
// pair that has both runs: each ratio from two runs next to each other,
// on the same sims and broker, which is what the noise of a shared machine
// spares most.
func pairRatios(runs []sideRun) (cpu, rss []float64) {
	byPair := map[int][2]*sideRun{}
	for i := range runs {
		r := &runs[i]
		p := byPair[r.Pair]
		switch r.Agent {
		case "linegate":
			p[0] = r
		case "telegraf":
			p[1] = r
		}
		byPair[r.Pair] = p
	}
	keys := make([]int, 0, len(byPair))
	for k := range byPair {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		p := byPair[k]
		if p[0] == nil || p[1] == nil {
			continue
		}
		if p[1].CPUPercent > 0 {
			cpu = append(cpu, p[0].CPUPercent/p[1].CPUPercent)
		}
		if p[1].PeakRSSBytes > 0 {
			rss = append(rss, float64(p[0].PeakRSSBytes)/float64(p[1].PeakRSSBytes))
		}
	}
	return cpu, rss
}

// sideTarget is one of the side-by-side targets for a load: the
// median over the pairs of linegate ÷ Telegraf CPU at most maxCPURatio,
// of peak RSS at most maxRSSRatio, and linegate's own median CPU at most
// maxCPUPercent (0: no absolute target).
type sideTarget struct {
	maxCPURatio, maxRSSRatio, maxCPUPercent float64
}

// sideTargets are the footprint targets beside Telegraf, by load name.
var sideTargets = map[string]sideTarget{
	"1x1":     {maxCPURatio: 1, maxRSSRatio: 1, maxCPUPercent: 0.1},
	"10x20":   {maxCPURatio: 0.5, maxRSSRatio: 1},
	"100x100": {maxCPURatio: 0.33, maxRSSRatio: 1},
}

// finish computes the ratios, the summaries and the checks of a load.
func (l *sideLoad) finish() {
	cpu, rss := pairRatios(l.Runs)
	l.CPURatio, l.RSSRatio = spreadOf3(cpu), spreadOf3(rss)
	l.Linegate, l.Telegraf = summarize(l.Runs, "linegate"), summarize(l.Runs, "telegraf")
	l.Checks = nil
	t, ok := sideTargets[l.Name]
	if !ok || len(cpu) == 0 {
		return
	}
	add := func(name, target, value string, pass bool) {
		l.Checks = append(l.Checks, check{Name: l.Name + " " + name, Target: target, Value: value, Pass: pass})
	}
	if t.maxCPUPercent > 0 {
		add("linegate CPU", fmt.Sprintf("≤ %.2g %% of one core (median of the runs)", t.maxCPUPercent),
			fmt.Sprintf("%.3f %%", l.Linegate.CPUPercent.Median), l.Linegate.CPUPercent.Median <= t.maxCPUPercent)
	}
	add("CPU ÷ Telegraf", fmt.Sprintf("≤ %.2g (median of the pairs)", t.maxCPURatio),
		fmt.Sprintf("%.2f (%.2f–%.2f)", l.CPURatio.Median, l.CPURatio.Min, l.CPURatio.Max), l.CPURatio.Median <= t.maxCPURatio)
	add("RSS ÷ Telegraf", fmt.Sprintf("≤ %.2g (median of the pairs)", t.maxRSSRatio),
		fmt.Sprintf("%.2f (%.2f–%.2f)", l.RSSRatio.Median, l.RSSRatio.Min, l.RSSRatio.Max), l.RSSRatio.Median <= t.maxRSSRatio)
}

// sideReport is the side-by-side run, printed and written as JSON.
type sideReport struct {
	When    string     `json:"when"`
	Machine string     `json:"machine"`
	Command string     `json:"command"`
	Config  sideConfig `json:"config"`
	Loads   []sideLoad `json:"loads"`
	Notes   []string   `json:"notes"`
}

type sideConfig struct {
	Pairs        int    `json:"pairs"`
	Warmup       string `json:"warmup"`
	Window       string `json:"window"`
	FsyncWindow  string `json:"fsync_window"`
	Linegate     string `json:"linegate"`
	Telegraf     string `json:"telegraf"`
	UnitsPerSim  int    `json:"units_per_sim"`
	CommitConfig string `json:"commit_interval"`
}

func (r *sideReport) print(w io.Writer) {
	fmt.Fprintf(w, "\nlinegate vs Telegraf, side by side — %s\n", r.Machine)
	fmt.Fprintf(w, "%d pairs (A B A B) per load, warm-up %s, window %s, fsync window %s (strace -f -c), commit_interval %s\n",
		r.Config.Pairs, r.Config.Warmup, r.Config.Window, r.Config.FsyncWindow, r.Config.CommitConfig)
	fmt.Fprintln(w, "\nlinegate ÷ Telegraf, min / median / max over the pairs")
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "load\tCPU ratio\tpeak RSS ratio")
	for _, l := range r.Loads {
		fmt.Fprintf(tw, "%s\t%s\t%s\n", loadTitle(l), fmtSpread(l.CPURatio, "%.2f"), fmtSpread(l.RSSRatio, "%.2f"))
	}
	tw.Flush()
	fmt.Fprintln(w, "\nabsolute figures, median (min–max) over each agent's runs")
	tw = tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "load\tagent\treadings/s\tCPU % of one core\tCPU % (schedstat)\tpeak RSS MiB\tend RSS MiB\twake-ups/s\tfsyncs/s (strace)\tfsyncs/s (commits × 2)\tdisk bytes/reading")
	for _, l := range r.Loads {
		for _, a := range []struct {
			name string
			s    sideSummary
		}{{"linegate", l.Linegate}, {"telegraf", l.Telegraf}} {
			cf := "-"
			if a.name == "linegate" {
				cf = fmtMedRange(a.s.CommitFsyncs, "%.1f")
			}
			bpr := fmtMedRange(a.s.BytesPerReading, "%.0f")
			if !a.s.IOAccounting {
				bpr = "n/a (no /proc/PID/io)"
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", loadTitle(l), a.name,
				fmtMedRange(a.s.ReadingsPerSec, "%.0f"), fmtMedRange(a.s.CPUPercent, "%.3f"), fmtMedRange(a.s.SchedCPUPercent, "%.3f"),
				fmtMedRange(a.s.PeakRSSMiB, "%.1f"), fmtMedRange(a.s.EndRSSMiB, "%.1f"),
				fmtMedRange(a.s.WakeupsPerSec, "%.0f"), fmtMedRange(a.s.FsyncsPerSec, "%.1f"), cf, bpr)
		}
	}
	tw.Flush()
	var checks []check
	for _, l := range r.Loads {
		checks = append(checks, l.Checks...)
	}
	if len(checks) > 0 {
		fmt.Fprintln(w, "\ntargets (footprint beside Telegraf)")
		tw = tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
		for _, c := range checks {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", passFail(c.Pass), c.Name, c.Target, c.Value)
		}
		tw.Flush()
	}
	for _, l := range r.Loads {
		for _, run := range l.Runs {
			if run.ReadingsPerSec < 0.98*run.ExpectedReadingsPerSec {
				fmt.Fprintf(w, "note: %s, %s pair %d: %.0f readings/s of %.0f polled\n", l.Name, run.Agent, run.Pair, run.ReadingsPerSec, run.ExpectedReadingsPerSec)
			}
			if run.LogProblems > 0 {
				fmt.Fprintf(w, "note: %s, %s pair %d: %d warnings/errors logged, the last: %s\n", l.Name, run.Agent, run.Pair, run.LogProblems, run.LastLogProblem)
			}
		}
	}
	for _, n := range r.Notes {
		fmt.Fprintln(w, "note:", n)
	}
}

func loadTitle(l sideLoad) string {
	return fmt.Sprintf("%d × %d", l.Devices, l.Tags)
}

func passFail(ok bool) string {
	if ok {
		return "PASS"
	}
	return "FAIL"
}

// fmtSpread prints min / median / max.
func fmtSpread(s spread3, f string) string {
	return strings.Join([]string{fmt.Sprintf(f, s.Min), fmt.Sprintf(f, s.Median), fmt.Sprintf(f, s.Max)}, " / ")
}

// fmtMedRange prints the median and, when they differ, the range.
func fmtMedRange(s spread3, f string) string {
	m := fmt.Sprintf(f, s.Median)
	lo, hi := fmt.Sprintf(f, s.Min), fmt.Sprintf(f, s.Max)
	if lo == hi {
		return m
	}
	return fmt.Sprintf("%s (%s–%s)", m, lo, hi)
}
