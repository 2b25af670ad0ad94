package main

import (
	"fmt"
	"runtime"

	"github.com/spf13/cobra"
)

func newVersionCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version, commit and build date",
		Args:  cobra.NoArgs,
		RunE:  (&versionOptions{g}).run,
	}
}

// versionOptions: `linegate version` has no flags of its own.
type versionOptions struct{ g *globals }

func (o *versionOptions) run(*cobra.Command, []string) error {
	fmt.Fprintln(o.g.stdout, versionLine())
	return nil
}

// versionLine is what "linegate version" and "linegate --version" print.
func versionLine() string {
	return fmt.Sprintf("linegate %s (commit %s, built %s, %s %s/%s)", version, commit, date, runtime.Version(), runtime.GOOS, runtime.GOARCH)
}
