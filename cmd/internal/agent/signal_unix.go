//go:build !windows

package agent

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"syscall"
)

// notifyReload delivers SIGHUP to ch.
func notifyReload(ch chan<- os.Signal) { signal.Notify(ch, syscall.SIGHUP) }

// SignalReload sends SIGHUP to the agent pid, after making sure, where
// /proc tells, that pid is a linegate: a stale pid file must not hang up
// some other process that got the number.
func SignalReload(pid int) error {
	cmdline, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "cmdline"))
	switch {
	case errors.Is(err, os.ErrNotExist):
		if _, serr := os.Stat("/proc/self"); serr == nil {
			return fmt.Errorf("process %d is not running (stale pid file)", pid)
		}
	case err == nil:
		argv0, _, _ := bytes.Cut(cmdline, []byte{0})
		if !bytes.Contains(argv0, []byte("linegate")) {
			return fmt.Errorf("process %d is %q, not linegate (stale pid file)", pid, argv0)
		}
	}
	if err := syscall.Kill(pid, syscall.SIGHUP); err != nil {
		return fmt.Errorf("signal %d: %w", pid, err)
	}
	return nil
}
