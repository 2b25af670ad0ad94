package main

import (
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/linegate/linegate/drivers/sim"
)

// simOPCUAOptions are the flags of `linegate sim opcua`.
type simOPCUAOptions struct {
	g      *globals
	listen string
	secure bool
}

func newSimOPCUACmd(g *globals) *cobra.Command {
	o := &simOPCUAOptions{g: g}
	cmd := &cobra.Command{
		Use:   "opcua",
		Short: "Serve the simulated oven over OPC UA",
		Long: `Serves a simulated reflow oven (the OPC UA device of "linegate demo") with a
variable of each common type under Objects/Oven01: zone temperatures
(Double), set point (Float), state (Int32 enumeration), heater (Boolean),
parts (UInt32 counter), recipe (String), last cycle (DateTime), zone
temperatures (Double array), mode (LocalizedText), and nodes with an
uncertain and a bad status. Node ids are ns=1;s=Oven01.<name>. With
--secure it also offers every security policy with a self-signed
certificate (trust it with "linegate opcua trust"), and username and
certificate logins (not checked). Exit 0 after Ctrl-C, 1 when the port is
taken, 2 on a bad flag.`,
		Example: `  linegate sim opcua
  linegate sim opcua --listen 127.0.0.1:4841 --secure
  linegate opcua browse opc.tcp://127.0.0.1:4840 --depth 3`,
		Args: cobra.NoArgs,
		RunE: o.run,
	}
	cmd.Flags().StringVar(&o.listen, "listen", "127.0.0.1:4840", "address to serve on (port 0 = any free port)")
	cmd.Flags().BoolVar(&o.secure, "secure", false, "also offer signed and encrypted endpoints")
	return cmd
}

func (o *simOPCUAOptions) run(cmd *cobra.Command, _ []string) error {
	log, err := o.g.logger()
	if err != nil {
		return err
	}
	quietStdLog(log)
	ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	oven := sim.NewOven(sim.OvenOptions{Addr: o.listen, Secure: o.secure, Logger: log.With("component", "sim")})
	if err := oven.Start(ctx); err != nil {
		return &exitError{exitFailed, fmt.Errorf("sim opcua: %w", err)}
	}
	defer oven.Stop()
	fmt.Fprintf(o.g.stdout, "simulated oven on %s (Ctrl-C to stop)\n", oven.Endpoint())
	<-ctx.Done()
	fmt.Fprintln(o.g.stdout, "sim opcua: stopped")
	return nil
}
