//go:build pprofdebug

package main

import (
	"net/http"
	_ "net/http/pprof"
	"os"
	"runtime"
)

// Profiling build (go build -tags pprofdebug): LINEGATE_PPROF=host:port serves
// net/http/pprof there; LINEGATE_MEMPROFILE=1 samples every allocation so
// that a heap profile is exact (and CPU profiles are not). Not in release
// builds.
func init() {
	if addr := os.Getenv("LINEGATE_PPROF"); addr != "" {
		if os.Getenv("LINEGATE_MEMPROFILE") == "1" {
			runtime.MemProfileRate = 1
		}
		go func() { _ = http.ListenAndServe(addr, nil) }()
	}
}
