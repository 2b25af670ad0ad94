package main

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"github.com/linegate/linegate/cmd/internal/tagimport"
	"github.com/linegate/linegate/configs"
)

// importCmd turns a PLC tag list into a device block.
type importCmd struct {
	g          *globals
	format     string
	name       string
	address    string
	unit       int
	endpoint   string
	nodePrefix string
	byteOrder  string
	config     string
}

func newImportCmd(g *globals) *cobra.Command {
	c := &importCmd{g: g}
	cmd := &cobra.Command{
		Use:   "import FILE --name DEVICE (--address URL | --endpoint URL) [-c CONFIG]",
		Short: "Turn a PLC tag list (CSV, TIA Portal, Studio 5000, Kepware) into a device block",
		Long: `Import reads a tag list and prints a device block of linegate YAML, ready to
paste under devices:, or with -c adds it to the end of CONFIG (whose last
section must be devices:) after checking the result as "check" would.

Formats (--format, detected from the header when omitted):
  csv         generic: name, address, register, type, unit, scale, offset,
              class, bit, length, description (address: 0-based with a
              register column, else a Modicon reference 40001 / 400001.3);
              a node column instead of address makes OPC UA tags
  kepware     KEPServerEX CSV export of a Modbus device
  tia         TIA Portal PLC tag table (the "PLC Tags" sheet as CSV) → OPC UA
              nodes of an S7-1500 (ns=3;s="Name")
  studio5000  Studio 5000 Logix Designer tag export (.CSV) → OPC UA nodes
              (--node-prefix, default ns=2;s=)

Every row that is not imported is listed on stderr with its line and why;
nothing is guessed. Exit 0 when a block was written (rows may have been
left out: see stderr), 1 when no row could be imported, 2 on a bad flag or
file.`,
		Example: `  linegate import press-tags.csv --name press01 --address tcp://10.0.0.21:502 --unit 1
  linegate import PLCTags.csv --format tia --name oven02 --endpoint opc.tcp://10.0.0.5:4840 -c linegate.yaml`,
		Args: exactArgs(1, "FILE (the tag list)"),
		RunE: c.run,
	}
	f := cmd.Flags()
	f.StringVar(&c.format, "format", "", "csv | kepware | tia | studio5000 (default: detect)")
	f.StringVar(&c.name, "name", "", "device name (equipment id in topics)")
	f.StringVar(&c.address, "address", "", "Modbus device address, tcp://host:port or rtu:///dev/ttyUSB0")
	f.IntVar(&c.unit, "unit", 1, "Modbus unit id")
	f.StringVar(&c.endpoint, "endpoint", "", "OPC UA endpoint, opc.tcp://host:port")
	f.StringVar(&c.nodePrefix, "node-prefix", "", `OPC UA node id before each tag name (TIA default ns=3;s=, Studio 5000 ns=2;s=)`)
	f.StringVar(&c.byteOrder, "byte-order", "", "Modbus: ABCD | CDAB | BADC | DCBA for 32/64-bit values (default: Kepware CDAB, else the config's ABCD)")
	f.StringVarP(&c.config, "config", "c", "", "add the device to this config instead of printing it")
	return cmd
}

func (c *importCmd) run(_ *cobra.Command, args []string) error {
	if c.format != "" && !slices.Contains(tagimport.Formats, c.format) {
		return usageError(fmt.Errorf("--format %q: want %s", c.format, strings.Join(tagimport.Formats, ", ")))
	}
	if c.byteOrder != "" && !slices.Contains(configs.ByteOrders, c.byteOrder) {
		return usageError(fmt.Errorf("--byte-order %q: want %s", c.byteOrder, strings.Join(configs.ByteOrders, ", ")))
	}
	if c.name == "" {
		return usageError(errors.New("--name DEVICE is required (the equipment id in topics, e.g. press01)"))
	}
	f, err := os.Open(args[0])
	if err != nil {
		return usageError(err)
	}
	defer f.Close()
	res, err := tagimport.Parse(f, c.format, tagimport.Options{NodePrefix: c.nodePrefix})
	if err != nil {
		return usageError(fmt.Errorf("%s: %w", args[0], err))
	}
	dev := tagimport.Device{Name: c.name, Address: c.address, UnitID: c.unit, Endpoint: c.endpoint, ByteOrder: c.byteOrder}
	switch {
	case res.Driver == "modbus" && c.address == "":
		return usageError(fmt.Errorf("%s is a Modbus tag list: --address tcp://host:port is required", args[0]))
	case res.Driver == "opcua" && c.endpoint == "":
		return usageError(fmt.Errorf("%s is an OPC UA tag list: --endpoint opc.tcp://host:port is required", args[0]))
	}
	for _, s := range res.Skipped {
		fmt.Fprintf(c.g.stderr, "%s:%d: not imported: %s\n", filepath.Base(args[0]), s.Line, s.Reason)
	}
	fmt.Fprintf(c.g.stderr, "%s: %s format, %d tag(s) imported, %d row(s) not imported\n", filepath.Base(args[0]), res.Format, len(res.Tags), len(res.Skipped))
	if len(res.Tags) == 0 {
		return &exitError{exitFailed, fmt.Errorf("%s: no row could be imported", args[0])}
	}
	block := res.YAML(dev)
	if c.config == "" {
		fmt.Fprint(c.g.stdout, "devices:\n")
		_, err := c.g.stdout.Write(block)
		return err
	}
	return c.addTo(block)
}

// addTo appends the block to the config's devices list, which must be its
// last section, and writes the file only when the result loads.
func (c *importCmd) addTo(block []byte) error {
	old, err := os.ReadFile(c.config)
	if err != nil {
		return usageError(err)
	}
	text, err := appendDevice(old, block)
	if err != nil {
		return usageError(fmt.Errorf("%s: %w", c.config, err))
	}
	if _, err := configs.Parse(c.config, text, os.LookupEnv); err != nil {
		return usageError(fmt.Errorf("%s with the imported device would not be valid (not written):\n%w", c.config, err))
	}
	tmp := c.config + ".import-tmp"
	if err := os.WriteFile(tmp, text, 0o600); err != nil {
		return &exitError{exitFailed, err}
	}
	if err := os.Rename(tmp, c.config); err != nil {
		os.Remove(tmp)
		return &exitError{exitFailed, err}
	}
	fmt.Fprintf(c.g.stdout, "added device %s to %s; next: linegate check -c %s\n", c.name, c.config, c.config)
	return nil
}

// appendDevice adds block to the devices: list that ends text. An empty
// list ("devices:" or "devices: []") takes the block as its first item.
func appendDevice(text, block []byte) ([]byte, error) {
	lines := strings.Split(strings.TrimRight(string(text), "\n"), "\n")
	last := -1 // the last top-level key
	for i, l := range lines {
		if l != "" && l[0] != ' ' && l[0] != '#' && l[0] != '\t' {
			last = i
		}
	}
	if last < 0 || !strings.HasPrefix(lines[last], "devices:") {
		return nil, errors.New("its last section is not devices: (move devices: to the end, or paste the block from linegate import without -c)")
	}
	rest := strings.TrimSpace(strings.TrimPrefix(lines[last], "devices:"))
	if i := strings.Index(rest, "#"); i >= 0 {
		rest = strings.TrimSpace(rest[:i])
	}
	switch rest {
	case "", "[]":
		lines[last] = "devices:"
	default:
		return nil, errors.New("devices: is written in flow style ([...]): add the device by hand")
	}
	var b bytes.Buffer
	b.WriteString(strings.Join(lines, "\n"))
	b.WriteString("\n")
	b.Write(block)
	return b.Bytes(), nil
}
