package main

import (
	"context"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/debug"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/linegate/linegate/cmd/internal/agent"
)

// runOptions are the flags of `linegate run`.
type runOptions struct {
	g    *globals
	path string
}

func newRunCmd(g *globals) *cobra.Command {
	o := &runOptions{g: g}
	cmd := &cobra.Command{
		Use:   "run -c FILE",
		Short: "Run the gateway: poll the devices, buffer, publish to MQTT",
		Long: `Run polls every device of the config, appends the readings to the buffer and
publishes them to the broker. SIGINT or SIGTERM stops it cleanly: the buffer is
committed, the offline status is published, and it exits 0. A second signal
exits at once (the buffer keeps everything committed). SIGHUP reloads the
config (see linegate reload).`,
		Example: `  linegate run -c /etc/linegate/linegate.yaml
  MQTT_PASSWORD=secret linegate run -c linegate.yaml --log-format json`,
		Args: cobra.NoArgs,
		RunE: o.run,
	}
	cmd.Flags().StringVarP(&o.path, "config", "c", "", "config file (YAML)")
	return cmd
}

func (o *runOptions) run(cmd *cobra.Command, _ []string) error {
	return runAgent(cmd.Context(), o.g, cmd, o.path)
}

// agentGCPercent is the garbage collector's target while the agent runs
// (unless GOGC is set). The heap the agent keeps is small (about 0.5 kB per
// tag) and its garbage steady, so the default target (100: the heap may
// double what is live) cost more memory than collections cost CPU: at
// 10,000 tags, 50 saved about 4 MB of RSS for about 0.3 % of one core, and
// 30 another 1.5-2 MB (32 -> 30.4 MB) for no CPU the runs could tell apart.
const agentGCPercent = 30

// runAgent runs the gateway with the config at path until parent is done
// or SIGINT/SIGTERM (run, and the Windows service through service.go).
func runAgent(parent context.Context, g *globals, cmd *cobra.Command, path string) error {
	cfg, err := loadConfig(path)
	if err != nil {
		return err
	}
	log, level, closeLog, err := g.agentLogger(cmd, cfg.Log) // logfile.go
	if err != nil {
		return err
	}
	defer closeLog()
	ctx, stop := signal.NotifyContext(parent, os.Interrupt, syscall.SIGTERM)
	defer stop()
	devices := len(cfg.Devices)
	abs, err := filepath.Abs(path)
	if err != nil {
		return err
	}
	// The devices are built at the load's tight target: the config is
	// still live beside them, and the default (100) let the heap grow to
	// twice both, the start-up's peak RSS (at 100,000 tags 136 MiB, 106 at
	// 50, 97 at 25).
	_, gogcSet := os.LookupEnv("GOGC")
	if !gogcSet {
		debug.SetGCPercent(loadGCPercent)
	}
	a, err := agent.New(cfg, log, agent.Options{Version: version, ConfigPath: abs, Load: loadLean, LogLevel: level})
	if err != nil {
		return err
	}
	// From here on only the agent's copy of the sections: the device
	// configs (half a kB per tag) are built into drivers and may go, and
	// the memory the load took goes back to the system now rather than
	// over the next minutes.
	cfg = a.Config()
	if !gogcSet {
		debug.SetGCPercent(agentGCPercent)
	}
	debug.FreeOSMemory()
	log.Info("linegate running", "version", version, "gateway", cfg.Gateway.ID, "devices", devices, "buffer", cfg.Buffer.Path)
	go func() {
		<-ctx.Done()
		stop() // a second signal now kills the process
		log.Info("stopping")
	}()
	return a.Run(ctx)
}
