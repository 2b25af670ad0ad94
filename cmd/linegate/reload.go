package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/linegate/linegate/cmd/internal/agent"
	"github.com/linegate/linegate/configs"
)

// reloadOptions are the flags of `linegate reload`.
type reloadOptions struct{ path string }

func newReloadCmd(g *globals) *cobra.Command {
	o := &reloadOptions{}
	cmd := &cobra.Command{
		Use:   "reload [-c FILE]",
		Short: "Make the running agent reload its config (SIGHUP)",
		Long: `Reload validates the config file and, when it is good, sends SIGHUP to the
agent running with it (found through linegate.pid beside its buffer file). The
agent loads the file again: only devices that changed restart; the buffer and
the MQTT session are kept. A change to gateway, buffer, uplink, http or log
(other than log.level) is refused: restart the agent for those. The agent's log
and its config_reload event say what was applied. Under systemd,
"systemctl reload linegate" does the same. Not available on Windows.`,
		Example: `  linegate reload                       # the service's config (` + configs.DefaultConfigPath() + `)
  linegate reload -c /etc/linegate/linegate.yaml`,
		Args: cobra.NoArgs,
		RunE: o.run,
	}
	cmd.Flags().StringVarP(&o.path, "config", "c", "", "config file (YAML); default "+configs.DefaultConfigPath())
	return cmd
}

// run sends SIGHUP to the agent that runs with the config at path.
func (o *reloadOptions) run(cmd *cobra.Command, _ []string) error {
	path := o.path
	if path == "" {
		path = configs.DefaultConfigPath()
	}
	cfg, err := loadConfig(path) // a bad file is shown here, not only in the agent's log
	if err != nil {
		return err
	}
	pid, err := agent.ReadPIDFile(agent.PIDFilePath(cfg.Buffer.Path))
	if err != nil {
		return err
	}
	if err := agent.SignalReload(pid); err != nil {
		return err
	}
	fmt.Fprintf(cmd.OutOrStdout(), "asked linegate (pid %d) to reload %s; its log says what changed\n", pid, path)
	return nil
}
