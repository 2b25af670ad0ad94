package collector

import (
	"context"
	"errors"
	"io"
	"net"
	"os"
	"strings"
	"syscall"

	"github.com/prometheus/client_golang/prometheus"
)

type metrics struct {
	pollDuration *prometheus.HistogramVec
	overruns     *prometheus.CounterVec
	readErrors   *prometheus.CounterVec
	readings     *prometheus.CounterVec
	up           *prometheus.GaugeVec
	appendErrors prometheus.Counter
	panics       *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		pollDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "linegate_device_poll_duration_seconds", Help: "Time to read every tag of a device once.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5},
		}, []string{"device"}),
		overruns: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "linegate_device_overruns_total", Help: "Poll ticks skipped because the previous poll overran its interval.",
		}, []string{"device"}),
		readErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "linegate_device_read_errors_total", Help: "Polls in which the device could not be read at all, by reason (timeout, refused, closed, backoff, exception, other).",
		}, []string{"device", "reason"}),
		readings: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "linegate_readings_total", Help: "Readings normalized, by quality (including ones the deadband suppressed).",
		}, []string{"device", "quality"}),
		up: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "linegate_device_up", Help: "1 when the last poll of the device reached it.",
		}, []string{"device"}),
		appendErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "linegate_collector_append_errors_total", Help: "Messages the buffer refused (readings lost).",
		}),
		panics: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "linegate_device_failures_total", Help: "Internal errors (recovered panics) that took a device down; each is a bug to report.",
		}, []string{"device"}),
	}
	if reg != nil {
		reg.MustRegister(m.pollDuration, m.overruns, m.readErrors, m.readings, m.up, m.appendErrors, m.panics)
	}
	return m
}

// errorReason is the low-cardinality reason label of a device read error.
func errorReason(err error) string {
	var ne net.Error
	switch {
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, os.ErrDeadlineExceeded), errors.As(err, &ne) && ne.Timeout():
		return "timeout"
	case errors.Is(err, syscall.ECONNREFUSED):
		return "refused"
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE), errors.Is(err, net.ErrClosed):
		return "closed"
	}
	msg := err.Error()
	switch {
	case strings.Contains(msg, "reconnect in"):
		return "backoff"
	case strings.Contains(msg, "exception"):
		return "exception"
	case strings.Contains(msg, "timeout"):
		return "timeout"
	case strings.Contains(msg, "refused"):
		return "refused"
	}
	return "other"
}
