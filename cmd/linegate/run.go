package main

import (
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"
)

func newRunCmd(g *globals) *cobra.Command {
	var path string
	cmd := &cobra.Command{
		Use:   "run -c FILE",
		Short: "Run the gateway: poll the devices, buffer, publish to MQTT",
		Long: `Run polls every device of the config, appends the readings to the buffer and
publishes them to the broker. SIGINT or SIGTERM stops it cleanly: the buffer is
committed, the offline status is published, and it exits 0. A second signal
exits at once (the buffer keeps everything committed).`,
		Example: `  linegate run -c /etc/linegate/linegate.yaml
  MQTT_PASSWORD=secret linegate run -c linegate.yaml --log-format json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			log, err := g.logger()
			if err != nil {
				return err
			}
			cfg, err := loadConfig(path)
			if err != nil {
				return err
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			p, err := newPipeline(cfg, log)
			if err != nil {
				return err
			}
			log.Info("linegate running", "version", version, "gateway", cfg.Gateway.ID, "devices", len(cfg.Devices), "buffer", cfg.Buffer.Path)
			go func() {
				<-ctx.Done()
				stop() // a second signal now kills the process
				log.Info("stopping")
			}()
			return p.run(ctx)
		},
	}
	cmd.Flags().StringVarP(&path, "config", "c", "", "config file (YAML)")
	return cmd
}
