package forwarder

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/adtrack/postback/pkg/forward"
)

// metrics are per endpoint: an operator sees which publisher is failing.
type metrics struct {
	sent        *prometheus.CounterVec
	succeeded   *prometheus.CounterVec
	failed      *prometheus.CounterVec
	retrying    *prometheus.CounterVec
	dropped     *prometheus.CounterVec
	deferred    *prometheus.CounterVec
	backlog     *prometheus.GaugeVec
	latency     *prometheus.HistogramVec
	undecodable *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) *metrics {
	ep := []string{"endpoint"}
	m := &metrics{
		sent:      prometheus.NewCounterVec(prometheus.CounterOpts{Name: "forwarder_callbacks_sent_total", Help: "Callback attempts made, by endpoint."}, ep),
		succeeded: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "forwarder_callbacks_succeeded_total", Help: "Deliveries answered 2xx, by endpoint."}, ep),
		failed: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "forwarder_callbacks_failed_total",
			Help: "Deliveries failed for good, by endpoint and outcome: failed (a 4xx other than 408/429, a redirect past the limit, a refused destination) or expired (retry period or attempts used up)."}, []string{"endpoint", "outcome"}),
		retrying: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "forwarder_callbacks_retrying_total", Help: "Attempts that failed and will be retried (timeout, connection error, 408, 429, 5xx), and deliveries deferred from a full host queue, by endpoint."}, ep),
		dropped:  prometheus.NewCounterVec(prometheus.CounterOpts{Name: "forwarder_callbacks_dropped_total", Help: "Deliveries given up without a final answer: endpoint removed, or the retry backlog full, by endpoint."}, ep),
		deferred: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "forwarder_callbacks_deferred_total", Help: "Deliveries put in the retry queue unattempted because their host queue was full, by endpoint."}, ep),
		backlog:  prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "forwarder_retry_backlog", Help: "Deliveries waiting in this instance's retry queue, by endpoint."}, ep),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "forwarder_callback_duration_seconds", Help: "Duration of callback attempts, by endpoint.",
			Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30}}, ep),
		undecodable: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "forwarder_undecodable_records_total", Help: "Input records that could not be decoded and were skipped, by topic."}, []string{"topic"}),
	}
	reg.MustRegister(m.sent, m.succeeded, m.failed, m.retrying, m.dropped, m.deferred, m.backlog, m.latency, m.undecodable)
	return m
}

func (m *metrics) outcome(endpoint, outcome string) {
	switch outcome {
	case forward.OutcomeDelivered:
		m.succeeded.WithLabelValues(endpoint).Inc()
	case forward.OutcomeRetrying:
		m.retrying.WithLabelValues(endpoint).Inc()
	case forward.OutcomeFailed, forward.OutcomeExpired:
		m.failed.WithLabelValues(endpoint, outcome).Inc()
	case forward.OutcomeDropped:
		m.dropped.WithLabelValues(endpoint).Inc()
	}
}
