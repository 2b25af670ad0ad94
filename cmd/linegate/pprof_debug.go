//go:build pprofdebug

package main

import (
	"net/http"
	_ "net/http/pprof"
	"os"
	"runtime"
)

// Profiling build (go build -tags pprofdebug): LINEGATE_PPROF=host:port serves
// net/http/pprof there, with every allocation sampled so that a heap profile
// is exact. Not in release builds.
func init() {
	if addr := os.Getenv("LINEGATE_PPROF"); addr != "" {
		runtime.MemProfileRate = 1
		go func() { _ = http.ListenAndServe(addr, nil) }()
	}
}
