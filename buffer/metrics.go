package buffer

import (
	"errors"
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics of one Queue. They always exist, so the code never checks for
// nil; they are registered only when Options.Registerer is set, and
// unregistered by Close so that the file can be reopened in the same
// process (Compact from the CLI, tests).
type metrics struct {
	reg           prometheus.Registerer
	collectors    []prometheus.Collector
	messages      prometheus.GaugeFunc
	bytes         prometheus.Gauge
	fileBytes     prometheus.Gauge
	oldestAge     prometheus.GaugeFunc
	dropped       prometheus.Counter
	commits       prometheus.Counter
	commitErrors  prometheus.Counter
	commitSeconds prometheus.Histogram
	appends       prometheus.Counter
	diskFull      prometheus.Gauge
}

func newMetrics(reg prometheus.Registerer, waiting, oldestAge func() float64) (*metrics, error) {
	m := &metrics{
		messages: prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "linegate_buffer_messages",
			Help: "Messages committed to the buffer and not yet acknowledged by the broker.",
		}, waiting),
		bytes: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "linegate_buffer_bytes",
			Help: "Encoded size of the messages in the buffer.",
		}),
		fileBytes: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "linegate_buffer_file_bytes",
			Help: "Size of the buffer file on disk.",
		}),
		oldestAge: prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "linegate_buffer_oldest_age_seconds",
			Help: "Age of the oldest message in the buffer (0 when empty).",
		}, oldestAge),
		dropped: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "linegate_buffer_dropped_messages_total",
			Help: "Messages dropped, oldest first, because the buffer reached max_size (or were unreadable).",
		}),
		commits: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "linegate_buffer_commits_total",
			Help: "Group commits (fsync'd bbolt transactions) of the buffer.",
		}),
		commitErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "linegate_buffer_commit_errors_total",
			Help: "Group commits that failed; their messages stay pending and are retried.",
		}),
		commitSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "linegate_buffer_commit_seconds",
			Help:    "Duration of a group commit, fsync included.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 14), // 0.5ms .. 4s
		}),
		appends: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "linegate_buffer_append_total",
			Help: "Messages appended to the buffer.",
		}),
		diskFull: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "linegate_buffer_disk_full",
			Help: "1 while the file system under the buffer is full: the oldest messages make room for new ones, as when the buffer is full.",
		}),
	}
	m.collectors = []prometheus.Collector{m.messages, m.bytes, m.fileBytes, m.oldestAge,
		m.dropped, m.commits, m.commitErrors, m.commitSeconds, m.appends, m.diskFull}
	if reg == nil {
		return m, nil
	}
	for i, c := range m.collectors {
		if err := reg.Register(c); err != nil {
			for _, done := range m.collectors[:i] {
				reg.Unregister(done)
			}
			var are prometheus.AlreadyRegisteredError
			if errors.As(err, &are) {
				return nil, fmt.Errorf("register buffer metrics: already registered (is another buffer open on this registry?): %w", err)
			}
			return nil, fmt.Errorf("register buffer metrics: %w", err)
		}
	}
	m.reg = reg
	return m, nil
}

func (m *metrics) unregister() {
	if m.reg == nil {
		return
	}
	for _, c := range m.collectors {
		m.reg.Unregister(c)
	}
	m.reg = nil
}
