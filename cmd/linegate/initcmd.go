package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/linegate/linegate/configs"
)

// starterName is the embedded example that init writes and example prints.
const starterName = "linegate.yaml"

// initCmd writes the commented starter config.
type initCmd struct {
	g         *globals
	path      string
	force     bool
	gateway   string
	broker    string
	buffer    string
	noDevices bool
}

func newInitCmd(g *globals) *cobra.Command {
	c := &initCmd{g: g}
	cmd := &cobra.Command{
		Use:   "init [-c FILE] [--force]",
		Short: "Write a commented starter config (linegate.yaml)",
		Long: `Init writes the annotated example config, every key explained, to FILE
(default linegate.yaml in the current folder). It never overwrites a file
unless --force. Edit gateway, uplink.brokers and the devices (or paste what
"linegate import", "linegate opcua browse --yaml" or "linegate modbus scan
--yaml" print), then run "linegate check -c FILE".`,
		Example: `  linegate init
  linegate init -c /etc/linegate/linegate.yaml`,
		Args: cobra.NoArgs,
		RunE: c.run,
	}
	cmd.Flags().StringVarP(&c.path, "config", "c", "linegate.yaml", "file to write")
	cmd.Flags().BoolVar(&c.force, "force", false, "overwrite FILE if it exists")
	cmd.Flags().StringVar(&c.gateway, "gateway", "", "gateway.id (default line1-pc)")
	cmd.Flags().StringVar(&c.broker, "broker", "", "the MQTT broker, uplink.brokers (default tcp://mes-broker:1883)")
	cmd.Flags().StringVar(&c.buffer, "buffer", "", "buffer.path (default /var/lib/linegate/buffer.db)")
	cmd.Flags().BoolVar(&c.noDevices, "no-devices", false, `leave devices: empty, for "linegate import -c FILE" to fill`)
	return cmd
}

func (c *initCmd) run(*cobra.Command, []string) error {
	text, err := c.starter()
	if err != nil {
		return err
	}
	flags := os.O_WRONLY | os.O_CREATE | os.O_EXCL
	if c.force {
		flags = os.O_WRONLY | os.O_CREATE | os.O_TRUNC
	}
	f, err := os.OpenFile(c.path, flags, 0o600) // it will hold broker credentials
	if errors.Is(err, fs.ErrExist) {
		return usageError(fmt.Errorf("%s exists: not overwritten (add --force to replace it)", c.path))
	}
	if err != nil {
		return &exitError{exitFailed, err}
	}
	if _, err := f.Write(text); err != nil {
		f.Close()
		return &exitError{exitFailed, err}
	}
	if err := f.Close(); err != nil {
		return &exitError{exitFailed, err}
	}
	fmt.Fprintf(c.g.stdout, "wrote %s: edit gateway, uplink.brokers and devices, then: linegate check -c %s\n", c.path, c.path)
	return nil
}

// The starter's placeholders that init's flags replace.
const (
	starterGateway = "id: line1-pc "
	starterBroker  = "brokers: [tcp://mes-broker:1883]"
	starterBuffer  = "path: /var/lib/linegate/buffer.db"
	starterDevices = "\ndevices:\n"
)

// starter is the example with the flags' values in place.
func (c *initCmd) starter() ([]byte, error) {
	b, err := configs.Example(starterName)
	if err != nil {
		return nil, err
	}
	text := string(b)
	for _, r := range []struct{ placeholder, flag, given, value string }{
		{starterGateway, "--gateway", c.gateway, "id: " + c.gateway + " "},
		{starterBroker, "--broker", c.broker, "brokers: [" + c.broker + "]"},
		{starterBuffer, "--buffer", c.buffer, "path: " + c.buffer},
	} {
		if r.given == "" {
			continue
		}
		if !strings.Contains(text, r.placeholder) {
			return nil, fmt.Errorf("init: the example lacks %q for %s", r.placeholder, r.flag)
		}
		text = strings.Replace(text, r.placeholder, r.value, 1)
	}
	if c.noDevices {
		i := strings.Index(text, starterDevices)
		if i < 0 {
			return nil, errors.New("init: the example has no devices: section")
		}
		text = text[:i] + starterDevices + "  # linegate import TAGLIST --name DEVICE --address URL -c FILE adds devices here\n"
	}
	return []byte(text), nil
}

// exampleCmd prints the starter config.
type exampleCmd struct{ g *globals }

func newExampleCmd(g *globals) *cobra.Command {
	c := &exampleCmd{g: g}
	return &cobra.Command{
		Use:     "example",
		Short:   "Print the commented starter config (what init writes)",
		Example: `  linegate example > linegate.yaml`,
		Args:    cobra.NoArgs,
		RunE:    c.run,
	}
}

func (c *exampleCmd) run(*cobra.Command, []string) error {
	text, err := configs.Example(starterName)
	if err != nil {
		return err
	}
	_, err = c.g.stdout.Write(text)
	return err
}
