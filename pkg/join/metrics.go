package join

import "github.com/prometheus/client_golang/prometheus"

// metrics are the joins' Prometheus series. They count processing
// attempts: records of a transaction that aborts (rebalance, crash) are
// processed and counted again, so a series may run slightly ahead of the
// committed outputs.
type metrics struct {
	installs   *prometheus.CounterVec // match_type
	events     *prometheus.CounterVec // joined: install, organic
	duplicates *prometheus.CounterVec // kind: install, event, click, impression
	waited     *prometheus.CounterVec // kind, outcome: matched, deadline
	rejected   *prometheus.CounterVec // topic
	expired    *prometheus.CounterVec // stage, index
	lookups    *prometheus.CounterVec // stage
	decided    *prometheus.CounterVec // stage: device, ipua
	waiting    *prometheus.GaugeVec   // stage, kind: entries in a grace buffer, as committed
	flags      *prometheus.CounterVec // flag
	flagged    prometheus.Counter     // installs with at least one fraud flag
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		installs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "attribution_installs_total", Help: "Installs attributed, by match type.",
		}, []string{"match_type"}),
		events: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "attribution_events_total", Help: "In-app events published, by whether an install was found (install) or not (organic).",
		}, []string{"joined"}),
		duplicates: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "attribution_duplicates_total", Help: "Records dropped as repeats, by kind: postbacks whose event_id was already seen (install, event: MMP retries), clicks and impressions whose keyed id was (click, impression: a client's retry with the same idempotency key).",
		}, []string{"kind"}),
		waited: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "attribution_grace_settled_total", Help: "Postbacks that waited in a grace buffer, by kind and how the wait ended (matched or deadline).",
		}, []string{"kind", "outcome"}),
		rejected: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "attribution_rejected_total", Help: "Input records sent to the rejected topic (undecodable, no exchange rate), by input topic.",
		}, []string{"topic"}),
		expired: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "attribution_state_expired_total", Help: "State entries removed by window expiry, by stage and index.",
		}, []string{"stage", "index"}),
		lookups: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "attribution_lookups_total", Help: "Installs looked up, by stage.",
		}, []string{"stage"}),
		decided: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "attribution_decided_total", Help: "Installs decided, by the stage that decided them: device when a click won by click id or advertising id (the IP + UA stage could not change that, so the install skips it), ipua otherwise.",
		}, []string{"stage"}),
		waiting: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "attribution_grace_waiting", Help: "Entries in a grace buffer of the partitions this process owns, as committed: installs waiting for their click (stage clickid), events waiting for their install (stage events). Collected every 15 s.",
		}, []string{"stage", "kind"}),
		flags: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "attribution_fraud_flags_total", Help: "Fraud flags set on attributed installs, by flag (an install may carry several).",
		}, []string{"flag"}),
		flagged: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "attribution_flagged_installs_total", Help: "Attributed installs carrying at least one fraud flag: over attribution_installs_total, the fraud share.",
		}),
	}
	if reg != nil {
		reg.MustRegister(m.installs, m.events, m.duplicates, m.waited, m.rejected, m.expired, m.lookups, m.decided, m.waiting, m.flags, m.flagged)
	}
	return m
}
