// Package testkit is what linegate's tests share: waiting on a condition
// with a deadline, a free loopback port, golden files. Only tests import it.
package testkit

import (
	"bytes"
	"flag"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// pollInterval of WaitFor: short against a test's run time, long enough
// not to load the race detector.
const pollInterval = 10 * time.Millisecond

// WaitFor polls cond until it is true, and fails the test if that takes
// longer than timeout. what names the condition in the failure ("broker
// accepting connections"). Call it from the test's goroutine.
func WaitFor(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(pollInterval)
	}
}

// FreePort returns a TCP port on 127.0.0.1 that was free a moment ago,
// never 1883 (a system Mosquitto may own it). Prefer letting a server bind
// port 0 where it can: this one can race.
func FreePort(t testing.TB) int {
	t.Helper()
	for range 10 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatalf("free port: %v", err)
		}
		port := l.Addr().(*net.TCPAddr).Port
		l.Close()
		if port != 1883 {
			return port
		}
	}
	t.Fatal("free port: the kernel keeps handing out 1883")
	return 0
}

// The -update flag of every package whose tests use Golden; registered
// once here so that no test file declares it a second time.
var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// Updating says whether the test run was asked to rewrite golden files
// (go test -update).
func Updating() bool { return *update }

// Golden compares got with the file at path (relative to the package,
// e.g. testdata/x.txt), or rewrites the file with -update.
func Golden(t testing.TB, path string, got []byte) {
	t.Helper()
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("output differs from %s:\n--- got\n%s--- want\n%s", path, got, want)
	}
}
