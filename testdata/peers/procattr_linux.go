package peers

import "syscall"

const sigTerm = syscall.SIGTERM

// The node-opcua peer's controls (opcua_server.js).
const (
	sigUsr1 = syscall.SIGUSR1
	sigUsr2 = syscall.SIGUSR2
)

// sysProcAttr makes the kernel kill a peer if the test binary dies without
// cleaning up (go test's timeout panic, a crash), so no peer outlives it.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
