package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"runtime"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
)

type rateResult struct {
	Interval       string  `json:"interval"`
	TagsPerSec     float64 `json:"tags_per_sec"`
	ReadingsPerSec float64 `json:"readings_per_sec"`
	MessagesPerSec float64 `json:"messages_per_sec"`
	BacklogSlope   float64 `json:"backlog_slope_msgs_per_sec"`
	BacklogMax     int64   `json:"backlog_max"`
	BacklogEnd     int64   `json:"backlog_end"`
	Overruns       uint64  `json:"overruns"`
	CPUPercent     float64 `json:"cpu_percent_of_one_core"`
	PeakRSSBytes   int64   `json:"peak_rss_bytes"`
	Missing        int64   `json:"missing"`
	Duplicates     int64   `json:"duplicates"`
}

type goBench struct {
	Name    string             `json:"name"`
	Metrics map[string]float64 `json:"metrics"`
}

type check struct {
	Name   string `json:"name"`
	Target string `json:"target"`
	Value  string `json:"value"`
	Pass   bool   `json:"pass"`
}

// report is everything a run measured; it is printed and written as JSON.
type report struct {
	When    time.Time `json:"when"`
	Machine string    `json:"machine"`
	Command string    `json:"command"`
	Config  struct {
		Devices, Tags, UnitsPerSim, MaxInflight int
		Interval, Duration, Outage, Commit      string
	} `json:"config"`

	BinaryBytes        int64       `json:"binary_bytes"`
	StartupMs          float64     `json:"startup_ms"`
	ReadsPerCycle      int         `json:"modbus_reads_per_cycle"`
	ReadingsPerSec     float64     `json:"readings_per_sec"`
	MessagesPerSec     float64     `json:"messages_per_sec"`
	ReadingsPerMessage float64     `json:"readings_per_message"`
	CPUSeconds         float64     `json:"cpu_seconds"`
	CPUPercent         float64     `json:"cpu_percent_of_one_core"`
	CPUSecPerMReadings float64     `json:"cpu_seconds_per_million_readings"`
	PeakRSSBytes       int64       `json:"peak_rss_bytes"`
	SteadyPeakRSSBytes int64       `json:"steady_peak_rss_bytes"` // VmHWM before the outage
	LatencyP50Ms       float64     `json:"latency_p50_ms"`
	LatencyP99Ms       float64     `json:"latency_p99_ms"`
	LatencySamples     int         `json:"latency_samples"`
	LatencyMaxMs       float64     `json:"latency_max_ms"`
	PollLatencyP50Ms   float64     `json:"latency_poll_p50_ms"` // sample → message built
	PollLatencyP99Ms   float64     `json:"latency_poll_p99_ms"`
	PipeLatencyP50Ms   float64     `json:"latency_pipeline_p50_ms"` // message built → subscriber
	PipeLatencyP99Ms   float64     `json:"latency_pipeline_p99_ms"`
	Commits            commitTimes `json:"steady_commits"`
	SteadyMaxBacklog   int64       `json:"steady_max_backlog"`
	Overruns           uint64      `json:"overruns"`
	DevicesUp          int         `json:"devices_up"`

	OutageBacklog       int64   `json:"outage_backlog_msgs"`
	ReconnectMs         float64 `json:"reconnect_ms"`
	DrainMessages       int64   `json:"drain_messages"`
	DrainSeconds        float64 `json:"drain_seconds"`
	DrainMsgsPerSec     float64 `json:"drain_msgs_per_sec"`
	DrainReadingsPerSec float64 `json:"drain_readings_per_sec"`

	LastSeq      uint64 `json:"last_seq"`
	Missing      int64  `json:"missing"`
	Duplicates   int64  `json:"duplicates"`
	FirstMissing uint64 `json:"first_missing,omitempty"`

	Rate   *rateResult  `json:"rate,omitempty"`
	Limit  *limitResult `json:"limit,omitempty"`
	Ratios struct {
		ReadingsPerSec float64 `json:"readings_per_sec"`
		CPU            float64 `json:"cpu_per_reading"`
		Drain          float64 `json:"drain"`
		RateVsFlatOut  float64 `json:"rate_readings_vs_flat_out"`
	} `json:"ratios_linegate_over_limit"`
	Checks  []check   `json:"checks"`
	GoBench []goBench `json:"go_benchmarks,omitempty"`
	o       options
}

func newReport(o options) *report {
	r := &report{When: time.Now().UTC(), o: o, Command: strings.Join(os.Args, " ")}
	r.Machine = machine()
	r.Config.Devices, r.Config.Tags, r.Config.UnitsPerSim, r.Config.MaxInflight = o.devices, o.tags, o.perSim, o.maxInflight
	r.Config.Interval, r.Config.Duration, r.Config.Outage, r.Config.Commit = o.interval.String(), o.duration.String(), o.outage.String(), o.commit.String()
	if o.gobench != "" {
		r.GoBench, _ = parseGoBench(o.gobench)
	}
	return r
}

// machine names the CPU model and core count from /proc/cpuinfo.
func machine() string {
	model := runtime.GOARCH
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for l := range strings.SplitSeq(string(b), "\n") {
			if v, ok := strings.CutPrefix(l, "model name"); ok {
				model = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(v), ":"))
				break
			}
		}
	}
	return fmt.Sprintf("%s, %d cores, %s/%s, %s", model, runtime.NumCPU(), runtime.GOOS, runtime.GOARCH, runtime.Version())
}

// finish computes the ratios and the checks against the load targets
// (10,000 tags at 1 s: CPU, RSS, latency, drain) and the footprint targets
// (10,000 tags in 30 MiB; 100,000 tags in 25 % of one core and 100 MiB).
func (r *report) finish() {
	if l := r.Limit; l != nil {
		if l.PacedSeconds > 0 && l.PacedReadings > 0 {
			r.Ratios.ReadingsPerSec = r.ReadingsPerSec / (float64(l.PacedReadings) / l.PacedSeconds)
			r.Ratios.CPU = r.CPUSecPerMReadings / (l.PacedCPU / float64(l.PacedReadings) * 1e6)
		}
		if l.DrainSeconds > 0 && r.DrainReadingsPerSec > 0 {
			r.Ratios.Drain = r.DrainReadingsPerSec / (float64(l.DrainReadings) / l.DrainSeconds)
		}
		if r.Rate != nil && l.FlatSeconds > 0 && l.FlatReadings > 0 {
			r.Ratios.RateVsFlatOut = r.Rate.ReadingsPerSec / (float64(l.FlatReadings) / l.FlatSeconds)
		}
	}
	tenK := r.o.devices*r.o.tags == 10000 && r.o.interval == time.Second
	note := ""
	if !tenK {
		note = " (target is for 100×100 at 1s)"
	}
	add := func(name, target, value string, pass bool) {
		r.Checks = append(r.Checks, check{Name: name, Target: target, Value: value + note, Pass: pass})
	}
	rss := fmt.Sprintf("%.1f MiB", float64(r.PeakRSSBytes)/(1<<20))
	if r.o.devices*r.o.tags == 100000 && r.o.interval == time.Second {
		// The footprint at 100,000 tags (400 × 250 at 1 s, make
		// bench-100k) in place of the load targets for 10,000.
		r.Checks = append(r.Checks,
			check{Name: "CPU, 100,000 tags", Target: "≤ 25% of one core (footprint)", Value: fmt.Sprintf("%.2f%%", r.CPUPercent), Pass: r.CPUPercent <= 25},
			check{Name: "peak RSS, 100,000 tags", Target: "≤ 100 MiB (footprint)", Value: rss, Pass: r.PeakRSSBytes <= 100<<20})
	} else {
		add("CPU", "≤ 5% of one core", fmt.Sprintf("%.2f%%", r.CPUPercent), r.CPUPercent <= 5)
		add("peak RSS", "≤ 40 MiB", rss, r.PeakRSSBytes <= 40<<20)
		add("peak RSS, 10,000 tags", "≤ 30 MiB (footprint)", rss, r.PeakRSSBytes <= 30<<20)
	}
	lim := float64(r.o.commit.Milliseconds()) + 30
	add("latency p99", fmt.Sprintf("≤ commit_interval + 30 ms = %.0f ms", lim), fmt.Sprintf("%.1f ms", r.LatencyP99Ms), r.LatencySamples > 0 && r.LatencyP99Ms <= lim)
	if r.o.outage > 0 {
		add("drain", "≥ 100,000 readings/s", fmt.Sprintf("%.0f readings/s", r.DrainReadingsPerSec), r.DrainReadingsPerSec >= 100000)
		if r.Limit != nil {
			add("drain ÷ limit", "≥ 0.7", fmt.Sprintf("%.2f", r.Ratios.Drain), r.Ratios.Drain >= 0.7)
		}
	}
	if rt := r.Rate; rt != nil {
		// Not growing: over the window the backlog gains less than one
		// second of messages, and no poll was skipped.
		grows := rt.BacklogSlope*r.o.rateDuration.Seconds() > rt.MessagesPerSec || rt.Overruns > 0
		add("backlog at "+fmt.Sprintf("%.0f tags/s", rt.TagsPerSec), "does not grow (100,000 tags/s)",
			fmt.Sprintf("slope %+.1f msgs/s, %d overruns", rt.BacklogSlope, rt.Overruns), !grows && rt.TagsPerSec >= 100000)
	}
	add("delivery", "every seq arrives", fmt.Sprintf("%d missing, %d duplicates", r.Missing, r.Duplicates), r.Missing == 0)
}

func (r *report) write(path string) error { return writeJSON(path, r) }

func writeJSON(path string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}

func (r *report) print(w io.Writer) {
	fmt.Fprintf(w, "\nlinegate end-to-end bench — %s\n", r.Machine)
	fmt.Fprintf(w, "%d devices × %d tags every %s (%d units per sim process), commit_interval %s, max_inflight %d\n\n",
		r.o.devices, r.o.tags, r.o.interval, r.o.perSim, r.o.commit, r.o.maxInflight)
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	row := func(k, v string) { fmt.Fprintf(tw, "%s\t%s\n", k, v) }
	mib := func(b int64) string { return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20)) }
	row("binary size", mib(r.BinaryBytes))
	row("startup (exec → first message)", fmt.Sprintf("%.0f ms", r.StartupMs))
	row("modbus reads per cycle", fmt.Sprintf("%d (%.1f per device)", r.ReadsPerCycle, float64(r.ReadsPerCycle)/float64(max(1, r.o.devices))))
	row("sustained readings/s", fmt.Sprintf("%.0f (%.1f msgs/s, %.1f readings/msg)", r.ReadingsPerSec, r.MessagesPerSec, r.ReadingsPerMessage))
	row("CPU", fmt.Sprintf("%.2f%% of one core, %.2f s per million readings", r.CPUPercent, r.CPUSecPerMReadings))
	row("peak RSS (VmHWM)", fmt.Sprintf("%s (%s before the outage: start-up and steady run)", mib(r.PeakRSSBytes), mib(r.SteadyPeakRSSBytes)))
	row("latency sample → subscriber", fmt.Sprintf("p50 %.1f ms, p99 %.1f ms, max %.1f ms (%d msgs)", r.LatencyP50Ms, r.LatencyP99Ms, r.LatencyMaxMs, r.LatencySamples))
	row("  sample → message built", fmt.Sprintf("p50 %.1f ms, p99 %.1f ms (a device's reads: readings are stamped when their request went out)", r.PollLatencyP50Ms, r.PollLatencyP99Ms))
	row("  message built → subscriber", fmt.Sprintf("p50 %.1f ms, p99 %.1f ms (commit, uplink, broker)", r.PipeLatencyP50Ms, r.PipeLatencyP99Ms))
	row("group commits (steady run)", fmt.Sprintf("%d, %d over 32 ms, %d over 64 ms (fsync included)", r.Commits.Count, r.Commits.Over32ms, r.Commits.Over64ms))
	row("overruns / devices up", fmt.Sprintf("%d / %d", r.Overruns, r.DevicesUp))
	if r.o.outage > 0 {
		row("outage", fmt.Sprintf("%s: %d msgs buffered, reconnect %.1f s after restart", r.o.outage, r.OutageBacklog, r.ReconnectMs/1000))
		row("drain", fmt.Sprintf("%.0f msgs/s = %.0f readings/s (%d msgs in %.2f s)", r.DrainMsgsPerSec, r.DrainReadingsPerSec, r.DrainMessages, r.DrainSeconds))
	}
	row("delivery (seq 1.."+strconv.FormatUint(r.LastSeq, 10)+")", fmt.Sprintf("%d missing, %d duplicates", r.Missing, r.Duplicates))
	if rt := r.Rate; rt != nil {
		row("rate run", fmt.Sprintf("every %s = %.0f tags/s: %.0f readings/s, CPU %.1f%%, RSS %s", rt.Interval, rt.TagsPerSec, rt.ReadingsPerSec, rt.CPUPercent, mib(rt.PeakRSSBytes)))
		row("  backlog", fmt.Sprintf("slope %+.2f msgs/s, max %d, end %d; %d overruns; %d missing, %d duplicates", rt.BacklogSlope, rt.BacklogMax, rt.BacklogEnd, rt.Overruns, rt.Missing, rt.Duplicates))
	}
	if l := r.Limit; l != nil {
		ps := float64(l.PacedReadings) / l.PacedSeconds
		row("limit, same work", fmt.Sprintf("%.0f readings/s, %.2f s CPU per million readings", ps, l.PacedCPU/float64(max(1, l.PacedReadings))*1e6))
		row("limit, flat out", fmt.Sprintf("%.0f readings/s (poll + publish, %.0f%% CPU)", float64(l.FlatReadings)/l.FlatSeconds, 100*l.FlatCPU/l.FlatSeconds))
		row("limit, drain", fmt.Sprintf("%.0f msgs/s = %.0f readings/s", float64(l.DrainMsgs)/l.DrainSeconds, float64(l.DrainReadings)/l.DrainSeconds))
		row("linegate ÷ limit", fmt.Sprintf("readings/s %.2f, CPU per reading %.1f×, drain %.2f, rate run vs flat out %.2f",
			r.Ratios.ReadingsPerSec, r.Ratios.CPU, r.Ratios.Drain, r.Ratios.RateVsFlatOut))
	}
	tw.Flush()
	if len(r.Checks) > 0 {
		fmt.Fprintln(w, "\ntargets (load; footprint where named)")
		tw = tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
		for _, c := range r.Checks {
			res := "FAIL"
			if c.Pass {
				res = "PASS"
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", res, c.Name, c.Target, c.Value)
		}
		tw.Flush()
	}
}

// parseGoBench reads `go test -bench -benchmem` output: name, then
// value-unit pairs.
func parseGoBench(path string) ([]goBench, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []goBench
	pkg := ""
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fs := strings.Fields(sc.Text())
		if len(fs) >= 2 && fs[0] == "pkg:" {
			pkg = fs[1]
		}
		if len(fs) < 4 || !strings.HasPrefix(fs[0], "Benchmark") {
			continue
		}
		b := goBench{Name: pkg + "." + fs[0], Metrics: map[string]float64{}}
		for i := 2; i+1 < len(fs); i += 2 {
			if v, err := strconv.ParseFloat(fs[i], 64); err == nil {
				b.Metrics[fs[i+1]] = v
			}
		}
		out = append(out, b)
	}
	return out, sc.Err()
}
