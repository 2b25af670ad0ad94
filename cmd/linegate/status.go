package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/linegate/linegate/cmd/internal/agent"
)

// statusOptions are the flags of `linegate status`.
type statusOptions struct {
	g       *globals
	addr    string
	config  string
	asJSON  bool
	timeout time.Duration
}

func newStatusCmd(g *globals) *cobra.Command {
	o := &statusOptions{g: g}
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Show the running agent's devices, buffer and uplink (from its /status)",
		Long: `Status asks the running agent's local HTTP endpoint (http.listen, default
127.0.0.1:9870) for /status and prints it as a table: each device up or down
with its last error and last good read, the buffer, and the uplink.
Exit 0 when every device is up and the uplink is connected, 1 when something
is down or the agent does not answer, 2 on a bad flag or config.`,
		Example: `  linegate status
  linegate status -c /etc/linegate/linegate.yaml   # use its http.listen
  linegate status --addr 127.0.0.1:9870 --json`,
		Args: cobra.NoArgs,
		RunE: o.run,
	}
	cmd.Flags().StringVar(&o.addr, "addr", "127.0.0.1:9870", "the agent's http.listen address")
	cmd.Flags().StringVarP(&o.config, "config", "c", "", "take the address from this config's http.listen")
	cmd.Flags().DurationVar(&o.timeout, "timeout", 3*time.Second, "")
	cmd.Flags().BoolVar(&o.asJSON, "json", false, "print /status as it is")
	return cmd
}

func (o *statusOptions) run(cmd *cobra.Command, _ []string) error {
	var token string // http.token of the config, if any
	if o.config != "" {
		cfg, err := loadConfig(o.config)
		if err != nil {
			return err
		}
		if o.addr = cfg.HTTP.ListenAddr(); o.addr == "" {
			return usageError(fmt.Errorf("%s: http.listen is off: the agent has no status endpoint", o.config))
		}
		token = cfg.HTTP.Token.Reveal()
	}
	body, err := fetchStatus(cmd, o.addr, token, o.timeout)
	if err != nil {
		return &exitError{exitFailed, err}
	}
	var doc agent.Status
	if err := json.Unmarshal(body, &doc); err != nil {
		return &exitError{exitFailed, fmt.Errorf("http://%s/status: not a linegate status: %w", o.addr, err)}
	}
	if o.asJSON {
		o.g.stdout.Write(body)
	} else {
		printStatus(o.g.stdout, doc, time.Now())
	}
	var down []string
	for _, d := range doc.Devices {
		if !d.Up {
			down = append(down, d.Name)
		}
	}
	if !doc.Uplink.Connected {
		down = append(down, "uplink")
	}
	if len(down) > 0 {
		return &exitError{exitFailed, fmt.Errorf("down: %s", strings.Join(down, ", "))}
	}
	return nil
}

func fetchStatus(cmd *cobra.Command, addr, token string, timeout time.Duration) ([]byte, error) {
	url := "http://" + addr + "/status"
	req, err := http.NewRequestWithContext(cmd.Context(), http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := (&http.Client{Timeout: timeout}).Do(req)
	if err != nil {
		return nil, fmt.Errorf("no linegate answers on %s (is it running? is http.listen set?): %w", addr, errors.Unwrap(err))
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", url, err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%s: %s", url, resp.Status)
	}
	return body, nil
}

func printStatus(w io.Writer, doc agent.Status, now time.Time) {
	fmt.Fprintf(w, "gateway %s (version %s)\n\n", doc.Gateway, doc.Version)
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "DEVICE\tSTATE\tLAST GOOD READ\tPOLLS\tOVERRUNS\tLAST ERROR")
	for _, d := range doc.Devices {
		state := "up"
		if !d.Up {
			state = "DOWN"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%d\t%s\n", d.Name, state, ago(d.LastGoodRead, now), d.Polls, d.Overruns, dash(d.LastError))
	}
	tw.Flush()
	printCommands(w, doc, now)
	if len(doc.ModbusLinks) > 0 {
		fmt.Fprintln(w, "\nModbus links (last minute):")
		tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
		for _, l := range doc.ModbusLinks {
			fmt.Fprintf(tw, "  %s\t%.0f %% busy\t\n", l.Link, 100*l.Utilisation)
			for _, d := range l.Devices {
				fmt.Fprintf(tw, "    %s (unit %d)\t%.2f polls/s\t\n", d.Name, d.Unit, d.PollsPerSecond)
			}
		}
		tw.Flush()
	}
	printOEE(w, doc.OEE)
	b := doc.Buffer
	fmt.Fprintf(w, "\nbuffer  %s\n", b.Path)
	fmt.Fprintf(w, "        %d message(s) waiting", b.Messages)
	if b.Messages > 0 {
		fmt.Fprintf(w, " (seq %d..%d, oldest %s)", b.OldestSeq, b.NextSeq-1, ago(b.OldestCreated, now))
	}
	fmt.Fprintf(w, ", %d event(s); file %s of %s; dropped %d\n", b.Events, byteSize(b.FileBytes), byteSize(b.MaxBytes), b.Dropped)
	u := doc.Uplink
	if u.Connected {
		fmt.Fprintf(w, "uplink  connected to %s", u.Broker)
	} else {
		fmt.Fprint(w, "uplink  NOT CONNECTED")
	}
	fmt.Fprintf(w, "; %d published, %d in flight, %d reconnect(s), last publish %s\n", u.Published, u.Inflight, u.Reconnects, ago(u.LastPublish, now))
	if u.LastError != "" {
		fmt.Fprintf(w, "        last error: %s\n", u.LastError)
	}
}

// ago prints a time as "10:15:02 (3s ago)", or "never".
func ago(t *time.Time, now time.Time) string {
	if t == nil {
		return "never"
	}
	d := now.Sub(*t)
	switch {
	case d < time.Second:
		d = d.Round(time.Millisecond)
	default:
		d = d.Round(time.Second)
	}
	return fmt.Sprintf("%s (%s ago)", t.Local().Format("15:04:05"), d)
}
