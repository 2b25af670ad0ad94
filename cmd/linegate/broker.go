package main

import (
	"fmt"
	"log/slog"
	"net"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/hooks/auth"
	"github.com/mochi-mqtt/server/v2/listeners"
	"github.com/mochi-mqtt/server/v2/packets"
)

// embeddedBroker is the in-process MQTT broker of `linegate demo`.
type embeddedBroker struct {
	srv  *mqtt.Server
	addr string
}

// startBroker starts a broker on addr ("127.0.0.1:0" picks a free port).
func startBroker(addr string, log *slog.Logger) (*embeddedBroker, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("embedded broker: %w", err)
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler) // mochi would log to stdout
	}
	srv := mqtt.New(&mqtt.Options{InlineClient: true, Logger: log})
	if err := srv.AddHook(new(auth.AllowHook), nil); err != nil {
		ln.Close()
		return nil, err
	}
	if err := srv.AddListener(listeners.NewNet("demo", ln)); err != nil {
		ln.Close()
		return nil, err
	}
	if err := srv.Serve(); err != nil {
		srv.Close()
		return nil, fmt.Errorf("embedded broker: %w", err)
	}
	return &embeddedBroker{srv: srv, addr: ln.Addr().String()}, nil
}

// Close stops the broker. mochi v2.7.9's Server.Close can deadlock when a
// client connects or disconnects while it runs (it takes the clients' read
// lock twice: mochi-mqtt/server#488), so the listener is ended first with a
// closer that takes the lock once; Close then finds it ended.
func (b *embeddedBroker) Close() error {
	b.srv.Listeners.CloseAll(func(listener string) {
		for _, cl := range b.srv.Clients.GetAll() {
			if cl.Net.Listener == listener {
				_ = b.srv.DisconnectClient(cl, packets.ErrServerShuttingDown)
			}
		}
	})
	return b.srv.Close()
}
