package sim

import (
	"io"
	"net"
	"sync"
)

// proxy fronts the gopcua server, so that the oven behaves like a PLC on
// Stop (every connection closes at once: gopcua's server leaves them open)
// and can cut the network (bytes stop flowing, connections stay open).
type proxy struct {
	l      net.Listener
	target string

	mu    sync.Mutex // guards conns, cut, wake
	conns map[net.Conn]struct{}
	cut   bool
	wake  chan struct{} // closed when a cut ends
	wg    sync.WaitGroup
}

func newProxy(addr, target string) (*proxy, error) {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	p := &proxy{l: l, target: target, conns: map[net.Conn]struct{}{}, wake: make(chan struct{})}
	p.wg.Add(1)
	go p.accept()
	return p, nil
}

func (p *proxy) accept() {
	defer p.wg.Done()
	for {
		c, err := p.l.Accept()
		if err != nil {
			return
		}
		s, err := net.Dial("tcp", p.target)
		if err != nil {
			c.Close()
			continue
		}
		if !p.track(c, s) {
			return
		}
		p.wg.Add(2)
		go p.pipe(c, s)
		go p.pipe(s, c)
	}
}

func (p *proxy) track(cs ...net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.conns == nil { // closed
		for _, c := range cs {
			c.Close()
		}
		return false
	}
	for _, c := range cs {
		p.conns[c] = struct{}{}
	}
	return true
}

// pipe copies src to dst, holding the bytes while the network is cut.
func (p *proxy) pipe(dst, src net.Conn) {
	defer p.wg.Done()
	defer dst.Close()
	defer src.Close()
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			if !p.wait() {
				return
			}
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			if err != io.EOF {
				return
			}
			return
		}
	}
}

// wait blocks while the network is cut; false when the proxy closed.
func (p *proxy) wait() bool {
	for {
		p.mu.Lock()
		cut, wake, closed := p.cut, p.wake, p.conns == nil
		p.mu.Unlock()
		if closed {
			return false
		}
		if !cut {
			return true
		}
		<-wake
	}
}

func (p *proxy) setCut(on bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if on == p.cut {
		return
	}
	p.cut = on
	if !on {
		close(p.wake)
		p.wake = make(chan struct{})
	}
}

// close stops listening and closes every connection, then waits for the
// copying goroutines.
func (p *proxy) close() {
	p.l.Close()
	p.mu.Lock()
	for c := range p.conns {
		c.Close()
	}
	p.conns = nil
	if p.cut {
		p.cut = false
		close(p.wake)
	}
	p.mu.Unlock()
	p.wg.Wait()
}
