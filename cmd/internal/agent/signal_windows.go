package agent

import (
	"errors"
	"os"
)

// notifyReload does nothing: Windows has no SIGHUP.
func notifyReload(chan<- os.Signal) {}

// SignalReload cannot signal a Windows process.
func SignalReload(int) error {
	return errors.New("live reload needs SIGHUP, which Windows lacks: restart the service (linegate service stop, then start)")
}
