package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/linegate/linegate/buffer"
	"github.com/linegate/linegate/cmd/internal/agent"
	"github.com/linegate/linegate/collector"
	"github.com/linegate/linegate/configs"
)

// tagsOptions are the flags of `linegate tags`.
type tagsOptions struct {
	g       *globals
	path    string
	device  string
	once    bool
	asJSON  bool
	refresh time.Duration
	wait    time.Duration
}

func newTagsCmd(g *globals) *cobra.Command {
	o := &tagsOptions{g: g}
	cmd := &cobra.Command{
		Use:   "tags -c FILE",
		Short: "Live table of every tag: value, unit, quality and age",
		Long: `Tags polls the devices of a config exactly as "run" does (same drivers, same
normalization, but no deadband, no buffer and no MQTT) and shows every tag's
latest value, unit, quality and age. On a terminal the table is redrawn in
place every --refresh; piped, each new reading is printed as one line (with
--json, as one JSON object). --once waits for one reading of every tag
(at most --wait), prints the table and exits: 0 when every reading is good,
1 when one is not (or never came), 2 on a bad flag or config.

It talks to the PLCs itself: it can run next to the agent, and then adds
its own polls to the devices' load.`,
		Example: `  linegate tags -c /etc/linegate/linegate.yaml
  linegate tags -c linegate.yaml --device press01
  linegate tags -c linegate.yaml --once --json`,
		Args: cobra.NoArgs,
		RunE: o.run,
	}
	cmd.Flags().StringVarP(&o.path, "config", "c", "", "config file (YAML)")
	cmd.Flags().StringVarP(&o.device, "device", "d", "", "show only this device")
	cmd.Flags().BoolVar(&o.once, "once", false, "print one snapshot and exit")
	cmd.Flags().BoolVar(&o.asJSON, "json", false, "print JSON")
	cmd.Flags().DurationVar(&o.refresh, "refresh", time.Second, "redraw period")
	cmd.Flags().DurationVar(&o.wait, "wait", 10*time.Second, "with --once: how long to wait for every tag")
	return cmd
}

func (o *tagsOptions) run(cmd *cobra.Command, _ []string) error {
	log, err := o.g.logger()
	if err != nil {
		return err
	}
	cfg, err := loadConfig(o.path)
	if err != nil {
		return err
	}
	if o.refresh <= 0 || o.wait <= 0 {
		return usageError(errors.New("--refresh and --wait: want more than 0"))
	}
	sel, err := o.selected(cfg)
	if err != nil {
		return err
	}
	devs, err := agent.BuildDevices(sel, log)
	if err != nil {
		return usageError(err)
	}
	for i := range devs {
		for j := range devs[i].Tags {
			// Show every reading, not only the ones that moved.
			devs[i].Tags[j].Deadband = 0
			devs[i].Tags[j].ReportEvery = 0
		}
	}
	sink := newTagsSink(sel.Devices)
	col, err := collector.New(collector.Options{Devices: devs, Sink: sink, Logger: log.With("component", "collector")})
	if err != nil {
		return usageError(err)
	}
	ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = col.Run(runCtx)
	}()
	defer func() { cancel(); <-done }()
	if o.once {
		return o.snapshot(ctx, sink)
	}
	return o.live(ctx, sink, sel)
}

// selected is the config with only --device's device (all without it).
func (o *tagsOptions) selected(cfg *configs.Config) (*configs.Config, error) {
	sel := *cfg
	if o.device == "" {
		return &sel, nil
	}
	sel.Devices = nil
	for _, d := range cfg.Devices {
		if d.Name == o.device {
			sel.Devices = append(sel.Devices, d)
		}
	}
	if len(sel.Devices) == 0 {
		return nil, usageError(fmt.Errorf("--device %s: no such device in %s", o.device, cfg.File))
	}
	return &sel, nil
}

// snapshot is --once: one reading of every tag (or --wait), then the table.
func (o *tagsOptions) snapshot(ctx context.Context, sink *tagsSink) error {
	deadline := time.NewTimer(o.wait)
	defer deadline.Stop()
	select {
	case <-sink.complete:
	case <-deadline.C:
	case <-ctx.Done():
	}
	rows := sink.snapshot()
	if o.asJSON {
		if err := writeJSON(o.g.stdout, tagsJSON(rows, time.Now())); err != nil {
			return err
		}
	} else {
		fmt.Fprint(o.g.stdout, strings.Join(tagsTable(rows, time.Now()), "\n")+"\n")
	}
	if n := notGood(rows); n > 0 {
		return &exitError{exitFailed, fmt.Errorf("%d of %d tag(s) not good", n, len(rows))}
	}
	return nil
}

// live redraws the table on a terminal, or prints each new reading as a
// line when piped, until ctx ends.
func (o *tagsOptions) live(ctx context.Context, sink *tagsSink, sel *configs.Config) error {
	out := o.g.stdout
	view := newLiveView(out)
	tick := time.NewTicker(o.refresh)
	defer tick.Stop()
	printed := map[int]uint64{}
	for {
		now := time.Now()
		rows := sink.snapshot()
		switch {
		case o.asJSON || !view.tty:
			for i, r := range rows {
				if r.gen == 0 || printed[i] == r.gen {
					continue
				}
				printed[i] = r.gen
				if o.asJSON {
					b, _ := json.Marshal(tagJSON(r, now))
					fmt.Fprintf(out, "%s\n", b)
				} else {
					fmt.Fprintf(out, "%s  %s\n", r.reading.TS.Local().Format("15:04:05.000"), tagLine(r))
				}
			}
		default:
			head := fmt.Sprintf("%s  %d device(s)  %s  (Ctrl-C to stop)", sel.File, len(sel.Devices), now.Format("15:04:05"))
			view.frame(append([]string{head}, tagsTable(rows, now)...))
		}
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
	}
}

// tagRow is the latest reading of one tag.
type tagRow struct {
	device, tag, class string
	reading            buffer.Reading
	gen                uint64 // readings received; 0 = none yet
}

// tagsSink is the collector's sink: it keeps the latest reading per tag.
type tagsSink struct {
	mu       sync.Mutex
	rows     []tagRow
	index    map[[2]string]int
	missing  int
	complete chan struct{} // closed once every tag has a reading
}

func newTagsSink(devs []configs.Device) *tagsSink {
	s := &tagsSink{index: map[[2]string]int{}, complete: make(chan struct{})}
	for _, d := range devs {
		for _, t := range d.Tags {
			s.index[[2]string{d.Name, t.Name}] = len(s.rows)
			s.rows = append(s.rows, tagRow{device: d.Name, tag: t.Name, class: t.Class})
		}
	}
	s.missing = len(s.rows)
	if s.missing == 0 {
		close(s.complete)
	}
	return s
}

func (s *tagsSink) Append(m buffer.Message) (uint64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, r := range m.Readings {
		i, ok := s.index[[2]string{m.Equipment, r.Tag}]
		if !ok {
			continue
		}
		row := &s.rows[i]
		if row.gen == 0 {
			s.missing--
			if s.missing == 0 {
				close(s.complete)
			}
		}
		row.reading = r
		row.gen++
	}
	return 0, nil
}

func (s *tagsSink) AppendEvent(buffer.Event) error { return nil }

func (s *tagsSink) snapshot() []tagRow {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]tagRow(nil), s.rows...)
}

func notGood(rows []tagRow) int {
	n := 0
	for _, r := range rows {
		if r.gen == 0 || r.reading.Quality != buffer.Good {
			n++
		}
	}
	return n
}

func tagValue(r tagRow) string {
	if r.gen == 0 {
		return "-"
	}
	if r.reading.Value == nil {
		return "-"
	}
	return formatValue(r.reading.Value)
}

func tagQuality(r tagRow) string {
	if r.gen == 0 {
		return "no reading yet"
	}
	q := r.reading.Quality.String()
	if r.reading.Error != "" {
		q += ": " + r.reading.Error
	}
	return q
}

func tagAge(r tagRow, now time.Time) string {
	if r.gen == 0 {
		return "-"
	}
	return now.Sub(r.reading.TS).Round(100 * time.Millisecond).String()
}

func tagsTable(rows []tagRow, now time.Time) []string {
	var b strings.Builder
	tw := tabwriter.NewWriter(&b, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "DEVICE\tTAG\tCLASS\tVALUE\tUNIT\tAGE\tQUALITY")
	for _, r := range rows {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", r.device, r.tag, r.class, tagValue(r), dash(r.reading.Unit), tagAge(r, now), tagQuality(r))
	}
	tw.Flush()
	return strings.Split(strings.TrimSuffix(b.String(), "\n"), "\n")
}

func tagLine(r tagRow) string {
	s := fmt.Sprintf("%s/%s = %s", r.device, r.tag, tagValue(r))
	if r.reading.Unit != "" {
		s += " " + r.reading.Unit
	}
	return s + " " + tagQuality(r)
}

type tagDoc struct {
	Device  string     `json:"device"`
	Tag     string     `json:"tag"`
	Class   string     `json:"class"`
	Value   any        `json:"value"`
	Unit    string     `json:"unit,omitempty"`
	Quality string     `json:"quality"`
	Error   string     `json:"error,omitempty"`
	TS      *time.Time `json:"ts,omitempty"`
	Age     float64    `json:"age_seconds"`
}

func tagJSON(r tagRow, now time.Time) tagDoc {
	d := tagDoc{Device: r.device, Tag: r.tag, Class: r.class, Quality: "none"}
	if r.gen == 0 {
		return d
	}
	d.Value, d.Unit, d.Quality, d.Error = r.reading.Value, r.reading.Unit, r.reading.Quality.String(), r.reading.Error
	d.TS = optTime(r.reading.TS)
	d.Age = now.Sub(r.reading.TS).Seconds()
	return d
}

func tagsJSON(rows []tagRow, now time.Time) []tagDoc {
	out := make([]tagDoc, len(rows))
	for i, r := range rows {
		out[i] = tagJSON(r, now)
	}
	return out
}
