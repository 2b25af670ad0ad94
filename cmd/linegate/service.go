package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"text/template"

	"github.com/kardianos/service"
	"github.com/spf13/cobra"

	"github.com/linegate/linegate/configs"
)

// `linegate service ...` installs and drives the agent as a system service
// through kardianos/service: a hardened systemd unit on Linux, a service of
// the Service Control Manager on Windows.

const serviceName = "linegate"

// serviceUser is the account the systemd unit runs as; install creates it.
const serviceUser = "linegate"

// systemdUnit is the unit's template (kardianos/service fills in the
// executable and arguments; its "cmd" and "cmdEscape" quote them). The
// agent needs the network, its state folder (buffer, pki/) and serial ports
// (group dialout), nothing else: everything else is read-only or hidden.
// ReadWritePaths adds a buffer or log folder outside the state folder.
// time-sync.target: readings are stamped with the wall clock, so the agent
// starts once the clock has been set (where a time sync service provides
// the target; without one it is reached at once).
const systemdUnit = `[Unit]
Description={{.Description}}
After=network-online.target time-sync.target
Wants=network-online.target
ConditionFileIsExecutable={{.Path|cmdEscape}}

[Service]
Type=simple
ExecStart={{.Path|cmdEscape}}{{range .Arguments}} {{.|cmd}}{{end}}
ExecReload=/bin/kill -HUP $MAINPID
User={{.UserName}}
Group={{.UserName}}
SupplementaryGroups=dialout
StateDirectory=linegate
StateDirectoryMode=0750
LogsDirectory=linegate
LogsDirectoryMode=0750
EnvironmentFile=-/etc/default/linegate
Restart=always
RestartSec=5
TimeoutStopSec=30
UMask=0027
NoNewPrivileges=yes
ProtectSystem=strict
ProtectHome=yes
PrivateTmp=yes
ProtectKernelTunables=yes
ProtectKernelModules=yes
ProtectKernelLogs=yes
ProtectControlGroups=yes
ProtectClock=yes
ProtectHostname=yes
RestrictSUIDSGID=yes
RestrictRealtime=yes
RestrictNamespaces=yes
LockPersonality=yes
MemoryDenyWriteExecute=yes
RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX
SystemCallArchitectures=native
CapabilityBoundingSet=
AmbientCapabilities=
{{- range .Option.ReadWritePaths}}
ReadWritePaths={{printf "-%s" . | cmd}}
{{- end}}

[Install]
WantedBy=multi-user.target
`

// serviceSpec is what the service is installed with.
type serviceSpec struct {
	ConfigPath string
	// ReadWrite are folders the agent writes outside its state folder
	// (a buffer or log file placed elsewhere).
	ReadWrite []string
}

// serviceConfig is the kardianos config for goos.
func serviceConfig(spec serviceSpec, goos string) *service.Config {
	c := &service.Config{
		Name:        serviceName,
		DisplayName: "linegate",
		Description: "linegate edge gateway: PLCs (Modbus, OPC UA) -> buffer -> MQTT",
		Option:      service.KeyValue{},
	}
	if goos == "windows" {
		// The SCM talks to the process through kardianos' Run: "service run".
		c.Arguments = []string{"service", "run", "-c", spec.ConfigPath}
		c.Option["StartType"] = "automatic"
		c.Option["DelayedAutoStart"] = true // after the network stack
		c.Option["OnFailure"] = "restart"
		c.Option["OnFailureDelayDuration"] = "5s"
		c.Option["OnFailureResetPeriod"] = 600
		return c
	}
	c.Arguments = []string{"run", "-c", spec.ConfigPath}
	c.UserName = serviceUser
	c.Option["SystemdScript"] = systemdUnit
	c.Option["ReadWritePaths"] = spec.ReadWrite
	return c
}

// renderUnit renders the systemd unit as kardianos/service writes it, for
// `service unit` and the tests.
func renderUnit(w io.Writer, spec serviceSpec, exe string) error {
	c := serviceConfig(spec, "linux")
	funcs := template.FuncMap{
		"cmd":       func(s string) string { return `"` + strings.ReplaceAll(s, `"`, `\"`) + `"` },
		"cmdEscape": func(s string) string { return strings.ReplaceAll(s, " ", `\x20`) },
	}
	t, err := template.New("unit").Funcs(funcs).Parse(systemdUnit)
	if err != nil {
		return err
	}
	return t.Execute(w, struct {
		*service.Config
		Path string
	}{c, exe})
}

// serviceSpecFor reads the config (when it is there already) for the
// folders the unit must let the agent write.
func serviceSpecFor(configPath string) (serviceSpec, []string) {
	spec := serviceSpec{ConfigPath: configPath}
	var notes []string
	cfg, err := configs.Load(configPath)
	if err != nil {
		notes = append(notes, fmt.Sprintf("config %s: %v\n(fix it before `linegate service start`; the unit lets the agent write only %s)", configPath, err, configs.Paths().State))
		return spec, notes
	}
	state := configs.Paths().State
	for _, p := range []string{cfg.Buffer.Path, cfg.Log.File} {
		if p == "" {
			continue
		}
		dir := filepath.Dir(p)
		if dir != state && !strings.HasPrefix(dir, state+string(filepath.Separator)) && !strings.HasPrefix(dir, "/var/log/linegate") && !slices.Contains(spec.ReadWrite, dir) {
			spec.ReadWrite = append(spec.ReadWrite, dir)
		}
	}
	return spec, notes
}

// agentProgram runs the agent under the service manager (Windows SCM).
type agentProgram struct {
	run    func(ctx context.Context) error
	cancel context.CancelFunc
	done   chan error
}

func (a *agentProgram) Start(service.Service) error {
	ctx, cancel := context.WithCancel(context.Background())
	a.cancel, a.done = cancel, make(chan error, 1)
	go func() {
		err := a.run(ctx)
		a.done <- err
		if ctx.Err() == nil {
			// The agent stopped by itself (a bad config): exit non-zero so
			// the SCM's recovery action restarts it.
			fmt.Fprintln(os.Stderr, "linegate:", err)
			os.Exit(exitFailed)
		}
	}()
	return nil
}

func (a *agentProgram) Stop(service.Service) error {
	a.cancel()
	return <-a.done
}

// serviceOptions are the flags of `linegate service` and its subcommands.
type serviceOptions struct {
	g    *globals
	path string // the config the service runs with (absolute once resolved)
}

func newServiceCmd(g *globals) *cobra.Command {
	o := &serviceOptions{g: g}
	root := &cobra.Command{
		Use:   "service install|uninstall|start|stop|status",
		Short: "Install and control linegate as a system service (systemd, Windows)",
		Long: `Service installs linegate as a system service that starts at boot and is
restarted when it fails: a hardened systemd unit on Linux (user linegate, state
in /var/lib/linegate, read-only system; "linegate service unit" prints it), a
Windows service (LocalSystem, automatic delayed start, restart on failure).
Logs go to journald / the service's stderr unless log.file is set. Run it as
root / Administrator.

Default config: ` + configs.DefaultConfigPath() + `.`,
		Args: cobra.NoArgs,
	}
	root.PersistentFlags().StringVarP(&o.path, "config", "c", configs.DefaultConfigPath(), "config file (YAML)")
	sub := func(use, short string, run func(*cobra.Command, []string) error) *cobra.Command {
		return &cobra.Command{Use: use, Short: short, Args: cobra.NoArgs, RunE: run}
	}
	run := sub("run", "Run the agent under the service manager", o.runService)
	run.Hidden = true // what the Windows SCM starts; on Linux systemd runs "run"
	root.AddCommand(
		sub("install", "Install the service (does not start it)", o.runInstall),
		sub("uninstall", "Stop and remove the service (keeps config and buffer)", o.runUninstall),
		sub("start", "Start the service", o.runStart),
		sub("stop", "Stop the service", o.runStop),
		sub("status", "Say whether the service runs (exit 1 when it does not)", o.runStatus),
		sub("unit", "Print the systemd unit that install writes", o.runUnit),
		run,
	)
	return root
}

// service resolves the config path and makes the service handle; run is
// what the service manager runs (nil: only controlling it).
func (o *serviceOptions) service(run func(ctx context.Context) error) (service.Service, []string, error) {
	abs, err := filepath.Abs(o.path)
	if err != nil {
		return nil, nil, usageError(err)
	}
	o.path = abs
	spec, notes := serviceSpecFor(o.path)
	s, err := service.New(&agentProgram{run: run}, serviceConfig(spec, runtime.GOOS))
	if err != nil {
		return nil, nil, fmt.Errorf("service: %w", err)
	}
	return s, notes, nil
}

func (o *serviceOptions) runInstall(cmd *cobra.Command, _ []string) error {
	s, notes, err := o.service(nil)
	if err != nil {
		return err
	}
	for _, n := range notes {
		fmt.Fprintln(cmd.ErrOrStderr(), "note:", n)
	}
	if runtime.GOOS == "linux" {
		if err := ensureServiceUser(cmd.OutOrStdout()); err != nil {
			return err
		}
	}
	if err := s.Install(); err != nil {
		return fmt.Errorf("service install: %w", err)
	}
	fmt.Fprintf(cmd.OutOrStdout(), "installed service %s (%s) with config %s; start it with: linegate service start\n", serviceName, s.Platform(), o.path)
	return nil
}

func (o *serviceOptions) runUninstall(cmd *cobra.Command, _ []string) error {
	s, _, err := o.service(nil)
	if err != nil {
		return err
	}
	_ = s.Stop() // not running is fine
	if err := s.Uninstall(); err != nil {
		return fmt.Errorf("service uninstall: %w", err)
	}
	fmt.Fprintf(cmd.OutOrStdout(), "removed service %s; config and buffer are kept\n", serviceName)
	return nil
}

func (o *serviceOptions) runStart(cmd *cobra.Command, _ []string) error {
	s, _, err := o.service(nil)
	if err != nil {
		return err
	}
	if err := s.Start(); err != nil {
		return fmt.Errorf("service start: %w", err)
	}
	fmt.Fprintln(cmd.OutOrStdout(), "started", serviceName)
	return nil
}

func (o *serviceOptions) runStop(cmd *cobra.Command, _ []string) error {
	s, _, err := o.service(nil)
	if err != nil {
		return err
	}
	if err := s.Stop(); err != nil {
		return fmt.Errorf("service stop: %w", err)
	}
	fmt.Fprintln(cmd.OutOrStdout(), "stopped", serviceName)
	return nil
}

func (o *serviceOptions) runStatus(cmd *cobra.Command, _ []string) error {
	s, _, err := o.service(nil)
	if err != nil {
		return err
	}
	st, err := s.Status()
	switch {
	case errors.Is(err, service.ErrNotInstalled):
		return &exitError{exitFailed, errors.New("service not installed")}
	case err != nil:
		return fmt.Errorf("service status: %w", err)
	case st == service.StatusRunning:
		fmt.Fprintln(cmd.OutOrStdout(), serviceName, "running")
		return nil
	}
	return &exitError{exitFailed, fmt.Errorf("%s stopped", serviceName)}
}

// runUnit prints the unit without a service manager to ask.
func (o *serviceOptions) runUnit(cmd *cobra.Command, _ []string) error {
	abs, err := filepath.Abs(o.path)
	if err != nil {
		return usageError(err)
	}
	o.path = abs
	spec, notes := serviceSpecFor(o.path)
	for _, n := range notes {
		fmt.Fprintln(cmd.ErrOrStderr(), "note:", n)
	}
	exe, err := os.Executable()
	if err != nil {
		return err
	}
	return renderUnit(cmd.OutOrStdout(), spec, exe)
}

func (o *serviceOptions) runService(cmd *cobra.Command, _ []string) error {
	s, _, err := o.service(func(ctx context.Context) error { return runAgent(ctx, o.g, cmd, o.path) })
	if err != nil {
		return err
	}
	return s.Run()
}

// ensureServiceUser creates the system user the unit runs as, if missing.
func ensureServiceUser(w io.Writer) error {
	if err := exec.Command("id", "-u", serviceUser).Run(); err == nil {
		return nil
	}
	useradd, err := exec.LookPath("useradd")
	if err != nil {
		return fmt.Errorf("user %s does not exist and useradd is missing: create it, then install again", serviceUser)
	}
	out, err := exec.Command(useradd, "--system", "--no-create-home", "--home-dir", "/var/lib/linegate",
		"--shell", "/usr/sbin/nologin", "--user-group", serviceUser).CombinedOutput()
	if err != nil {
		return fmt.Errorf("useradd %s: %v: %s", serviceUser, err, strings.TrimSpace(string(out)))
	}
	fmt.Fprintf(w, "created system user %s\n", serviceUser)
	return nil
}
