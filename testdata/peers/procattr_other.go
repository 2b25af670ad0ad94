//go:build !linux

package peers

import "syscall"

const sigTerm = syscall.SIGTERM

// SIGUSR1 and SIGUSR2 of the BSDs and macOS (Windows has neither; the
// controls that send them fail there).
const (
	sigUsr1 = syscall.Signal(30)
	sigUsr2 = syscall.Signal(31)
)

func sysProcAttr() *syscall.SysProcAttr { return nil }
