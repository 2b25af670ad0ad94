package main

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/linegate/linegate/cmd/internal/agent"
	"github.com/linegate/linegate/configs"
	"github.com/linegate/linegate/uplink"
)

// checkOptions are the flags of `linegate check`.
type checkOptions struct {
	g       *globals
	path    string
	connect bool
}

func newCheckCmd(g *globals) *cobra.Command {
	o := &checkOptions{g: g}
	cmd := &cobra.Command{
		Use:   "check -c FILE [--connect]",
		Short: "Validate a config and print its devices, tags and Modbus request plan",
		Long: `Check validates the config (every problem is listed with its file line,
device and tag), then prints the topics, every device and tag with its
normalization, and the Modbus requests of one poll cycle after coalescing.
It touches no device and no broker, unless --connect: then it also reads
every device once (its whole request plan) and connects to every broker, all
at once, and prints PASS or FAIL for each with the time it took and the first
error. Exit 0 when valid (and, with --connect, everything answered), 1 when
a device or broker failed, 2 when the config is not valid.`,
		Example: `  linegate check -c /etc/linegate/linegate.yaml
  linegate check -c /etc/linegate/linegate.yaml --connect`,
		Args: cobra.NoArgs,
		RunE: o.run,
	}
	cmd.Flags().StringVarP(&o.path, "config", "c", "", "config file (YAML)")
	cmd.Flags().BoolVar(&o.connect, "connect", false, "also read every device once and connect to every broker")
	return cmd
}

func (o *checkOptions) run(cmd *cobra.Command, _ []string) error {
	cfg, err := loadConfig(o.path)
	if err != nil {
		return err
	}
	if err := printCheck(o.g.stdout, cfg); err != nil || !o.connect {
		return err
	}
	log, err := o.g.logger()
	if err != nil {
		return err
	}
	ok, err := checkConnect(cmd.Context(), o.g.stdout, cfg, log)
	if err == nil && !ok {
		err = &exitError{exitFailed, errors.New("check --connect: something failed (see above)")}
	}
	return err
}

func printCheck(w io.Writer, cfg *configs.Config) error {
	// run would fail at once on a buffer folder it cannot write.
	if err := configs.CheckBufferPath(cfg.Buffer.Path); err != nil {
		return usageError(fmt.Errorf("%s: %w", cfg.File, err))
	}
	g := cfg.Gateway
	fmt.Fprintf(w, "config %s: valid\n", cfg.File)
	for _, warning := range cfg.Warnings {
		fmt.Fprintf(w, "WARNING %s\n", warning)
	}
	fmt.Fprintln(w)
	fmt.Fprintf(w, "gateway  %s\n", g.ID)
	fmt.Fprintf(w, "topics   %s\n", uplink.Topic(cfg.Uplink.TopicPrefix, g.Site, g.Area, g.Line, "<equipment>", "<class>"))
	brokers := make([]string, len(cfg.Uplink.Brokers))
	for i, b := range cfg.Uplink.Brokers {
		brokers[i] = configs.RedactURL(b)
	}
	fmt.Fprintf(w, "brokers  %s (qos %d, max_inflight %d, client_id %s)\n", strings.Join(brokers, ", "), cfg.Uplink.QoSLevel(), cfg.Uplink.MaxInflight, cfg.Uplink.ClientID)
	fmt.Fprintf(w, "buffer   %s (max %s, commit every %s)\n", cfg.Buffer.Path, cfg.Buffer.MaxSize, cfg.Buffer.CommitInterval)
	if l := cfg.HTTP.ListenAddr(); l != "" {
		fmt.Fprintf(w, "http     %s\n", l)
	}

	var totalTags, totalReads int
	var readsPerSec float64
	for _, d := range cfg.Devices {
		fmt.Fprintf(w, "\ndevice %s: %s %s, every %s, timeout %s%s\n", d.Name, d.Driver, deviceTarget(d), d.PollInterval, d.Timeout, fromTemplate(d))
		fmt.Fprint(w, shiftLine(d))
		tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "  TAG\tCLASS\tSOURCE\tTYPE\tUNIT\tNORMALIZATION")
		for _, t := range d.Tags {
			fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%s\t%s\n", t.Name, t.Class, tagSource(d, t), dash(t.Type), dash(t.Unit), normalization(t))
		}
		tw.Flush()
		totalTags += len(d.Tags)
		if d.Driver != "modbus" {
			continue
		}
		drv, err := agent.NewModbusDriver(d, slog.New(slog.DiscardHandler))
		if err != nil {
			return usageError(err)
		}
		plan := drv.Plan()
		fmt.Fprintf(w, "  plan: %d read(s) per cycle\n", len(plan))
		for _, r := range plan {
			fmt.Fprintf(w, "    %s\n", r)
		}
		totalReads += len(plan)
		readsPerSec += float64(len(plan)) / d.PollInterval.D().Seconds()
	}
	printSharedLinks(w, cfg)
	fmt.Fprintf(w, "\n%d device(s), %d tag(s), %d Modbus read(s) per cycle (%s reads/s)\n",
		len(cfg.Devices), totalTags, totalReads, strconv.FormatFloat(readsPerSec, 'f', 1, 64))
	return nil
}

func deviceTarget(d configs.Device) string {
	if d.Driver == "modbus" {
		return fmt.Sprintf("%s unit %d, byte order %s%s", d.Address, d.UnitIDValue(), d.ByteOrder, modbusQuirks(d))
	}
	return fmt.Sprintf("%s %s/%s, mode %s", d.Endpoint, d.SecurityPolicy, d.SecurityMode, d.Mode)
}

func tagSource(d configs.Device, t configs.Tag) string {
	if d.Driver != "modbus" {
		if t.BrowsePath != "" {
			return t.BrowsePath
		}
		return t.Node
	}
	s := fmt.Sprintf("%s %d", t.Register, t.AddressValue())
	if t.Address != nil && (t.Address.Text != "" || d.AddressBase == 1) {
		s += " (" + t.Address.String() + ")" // as written
	}
	if b := t.BitValue(); b >= 0 {
		s += fmt.Sprintf(".%d", b)
	}
	if t.Type == "string" {
		s += fmt.Sprintf(" (%d regs)", t.Length)
	}
	if t.ByteOrder != "" {
		s += " " + t.ByteOrder
	}
	return s
}

func normalization(t configs.Tag) string {
	var parts []string
	if t.Scale != nil {
		parts = append(parts, "scale "+strconv.FormatFloat(*t.Scale, 'g', -1, 64))
	}
	if t.Offset != 0 {
		parts = append(parts, "offset "+strconv.FormatFloat(t.Offset, 'g', -1, 64))
	}
	if t.Deadband != 0 {
		parts = append(parts, fmt.Sprintf("deadband %s, every %s", strconv.FormatFloat(t.Deadband, 'g', -1, 64), t.ReportEvery))
	}
	if len(t.States) > 0 {
		codes := make([]int64, 0, len(t.States))
		for c := range t.States {
			codes = append(codes, c)
		}
		sort.Slice(codes, func(i, j int) bool { return codes[i] < codes[j] })
		var s []string
		for _, c := range codes {
			s = append(s, fmt.Sprintf("%d=%s", c, t.States[c]))
		}
		parts = append(parts, "states "+strings.Join(s, " "))
	}
	if t.Counter {
		parts = append(parts, "counter (+delta)")
	}
	if f := t.SecondsFactor(); f != 0 {
		parts = append(parts, fmt.Sprintf("%s → s (×%s)", t.Unit, strconv.FormatFloat(f, 'g', -1, 64)))
	}
	parts = append(parts, rules(t)...)
	if len(parts) == 0 {
		return "-"
	}
	return strings.Join(parts, "; ")
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// modbusQuirks lists a Modbus device's quirk options that are set.
func modbusQuirks(d configs.Device) string {
	var q []string
	if m := d.MaxRegistersPerRequest; m != nil {
		q = append(q, fmt.Sprintf("max %d registers/request", *m))
	}
	if d.PauseBetweenRequests > 0 {
		q = append(q, "pause "+d.PauseBetweenRequests.String()+" between requests")
	}
	if d.CloseAfterPoll {
		q = append(q, "close after poll")
	}
	if d.AddressBase == 1 {
		q = append(q, "addresses from 1")
	}
	if d.MaxConnections > 1 {
		q = append(q, fmt.Sprintf("up to %d connections", d.MaxConnections))
	}
	if !d.UnitIDCheckValue() {
		q = append(q, "any unit id in replies")
	}
	if d.FirstReadDelay > 0 {
		q = append(q, "first read "+d.FirstReadDelay.String()+" after connect")
	}
	if len(q) == 0 {
		return ""
	}
	return "; " + strings.Join(q, ", ")
}

// printSharedLinks names the serial ports and TCP addresses several Modbus
// devices share: their requests take turns, one at a time per connection.
func printSharedLinks(w io.Writer, cfg *configs.Config) {
	var keys []string
	users := map[string][]string{}
	for _, d := range cfg.Devices {
		if d.Driver != "modbus" {
			continue
		}
		key := d.Address
		if s, err := configs.ParseSerialAddress(d.Address); err == nil && !strings.HasPrefix(d.Address, "tcp://") {
			key = s.Path + " (" + strings.SplitN(d.Address, ":", 2)[0] + " " + s.String() + ")"
		}
		if users[key] == nil {
			keys = append(keys, key)
		}
		users[key] = append(users[key], fmt.Sprintf("%s (unit %d)", d.Name, d.UnitIDValue()))
	}
	header := false
	for _, k := range keys {
		if len(users[k]) < 2 {
			continue
		}
		if !header {
			fmt.Fprintf(w, "\nshared Modbus links (one request at a time per connection):\n")
			header = true
		}
		fmt.Fprintf(w, "  %s: %s\n", k, strings.Join(users[k], ", "))
	}
}

// fromTemplate says which template a device was expanded from.
func fromTemplate(d configs.Device) string {
	if d.Template == "" {
		return ""
	}
	return ", template " + d.Template
}
