package main

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"time"
)

// broker is a Mosquitto process on loopback that the bench can stop and
// start again on the same port (the outage).
type broker struct {
	addr, conf string
	p          *proc
}

// newBroker writes the config. Persistence is on (in dir, saved at
// shutdown) so that the subscriber's session and its queued messages
// survive the outage: otherwise messages published between the restart
// and the subscriber's resubscribe would count as missing.
func newBroker(dir string) (*broker, error) {
	addr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	_, port, _ := net.SplitHostPort(addr)
	conf := fmt.Sprintf(`listener %s 127.0.0.1
allow_anonymous true
persistence true
persistence_location %s/
autosave_interval 0
log_dest stderr
log_type error
log_type warning
max_queued_messages 10000000
max_queued_bytes 0
max_inflight_messages 1000
`, port, dir)
	if os.Geteuid() == 0 {
		conf += "user root\n"
	}
	path := filepath.Join(dir, "mosquitto.conf")
	if err := os.WriteFile(path, []byte(conf), 0o600); err != nil {
		return nil, err
	}
	return &broker{addr: addr, conf: path}, nil
}

func (b *broker) start(ctx context.Context) error {
	p, err := start("mosquitto", "-c", b.conf)
	if err != nil {
		return err
	}
	b.p = p
	return waitDial(ctx, p, b.addr, 10*time.Second)
}

func (b *broker) stop() error {
	err := b.p.stop(10 * time.Second)
	b.p = nil
	return err
}
