package main

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/linegate/linegate/collector"
)

// printOEE prints each OEE device's current shift, its factors, and the
// OEE of its last shifts, oldest first; nothing without OEE devices.
func printOEE(w io.Writer, list []collector.OEEStatus) {
	if len(list) == 0 {
		return
	}
	fmt.Fprintln(w, "\nOEE (current shift):")
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "  DEVICE\tSHIFT\tOEE\tAVAILABILITY\tPERFORMANCE\tQUALITY\tLAST SHIFTS\t")
	for _, d := range list {
		c := d.Current
		var last []string
		for _, f := range d.Last {
			last = append(last, f.Shift+" "+percent(f.OEE))
		}
		shift := c.Shift
		if c.Uncertain != "" {
			shift += " (uncertain)"
		}
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%s\t%s\t%s\t\n", d.Device, dash(shift), percent(c.OEE), percent(c.Availability),
			percent(c.Performance), percent(c.Quality), dash(strings.Join(last, ", ")))
	}
	tw.Flush()
	for _, d := range list {
		if why := d.Current.Uncertain; why != "" {
			fmt.Fprintf(w, "  %s: %s\n", d.Device, why)
		}
	}
}

// percent shows a factor in percent, "-" while it is not defined.
func percent(v *float64) string {
	if v == nil {
		return "-"
	}
	return fmt.Sprintf("%.1f%%", 100**v)
}
