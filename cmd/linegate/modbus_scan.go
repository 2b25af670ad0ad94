package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/linegate/linegate/drivers/modbus"
)

// modbusScanOptions are the flags of `linegate modbus scan`.
type modbusScanOptions struct {
	g           *globals
	conn        modbusConn
	units       string
	addresses   string
	tables      string
	step        int
	maxRequests int
	unitsOnly   bool
	asJSON      bool
	asYAML      bool
	name        string
}

func newModbusScanCmd(g *globals) *cobra.Command {
	o := &modbusScanOptions{g: g}
	cmd := &cobra.Command{
		Use:   "scan ADDRESS",
		Short: "Find which unit ids answer and which address ranges they serve",
		Long: `Scan asks every unit id of --units for holding register 0 (a refusal counts
as an answer: the unit is there), then, for each unit that answered, finds the
readable ranges of each table within --addresses: it reads one address every
--step, and bisects between a readable and an unreadable probe to find each
edge exactly. A range shorter than --step between two probes can be missed;
lower --step to look closer. At most --max-requests reads per table.

A unit id that does not answer costs one --timeout, so scanning 1-247 against
a gateway with nothing behind it takes 247 timeouts. Exit 0 when at least one
unit answered, 1 when none did or the device is unreachable, 2 on a bad flag.
With --yaml it prints a device block per unit that answered, one raw tag per
readable register and bit (at most 250), to rename, type and scale.`,
		Example: `  linegate modbus scan 10.0.0.21
  linegate modbus scan 10.0.0.21 --units 1-10 --timeout 100ms --units-only
  linegate modbus scan 10.0.0.21 --units 1 --addresses 0-65535 --step 500 --json`,
		Args: exactArgs(1, "ADDRESS (tcp://host:port or host:port)"),
		RunE: o.run,
	}
	o.conn.addFlags(cmd.Flags(), 200*time.Millisecond)
	cmd.Flags().StringVar(&o.units, "units", "1-247", "unit ids to try: 1-247, or a list like 1,2,10-20")
	cmd.Flags().StringVar(&o.addresses, "addresses", "0-9999", "address range to search in each table")
	cmd.Flags().StringVar(&o.tables, "tables", "holding,input,coil,discrete", "tables to search")
	cmd.Flags().IntVar(&o.step, "step", 100, "distance between probes")
	cmd.Flags().IntVar(&o.maxRequests, "max-requests", 1000, "reads per table at most")
	cmd.Flags().BoolVar(&o.unitsOnly, "units-only", false, "only find the unit ids, not their ranges")
	cmd.Flags().BoolVar(&o.asJSON, "json", false, "print JSON")
	cmd.Flags().BoolVar(&o.asYAML, "yaml", false, "print a device block per unit, with a raw tag per readable address")
	cmd.Flags().StringVar(&o.name, "name", "plc", "with --yaml: the device name (with _u<unit> when several units answer)")
	return cmd
}

func (o *modbusScanOptions) run(cmd *cobra.Command, args []string) error {
	ur, err := parseRanges(o.units, 0, 255)
	if err != nil {
		return usageError(fmt.Errorf("--units %w", err))
	}
	ar, err := parseRanges(o.addresses, 0, 0xFFFF)
	if err != nil || len(ar) != 1 {
		return usageError(fmt.Errorf("--addresses %q: want one range N-M within 0..65535", o.addresses))
	}
	var tbls []string
	for _, t := range strings.Split(o.tables, ",") {
		t = strings.TrimSpace(t)
		if !slices.Contains([]string{"holding", "input", "coil", "discrete"}, t) {
			return usageError(fmt.Errorf("--tables %q: want holding, input, coil, discrete", t))
		}
		tbls = append(tbls, t)
	}
	if o.step < 1 || o.maxRequests < 1 {
		return usageError(errors.New("--step and --max-requests: want at least 1"))
	}
	if _, err := o.conn.driver(args[0], 1, "", nil); err != nil {
		return err // checks the address and --timeout
	}
	sc := &scanner{conn: o.conn, addr: args[0], lo: ar[0][0], hi: ar[0][1], step: o.step, budget: o.maxRequests, tables: tbls, ranges: !o.unitsOnly}
	var progress io.Writer = io.Discard
	if isTerminal(o.g.stderr) && !o.asJSON && !o.asYAML {
		progress = o.g.stderr
	}
	doc, err := sc.run(cmd.Context(), ur, progress)
	if err != nil {
		return err
	}
	if o.asYAML {
		if err := printScanYAML(o.g.stdout, doc, o.name); err != nil {
			return err
		}
	} else if o.asJSON {
		if err := writeJSON(o.g.stdout, doc); err != nil {
			return err
		}
	} else {
		printScan(o.g.stdout, doc, o.unitsOnly)
	}
	if len(doc.Units) == 0 {
		return &exitError{exitFailed, fmt.Errorf("no unit id of %s answered", o.units)}
	}
	return nil
}

type scanDoc struct {
	Device    string     `json:"device"`
	Addresses [2]int     `json:"addresses"`
	Units     []scanUnit `json:"units"`
	Silent    []int      `json:"silent"` // unit ids that did not answer
}

type scanUnit struct {
	Unit   int         `json:"unit"`
	Tables []scanTable `json:"tables,omitempty"`
}

type scanTable struct {
	Table     string   `json:"table"`
	Ranges    [][2]int `json:"ranges"` // inclusive
	Requests  int      `json:"requests"`
	Truncated bool     `json:"truncated,omitempty"` // --max-requests reached
	Error     string   `json:"error,omitempty"`     // why the search stopped
}

type scanner struct {
	conn         modbusConn
	addr         string
	lo, hi, step int
	budget       int
	tables       []string
	ranges       bool
}

func (s *scanner) run(ctx context.Context, units [][2]int, progress io.Writer) (scanDoc, error) {
	doc := scanDoc{Device: modbusURL(s.addr), Addresses: [2]int{s.lo, s.hi}, Units: []scanUnit{}, Silent: []int{}}
	for _, r := range units {
		for u := r[0]; u <= r[1]; u++ {
			if err := ctx.Err(); err != nil {
				return doc, err
			}
			fmt.Fprintf(progress, "\runit %d ...", u)
			su, answered, err := s.unit(ctx, u)
			if err != nil {
				fmt.Fprint(progress, "\r\x1b[2K")
				return doc, err
			}
			if answered {
				doc.Units = append(doc.Units, su)
			} else {
				doc.Silent = append(doc.Silent, u)
			}
		}
	}
	fmt.Fprint(progress, "\r\x1b[2K")
	return doc, nil
}

// unit probes one unit id; err only when the device itself is unreachable.
func (s *scanner) unit(ctx context.Context, id int) (scanUnit, bool, error) {
	d, err := s.conn.driver(s.addr, id, "", nil)
	if err != nil {
		return scanUnit{}, false, err
	}
	defer d.Close()
	su := scanUnit{Unit: id}
	_, err = d.ReadWords(ctx, "holding", 0, 1)
	var oe *net.OpError
	var ex *modbus.Exception
	switch {
	case errors.As(err, &oe) && oe.Op == "dial":
		return su, false, fmt.Errorf("%s: %w", modbusURL(s.addr), err)
	case errors.As(err, &ex) && (ex.Code == 10 || ex.Code == 11):
		return su, false, nil // a gateway saying nothing is behind this id
	case err != nil && ex == nil:
		return su, false, nil // no answer
	}
	if !s.ranges {
		return su, true, nil
	}
	for _, t := range s.tables {
		su.Tables = append(su.Tables, s.table(ctx, d, t))
	}
	return su, true, nil
}

// table finds the readable ranges of one table, modelling each address as
// readable or not on its own (a one-value read).
func (s *scanner) table(ctx context.Context, d *modbus.Driver, table string) scanTable {
	st := scanTable{Table: table, Ranges: [][2]int{}}
	var stop error
	readable := func(a int) bool {
		if stop != nil {
			return false
		}
		if st.Requests >= s.budget {
			st.Truncated = true
			stop = errors.New("request budget spent")
			return false
		}
		st.Requests++
		var err error
		if table == "coil" || table == "discrete" {
			_, err = d.ReadBits(ctx, table, uint16(a), 1)
		} else {
			_, err = d.ReadWords(ctx, table, uint16(a), 1)
		}
		var ex *modbus.Exception
		switch {
		case err == nil:
			return true
		case errors.As(err, &ex):
			if ex.Code == 1 {
				stop = err // the device has no such table
			}
			return false
		}
		stop = err
		return false
	}
	// edge returns the first address in (a, b] whose state differs from
	// a's, given that b's does.
	edge := func(a, b int, aState bool) int {
		for b-a > 1 && stop == nil {
			m := a + (b-a)/2
			if readable(m) == aState {
				a = m
			} else {
				b = m
			}
		}
		return b
	}
	prev, prevOK := s.lo, readable(s.lo)
	start := -1
	if prevOK {
		start = s.lo
	}
	for a := s.lo + s.step; stop == nil; a += s.step {
		if a > s.hi {
			a = s.hi
		}
		if a == prev {
			break
		}
		ok := readable(a)
		if stop != nil {
			break
		}
		if ok != prevOK {
			e := edge(prev, a, prevOK)
			if prevOK {
				st.Ranges = append(st.Ranges, [2]int{start, e - 1})
				start = -1
			} else {
				start = e
			}
		}
		prev, prevOK = a, ok
	}
	if start >= 0 {
		// Readable up to the last probe at least (all of it unless the
		// search stopped early, which Truncated or Error then says).
		st.Ranges = append(st.Ranges, [2]int{start, prev})
	}
	if stop != nil && !st.Truncated {
		st.Error = stop.Error()
	}
	return st
}

func printScan(w io.Writer, doc scanDoc, unitsOnly bool) {
	fmt.Fprintf(w, "%s, addresses %d-%d\n", doc.Device, doc.Addresses[0], doc.Addresses[1])
	var ids []int
	for _, u := range doc.Units {
		ids = append(ids, u.Unit)
		if unitsOnly {
			fmt.Fprintf(w, "unit %d: answers\n", u.Unit)
			continue
		}
		fmt.Fprintf(w, "unit %d: answers\n", u.Unit)
		for _, t := range u.Tables {
			var rs []string
			for _, r := range t.Ranges {
				if r[0] == r[1] {
					rs = append(rs, fmt.Sprint(r[0]))
				} else {
					rs = append(rs, fmt.Sprintf("%d-%d", r[0], r[1]))
				}
			}
			line := strings.Join(rs, ", ")
			if line == "" {
				line = "nothing readable"
			}
			switch {
			case t.Truncated:
				line += fmt.Sprintf(" (stopped after %d reads: --max-requests)", t.Requests)
			case t.Error != "":
				line += " (stopped: " + t.Error + ")"
			}
			fmt.Fprintf(w, "  %-9s %s\n", t.Table, line)
		}
	}
	if len(doc.Silent) > 0 {
		fmt.Fprintf(w, "no answer: %s\n", formatRanges(doc.Silent))
	}
	fmt.Fprintf(w, "%d unit(s) answer", len(ids))
	if len(ids) > 0 {
		fmt.Fprintf(w, ": %s", formatRanges(ids))
	}
	fmt.Fprintln(w)
}
