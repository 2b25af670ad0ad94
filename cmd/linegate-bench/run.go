package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"time"
)

// rig is what one bench run started; close stops all of it.
type rig struct {
	o    options
	dir  string
	bin  string
	sims []*proc
	addr []string
	brk  *broker
	sub  *subscriber
	devs []device
	tags []benchTag
}

func run(ctx context.Context, o options) (*report, error) {
	r := newReport(o)
	tags, err := deviceTags(o.tags)
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "linegate-bench-")
	if err != nil {
		return nil, err
	}
	g := &rig{o: o, dir: dir, tags: tags}
	defer g.close()
	step := func(s string) { fmt.Fprintf(os.Stderr, "bench: %s\n", s) }

	step("building linegate")
	if err := g.build(); err != nil {
		return nil, err
	}
	fi, err := os.Stat(g.bin)
	if err != nil {
		return nil, err
	}
	r.BinaryBytes = fi.Size()

	step(fmt.Sprintf("starting %d sim process(es), broker, subscriber", (o.devices+o.perSim-1)/o.perSim))
	if err := g.startPeers(ctx); err != nil {
		return r, err
	}
	pl, err := plans(g.devs, tags)
	if err != nil {
		return r, err
	}
	for _, p := range pl {
		r.ReadsPerCycle += len(p)
	}

	step(fmt.Sprintf("steady run: %d devices × %d tags every %v for %v", o.devices, o.tags, o.interval, o.duration))
	if err := g.steady(ctx, r); err != nil {
		return r, err
	}
	if o.rateInterval > 0 {
		step(fmt.Sprintf("rate run: %d devices × %d tags every %v for %v", o.devices, o.tags, o.rateInterval, o.rateDuration))
		if err := g.rate(ctx, r); err != nil {
			return r, err
		}
	}
	if o.limitDuration > 0 {
		step("practical limit: raw goburrow reads + raw paho publishes")
		if err := g.limit(ctx, r); err != nil {
			return r, err
		}
	}
	r.finish()
	return r, nil
}

func (g *rig) build() error {
	if g.o.linegate != "" {
		g.bin = g.o.linegate
		return nil
	}
	g.bin = filepath.Join(g.dir, "linegate")
	cmd := exec.Command("go", "build", "-trimpath", "-ldflags", "-s -w", "-o", g.bin, "./cmd/linegate")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build ./cmd/linegate (run from the module root): %v\n%s", err, out)
	}
	return nil
}

func (g *rig) startPeers(ctx context.Context) error {
	n := (g.o.devices + g.o.perSim - 1) / g.o.perSim
	for i := range n {
		addr, err := freeAddr()
		if err != nil {
			return err
		}
		units := min(g.o.perSim, g.o.devices-i*g.o.perSim)
		p, err := start(g.bin, "sim", "modbus", "--listen", addr, "--units", fmt.Sprintf("1-%d", units))
		if err != nil {
			return err
		}
		g.sims = append(g.sims, p)
		g.addr = append(g.addr, addr)
		if err := waitDial(ctx, p, addr, 15*time.Second); err != nil {
			return err
		}
	}
	g.devs = layoutDevices(g.o.devices, g.o.perSim, g.addr)
	b, err := newBroker(g.dir)
	if err != nil {
		return err
	}
	g.brk = b
	if err := b.start(ctx); err != nil {
		return err
	}
	g.sub, err = newSubscriber(b.addr)
	return err
}

func (g *rig) close() {
	if g.sub != nil {
		g.sub.close()
	}
	if g.brk != nil && g.brk.p != nil {
		g.brk.stop()
	}
	for _, p := range g.sims {
		p.stop(5 * time.Second)
	}
	if g.o.keep {
		fmt.Fprintln(os.Stderr, "bench: work directory kept:", g.dir)
	} else {
		os.RemoveAll(g.dir)
	}
}

// agentProc is one linegate run process.
type agentProc struct {
	p        *proc
	httpAddr string
	started  time.Time
}

func (g *rig) startAgent(ctx context.Context, name string, interval time.Duration) (*agentProc, error) {
	dir := filepath.Join(g.dir, name)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	httpAddr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	cfg, err := writeConfig(agentConfig{dir: dir, broker: g.brk.addr, httpAddr: httpAddr, interval: interval,
		commit: g.o.commit, maxInflight: g.o.maxInflight}, g.devs, g.tags)
	if err != nil {
		return nil, err
	}
	a := &agentProc{httpAddr: httpAddr, started: time.Now()}
	if a.p, err = start(g.bin, "run", "-c", cfg); err != nil {
		return nil, err
	}
	return a, waitDial(ctx, a.p, httpAddr, 30*time.Second)
}

// stop stops the agent, after letting the subscriber catch up with every
// message the agent made; it returns the last seq made.
func (g *rig) stopAgent(ctx context.Context, a *agentProc) (uint64, error) {
	var last uint64
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		st, err := fetchAgentStatus(a.httpAddr)
		if err != nil {
			break
		}
		last = st.Buffer.NextSeq - 1
		if g.sub.counts().maxSeq >= last {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	err := a.p.stop(15 * time.Second)
	if a.p.err != nil && err == nil {
		err = fmt.Errorf("linegate run exited: %v\n%s", a.p.err, tail(a.p.log.String()))
	}
	// Let what the agent published while stopping arrive.
	time.Sleep(500 * time.Millisecond)
	return last, err
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// waitFor polls cond every 20 ms until it holds or limit passes.
func waitFor(ctx context.Context, limit time.Duration, what string, cond func() bool) error {
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			return fmt.Errorf("%s: not within %v", what, limit)
		}
		if err := sleepCtx(ctx, 20*time.Millisecond); err != nil {
			return err
		}
	}
	return nil
}

// steady runs the main load, the outage and the drain.
func (g *rig) steady(ctx context.Context, r *report) error {
	a, err := g.startAgent(ctx, "steady", g.o.interval)
	if err != nil {
		return err
	}
	defer a.p.stop(5 * time.Second)
	if err := waitFor(ctx, 60*time.Second, "first message", func() bool { return !g.sub.counts().first.IsZero() }); err != nil {
		return fmt.Errorf("%w\n%s", err, tail(a.p.log.String()))
	}
	r.StartupMs = float64(g.sub.counts().first.Sub(a.started).Microseconds()) / 1000
	if err := sleepCtx(ctx, g.o.warmup); err != nil {
		return err
	}

	pid := a.p.pid()
	cpu0, _ := cpuSeconds(pid)
	c0, t0 := g.sub.counts(), time.Now()
	st0, err := fetchAgentStatus(a.httpAddr)
	if err != nil {
		return err
	}
	com0, _ := fetchCommitTimes(a.httpAddr)
	g.sub.record(true)
	// The backlog is sampled every 5 s: each /status costs the agent about
	// 1.5 ms of CPU (2-3 % of what it spends at 10,000 tags/s if asked every
	// second), and the bench measures the agent, not its probe.
	var maxBacklog int64
	for end := t0.Add(g.o.duration); time.Now().Before(end); {
		if err := sleepCtx(ctx, min(5*time.Second, time.Until(end))); err != nil {
			return err
		}
		if st, err := fetchAgentStatus(a.httpAddr); err == nil {
			maxBacklog = max(maxBacklog, st.Buffer.Messages)
		}
	}
	g.sub.record(false)
	cpu1, _ := cpuSeconds(pid)
	c1, t1 := g.sub.counts(), time.Now()
	st1, err := fetchAgentStatus(a.httpAddr)
	if err != nil {
		return err
	}
	secs := t1.Sub(t0).Seconds()
	dr, dm := float64(c1.readings-c0.readings), float64(c1.msgs-c0.msgs)
	r.ReadingsPerSec = dr / secs
	r.MessagesPerSec = dm / secs
	if dm > 0 {
		r.ReadingsPerMessage = dr / dm
	}
	r.CPUSeconds = cpu1 - cpu0
	r.CPUPercent = 100 * r.CPUSeconds / secs
	if dr > 0 {
		r.CPUSecPerMReadings = r.CPUSeconds / dr * 1e6
	}
	total, poll, pipe, n := g.sub.latency()
	r.LatencyP50Ms, r.LatencyP99Ms, r.LatencyMaxMs, r.LatencySamples = total.p50, total.p99, total.max, n
	r.PollLatencyP50Ms, r.PollLatencyP99Ms = poll.p50, poll.p99
	r.PipeLatencyP50Ms, r.PipeLatencyP99Ms = pipe.p50, pipe.p99
	if com1, err := fetchCommitTimes(a.httpAddr); err == nil {
		r.Commits = com1.sub(com0)
	}
	r.SteadyMaxBacklog = maxBacklog
	r.Overruns = overruns(st1) - overruns(st0)
	r.DevicesUp = devicesUp(st1)
	r.SteadyPeakRSSBytes, _ = peakRSS(pid) // start-up and steady run

	if g.o.outage > 0 {
		if err := g.outage(ctx, a, r, maxBacklog); err != nil {
			return err
		}
	}
	r.PeakRSSBytes, _ = peakRSS(pid)
	last, err := g.stopAgent(ctx, a)
	if err != nil {
		return err
	}
	r.LastSeq = last
	r.Missing, r.Duplicates, r.FirstMissing = g.sub.gaps(last)
	return nil
}

// outage stops the broker, waits, starts it again and measures how fast
// the backlog drains once linegate is connected.
func (g *rig) outage(ctx context.Context, a *agentProc, r *report, steadyBacklog int64) error {
	fmt.Fprintf(os.Stderr, "bench: broker outage for %v\n", g.o.outage)
	if err := g.brk.stop(); err != nil {
		return err
	}
	if err := sleepCtx(ctx, g.o.outage); err != nil {
		return err
	}
	st, err := fetchAgentStatus(a.httpAddr)
	if err != nil {
		return err
	}
	r.OutageBacklog = st.Buffer.Messages
	tr := time.Now()
	g.sub.recordDrain(true)
	defer g.sub.recordDrain(false)
	if err := g.brk.start(ctx); err != nil {
		return err
	}
	// linegate's reconnect backoff (up to 30 s) is reported, not drain.
	if err := waitFor(ctx, 60*time.Second, "linegate reconnect", func() bool {
		st, err := fetchAgentStatus(a.httpAddr)
		return err == nil && st.Uplink.Connected
	}); err != nil {
		return err
	}
	r.ReconnectMs = float64(time.Since(tr).Milliseconds())
	// Drained: back to what the steady state holds (messages of the
	// current commit and the in-flight window), then one more second for
	// the last historical messages to reach the subscriber.
	floor := max(steadyBacklog, int64(len(g.devs)*3))
	if err := waitFor(ctx, 30*time.Minute, "drain", func() bool {
		st, err := fetchAgentStatus(a.httpAddr)
		return err == nil && st.Buffer.Messages <= floor
	}); err != nil {
		return err
	}
	if err := sleepCtx(ctx, time.Second); err != nil {
		return err
	}
	msgs, readings, secs := g.sub.drain()
	r.DrainMessages, r.DrainSeconds = msgs, secs
	if secs > 0 {
		r.DrainMsgsPerSec = float64(msgs) / secs
		r.DrainReadingsPerSec = float64(readings) / secs
	}
	return nil
}

// rate runs the same devices at the rate interval on a fresh buffer and
// fits the backlog's slope.
func (g *rig) rate(ctx context.Context, r *report) error {
	g.sub.reset()
	a, err := g.startAgent(ctx, "rate", g.o.rateInterval)
	if err != nil {
		return err
	}
	defer a.p.stop(5 * time.Second)
	if err := waitFor(ctx, 60*time.Second, "first message", func() bool { return !g.sub.counts().first.IsZero() }); err != nil {
		return err
	}
	if err := sleepCtx(ctx, g.o.warmup); err != nil {
		return err
	}
	pid := a.p.pid()
	cpu0, _ := cpuSeconds(pid)
	c0, t0 := g.sub.counts(), time.Now()
	st0, err := fetchAgentStatus(a.httpAddr)
	if err != nil {
		return err
	}
	var xs, ys []float64
	for end := t0.Add(g.o.rateDuration); time.Now().Before(end); {
		if err := sleepCtx(ctx, 500*time.Millisecond); err != nil {
			return err
		}
		if st, err := fetchAgentStatus(a.httpAddr); err == nil {
			xs = append(xs, time.Since(t0).Seconds())
			ys = append(ys, float64(st.Buffer.Messages))
		}
	}
	cpu1, _ := cpuSeconds(pid)
	c1, t1 := g.sub.counts(), time.Now()
	st1, err := fetchAgentStatus(a.httpAddr)
	if err != nil {
		return err
	}
	secs := t1.Sub(t0).Seconds()
	r.Rate = &rateResult{
		Interval:       g.o.rateInterval.String(),
		TagsPerSec:     float64(g.o.devices*g.o.tags) / g.o.rateInterval.Seconds(),
		ReadingsPerSec: float64(c1.readings-c0.readings) / secs,
		MessagesPerSec: float64(c1.msgs-c0.msgs) / secs,
		BacklogSlope:   slope(xs, ys),
		BacklogEnd:     st1.Buffer.Messages,
		Overruns:       overruns(st1) - overruns(st0),
		CPUPercent:     100 * (cpu1 - cpu0) / secs,
	}
	if len(ys) > 0 {
		r.Rate.BacklogMax = int64(maxOf(ys))
	}
	r.Rate.PeakRSSBytes, _ = peakRSS(pid)
	last, err := g.stopAgent(ctx, a)
	if err != nil {
		return err
	}
	r.Rate.Missing, r.Rate.Duplicates, _ = g.sub.gaps(last)
	return nil
}

func maxOf(v []float64) float64 {
	m := math.Inf(-1)
	for _, x := range v {
		m = max(m, x)
	}
	return m
}

// limit runs the practical limit as a child process of this program.
func (g *rig) limit(ctx context.Context, r *report) error {
	samples := g.sub.payloadSamples()
	if len(samples) == 0 {
		return errors.New("limit: the subscriber kept no payloads")
	}
	drain := int(r.DrainMessages)
	if drain == 0 {
		drain = 20000
	}
	spec := limitSpec{Sims: g.addr, Devices: g.o.devices, PerSim: g.o.perSim, Tags: g.o.tags,
		Interval: g.o.interval, Paced: g.o.limitDuration, Flat: g.o.limitDuration, DrainMsgs: drain,
		Broker: g.brk.addr, MaxInflight: g.o.maxInflight, Payloads: samples}
	b, err := json.Marshal(spec)
	if err != nil {
		return err
	}
	path := filepath.Join(g.dir, "limit.json")
	if err := os.WriteFile(path, b, 0o600); err != nil {
		return err
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}
	cmd := exec.CommandContext(ctx, self, "limit", path)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("limit: %v\n%s", err, errb.String())
	}
	var lr limitResult
	if err := json.Unmarshal(out.Bytes(), &lr); err != nil {
		return fmt.Errorf("limit: %v: %q", err, out.String())
	}
	r.Limit = &lr
	return nil
}
