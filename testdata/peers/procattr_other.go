//go:build !linux

package peers

import "syscall"

const sigTerm = syscall.SIGTERM

func sysProcAttr() *syscall.SysProcAttr { return nil }
