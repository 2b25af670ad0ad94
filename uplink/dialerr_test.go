package uplink

import (
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"syscall"
	"testing"

	"github.com/eclipse/paho.mqtt.golang/packets"

	"github.com/linegate/linegate/internal/testkit"
)

// paho wraps a dial error as "network Error : dial tcp ...".
func pahoNetwork(err error) error { return fmt.Errorf("%w : %w", packets.ErrorNetworkError, err) }

func TestDialError(t *testing.T) {
	refused := &net.OpError{Op: "dial", Net: "tcp", Err: &os.SyscallError{Syscall: "connect", Err: syscall.ECONNREFUSED}}
	reset := &net.OpError{Op: "read", Net: "tcp", Err: &os.SyscallError{Syscall: "read", Err: syscall.ECONNRESET}}
	tests := []struct {
		name string
		err  error
		want string
		tls  bool // ClosedInHandshake
	}{
		{"refused", pahoNetwork(refused), "connection refused", false},
		{"no such host", pahoNetwork(&net.OpError{Op: "dial", Net: "tcp", Err: &net.DNSError{Name: "mes-broker", Err: "no such host", IsNotFound: true}}), "cannot resolve mes-broker: no such host", false},
		{"reset in handshake", pahoNetwork(reset), "connection reset by peer", true},
		{"eof in handshake", pahoNetwork(io.EOF), "EOF", true},
		{"login refused is not a dial error", packets.ErrorRefusedNotAuthorised, packets.ErrorRefusedNotAuthorised.Error(), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := DialError(tt.err)
			if got.Error() != tt.want {
				t.Errorf("DialError: %q, want %q", got, tt.want)
			}
			if !errors.Is(got, tt.err) {
				t.Error("the original error does not unwrap")
			}
			if ClosedInHandshake(got) != tt.tls {
				t.Errorf("ClosedInHandshake = %v", !tt.tls)
			}
		})
	}
}

// The uplink's own error for an ssl:// broker on a plain MQTT port names
// the broker and asks whether TLS is on; a refused dial is plain words.
func TestConnectErrorWording(t *testing.T) {
	b := startBroker(t, "127.0.0.1:0") // plain MQTT
	dead, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	deadAddr := dead.Addr().String()
	dead.Close()
	tests := []struct{ broker, want string }{
		{"ssl://" + b.addr, "connect to ssl://" + b.addr + ": is TLS on?"},
		{"tcp://" + deadAddr, "connect to tcp://" + deadAddr + ": connection refused"},
	}
	for _, tt := range tests {
		t.Run(tt.broker, func(t *testing.T) {
			r := startUplink(t, Config{Brokers: []string{tt.broker}, GatewayID: "gw", TLS: &tls.Config{InsecureSkipVerify: true}}, newMemSource())
			var last string
			testkit.WaitFor(t, long, "a failed connect", func() bool { last = r.u.Status().LastError; return last != "" })
			if !strings.HasPrefix(last, tt.want) || strings.Contains(last, "network Error") {
				t.Errorf("error %q, want it to begin %q", last, tt.want)
			}
		})
	}
}
