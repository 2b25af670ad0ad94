// Command linegate-bench is `make bench`'s end-to-end load run: simulated
// Modbus presses (linegate sim modbus processes) → the real linegate binary
// → a Mosquitto process on loopback → a subscriber that checks every seq.
// It measures throughput, CPU, memory, latency, the drain after a broker
// outage and startup, runs the same work without linegate as the practical
// limit, and prints a table against the targets of issues 9 and 20 (and
// writes it as JSON). With --telegraf BIN it instead runs linegate and
// Telegraf side by side on the same sims and broker, A B A B per load, and
// prints their ratios (make bench-telegraf). See README, Performance.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"
)

type options struct {
	devices, tags, perSim, maxInflight int
	interval, duration, outage         time.Duration
	warmup, commit                     time.Duration
	rateInterval, rateDuration         time.Duration
	limitDuration                      time.Duration
	out, gobench, linegate             string
	keep                               bool

	// side by side with Telegraf (--telegraf)
	telegraf            string
	loads               string
	pairs               int
	window, fsyncWindow time.Duration
}

func main() {
	if len(os.Args) == 3 && os.Args[1] == "limit" {
		if err := runLimit(os.Args[2]); err != nil {
			fmt.Fprintln(os.Stderr, "linegate-bench limit:", err)
			os.Exit(1)
		}
		return
	}
	var o options
	fs := flag.NewFlagSet("linegate-bench", flag.ContinueOnError)
	fs.IntVar(&o.devices, "devices", 100, "simulated Modbus devices")
	fs.IntVar(&o.tags, "tags", 100, "tags per device")
	fs.IntVar(&o.perSim, "units-per-sim", 10, "devices (unit ids) per sim process, 1..247")
	fs.IntVar(&o.maxInflight, "max-inflight", 64, "uplink.max_inflight, also the limit's window")
	fs.DurationVar(&o.interval, "interval", time.Second, "poll interval")
	fs.DurationVar(&o.duration, "duration", 60*time.Second, "steady-state measuring window")
	fs.DurationVar(&o.warmup, "warmup", 5*time.Second, "time after the first message before measuring")
	fs.DurationVar(&o.outage, "outage", 60*time.Second, "broker outage before the drain (0 = skip)")
	fs.DurationVar(&o.commit, "commit-interval", 50*time.Millisecond, "buffer.commit_interval")
	fs.DurationVar(&o.rateInterval, "rate", 100*time.Millisecond, "rate mode: poll interval of the backlog-growth run (0 = skip)")
	fs.DurationVar(&o.rateDuration, "rate-duration", 30*time.Second, "rate mode: measuring window")
	fs.DurationVar(&o.limitDuration, "limit-duration", 10*time.Second, "practical limit: length of each phase (0 = skip)")
	fs.StringVar(&o.out, "json", "bench.json", "write the results here")
	fs.StringVar(&o.gobench, "gobench", "", "go test -bench output to include")
	fs.StringVar(&o.linegate, "linegate", "", "linegate binary (default: built with -trimpath)")
	fs.BoolVar(&o.keep, "keep", false, "keep the work directory")
	fs.StringVar(&o.telegraf, "telegraf", "", "side by side: this Telegraf binary against linegate, A B A B per load, instead of the load run")
	fs.StringVar(&o.loads, "loads", "1x1,10x20,100x100", "side by side: loads, DEVICESxTAGS (uint16 holding registers)")
	fs.IntVar(&o.pairs, "pairs", 2, "side by side: A B pairs per load")
	fs.DurationVar(&o.window, "window", 30*time.Second, "side by side: measuring window of each run, after --warmup")
	fs.DurationVar(&o.fsyncWindow, "fsync-window", 10*time.Second, "side by side: strace window counting fsyncs, after the measuring one (0 = skip)")
	if err := fs.Parse(os.Args[1:]); err != nil {
		os.Exit(2)
	}
	warmupSet := false
	fs.Visit(func(f *flag.Flag) { warmupSet = warmupSet || f.Name == "warmup" })
	if o.perSim < 1 || o.perSim > 247 || o.devices < 1 {
		fmt.Fprintln(os.Stderr, "linegate-bench: --devices ≥ 1 and --units-per-sim 1..247")
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if o.telegraf != "" {
		if !warmupSet {
			o.warmup = 10 * time.Second // both agents past start-up and their first collections
		}
		r, err := runSideBySide(ctx, o)
		if r != nil {
			r.print(os.Stdout)
			if werr := writeJSON(o.out, r); werr != nil {
				fmt.Fprintln(os.Stderr, "linegate-bench:", werr)
			}
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "linegate-bench:", err)
			os.Exit(1)
		}
		return
	}
	r, err := run(ctx, o)
	if r != nil {
		r.print(os.Stdout)
		if werr := r.write(o.out); werr != nil {
			fmt.Fprintln(os.Stderr, "linegate-bench:", werr)
		}
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "linegate-bench:", err)
		os.Exit(1)
	}
}
