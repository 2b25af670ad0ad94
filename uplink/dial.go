package uplink

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"net/url"
	"sync"

	mqtt "github.com/eclipse/paho.mqtt.golang"
)

// dialer opens the network connections of one connect attempt for paho.
//
// paho dials without a context, so a broker that accepts TCP but never
// answers would hold Run for ConnectTimeout after its context is done. Here
// the dial uses ctx, and every connection opened is closed when ctx is done
// until the attempt is over (release), which aborts paho's MQTT handshake.
type dialer struct {
	ctx context.Context
	u   *Uplink

	mu       sync.Mutex
	stops    []func() bool
	released bool
	last     *url.URL // broker of the last connection opened
}

func (d *dialer) open(uri *url.URL, _ mqtt.ClientOptions) (net.Conn, error) {
	conn, err := d.dial(uri)
	if err != nil {
		return nil, err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	d.last = uri
	if !d.released {
		d.stops = append(d.stops, context.AfterFunc(d.ctx, func() { _ = conn.Close() }))
	}
	return conn, nil
}

func (d *dialer) dial(uri *url.URL) (net.Conn, error) {
	timeout := d.u.cfg.ConnectTimeout
	nd := &net.Dialer{Timeout: timeout, KeepAlive: -1} // MQTT keepalive does the job
	switch uri.Scheme {
	case "tcp":
		return nd.DialContext(d.ctx, "tcp", uri.Host)
	case "ssl":
		// A nil config means the system roots and the host name of the URL.
		td := &tls.Dialer{NetDialer: nd, Config: d.u.cfg.TLS}
		return td.DialContext(d.ctx, "tcp", uri.Host)
	case "ws", "wss":
		ws := *uri
		ws.User = nil // credentials go in CONNECT, not in the HTTP request
		return mqtt.NewWebsocket(ws.String(), d.u.cfg.TLS, timeout, nil, nil)
	}
	return nil, fmt.Errorf("unsupported scheme %q", uri.Scheme)
}

// release ends the attempt: connections opened from now on, and the one
// that succeeded, are no longer closed by ctx (Run closes them itself).
func (d *dialer) release() *url.URL {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.released = true
	for _, stop := range d.stops {
		stop()
	}
	d.stops = nil
	return d.last
}
