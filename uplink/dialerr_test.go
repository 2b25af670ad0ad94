package uplink

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"syscall"
	"testing"

	"github.com/eclipse/paho.mqtt.golang/packets"
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
