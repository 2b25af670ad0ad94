package testkit

import (
	"net"
	"sync"
	"testing"
)

// Serve listens on a free loopback TCP port and runs handle for each
// connection in a goroutine of its own: the fake devices and brokers of
// the tests (a PLC that never answers, a gateway that answers for the
// wrong unit, a proxy that drops one packet). When the test ends the
// listener and every connection still open are closed and Serve waits
// for every handle to return, so handle must return once its connection
// is closed. It returns the listener's address.
func Serve(t testing.TB, handle func(c net.Conn)) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("serve: %v", err)
	}
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		conns []net.Conn
	)
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				handle(c)
			}()
		}
	}()
	t.Cleanup(func() {
		l.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	return l.Addr().String()
}
