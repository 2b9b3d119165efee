package stage

import (
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Health is what a running stage says about itself: ready, or not ready
// with the reason an operator needs (which partition is restoring, which
// error the session is retrying after, how many records have waited how
// long). Pass one in Config.Health and read it from a readiness probe.
type Health struct {
	name string

	mu     sync.Mutex
	reason string    // empty: ready
	since  time.Time // of the current state, ready or not
	log    *slog.Logger
	gauge  prometheus.Gauge

	loggedKind string // the last reason logged, numbers masked
	loggedAt   time.Time
}

// NewHealth returns the health of the stage called name, not ready until
// the stage has joined its group and restored its partitions.
func NewHealth(name string) *Health {
	return &Health{name: name, reason: "not started", since: time.Now()}
}

// Ready returns nil when the stage is making progress (or has nothing to
// do), else an error naming the stage, the reason and for how long.
func (h *Health) Ready() error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.reason == "" {
		return nil
	}
	return fmt.Errorf("stage %s: %s (not ready for %s)", h.name, h.reason, time.Since(h.since).Round(time.Second))
}

// Set records the state, reason "" meaning ready. A stage sets its own;
// Set is exported for the steps around the stages (creating topics).
func (h *Health) Set(reason string) { h.set(reason) }

// relogEvery bounds how often an unchanged kind of reason is logged again.
const relogEvery = time.Minute

// set records the state and mirrors it to the ready gauge. Becoming not
// ready is logged at warn, a new kind of reason again at once and the same
// kind (the same words, other numbers) once a minute; becoming ready at
// info.
func (h *Health) set(reason string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if reason == h.reason {
		return
	}
	was := h.reason
	h.reason = reason
	if was == "" || reason == "" {
		h.since = time.Now() // not ready since: kept while the reason changes
	}
	if h.gauge != nil {
		if reason == "" {
			h.gauge.Set(1)
		} else {
			h.gauge.Set(0)
		}
	}
	if h.log == nil {
		return
	}
	switch kind := kindOf(reason); {
	case reason == "":
		h.log.Info("stage ready", "stage", h.name, "was", was)
	case was == "" || was == "not started":
		h.log.Warn("stage not ready", "stage", h.name, "reason", reason)
	case kind != h.loggedKind || time.Since(h.loggedAt) > relogEvery:
		h.log.Warn("stage still not ready", "stage", h.name, "reason", reason, "not_ready_for", time.Since(h.since).Round(time.Second))
	default:
		return
	}
	h.loggedKind, h.loggedAt = kindOf(reason), time.Now()
}

// kindOf masks the numbers of a reason (durations, offsets, counts):
// reasons of one kind differ only in them.
func kindOf(reason string) string {
	var b strings.Builder
	digit := false
	for _, r := range reason {
		d := r >= '0' && r <= '9'
		if !d {
			b.WriteRune(r)
		} else if !digit {
			b.WriteByte('#')
		}
		digit = d
	}
	return b.String()
}

// Metrics are the stage metrics of a process, shared by its stages and
// labelled by stage name. Create them once per registry.
type Metrics struct {
	transactions *prometheus.CounterVec
	restarts     *prometheus.CounterVec
	ready        *prometheus.GaugeVec
	restored     *prometheus.CounterVec
	records      *prometheus.CounterVec
	lag          *prometheus.GaugeVec
	freshness    *prometheus.HistogramVec
	stateDisk    *prometheus.GaugeVec
	stateLive    *prometheus.GaugeVec
	// hangingResolved counts markers the stage wrote for transactions of
	// its process that Kafka left open with a known outcome (hanging.go).
	hangingResolved *prometheus.CounterVec
}

// NewMetrics registers the stage metrics under namespace with reg (nil:
// they are kept but not exported):
//
//	<ns>_transactions_total{stage,outcome,reason}  outcome: committed, aborted, failed (outcome unknown)
//	<ns>_stage_restarts_total{stage,reason}        sessions rebuilt after a failure
//	<ns>_stage_ready{stage}                        1 while the stage makes progress
//	<ns>_restored_records_total{stage}             changelog records replayed into state
//	<ns>_records_total{stage}                      input records of committed transactions (throughput)
//	<ns>_consumer_lag{stage,topic,partition}       records after the last one polled (high watermark minus next offset)
//	<ns>_freshness_seconds{stage}                  record timestamp to the commit of the transaction that processed it
//	<ns>_state_disk_bytes{stage}                   Pebble's bytes on disk, over the partitions this process owns
//	<ns>_state_live_bytes{stage}                   bytes of the live Pebble tables, likewise
//	<ns>_hanging_resolved_total{stage}             markers written for transactions of this process Kafka left open
func NewMetrics(reg prometheus.Registerer, namespace string) *Metrics {
	// Freshness: milliseconds when live, up to an hour through a backlog
	// (the sink's histogram has the same buckets).
	freshnessBuckets := []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2, 5, 10, 30, 60, 300, 900, 3600}
	m := &Metrics{
		transactions: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: namespace, Name: "transactions_total",
			Help: "Transactions ended, by stage, outcome (committed, aborted, failed: outcome unknown) and reason."}, []string{"stage", "outcome", "reason"}),
		restarts: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: namespace, Name: "stage_restarts_total",
			Help: "Kafka sessions of a stage rebuilt after a failure, by reason."}, []string{"stage", "reason"}),
		ready: prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: namespace, Name: "stage_ready",
			Help: "1 while the stage makes progress or has nothing to do; 0 while it is stuck (see /readyz for why)."}, []string{"stage"}),
		restored: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: namespace, Name: "restored_records_total",
			Help: "Changelog records replayed into a stage's local state."}, []string{"stage"}),
		records: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: namespace, Name: "records_total",
			Help: "Input records (ticks included) of a stage's committed transactions: its throughput, each record counted once."}, []string{"stage"}),
		lag: prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: namespace, Name: "consumer_lag",
			Help: "Records of an input partition after the last one the stage polled: the fetch's high watermark minus the next offset to process (a trailing transaction marker counts as one). Updated with every fetch that returns records."}, []string{"stage", "topic", "partition"}),
		freshness: prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: namespace, Name: "freshness_seconds",
			Help: "Seconds from an input record's timestamp to the commit of the transaction that processed it (ticks excluded).", Buckets: freshnessBuckets}, []string{"stage"}),
		stateDisk: prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: namespace, Name: "state_disk_bytes",
			Help: "Bytes the stage's Pebble stores of the partitions this process owns take on disk."}, []string{"stage"}),
		stateLive: prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: namespace, Name: "state_live_bytes",
			Help: "Bytes of the live tables of the stage's Pebble stores of the partitions this process owns (the state flushed so far)."}, []string{"stage"}),
		hangingResolved: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: namespace, Name: "hanging_resolved_total",
			Help: "Markers a stage wrote for transactions of this process that Kafka left open on a partition after their coordinator decided them (docs/attribution.md, Hanging transactions)."}, []string{"stage"}),
	}
	if reg != nil {
		reg.MustRegister(m.transactions, m.restarts, m.ready, m.restored, m.records, m.lag, m.freshness, m.stateDisk, m.stateLive, m.hangingResolved)
	}
	return m
}

// reason labels an error for the metrics: a small fixed set an operator
// can alert on, the full error goes to the log.
func reason(err error) string {
	switch {
	case err == nil:
		return "ok"
	case errors.Is(err, errRebalance):
		return "rebalance"
	case errors.Is(err, errCommitRefused):
		return "commit_refused"
	case errors.Is(err, errStale):
		return "stale_records"
	case errors.Is(err, errStopping):
		return "stopping"
	case errors.Is(err, errRewound):
		return "position_rewound"
	}
	return kafkaReason(err)
}
