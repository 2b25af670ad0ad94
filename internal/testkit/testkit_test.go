package testkit

import (
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// fakeT records a failure instead of ending the test.
type fakeT struct {
	testing.TB
	failed atomic.Bool
	msg    string
}

func (f *fakeT) Helper() {}
func (f *fakeT) Fatalf(format string, args ...any) {
	f.failed.Store(true)
	f.msg = format
	panicStop()
}
func (f *fakeT) Fatal(args ...any) { f.failed.Store(true); panicStop() }

type stop struct{}

func panicStop() { panic(stop{}) }

// run calls fn with f and recovers the stop of a Fatal.
func run(f *fakeT, fn func()) {
	defer func() {
		if r := recover(); r != nil {
			if _, ok := r.(stop); !ok {
				panic(r)
			}
		}
	}()
	fn()
}

func TestWaitFor(t *testing.T) {
	var n atomic.Int32
	WaitFor(t, 5*time.Second, "third call", func() bool { return n.Add(1) >= 3 })
	if n.Load() != 3 {
		t.Errorf("cond called %d times, want 3", n.Load())
	}
	f := &fakeT{TB: t}
	run(f, func() { WaitFor(f, 20*time.Millisecond, "never", func() bool { return false }) })
	if !f.failed.Load() || !strings.Contains(f.msg, "timed out") {
		t.Errorf("a condition that never holds did not fail the test (msg %q)", f.msg)
	}
}

func TestFreePort(t *testing.T) {
	if p := FreePort(t); p <= 0 || p == 1883 || p > 65535 {
		t.Errorf("FreePort = %d", p)
	}
}

func TestGolden(t *testing.T) {
	path := filepath.Join(t.TempDir(), "g.txt")
	if err := os.WriteFile(path, []byte("same\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	Golden(t, path, []byte("same\n"))
	f := &fakeT{TB: t}
	run(f, func() { Golden(f, path, []byte("other\n")) })
	if !f.failed.Load() {
		t.Error("a differing output passed")
	}
	f = &fakeT{TB: t}
	run(f, func() { Golden(f, filepath.Join(t.TempDir(), "missing.txt"), nil) })
	if !f.failed.Load() {
		t.Error("a missing golden file passed")
	}
}

func TestServe(t *testing.T) {
	var handled atomic.Int32
	var addr string
	var clients []net.Conn
	t.Run("echo", func(t *testing.T) {
		addr = Serve(t, func(c net.Conn) {
			handled.Add(1)
			_, _ = io.Copy(c, c)
		})
		for range 2 {
			c, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			clients = append(clients, c)
			if _, err := c.Write([]byte("ping")); err != nil {
				t.Fatal(err)
			}
			buf := make([]byte, 4)
			if _, err := io.ReadFull(c, buf); err != nil || string(buf) != "ping" {
				t.Fatalf("echo %q, %v", buf, err)
			}
		}
		// The clients stay connected: the cleanup must close the server's
		// ends for the handlers to return (else the test hangs).
	})
	for _, c := range clients {
		c.Close()
	}
	if n := handled.Load(); n != 2 {
		t.Errorf("handled %d connections, want 2", n)
	}
	if c, err := net.Dial("tcp", addr); err == nil {
		c.Close()
		t.Error("the listener accepts connections after the test ended")
	}
}
