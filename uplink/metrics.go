package uplink

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics of one Uplink, registered on the Registerer of its Config.
type metrics struct {
	connected     prometheus.Gauge
	inflight      prometheus.Gauge
	published     prometheus.Counter
	publishErrors prometheus.Counter
	ackTimeouts   prometheus.Counter
	acked         prometheus.Counter
	reconnects    prometheus.Counter
	latency       prometheus.Histogram
	replaying     prometheus.Gauge
	notDelivered  prometheus.Counter
	tooLarge      prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	const ns, sub = "linegate", "uplink"
	m := &metrics{
		connected: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: ns, Subsystem: sub, Name: "connected",
			Help: "1 while connected to an MQTT broker.",
		}),
		inflight: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: ns, Subsystem: sub, Name: "inflight",
			Help: "Messages published and not yet acknowledged by the broker.",
		}),
		published: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: ns, Subsystem: sub, Name: "published_messages_total",
			Help: "Data messages handed to the MQTT client, resends included.",
		}),
		publishErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: ns, Subsystem: sub, Name: "publish_errors_total",
			Help: "Publishes that failed; the message stays in the buffer and is sent again.",
		}),
		ackTimeouts: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: ns, Subsystem: sub, Name: "ack_timeouts_total",
			Help: "Connections dropped because the broker did not acknowledge a publish within ack_timeout.",
		}),
		acked: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: ns, Subsystem: sub, Name: "acked_messages_total",
			Help: "Data messages acknowledged by the broker and deleted from the buffer.",
		}),
		reconnects: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: ns, Subsystem: sub, Name: "reconnects_total",
			Help: "Connections established after a lost or failed one.",
		}),
		replaying: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: ns, Subsystem: sub, Name: "replaying",
			Help: "1 while the backlog found at connect is being replayed at uplink.replay_rate.",
		}),
		notDelivered: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: ns, Subsystem: sub, Name: "status_not_delivered_total",
			Help: "Connections dropped because the broker acknowledged the online status but never delivered it (an ACL that drops the gateway's publishes).",
		}),
		tooLarge: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: ns, Subsystem: sub, Name: "too_large_messages_total",
			Help: "Buffered messages over max_message_size, dropped with a buffer_dropped event instead of being sent.",
		}),
		latency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: ns, Subsystem: sub, Name: "publish_latency_seconds",
			Help:    "Time from publish to the broker's acknowledgement.",
			Buckets: prometheus.ExponentialBuckets(0.001, 4, 8), // 1ms .. 16s
		}),
	}
	if reg == nil {
		return m, nil
	}
	for _, c := range []prometheus.Collector{m.connected, m.inflight, m.published,
		m.publishErrors, m.ackTimeouts, m.acked, m.reconnects, m.latency, m.replaying, m.notDelivered, m.tooLarge} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("uplink: register metrics: %w", err)
		}
	}
	return m, nil
}
