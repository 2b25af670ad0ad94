package main

import (
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/linegate/linegate/drivers/sim"
)

// simCommands are the simulators; each protocol adds its constructor here
// (sim opcua comes with the OPC UA driver).
func simCommands() []func(*globals) *cobra.Command {
	return []func(*globals) *cobra.Command{newSimModbusCmd, newSimOPCUACmd}
}

func newSimCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "sim",
		Short: "Run a simulated PLC as a standalone server, for bench tests and training",
		Long: `The simulators serve the same simulated press line as "linegate demo", on a
port of your choice, until Ctrl-C. Point a config (configs/demo.yaml), mbpoll
or "linegate modbus read" at them.`,
		Args: cobra.NoArgs,
		RunE: needSubcommand("sim: name a protocol, e.g. linegate sim modbus"),
	}
	for _, mk := range simCommands() {
		cmd.AddCommand(mk(g))
	}
	return cmd
}

// simModbusOptions are the flags of `linegate sim modbus`.
type simModbusOptions struct {
	g      *globals
	listen string
	units  string
}

func newSimModbusCmd(g *globals) *cobra.Command {
	o := &simModbusOptions{g: g}
	cmd := &cobra.Command{
		Use:   "modbus",
		Short: "Serve the simulated press line over Modbus TCP",
		Long: `Serves one simulated press per unit id: temperature (holding 0, float32),
speed (input 4, int16 ×0.1 rpm), state (holding 10), good parts (holding 12,
uint32), cycle time (holding 14, ms), pressure (holding 22, float32 CDAB),
recipe (holding 50, string of 4 registers), status word (holding 60), door
(discrete 3) and more: see configs/demo.yaml. Addresses 0..199 of each table
exist; beyond is exception 2; an unknown unit id gets no answer, like a
gateway with nothing behind it. Writes to holding registers and coils are
accepted. Exit 0 after Ctrl-C, 1 when the port is taken, 2 on a bad flag.`,
		Example: `  linegate sim modbus
  linegate sim modbus --listen 0.0.0.0:5020 --units 1,2,3`,
		Args: cobra.NoArgs,
		RunE: o.run,
	}
	cmd.Flags().StringVar(&o.listen, "listen", "127.0.0.1:5020", "address to serve on (port 0 = any free port)")
	cmd.Flags().StringVar(&o.units, "units", "1,2", "unit ids to serve, e.g. 1,2 or 1-4")
	return cmd
}

func (o *simModbusOptions) run(cmd *cobra.Command, _ []string) error {
	log, err := o.g.logger()
	if err != nil {
		return err
	}
	ur, err := parseRanges(o.units, 1, 247)
	if err != nil {
		return usageError(fmt.Errorf("--units %w", err))
	}
	var ids []byte
	var nums []int
	for _, r := range ur {
		for u := r[0]; u <= r[1]; u++ {
			ids = append(ids, byte(u))
			nums = append(nums, u)
		}
	}
	ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	line := sim.NewPressLine(sim.Options{Addr: o.listen, Units: ids, Logger: log.With("component", "sim")})
	if err := line.Start(ctx); err != nil {
		return &exitError{exitFailed, fmt.Errorf("sim modbus: %w", err)}
	}
	defer line.Stop()
	fmt.Fprintf(o.g.stdout, "simulated press line on modbus tcp://%s, unit(s) %s (Ctrl-C to stop)\n", line.Addr(), formatRanges(nums))
	<-ctx.Done()
	fmt.Fprintln(o.g.stdout, "sim modbus: stopped")
	return line.Stop()
}
