package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/linegate/linegate/buffer"
	"github.com/linegate/linegate/configs"
	"github.com/linegate/linegate/uplink"
)

func newBufferCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "buffer",
		Short: "Inspect and maintain the store-and-forward buffer file",
		Long: `The buffer subcommands open the bbolt buffer file named by the config
(-c FILE) or by --path. The file can be open in one process only: while
"linegate run" (or the service) uses it, they stop with a message and exit 1;
"linegate status" shows the running agent's buffer instead.

Exit codes: 0 ok, 1 failed (file missing or in use), 2 usage or config error.`,
		Args: cobra.NoArgs,
		RunE: needSubcommand("buffer: name a subcommand: stats, peek, export, compact or drop"),
	}
	cmd.AddCommand(newBufferStatsCmd(g), newBufferPeekCmd(g), newBufferExportCmd(g), newBufferCompactCmd(g), newBufferDropCmd(g))
	return cmd
}

// bufferTarget is the file to open, from a config or a path.
type bufferTarget struct {
	config string
	path   string
	cfg    *configs.Config
}

func (b *bufferTarget) addFlags(fs *pflag.FlagSet) {
	fs.StringVarP(&b.config, "config", "c", "", "config file (YAML): use its buffer.path and gateway")
	fs.StringVar(&b.path, "path", "", "buffer file, instead of -c")
}

// open opens the buffer for a maintenance command. It never creates one,
// and never trims one: without a config, the cap is set above the file's
// size so that Open has no reason to drop anything.
// open opens the target's buffer; readOnly for the commands that only
// inspect it (stats, peek, export), which never change the file.
func (b *bufferTarget) open(readOnly bool) (*buffer.Queue, error) {
	if (b.config == "") == (b.path == "") {
		return nil, usageError(errors.New("give -c FILE or --path FILE"))
	}
	maxSize := int64(0)
	if b.config != "" {
		cfg, err := loadConfig(b.config)
		if err != nil {
			return nil, err
		}
		b.cfg = cfg
		b.path = cfg.Buffer.Path
		maxSize = int64(cfg.Buffer.MaxSize)
	}
	st, err := os.Stat(b.path)
	if err != nil {
		return nil, &exitError{exitFailed, fmt.Errorf("buffer %s: %w", b.path, err)}
	}
	if maxSize == 0 {
		maxSize = max(buffer.DefaultMaxSize, 4*st.Size())
	}
	q, err := buffer.Open(buffer.Options{Path: b.path, MaxSize: maxSize, ReadOnly: readOnly})
	if err != nil {
		// In use (the agent runs): the error says so and names "linegate status".
		return nil, &exitError{exitFailed, err}
	}
	return q, nil
}

// gateway names the payloads: from the config, or blank with --path.
func (b *bufferTarget) gateway() (uplink.Gateway, string) {
	if b.cfg == nil {
		return uplink.Gateway{}, "linegate"
	}
	gw := b.cfg.Gateway
	return uplink.Gateway{ID: gw.ID, Site: gw.Site, Area: gw.Area, Line: gw.Line}, b.cfg.Uplink.TopicPrefix
}

type bufferStatsDoc struct {
	Path          string     `json:"path"`
	Messages      int        `json:"messages"`
	Bytes         int64      `json:"bytes"`
	FileBytes     int64      `json:"file_bytes"`
	OldestSeq     uint64     `json:"oldest_seq"`
	NextSeq       uint64     `json:"next_seq"`
	OldestCreated *time.Time `json:"oldest_created,omitempty"`
	Events        int        `json:"events"`
	Dropped       uint64     `json:"dropped"`
}

// bufferStatsOptions are the flags of `linegate buffer stats`.
type bufferStatsOptions struct {
	g      *globals
	target bufferTarget
	asJSON bool
}

func newBufferStatsCmd(g *globals) *cobra.Command {
	o := &bufferStatsOptions{g: g}
	cmd := &cobra.Command{
		Use:   "stats",
		Short: "Print how many messages wait, their seq range and age, and the file size",
		Example: `  linegate buffer stats -c /etc/linegate/linegate.yaml
  linegate buffer stats --path /var/lib/linegate/buffer.db --json`,
		Args: cobra.NoArgs,
		RunE: o.run,
	}
	o.target.addFlags(cmd.Flags())
	cmd.Flags().BoolVar(&o.asJSON, "json", false, "print JSON")
	return cmd
}

func (o *bufferStatsOptions) run(_ *cobra.Command, _ []string) error {
	q, err := o.target.open(true)
	if err != nil {
		return err
	}
	st := q.Stats()
	if err := q.Close(); err != nil {
		return err
	}
	doc := bufferStatsDoc{Path: o.target.path, Messages: st.Messages, Bytes: st.Bytes, FileBytes: st.FileSize,
		OldestSeq: st.OldestSeq, NextSeq: st.NextSeq, OldestCreated: optTime(st.OldestCreated), Events: st.Events, Dropped: st.Dropped}
	if o.asJSON {
		return writeJSON(o.g.stdout, doc)
	}
	w := o.g.stdout
	fmt.Fprintf(w, "buffer    %s\n", doc.Path)
	if doc.Messages == 0 {
		fmt.Fprintf(w, "messages  0 (next seq %d)\n", doc.NextSeq)
	} else {
		fmt.Fprintf(w, "messages  %d (%s), seq %d..%d, next seq %d\n", doc.Messages, byteSize(doc.Bytes), doc.OldestSeq, doc.NextSeq-1, doc.NextSeq)
		fmt.Fprintf(w, "oldest    %s (%s ago)\n", doc.OldestCreated.Format(time.RFC3339), time.Since(*doc.OldestCreated).Truncate(time.Second))
	}
	fmt.Fprintf(w, "events    %d waiting\n", doc.Events)
	fmt.Fprintf(w, "dropped   %d (ever, by the size cap or as unreadable)\n", doc.Dropped)
	fmt.Fprintf(w, "file      %s\n", byteSize(doc.FileBytes))
	return nil
}

// bufferPeekOptions are the flags of `linegate buffer peek`.
type bufferPeekOptions struct {
	g      *globals
	target bufferTarget
	after  uint64
	count  int
	asJSON bool
}

func newBufferPeekCmd(g *globals) *cobra.Command {
	o := &bufferPeekOptions{g: g}
	cmd := &cobra.Command{
		Use:   "peek",
		Short: "Show the oldest waiting messages (and events) without removing them",
		Example: `  linegate buffer peek -c linegate.yaml
  linegate buffer peek --path buffer.db --after 18200 --count 3 --json`,
		Args: cobra.NoArgs,
		RunE: o.run,
	}
	o.target.addFlags(cmd.Flags())
	cmd.Flags().Uint64Var(&o.after, "after", 0, "start after this seq")
	cmd.Flags().IntVarP(&o.count, "count", "n", 10, "messages to show at most")
	cmd.Flags().BoolVar(&o.asJSON, "json", false, "print the payloads as published (JSON lines)")
	return cmd
}

func (o *bufferPeekOptions) run(_ *cobra.Command, _ []string) error {
	if o.count < 1 {
		return usageError(fmt.Errorf("--count %d: want at least 1", o.count))
	}
	q, err := o.target.open(true)
	if err != nil {
		return err
	}
	defer q.Close()
	msgs, err := q.Read(o.after, o.count)
	if err != nil {
		return err
	}
	evs, err := q.Events(o.count)
	if err != nil {
		return err
	}
	gw, prefix := o.target.gateway()
	for _, m := range msgs {
		payload := uplink.AppendJSON(nil, m, gw, true)
		if o.asJSON {
			fmt.Fprintf(o.g.stdout, "%s\n", payload)
			continue
		}
		fmt.Fprintln(o.g.stdout, describe(uplink.Topic(prefix, gw.Site, gw.Area, gw.Line, m.Equipment, m.Class), payload))
	}
	for _, e := range evs {
		payload := uplink.AppendEventJSON(nil, e, gw)
		if o.asJSON {
			fmt.Fprintf(o.g.stdout, "%s\n", payload)
			continue
		}
		fmt.Fprintln(o.g.stdout, describe("events", payload))
	}
	if !o.asJSON {
		st := q.Stats()
		fmt.Fprintf(o.g.stdout, "(%d of %d message(s), %d of %d event(s))\n", len(msgs), st.Messages, len(evs), st.Events)
	}
	return q.Close()
}

// bufferExportOptions are the flags of `linegate buffer export`.
type bufferExportOptions struct {
	g      *globals
	target bufferTarget
	after  uint64
	before uint64
	output string
}

func newBufferExportCmd(g *globals) *cobra.Command {
	o := &bufferExportOptions{g: g}
	cmd := &cobra.Command{
		Use:   "export",
		Short: "Write the waiting messages as JSON lines, as the MES would get them",
		Long: `Export writes every waiting message (or those with --after < seq < --before)
as one linegate/v1 JSON payload per line, marked historical, to stdout or
--output. Nothing is removed: after a manual import at the MES, drop them
with "linegate buffer drop --before SEQ".`,
		Example: `  linegate buffer export -c linegate.yaml > backlog.jsonl
  linegate buffer export --path buffer.db --after 100 --before 200 -o part.jsonl`,
		Args: cobra.NoArgs,
		RunE: o.run,
	}
	o.target.addFlags(cmd.Flags())
	cmd.Flags().Uint64Var(&o.after, "after", 0, "only seq > after")
	cmd.Flags().Uint64Var(&o.before, "before", 0, "only seq < before (0 = no limit)")
	cmd.Flags().StringVarP(&o.output, "output", "o", "", "file to write (default stdout)")
	return cmd
}

func (o *bufferExportOptions) run(_ *cobra.Command, _ []string) (err error) {
	q, err := o.target.open(true)
	if err != nil {
		return err
	}
	defer q.Close()
	w := o.g.stdout
	if o.output != "" {
		f, err := os.OpenFile(o.output, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
		if err != nil {
			return &exitError{exitFailed, err}
		}
		defer func() {
			if cerr := f.Close(); err == nil {
				err = cerr
			}
		}()
		w = f
	}
	bw := bufio.NewWriter(w)
	gw, _ := o.target.gateway()
	n, cur := 0, o.after
	var buf []byte
read:
	for {
		msgs, err := q.Read(cur, 500)
		if err != nil {
			return err
		}
		if len(msgs) == 0 {
			break
		}
		for _, m := range msgs {
			if o.before != 0 && m.Seq >= o.before {
				break read
			}
			buf = append(uplink.AppendJSON(buf[:0], m, gw, true), '\n')
			if _, err := bw.Write(buf); err != nil {
				return err
			}
			n++
		}
		cur = msgs[len(msgs)-1].Seq
	}
	if err := bw.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(o.g.stderr, "exported %d message(s)\n", n)
	return q.Close()
}

// bufferCompactOptions are the flags of `linegate buffer compact`.
type bufferCompactOptions struct {
	g      *globals
	target bufferTarget
}

func newBufferCompactCmd(g *globals) *cobra.Command {
	o := &bufferCompactOptions{g: g}
	cmd := &cobra.Command{
		Use:     "compact",
		Short:   "Rewrite the file to give back the space of delivered messages",
		Example: `  linegate buffer compact -c linegate.yaml`,
		Args:    cobra.NoArgs,
		RunE:    o.run,
	}
	o.target.addFlags(cmd.Flags())
	return cmd
}

func (o *bufferCompactOptions) run(_ *cobra.Command, _ []string) error {
	q, err := o.target.open(false)
	if err != nil {
		return err
	}
	defer q.Close()
	before := q.Stats().FileSize
	if err := q.Compact(); err != nil {
		return err
	}
	if err := q.Close(); err != nil {
		return err
	}
	after := before
	if st, err := os.Stat(o.target.path); err == nil {
		after = st.Size()
	}
	fmt.Fprintf(o.g.stdout, "buffer %s compacted: %s → %s\n", o.target.path, byteSize(before), byteSize(after))
	return nil
}

// bufferDropOptions are the flags of `linegate buffer drop`.
type bufferDropOptions struct {
	g      *globals
	target bufferTarget
	before uint64
	yes    bool
}

func newBufferDropCmd(g *globals) *cobra.Command {
	o := &bufferDropOptions{g: g}
	cmd := &cobra.Command{
		Use:   "drop --before SEQ",
		Short: "Delete the waiting messages with seq < SEQ (reported to the MES as an event)",
		Long: `Drop deletes waiting messages for good: use it for a backlog the MES will
never want, or after "buffer export". The MES is told with a buffer_dropped
event (dropped_seq_from, dropped_seq_to, dropped), sent with the next
connection. It asks for confirmation on a terminal unless --yes, and refuses
without --yes when it cannot ask.`,
		Example: `  linegate buffer drop -c linegate.yaml --before 18234
  linegate buffer drop --path buffer.db --before 500 --yes`,
		Args: cobra.NoArgs,
		RunE: o.run,
	}
	o.target.addFlags(cmd.Flags())
	cmd.Flags().Uint64Var(&o.before, "before", 0, "drop messages with seq < SEQ")
	cmd.Flags().BoolVarP(&o.yes, "yes", "y", false, "do not ask for confirmation")
	return cmd
}

func (o *bufferDropOptions) run(cmd *cobra.Command, _ []string) error {
	if o.before == 0 {
		return usageError(errors.New("--before SEQ is required"))
	}
	q, err := o.target.open(false)
	if err != nil {
		return err
	}
	defer q.Close()
	st := q.Stats()
	if st.Messages == 0 || st.OldestSeq >= o.before {
		fmt.Fprintf(o.g.stdout, "nothing to drop: no waiting message has seq < %d\n", o.before)
		return q.Close()
	}
	if !o.yes {
		what := fmt.Sprintf("buffer %s: drop the waiting messages with seq %d..%d", o.target.path, st.OldestSeq, min(o.before, st.NextSeq)-1)
		ok, err := confirmAction(cmd.InOrStdin(), o.g.stderr, what, "Drop them?")
		if err != nil {
			return err
		}
		if !ok {
			return &exitError{exitFailed, errors.New("nothing dropped")}
		}
	}
	n, err := q.DropBefore(o.before)
	if err != nil {
		return err
	}
	if err := q.Close(); err != nil {
		return err
	}
	fmt.Fprintf(o.g.stdout, "dropped %d message(s) with seq < %d; the MES gets a buffer_dropped event\n", n, o.before)
	return nil
}

// byteSize prints 1536 as "1.5 KiB".
func byteSize(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}

// confirmAction asks a yes/no question on a terminal; without one it is a
// usage error, so that a script never destroys anything by accident.
func confirmAction(in io.Reader, out io.Writer, what, question string) (bool, error) {
	if !isTerminal(in) {
		return false, usageError(errors.New("stdin is not a terminal: add --yes to go ahead without confirmation"))
	}
	fmt.Fprintf(out, "%s\n%s [y/N] ", what, question)
	line, _ := bufio.NewReader(in).ReadString('\n')
	switch strings.ToLower(strings.TrimSpace(line)) {
	case "y", "yes":
		return true, nil
	}
	return false, nil
}
