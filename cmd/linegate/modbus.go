package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/linegate/linegate/configs"
	"github.com/linegate/linegate/drivers"
	"github.com/linegate/linegate/drivers/modbus"
)

func newModbusCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "modbus",
		Short: "Read, watch, scan and (explicitly) write a Modbus device, without a config",
		Long: `Diagnostics for a Modbus device, by its address alone: tcp://host:port or
host:port (port 502 if omitted). Addresses are 0-based protocol addresses, as
in the config (mbpoll's -r is one more). Values are decoded by the same code
as the gateway's, so what "modbus read" shows is what "run" publishes.`,
		Args: cobra.NoArgs,
		RunE: needSubcommand("modbus: name a subcommand: read, watch, scan or write"),
	}
	cmd.AddCommand(newModbusReadCmd(g), newModbusWatchCmd(g), newModbusScanCmd(g), newModbusWriteCmd(g))
	return cmd
}

// modbusConn holds the flags that reach a device.
type modbusConn struct {
	unit    int
	timeout time.Duration
}

func (c *modbusConn) addFlags(fs *pflag.FlagSet, timeout time.Duration) {
	fs.IntVarP(&c.unit, "unit", "u", 1, "unit id (slave id), 0..255")
	fs.DurationVar(&c.timeout, "timeout", timeout, "timeout of each request")
}

// modbusURL accepts host:port as well as tcp://host:port.
func modbusURL(arg string) string {
	if strings.Contains(arg, "://") {
		return arg
	}
	return "tcp://" + arg
}

// driver builds a driver for ad-hoc tags; a bad flag is a usage error.
func (c *modbusConn) driver(addr string, unit int, byteOrder string, tags []modbus.Tag) (*modbus.Driver, error) {
	if unit < 0 || unit > 255 {
		return nil, usageError(fmt.Errorf("--unit %d: want 0..255", unit))
	}
	if c.timeout <= 0 {
		return nil, usageError(fmt.Errorf("--timeout %v: want more than 0", c.timeout))
	}
	d, err := modbus.New(modbus.Config{
		Address: modbusURL(addr), UnitID: byte(unit), Timeout: c.timeout, ByteOrder: byteOrder, Tags: tags,
	})
	if err != nil {
		return nil, usageError(err)
	}
	return d, nil
}

// readSpec is what to read: count values of one type from address on.
type readSpec struct {
	register  string
	address   int
	count     int
	typ       string
	length    int
	byteOrder string
}

func (s *readSpec) addFlags(fs *pflag.FlagSet) {
	fs.StringVarP(&s.register, "register", "r", "holding", "holding | input | coil | discrete")
	fs.IntVarP(&s.address, "address", "a", 0, "first address, 0-based")
	fs.IntVarP(&s.count, "count", "n", 1, "number of values of --type")
	fs.StringVarP(&s.typ, "type", "t", "", "bool int16 uint16 int32 uint32 int64 uint64 float32 float64 string (default uint16, bool for coil/discrete)")
	fs.IntVar(&s.length, "length", 0, "registers per string, for --type string")
	fs.StringVarP(&s.byteOrder, "byte-order", "b", "ABCD", "ABCD | CDAB | BADC | DCBA, for 32/64-bit values")
}

func (s *readSpec) bits() bool { return s.register == "coil" || s.register == "discrete" }

// tags turns the spec into driver tags: the count typed values, then (for
// registers) one raw uint16 per register, which the planner merges into the
// same request. Raw words are read ABCD: as they are on the wire.
func (s *readSpec) tags() ([]modbus.Tag, error) {
	if s.typ == "" {
		s.typ = "uint16"
		if s.bits() {
			s.typ = "bool"
		}
	}
	// The flags are checked here, by name: the driver would name its
	// ad-hoc tag instead ("modbus/0: type ...").
	if !slices.Contains(configs.Registers, s.register) {
		return nil, fmt.Errorf("--register %q: want %s", s.register, strings.Join(configs.Registers, ", "))
	}
	if !slices.Contains(configs.Types, s.typ) {
		return nil, fmt.Errorf("--type %q: want %s", s.typ, strings.Join(configs.Types, ", "))
	}
	if s.bits() && s.typ != "bool" {
		return nil, fmt.Errorf("--type %s: a %s is one bit, want bool", s.typ, s.register)
	}
	if !slices.Contains(configs.ByteOrders, strings.ToUpper(s.byteOrder)) {
		return nil, fmt.Errorf("--byte-order %q: want %s", s.byteOrder, strings.Join(configs.ByteOrders, ", "))
	}
	if s.typ == "string" && (s.length < 1 || s.length > 125) {
		return nil, fmt.Errorf("--type string needs --length 1..125 (registers)")
	}
	if s.address < 0 || s.address > 0xFFFF {
		return nil, fmt.Errorf("--address %d: want 0..65535", s.address)
	}
	if s.count < 1 || s.count > 2000 {
		return nil, fmt.Errorf("--count %d: want 1..2000", s.count)
	}
	w := s.width()
	if s.address+s.count*w > 1<<16 {
		return nil, fmt.Errorf("--address %d --count %d runs past 65535", s.address, s.count)
	}
	var tags []modbus.Tag
	for i := range s.count {
		a := s.address + i*w
		tags = append(tags, modbus.Tag{Name: strconv.Itoa(a), Register: s.register, Address: uint16(a), Type: s.typ, Length: s.length, Bit: -1})
	}
	if !s.bits() {
		for i := range s.count * w {
			tags = append(tags, modbus.Tag{Name: "raw", Register: s.register, Address: uint16(s.address + i), Type: "uint16", Bit: -1, ByteOrder: "ABCD"})
		}
	}
	return tags, nil
}

func (s *readSpec) width() int {
	if s.bits() {
		return 1
	}
	return max(configs.RegisterWidth(s.typ, s.length), 1)
}

func (s *readSpec) describe(addr string, unit int) string {
	d := fmt.Sprintf("%s unit %d, %s %d", modbusURL(addr), unit, s.register, s.address)
	if n := s.count * s.width(); n > 1 {
		d += fmt.Sprintf("..%d", s.address+n-1)
	}
	d += ", " + s.typ
	if !s.bits() && s.width() > 1 {
		d += " " + strings.ToUpper(s.byteOrder)
	}
	return d
}

// readRow is one value of a read.
type readRow struct {
	Address int      `json:"address"`
	Raw     []uint16 `json:"raw,omitempty"`
	Value   any      `json:"value"`
	Error   string   `json:"error,omitempty"`
}

// readValues reads once; failed is the number of values that are not good.
func readValues(ctx context.Context, d *modbus.Driver, s *readSpec, samples []drivers.Sample) (rows []readRow, failed int, err error) {
	err = d.Read(ctx, samples)
	w := s.width()
	for i := range s.count {
		r := readRow{Address: s.address + i*w}
		smp := samples[i]
		if smp.Quality != drivers.Good {
			failed++
			if smp.Err != nil {
				r.Error = smp.Err.Error()
			}
		} else {
			r.Value = jsonValue(smp.Value, s.typ)
		}
		if !s.bits() && smp.Quality == drivers.Good {
			for j := range w {
				if v, ok := samples[s.count+i*w+j].Value.(int64); ok {
					r.Raw = append(r.Raw, uint16(v))
				}
			}
		}
		rows = append(rows, r)
	}
	return rows, failed, err
}

// jsonValue renders floats with the precision of their type (a float32
// shows as 3.1415927, not 3.1415927410125732).
func jsonValue(v any, typ string) any {
	if f, ok := v.(float64); ok {
		bits := 64
		if typ == "float32" {
			bits = 32
		}
		if s := strconv.FormatFloat(f, 'g', -1, bits); !strings.ContainsAny(s, "NI") {
			return json.Number(s)
		}
		return strconv.FormatFloat(f, 'g', -1, bits) // NaN, ±Inf: not JSON numbers
	}
	return v
}

func formatValue(v any) string {
	switch v := v.(type) {
	case nil:
		return "-"
	case string:
		return strconv.Quote(v)
	}
	return fmt.Sprint(v)
}

func formatRaw(words []uint16) string {
	parts := make([]string, len(words))
	for i, w := range words {
		parts[i] = fmt.Sprintf("0x%04X", w)
	}
	return strings.Join(parts, " ")
}

// readLines renders rows as aligned table lines.
func readLines(rows []readRow, bits bool) []string {
	var b strings.Builder
	tw := tabwriter.NewWriter(&b, 2, 4, 2, ' ', 0)
	if bits {
		fmt.Fprintln(tw, "ADDRESS\tVALUE")
	} else {
		fmt.Fprintln(tw, "ADDRESS\tRAW\tVALUE")
	}
	for _, r := range rows {
		val := formatValue(r.Value)
		if r.Error != "" {
			val = "ERROR " + r.Error
		}
		if bits {
			fmt.Fprintf(tw, "%d\t%s\n", r.Address, val)
		} else {
			fmt.Fprintf(tw, "%d\t%s\t%s\n", r.Address, dash(formatRaw(r.Raw)), val)
		}
	}
	tw.Flush()
	return strings.Split(strings.TrimSuffix(b.String(), "\n"), "\n")
}

type readDoc struct {
	Device    string    `json:"device"`
	Unit      int       `json:"unit"`
	Register  string    `json:"register"`
	Type      string    `json:"type"`
	ByteOrder string    `json:"byte_order,omitempty"`
	TS        time.Time `json:"ts"`
	Values    []readRow `json:"values"`
}

// modbusReadOptions are the flags of `linegate modbus read`.
type modbusReadOptions struct {
	g      *globals
	conn   modbusConn
	spec   readSpec
	asJSON bool
}

func newModbusReadCmd(g *globals) *cobra.Command {
	o := &modbusReadOptions{g: g}
	cmd := &cobra.Command{
		Use:   "read ADDRESS",
		Short: "Read registers or bits once; print raw words and decoded values",
		Long: `Read reads --count values of --type from --address on, in one request where
the protocol allows, and prints each value with the raw words it came from.
Exit 0 when every value was read, 1 when the device did not answer or refused
(a Modbus exception is printed with its name), 2 on a bad flag.`,
		Example: `  linegate modbus read 10.0.0.21:502 --unit 1 --address 0 --count 10
  linegate modbus read tcp://10.0.0.21 -r holding -a 0 -n 2 -t float32 -b CDAB
  linegate modbus read 10.0.0.21 -r discrete -a 0 -n 8
  linegate modbus read 10.0.0.21 -a 50 -t string --length 4 --json`,
		Args: exactArgs(1, "ADDRESS (tcp://host:port or host:port)"),
		RunE: o.run,
	}
	o.conn.addFlags(cmd.Flags(), time.Second)
	o.spec.addFlags(cmd.Flags())
	cmd.Flags().BoolVar(&o.asJSON, "json", false, "print JSON")
	return cmd
}

func (o *modbusReadOptions) run(cmd *cobra.Command, args []string) error {
	tags, err := o.spec.tags()
	if err != nil {
		return usageError(err)
	}
	d, err := o.conn.driver(args[0], o.conn.unit, o.spec.byteOrder, tags)
	if err != nil {
		return err
	}
	defer d.Close()
	rows, failed, err := readValues(cmd.Context(), d, &o.spec, make([]drivers.Sample, len(tags)))
	if err != nil {
		return fmt.Errorf("%s: %w", o.spec.describe(args[0], o.conn.unit), err)
	}
	if o.asJSON {
		if err := writeJSON(o.g.stdout, o.spec.doc(args[0], o.conn.unit, rows)); err != nil {
			return err
		}
	} else {
		fmt.Fprintln(o.g.stdout, o.spec.describe(args[0], o.conn.unit))
		fmt.Fprintln(o.g.stdout, strings.Join(readLines(rows, o.spec.bits()), "\n"))
	}
	if failed > 0 {
		return &exitError{exitFailed, fmt.Errorf("%d of %d value(s) not read", failed, len(rows))}
	}
	return nil
}

func (s *readSpec) doc(addr string, unit int, rows []readRow) readDoc {
	d := readDoc{Device: modbusURL(addr), Unit: unit, Register: s.register, Type: s.typ, TS: time.Now().UTC(), Values: rows}
	if !s.bits() {
		d.ByteOrder = strings.ToUpper(s.byteOrder)
	}
	return d
}

// modbusWatchOptions are the flags of `linegate modbus watch`.
type modbusWatchOptions struct {
	g        *globals
	conn     modbusConn
	spec     readSpec
	asJSON   bool
	interval time.Duration
	cycles   int
}

func newModbusWatchCmd(g *globals) *cobra.Command {
	o := &modbusWatchOptions{g: g}
	cmd := &cobra.Command{
		Use:   "watch ADDRESS",
		Short: "Read the same values again and again (live table)",
		Long: `Watch reads like "modbus read" every --interval until Ctrl-C. On a terminal
the table is redrawn in place; piped, every read prints its lines with a time
stamp (with --json: one JSON object per read). A read that fails is shown and
retried; the device is reconnected with the gateway's backoff.
Exit 0 after Ctrl-C or --cycles, 2 on a bad flag.`,
		Example: `  linegate modbus watch 10.0.0.21 -a 0 -n 2 -t float32 --interval 500ms
  linegate modbus watch 10.0.0.21 -r coil -a 0 -n 16 | tee coils.log`,
		Args: exactArgs(1, "ADDRESS (tcp://host:port or host:port)"),
		RunE: o.run,
	}
	o.conn.addFlags(cmd.Flags(), time.Second)
	o.spec.addFlags(cmd.Flags())
	cmd.Flags().DurationVar(&o.interval, "interval", time.Second, "time between reads")
	cmd.Flags().IntVar(&o.cycles, "cycles", 0, "stop after this many reads (0 = until Ctrl-C)")
	cmd.Flags().BoolVar(&o.asJSON, "json", false, "print one JSON object per read")
	return cmd
}

func (o *modbusWatchOptions) run(cmd *cobra.Command, args []string) error {
	if o.interval <= 0 {
		return usageError(fmt.Errorf("--interval %v: want more than 0", o.interval))
	}
	tags, err := o.spec.tags()
	if err != nil {
		return usageError(err)
	}
	d, err := o.conn.driver(args[0], o.conn.unit, o.spec.byteOrder, tags)
	if err != nil {
		return err
	}
	defer d.Close()
	ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	view := newLiveView(o.g.stdout)
	samples := make([]drivers.Sample, len(tags))
	tick := time.NewTicker(o.interval)
	defer tick.Stop()
	for n := 1; ; n++ {
		rows, _, err := readValues(ctx, d, &o.spec, samples)
		if ctx.Err() != nil {
			return nil
		}
		now := time.Now()
		switch {
		case o.asJSON:
			doc := o.spec.doc(args[0], o.conn.unit, rows)
			if err := json.NewEncoder(o.g.stdout).Encode(doc); err != nil {
				return err
			}
		case view.tty:
			head := fmt.Sprintf("%s  every %s  %s", o.spec.describe(args[0], o.conn.unit), o.interval, now.Format("15:04:05"))
			if err != nil {
				head += "  ERROR " + err.Error()
			}
			view.frame(append([]string{head}, readLines(rows, o.spec.bits())...))
		default:
			lines := readLines(rows, o.spec.bits())[1:]
			for _, l := range lines {
				fmt.Fprintf(o.g.stdout, "%s  %s\n", now.Format("15:04:05.000"), l)
			}
		}
		if o.cycles > 0 && n >= o.cycles {
			return nil
		}
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
	}
}

// modbusWriteOptions are the flags of `linegate modbus write`.
type modbusWriteOptions struct {
	g          *globals
	conn       modbusConn
	register   string
	address    int
	values     string
	typ        string
	byteOrder  string
	length     int
	allowWrite bool
	yes        bool
}

func newModbusWriteCmd(g *globals) *cobra.Command {
	o := &modbusWriteOptions{g: g}
	cmd := &cobra.Command{
		Use:   "write ADDRESS --allow-write",
		Short: "Write holding registers or coils (needs --allow-write)",
		Long: `Write writes values to a running machine: holding registers (raw words,
decimal or 0x hex; or values of --type in --byte-order, as "read" takes them)
or coils (1/0, true/false, on/off). It refuses without --allow-write, asks for
confirmation on a terminal unless --yes (and refuses when it cannot ask), logs
a warning naming the device, address and values, and reads the values back:
a read-back that differs from what was written fails. One register uses
function 6 (or 5 for a coil), more use 16 (or 15). Exit 0 written and read
back, 1 refused by the device, not answered or read back different, 2 not
allowed or bad flags.`,
		Example: `  linegate modbus write 10.0.0.21 --unit 1 --address 100 --values 1500 --allow-write
  linegate modbus write 10.0.0.21 -a 20 -t float32 -b CDAB --values 12.5 --allow-write --yes
  linegate modbus write rtu:///dev/ttyUSB0?baud=9600 -u 3 -a 50 -t string --length 4 --values ABC-01 --allow-write
  linegate modbus write 10.0.0.21 -r coil -a 8 --values on --allow-write --yes`,
		Args: exactArgs(1, "ADDRESS (tcp://host:port, host:port or rtu:///dev/ttyUSB0?...)"),
		RunE: o.run,
	}
	o.conn.addFlags(cmd.Flags(), time.Second)
	cmd.Flags().StringVarP(&o.register, "register", "r", "holding", "holding | coil")
	cmd.Flags().IntVarP(&o.address, "address", "a", 0, "first address, 0-based")
	cmd.Flags().StringVar(&o.values, "values", "", "comma-separated: words (1500, 0x05DC), values of --type (12.5,-3), coils (1, 0, on, off); a string is one value")
	cmd.Flags().StringVarP(&o.typ, "type", "t", "", "bool int16 uint16 int32 uint32 int64 uint64 float32 float64 string (default: raw words)")
	cmd.Flags().StringVarP(&o.byteOrder, "byte-order", "b", "ABCD", "ABCD | CDAB | BADC | DCBA, for 32/64-bit values (BADC/DCBA swap string bytes)")
	cmd.Flags().IntVar(&o.length, "length", 0, "registers of a --type string value")
	cmd.Flags().BoolVar(&o.allowWrite, "allow-write", false, "allow writing to the device")
	cmd.Flags().BoolVarP(&o.yes, "yes", "y", false, "do not ask for confirmation")
	return cmd
}

func (o *modbusWriteOptions) run(cmd *cobra.Command, args []string) error {
	log, err := o.g.logger()
	if err != nil {
		return err
	}
	if !o.allowWrite {
		return usageError(errors.New("modbus write changes a running machine: add --allow-write to do it"))
	}
	if o.register != "holding" && o.register != "coil" {
		return usageError(fmt.Errorf("--register %q: only holding and coil are writable", o.register))
	}
	if o.address < 0 || o.address > 0xFFFF {
		return usageError(fmt.Errorf("--address %d: want 0..65535", o.address))
	}
	if o.register == "coil" && o.typ != "" && o.typ != "bool" {
		return usageError(fmt.Errorf("--type %s: coils are bool", o.typ))
	}
	var words []uint16
	var bits []bool
	// spec reads the values back by their type; nil: raw words.
	var spec *readSpec
	if o.register == "holding" && o.typ != "" {
		var n int
		if words, n, err = encodeWriteValues(o.typ, o.byteOrder, o.length, o.values); err != nil {
			return usageError(err)
		}
		spec = &readSpec{register: "holding", address: o.address, count: n, typ: o.typ, length: o.length, byteOrder: o.byteOrder}
	} else if words, bits, err = parseWriteValues(o.register, o.values); err != nil {
		return usageError(err)
	}
	if o.address+len(words)+len(bits) > 1<<16 {
		return usageError(fmt.Errorf("--address %d: %d values run past 65535", o.address, len(words)+len(bits)))
	}
	var tags []modbus.Tag
	if spec != nil {
		if tags, err = spec.tags(); err != nil {
			return usageError(err)
		}
	}
	d, err := o.conn.driver(args[0], o.conn.unit, o.byteOrder, tags)
	if err != nil {
		return err
	}
	defer d.Close()
	what := fmt.Sprintf("%s unit %d: write %s %d = %s", modbusURL(args[0]), o.conn.unit, o.register, o.address, o.values)
	if spec != nil {
		what += " (" + o.typ
		if spec.width() > 1 && o.typ != "string" {
			what += " " + strings.ToUpper(o.byteOrder)
		}
		what += ")"
	}
	if !o.yes {
		ok, err := confirmAction(cmd.InOrStdin(), o.g.stderr, what, "Write to the device?")
		if err != nil {
			return err
		}
		if !ok {
			return &exitError{exitFailed, errors.New("not written")}
		}
	}
	attrs := []any{"device", modbusURL(args[0]), "unit", o.conn.unit, "register", o.register, "address", o.address, "values", o.values}
	if spec != nil {
		attrs = append(attrs, "type", o.typ, "byte_order", strings.ToUpper(o.byteOrder))
	}
	log.Warn("modbus write", attrs...)
	ctx := cmd.Context()
	var back string
	same := true
	switch {
	case spec != nil:
		if err := d.WriteWords(ctx, uint16(o.address), words); err != nil {
			return err
		}
		rows, failed, err := readValues(ctx, d, spec, make([]drivers.Sample, len(tags)))
		for _, r := range rows {
			if err == nil && failed > 0 && r.Error != "" {
				err = errors.New(r.Error)
			}
		}
		if err != nil {
			return fmt.Errorf("written; read back: %w", err)
		}
		var got []uint16
		parts := make([]string, len(rows))
		for i, r := range rows {
			got = append(got, r.Raw...)
			parts[i] = formatRaw(r.Raw) + " = " + formatValue(r.Value)
		}
		back = strings.Join(parts, ", ")
		same = slices.Equal(got, words)
	case o.register == "holding":
		if err := d.WriteWords(ctx, uint16(o.address), words); err != nil {
			return err
		}
		got, err := d.ReadWords(ctx, "holding", uint16(o.address), uint16(len(words)))
		if err != nil {
			return fmt.Errorf("written; read back: %w", err)
		}
		back = formatRaw(got)
		same = slices.Equal(got, words)
	default:
		if err := d.WriteBits(ctx, uint16(o.address), bits); err != nil {
			return err
		}
		got, err := d.ReadBits(ctx, "coil", uint16(o.address), uint16(len(bits)))
		if err != nil {
			return fmt.Errorf("written; read back: %w", err)
		}
		back = fmt.Sprint(got)
		same = slices.Equal(got, bits)
	}
	fmt.Fprintf(o.g.stdout, "%s: written; read back %s\n", what, back)
	if !same {
		return &exitError{exitFailed, errors.New("the device reads back other values than those written")}
	}
	return nil
}

// encodeWriteValues encodes --values as values of typ: comma-separated,
// except a string, which is one value (commas included). n is how many.
func encodeWriteValues(typ, byteOrder string, length int, s string) (words []uint16, n int, err error) {
	if strings.TrimSpace(s) == "" && typ != "string" {
		return nil, 0, errors.New("--values: give at least one value")
	}
	texts := strings.Split(s, ",")
	if typ == "string" {
		texts = []string{s}
	}
	for _, text := range texts {
		w, err := modbus.EncodeValue(typ, byteOrder, length, text)
		if err != nil {
			return nil, 0, fmt.Errorf("--values: %w", err)
		}
		words = append(words, w...)
	}
	if len(words) > 123 {
		return nil, 0, fmt.Errorf("--values: %d registers, at most 123 in one write", len(words))
	}
	return words, len(texts), nil
}

func parseWriteValues(register, s string) ([]uint16, []bool, error) {
	if strings.TrimSpace(s) == "" {
		return nil, nil, errors.New("--values: give at least one value")
	}
	var words []uint16
	var bits []bool
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		if register == "coil" {
			switch strings.ToLower(f) {
			case "1", "true", "on":
				bits = append(bits, true)
			case "0", "false", "off":
				bits = append(bits, false)
			default:
				return nil, nil, fmt.Errorf("--values %q: a coil is 1, 0, true, false, on or off", f)
			}
			continue
		}
		v, err := strconv.ParseInt(f, 0, 32)
		if err != nil || v < -32768 || v > 0xFFFF {
			return nil, nil, fmt.Errorf("--values %q: want a 16-bit number (-32768..65535 or 0x0000..0xFFFF)", f)
		}
		words = append(words, uint16(v))
	}
	return words, bits, nil
}

// exactArgs is cobra.ExactArgs with a message that names the argument.
func exactArgs(n int, what string) cobra.PositionalArgs {
	return func(_ *cobra.Command, args []string) error {
		if len(args) != n {
			return usageError(fmt.Errorf("want %s, got %d argument(s)", what, len(args)))
		}
		return nil
	}
}
