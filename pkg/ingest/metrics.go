package ingest

import "github.com/prometheus/client_golang/prometheus"

// metrics are ingest's Prometheus series. Labels never carry tokens or
// device ids.
type metrics struct {
	requests        *prometheus.CounterVec   // route, source, code
	duration        *prometheus.HistogramVec // route
	produceSeconds  *prometheus.HistogramVec // topic
	produceFailures *prometheus.CounterVec   // topic, reason
	unauthenticated *prometheus.CounterVec   // source, reason
	rejected        *prometheus.CounterVec   // source, field
	accepted        *prometheus.CounterVec   // source, kind
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ingest_requests_total", Help: "HTTP requests by route, source and status code.",
		}, []string{"route", "source", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "ingest_request_duration_seconds", Help: "Time to answer a request, by route.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5},
		}, []string{"route"}),
		produceSeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "ingest_produce_duration_seconds", Help: "Time from handing a record to Kafka to its acknowledgement.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5},
		}, []string{"topic"}),
		produceFailures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ingest_produce_failures_total", Help: "Records not acknowledged (answered 503), by topic and reason.",
		}, []string{"topic", "reason"}),
		unauthenticated: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ingest_unauthenticated_total", Help: "Postbacks refused before parsing (not written anywhere), by source and reason.",
		}, []string{"source", "reason"}),
		rejected: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ingest_rejected_total", Help: "Authenticated postbacks rejected as malformed (kept on the rejected topic), by source and field.",
		}, []string{"source", "field"}),
		accepted: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ingest_accepted_total", Help: "Records acknowledged by Kafka and answered 2xx/302, by source and kind.",
		}, []string{"source", "kind"}),
	}
	reg.MustRegister(m.requests, m.duration, m.produceSeconds, m.produceFailures, m.unauthenticated, m.rejected, m.accepted)
	return m
}
