package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// The side-by-side run (--telegraf BIN, make bench-telegraf): for each
// load, the same simulated devices and the same Mosquitto, linegate and
// Telegraf in turn, A B A B, each alone, measured from /proc.

// loadSpec is one load: devices × tags per device.
type loadSpec struct{ devices, tags int }

func (l loadSpec) name() string { return fmt.Sprintf("%dx%d", l.devices, l.tags) }

// parseLoads reads "1x1,10x20,100x100".
func parseLoads(s string) ([]loadSpec, error) {
	var out []loadSpec
	for f := range strings.SplitSeq(s, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		ds, ts, ok := strings.Cut(f, "x")
		d, err1 := strconv.Atoi(ds)
		t, err2 := strconv.Atoi(ts)
		if !ok || err1 != nil || err2 != nil || d < 1 || t < 1 {
			return nil, fmt.Errorf("--loads %q: want DEVICESxTAGS, e.g. 10x20", f)
		}
		out = append(out, loadSpec{d, t})
	}
	if len(out) == 0 {
		return nil, errors.New("--loads: no load")
	}
	return out, nil
}

func runSideBySide(ctx context.Context, o options) (*sideReport, error) {
	loads, err := parseLoads(o.loads)
	if err != nil {
		return nil, err
	}
	if o.pairs < 1 {
		return nil, fmt.Errorf("--pairs %d: want ≥ 1", o.pairs)
	}
	if _, err := os.Stat(o.telegraf); err != nil {
		return nil, fmt.Errorf("telegraf binary: %w (make bench-telegraf builds it into bin/)", err)
	}
	if o.fsyncWindow > 0 {
		if _, err := exec.LookPath("strace"); err != nil {
			return nil, fmt.Errorf("strace counts the fsyncs (--fsync-window 0 skips): %w", err)
		}
	}
	for _, l := range loads {
		if _, err := uint16Tags(l.tags); err != nil {
			return nil, fmt.Errorf("load %s: %w", l.name(), err)
		}
	}
	r := &sideReport{When: time.Now().UTC().Format(time.RFC3339), Machine: machine(), Command: strings.Join(os.Args, " ")}
	r.Config = sideConfig{Pairs: o.pairs, Warmup: o.warmup.String(), Window: o.window.String(), FsyncWindow: o.fsyncWindow.String(),
		Telegraf: o.telegraf, UnitsPerSim: o.perSim, CommitConfig: "default"}
	if _, err := os.Stat("/proc/self/io"); err != nil {
		r.Notes = append(r.Notes, "no /proc/PID/io (task I/O accounting off): disk bytes per reading not measured")
	}
	r.Notes = append(r.Notes, "fsyncs/s (strace): strace -f -c -e trace=fsync,fdatasync -p PID over the fsync window, after the measuring window; fsyncs/s (commits × 2): linegate's linegate_buffer_commit_seconds_count over the measuring window, two fdatasyncs per bbolt commit")
	for _, l := range loads {
		sl, err := sideLoadRun(ctx, o, l)
		if sl != nil {
			sl.finish()
			r.Loads = append(r.Loads, *sl)
		}
		if err != nil {
			return r, fmt.Errorf("load %s: %w", l.name(), err)
		}
	}
	if len(r.Loads) > 0 {
		r.Config.Linegate = o.linegate
	}
	return r, nil
}

func sideLoadRun(ctx context.Context, o options, l loadSpec) (*sideLoad, error) {
	step := func(s string) { fmt.Fprintf(os.Stderr, "bench: %s: %s\n", l.name(), s) }
	tags, err := uint16Tags(l.tags)
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "linegate-bench-sbs-")
	if err != nil {
		return nil, err
	}
	lo := o
	lo.devices, lo.tags = l.devices, l.tags
	lo.commit, lo.maxInflight = 0, 0 // linegate's defaults
	g := &rig{o: lo, dir: dir, tags: tags}
	defer g.close()
	if err := g.build(); err != nil {
		return nil, err
	}
	step(fmt.Sprintf("starting %d sim process(es), broker, subscribers", (l.devices+o.perSim-1)/o.perSim))
	if err := g.startPeers(ctx); err != nil {
		return nil, err
	}
	fc, err := newFieldCounter(g.brk.addr)
	if err != nil {
		return nil, err
	}
	defer fc.close()
	sl := &sideLoad{Name: l.name(), Devices: l.devices, Tags: l.tags, Interval: o.interval.String()}
	for p := 1; p <= o.pairs; p++ {
		step(fmt.Sprintf("pair %d/%d: linegate", p, o.pairs))
		lr, err := g.sideLinegate(ctx, p)
		if err != nil {
			return sl, fmt.Errorf("linegate, pair %d: %w", p, err)
		}
		sl.Runs = append(sl.Runs, lr)
		step(fmt.Sprintf("pair %d/%d: telegraf", p, o.pairs))
		tr, err := g.sideTelegraf(ctx, fc, p)
		if err != nil {
			return sl, fmt.Errorf("telegraf, pair %d: %w", p, err)
		}
		sl.Runs = append(sl.Runs, tr)
		fmt.Fprintf(os.Stderr, "bench: %s: pair %d: CPU %.3f %% vs %.3f %% (%.2f), peak RSS %.1f vs %.1f MiB, readings/s %.0f vs %.0f\n",
			l.name(), p, lr.CPUPercent, tr.CPUPercent, lr.CPUPercent/max(tr.CPUPercent, 1e-9),
			float64(lr.PeakRSSBytes)/(1<<20), float64(tr.PeakRSSBytes)/(1<<20), lr.ReadingsPerSec, tr.ReadingsPerSec)
	}
	return sl, nil
}

// delivered reports messages and readings the subscriber counted so far.
type delivered func() (msgs, readings int64, err error)

func (g *rig) sideLinegate(ctx context.Context, pair int) (sideRun, error) {
	g.sub.reset() // a fresh buffer starts at seq 1
	a, err := g.startAgent(ctx, fmt.Sprintf("linegate-%d", pair), g.o.interval)
	if err != nil {
		return sideRun{}, err
	}
	defer a.p.stop(15 * time.Second)
	count := func() (int64, int64, error) {
		c := g.sub.counts()
		return c.msgs, c.readings, nil
	}
	commits := func() (int64, error) {
		c, err := fetchCommitTimes(a.httpAddr)
		return c.Count, err
	}
	run, err := g.measureSide(ctx, "linegate", pair, a.p, count, commits)
	if err != nil {
		return run, err
	}
	err = a.p.stop(15 * time.Second)
	// Read only once stopped: the process writes its log until it exits.
	run.LogProblems, run.LastLogProblem = logProblems("linegate", a.p.log.String())
	return run, err
}

func (g *rig) sideTelegraf(ctx context.Context, fc *fieldCounter, pair int) (sideRun, error) {
	dir := filepath.Join(g.dir, fmt.Sprintf("telegraf-%d", pair))
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return sideRun{}, err
	}
	p, err := startTelegraf(g.o.telegraf, dir, telegrafSpec{broker: g.brk.addr, interval: g.o.interval, devices: g.devs, tags: g.tags})
	if err != nil {
		return sideRun{}, err
	}
	defer p.stop(15 * time.Second)
	count := func() (int64, int64, error) {
		m, n, bad, err := fc.counts()
		if bad > 0 {
			return m, n, fmt.Errorf("%d Telegraf payloads did not parse, the last: %v", bad, err)
		}
		return m, n, nil
	}
	run, err := g.measureSide(ctx, "telegraf", pair, p, count, nil)
	if err != nil {
		return run, err
	}
	err = p.stop(15 * time.Second)
	run.LogProblems, run.LastLogProblem = logProblems("telegraf", p.log.String())
	return run, err
}

// logProblems counts the warnings and errors an agent logged (linegate's
// slog text, Telegraf's "W!"/"E!" lines; Telegraf's notice at every start
// about its strict environment handling is not a problem of the run) and
// returns the last one: a skipped gather or a failed read explains a
// shortfall of readings.
func logProblems(agent, log string) (int, string) {
	n, last := 0, ""
	for l := range strings.SplitSeq(log, "\n") {
		var bad bool
		switch agent {
		case "telegraf":
			bad = (strings.Contains(l, " W! ") || strings.Contains(l, " E! ")) && !strings.Contains(l, "Strict environment variable handling")
		default:
			bad = strings.Contains(l, "level=WARN") || strings.Contains(l, "level=ERROR")
		}
		if bad {
			n++
			last = strings.TrimSpace(l)
		}
	}
	return n, last
}

// measureSide waits for p's first delivered message, lets it warm up,
// measures the window from /proc and at the subscriber, then counts the
// fsyncs with strace over a window of its own.
func (g *rig) measureSide(ctx context.Context, agent string, pair int, p *proc, count delivered, commits func() (int64, error)) (sideRun, error) {
	run := sideRun{Agent: agent, Pair: pair, ExpectedReadingsPerSec: float64(g.o.devices*g.o.tags) / g.o.interval.Seconds()}
	m0, _, err := count()
	if err != nil {
		return run, err
	}
	if err := waitFor(ctx, 60*time.Second, agent+": first message at the broker", func() bool {
		m, _, _ := count()
		return m > m0 || p.exited()
	}); err != nil {
		return run, fmt.Errorf("%w\n%s", err, tail(p.log.String()))
	}
	if p.exited() {
		return run, fmt.Errorf("%s exited: %v\n%s", agent, p.err, tail(p.log.String()))
	}
	if err := sleepCtx(ctx, g.o.warmup); err != nil {
		return run, err
	}
	pid := p.pid()
	var com0, com1 int64
	if commits != nil {
		if com0, err = commits(); err != nil {
			return run, err
		}
	}
	s0, err := sampleProc(pid)
	if err != nil {
		return run, err
	}
	_, n0, err := count()
	if err != nil {
		return run, err
	}
	m0, _, _ = count()
	t0 := time.Now()
	if err := sleepCtx(ctx, g.o.window); err != nil {
		return run, err
	}
	s1, err := sampleProc(pid)
	if err != nil {
		return run, fmt.Errorf("%s: %w (exited? %v)\n%s", agent, err, p.exited(), tail(p.log.String()))
	}
	m1, n1, err := count()
	if err != nil {
		return run, err
	}
	secs := time.Since(t0).Seconds()
	if commits != nil {
		if com1, err = commits(); err != nil {
			return run, err
		}
		run.CommitsPerSec = float64(com1-com0) / secs
		run.CommitFsyncsPerSec = 2 * run.CommitsPerSec
	}
	run.Seconds = secs
	run.CPUPercent = 100 * float64(s1.cpuTicks-s0.cpuTicks) / clockTick / secs
	if s1.schedNs > s0.schedNs {
		run.SchedCPUPercent = 100 * float64(s1.schedNs-s0.schedNs) / 1e9 / secs
	}
	run.PeakRSSBytes, run.EndRSSBytes, run.Threads = s1.hwm, s1.rss, s1.threads
	if s1.ctxt > s0.ctxt { // a thread that exited takes its count along
		run.WakeupsPerSec = float64(s1.ctxt-s0.ctxt) / secs
	}
	run.ReadingsPerSec, run.MessagesPerSec = float64(n1-n0)/secs, float64(m1-m0)/secs
	if n1 == n0 {
		return run, fmt.Errorf("%s delivered no reading in %v: not a figure\n%s", agent, g.o.window, tail(p.log.String()))
	}
	run.IOAccounting = s0.ioOK && s1.ioOK
	if run.IOAccounting {
		run.WriteBytes = s1.writeBytes - s0.writeBytes
		run.BytesPerReading = float64(run.WriteBytes) / float64(n1-n0)
	}
	if g.o.fsyncWindow > 0 {
		n, secs, err := straceFsyncs(ctx, pid, g.o.fsyncWindow)
		if err != nil {
			return run, fmt.Errorf("%s: %w", agent, err)
		}
		run.StraceFsyncs, run.StraceSeconds, run.FsyncsPerSec = n, secs, float64(n)/secs
	}
	if p.exited() {
		return run, fmt.Errorf("%s exited during the run: %v\n%s", agent, p.err, tail(p.log.String()))
	}
	return run, nil
}

// straceFsyncs counts pid's fsync and fdatasync calls, all threads, for
// window: strace -c prints its table when interrupted.
func straceFsyncs(ctx context.Context, pid int, window time.Duration) (int64, float64, error) {
	cmd := exec.Command("strace", "-f", "-c", "-e", "trace=fsync,fdatasync", "-p", strconv.Itoa(pid))
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		return 0, 0, fmt.Errorf("strace: %w", err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	t0 := time.Now()
	select {
	case err := <-done:
		return 0, 0, fmt.Errorf("strace -p %d exited early: %v\n%s", pid, err, out.String())
	case <-ctx.Done():
	case <-time.After(window):
	}
	secs := time.Since(t0).Seconds()
	_ = cmd.Process.Signal(os.Interrupt)
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		_ = cmd.Process.Kill()
		<-done
		return 0, 0, fmt.Errorf("strace -p %d did not stop on SIGINT", pid)
	}
	if ctx.Err() != nil {
		return 0, 0, ctx.Err()
	}
	if !strings.Contains(out.String(), "attached") {
		return 0, 0, fmt.Errorf("strace -p %d did not attach:\n%s", pid, out.String())
	}
	n, err := parseStraceCounts(out.String(), "fsync", "fdatasync")
	return n, secs, err
}
