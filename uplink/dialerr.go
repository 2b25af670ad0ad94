package uplink

import (
	"errors"
	"net"
	"strings"
	"syscall"

	"github.com/eclipse/paho.mqtt.golang/packets"
)

// plainError is an error with a shorter message that still unwraps to the
// original, for errors.Is (closedByPeer) and errors.As.
type plainError struct {
	msg string
	err error
}

func (e *plainError) Error() string { return e.msg }
func (e *plainError) Unwrap() error { return e.err }

// DialError says in plain words why the broker could not be reached:
// paho's "network Error : dial tcp 127.0.0.1:1883: connect: connection
// refused" becomes "connection refused" (the caller names the broker).
// Other errors are returned as they are.
func DialError(err error) error {
	if err == nil || !errors.Is(err, packets.ErrorNetworkError) {
		return err
	}
	var dns *net.DNSError
	var errno syscall.Errno
	var ne net.Error
	switch {
	case errors.As(err, &dns):
		msg := "cannot resolve " + dns.Name
		if dns.IsNotFound {
			msg += ": no such host"
		} else if dns.Err != "" {
			msg += ": " + dns.Err
		}
		return &plainError{msg, err}
	case errors.As(err, &errno):
		return &plainError{errno.Error(), err}
	case errors.As(err, &ne) && ne.Timeout():
		return &plainError{"no answer (timeout)", err}
	}
	msg := strings.TrimPrefix(err.Error(), packets.ErrorNetworkError.Error()+" : ")
	return &plainError{msg, err}
}

// NotTLSHint is added when a TLS connection is closed by the broker during
// the handshake: what a plain MQTT listener does when it gets a TLS hello.
const NotTLSHint = "is TLS on? The broker closed the connection during the TLS handshake, as a plain MQTT port (1883) does: use tcp:// for it"

// ClosedInHandshake says whether err, from a TLS connection, is the broker
// closing it before the handshake was done: see NotTLSHint.
func ClosedInHandshake(err error) bool { return closedByPeer(err) && !handshakeDone(err) }
