package main

import (
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/linegate/linegate/cmd/internal/agent"
)

// printCommands lists the last commands from the MES per device, newest
// first; nothing when none came.
func printCommands(w io.Writer, doc agent.Status, now time.Time) {
	some := false
	for _, d := range doc.Devices {
		some = some || len(d.Commands) > 0
	}
	if !some {
		return
	}
	fmt.Fprintln(w, "\nCommands from the MES (newest first):")
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "  DEVICE\tTAG\tVALUE\tREAD BACK\tRESULT\tID\tWHEN\tREASON")
	for _, d := range doc.Devices {
		for _, c := range d.Commands {
			ts := c.TS
			fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", d.Name, c.Tag, optValue(c.Value), optValue(c.Readback), c.Result, c.ID, ago(&ts, now), dash(c.Error))
		}
	}
	tw.Flush()
}

func optValue(v any) string {
	if v == nil {
		return "-"
	}
	return fmt.Sprint(v)
}
