package main

import (
	"errors"
	"os"
)

// notifyReload does nothing: Windows has no SIGHUP.
func notifyReload(chan<- os.Signal) {}

// signalReload cannot signal a Windows process.
func signalReload(int) error {
	return errors.New("live reload needs SIGHUP, which Windows lacks: restart the service (linegate service stop, then start)")
}
