//go:build !windows

package modbus

import (
	"errors"
	"syscall"
)

// isAgain tells a non-blocking port's "try again".
func isAgain(err error) bool { return errors.Is(err, syscall.EAGAIN) }
