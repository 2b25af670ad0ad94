// Package peers starts the real programs linegate's interop tests talk to
// (Mosquitto, a pymodbus server, mbpoll) on free loopback ports, and stops
// them when the test ends. It is test-only: it lives under testdata so that
// ./... does not build it, yet tests of any package can import it.
//
// Interop tests call Interop first: without LINEGATE_INTEROP=1 they skip;
// with it, a missing peer program is a test failure, never a skip, so CI
// cannot pass by not running them. See README.md for running peers by hand.
//
// A peer belongs to the test that started it: its cleanup stops it, and its
// Start, Stop and Kill methods may fail that test, so call them from that
// test's goroutine (start the peer inside the subtest that restarts it).
package peers

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"testing"
	"time"
)

// InteropEnv is the variable that turns interop tests on.
const InteropEnv = "LINEGATE_INTEROP"

// Interop skips the test unless LINEGATE_INTEROP=1.
func Interop(t testing.TB) {
	t.Helper()
	if os.Getenv(InteropEnv) != "1" {
		t.Skipf("interop test against a real peer: set %s=1 to run it", InteropEnv)
	}
}

// Dir is the directory of this package's sources (testdata/peers), where
// the peer scripts live; found from the source file's path so that tests of
// any package find them (not with -trimpath).
func Dir(t testing.TB) string {
	t.Helper()
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		t.Fatal("peers: cannot locate the package's source directory")
	}
	dir := filepath.Dir(file)
	if _, err := os.Stat(filepath.Join(dir, "modbus_server.py")); err != nil {
		t.Fatalf("peers: peer scripts not found beside %s (built with -trimpath?): %v", file, err)
	}
	return dir
}

// need fails the test when a peer program is missing: with interop tests
// on, that is a broken setup, not a reason to skip.
func need(t testing.TB, path, pkg string) {
	t.Helper()
	if _, err := exec.LookPath(path); err != nil {
		t.Fatalf("%s: %v (install the Debian package %s; .ci/run does)", path, err, pkg)
	}
}

// dialable tells whether something accepts TCP connections at addr.
func dialable(addr string) bool {
	c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
	if err != nil {
		return false
	}
	c.Close()
	return true
}

func hostPort(port int) string { return fmt.Sprintf("127.0.0.1:%d", port) }
