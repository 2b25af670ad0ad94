package main

import (
	"fmt"
	"io"
	"log/slog"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/linegate/linegate/configs"
	"github.com/linegate/linegate/uplink"
)

func newCheckCmd(g *globals) *cobra.Command {
	var path string
	cmd := &cobra.Command{
		Use:   "check -c FILE",
		Short: "Validate a config and print its devices, tags and Modbus request plan",
		Long: `Check validates the config (every problem is listed with its file line,
device and tag), then prints the topics, every device and tag with its
normalization, and the Modbus requests of one poll cycle after coalescing.
It touches no device and no broker. Exit 0 when valid, 2 when not.`,
		Example: `  linegate check -c /etc/linegate/linegate.yaml`,
		Args:    cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			cfg, err := loadConfig(path)
			if err != nil {
				return err
			}
			return printCheck(g.stdout, cfg)
		},
	}
	cmd.Flags().StringVarP(&path, "config", "c", "", "config file (YAML)")
	return cmd
}

func printCheck(w io.Writer, cfg *configs.Config) error {
	g := cfg.Gateway
	fmt.Fprintf(w, "config %s: valid\n\n", cfg.File)
	fmt.Fprintf(w, "gateway  %s\n", g.ID)
	fmt.Fprintf(w, "topics   %s\n", uplink.Topic(cfg.Uplink.TopicPrefix, g.Site, g.Area, g.Line, "<equipment>", "<class>"))
	fmt.Fprintf(w, "brokers  %s (qos %d, max_inflight %d, client_id %s)\n", strings.Join(cfg.Uplink.Brokers, ", "), cfg.Uplink.QoSLevel(), cfg.Uplink.MaxInflight, cfg.Uplink.ClientID)
	fmt.Fprintf(w, "buffer   %s (max %s, commit every %s)\n", cfg.Buffer.Path, cfg.Buffer.MaxSize, cfg.Buffer.CommitInterval)
	if l := cfg.HTTP.ListenAddr(); l != "" {
		fmt.Fprintf(w, "http     %s\n", l)
	}

	var totalTags, totalReads int
	var readsPerSec float64
	for _, d := range cfg.Devices {
		fmt.Fprintf(w, "\ndevice %s: %s %s, every %s, timeout %s\n", d.Name, d.Driver, deviceTarget(d), d.PollInterval, d.Timeout)
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
		drv, err := newModbus(d, slog.New(slog.DiscardHandler))
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
	fmt.Fprintf(w, "\n%d device(s), %d tag(s), %d Modbus read(s) per cycle (%s reads/s)\n",
		len(cfg.Devices), totalTags, totalReads, strconv.FormatFloat(readsPerSec, 'f', 1, 64))
	return nil
}

func deviceTarget(d configs.Device) string {
	if d.Driver == "modbus" {
		return fmt.Sprintf("%s unit %d, byte order %s", d.Address, d.UnitIDValue(), d.ByteOrder)
	}
	return fmt.Sprintf("%s %s/%s, mode %s", d.Endpoint, d.SecurityPolicy, d.SecurityMode, d.Mode)
}

func tagSource(d configs.Device, t configs.Tag) string {
	if d.Driver != "modbus" {
		return t.Node
	}
	s := fmt.Sprintf("%s %d", t.Register, t.AddressValue())
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
	if f, ok := configs.DurationUnits[t.Unit]; ok && t.Class == "time" {
		parts = append(parts, fmt.Sprintf("%s → s (×%s)", t.Unit, strconv.FormatFloat(f, 'g', -1, 64)))
	}
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
