package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"text/tabwriter"
	"time"

	"github.com/linegate/linegate/cmd/internal/agent"
	"github.com/linegate/linegate/configs"
	"github.com/linegate/linegate/drivers"
)

// connectResult is one line of "check --connect".
type connectResult struct {
	kind, name, target string
	took               time.Duration
	err                error
}

// checkConnect tries every device (one read of its whole plan) and every
// broker (connect, then disconnect), all at once, and prints pass or fail
// with the time each took and the first error. It reports whether all
// passed.
func checkConnect(ctx context.Context, w io.Writer, cfg *configs.Config, log *slog.Logger) (bool, error) {
	devs, err := agent.BuildDevices(cfg, log)
	if err != nil {
		return false, usageError(err)
	}
	d, err := mqttDialFromConfig(cfg)
	if err != nil {
		return false, err
	}
	results := make([]connectResult, len(devs)+len(cfg.Uplink.Brokers))
	done := make(chan struct{})
	for i, dev := range devs {
		go func() {
			defer func() { done <- struct{}{} }()
			timeout := 2*cfg.Devices[i].Timeout.D() + time.Second
			rctx, cancel := context.WithTimeout(ctx, timeout)
			defer cancel()
			out := make([]drivers.Sample, len(dev.Tags))
			start := time.Now()
			err := dev.Driver.Read(rctx, out)
			took := time.Since(start)
			_ = dev.Driver.Close()
			if err == nil {
				for j, s := range out {
					if s.Quality != drivers.Good {
						err = fmt.Errorf("%s: %w", dev.Tags[j].Name, s.Err)
						break
					}
				}
			}
			results[i] = connectResult{"device", dev.Name, deviceTarget(cfg.Devices[i]), took, err}
		}()
	}
	for i, b := range cfg.Uplink.Brokers {
		go func() {
			defer func() { done <- struct{}{} }()
			start := time.Now()
			c, err := connectMQTT(ctx, b, d, nil)
			took := time.Since(start)
			if err == nil {
				c.client.Disconnect(100)
			}
			name := b
			if u, perr := brokerURL(b); perr == nil {
				name = u.Redacted()
			}
			results[len(devs)+i] = connectResult{"broker", name, "", took, err}
		}()
	}
	for range results {
		<-done
	}
	fmt.Fprintln(w, "\nconnect:")
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	ok := true
	for _, r := range results {
		verdict, detail := "PASS", r.target
		if r.err != nil {
			verdict, detail, ok = "FAIL", r.err.Error(), false
		}
		fmt.Fprintf(tw, "  %s\t%s %s\t%s\t%s\n", verdict, r.kind, r.name, r.took.Round(100*time.Microsecond), detail)
	}
	tw.Flush()
	return ok, nil
}

// mqttDialFromConfig is the uplink's connection settings, for diagnostics.
func mqttDialFromConfig(cfg *configs.Config) (mqttDial, error) {
	t, err := agent.BrokerTLS(cfg.Uplink.TLS)
	if err != nil {
		return mqttDial{}, usageError(err)
	}
	return mqttDial{username: cfg.Uplink.Username, password: cfg.Uplink.Password.Reveal(), tls: t, timeout: 5 * time.Second}, nil
}
