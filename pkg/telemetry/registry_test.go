package telemetry

import (
	"slices"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

func TestNamesListsUnobservedMetrics(t *testing.T) {
	tel := New()
	vec := prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "svc", Name: "things_total", Help: "h"}, []string{"kind"})
	hist := prometheus.NewHistogram(prometheus.HistogramOpts{Name: "svc_wait_seconds", Help: "h"})
	tel.Registry.MustRegister(vec, hist)
	// Registered through the Registerer interface, as the engines do.
	var reg prometheus.Registerer = tel.Registry
	reg.MustRegister(prometheus.NewGauge(prometheus.GaugeOpts{Name: "svc_level", Help: "h"}))

	names := tel.Registry.Names()
	for _, want := range []string{"svc_things_total", "svc_wait_seconds", "svc_level", "go_goroutines", "process_cpu_seconds_total"} {
		if !slices.Contains(names, want) {
			t.Errorf("Names() lacks %s: %v", want, names)
		}
	}
	// Nothing observed yet: Gather has no family for the vector.
	mfs, err := tel.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == "svc_things_total" {
			t.Errorf("gathered an empty vector: the test no longer shows why Names is needed")
		}
	}
}

func TestRegisterRefusalRecordsNothing(t *testing.T) {
	r := NewRegistry()
	c := prometheus.NewCounter(prometheus.CounterOpts{Name: "dup_total", Help: "h"})
	if err := r.Register(c); err != nil {
		t.Fatal(err)
	}
	other := prometheus.NewGauge(prometheus.GaugeOpts{Name: "other", Help: "h"})
	bad := prometheus.NewCounter(prometheus.CounterOpts{Name: "dup_total", Help: "h"})
	if err := r.Register(prometheus.Collector(multi{other, bad})); err == nil {
		t.Fatal("registering a duplicate name succeeded")
	}
	if names := r.Names(); !slices.Equal(names, []string{"dup_total"}) {
		t.Errorf("Names() = %v, want only dup_total", names)
	}
}

// multi is one collector made of several.
type multi []prometheus.Collector

func (m multi) Describe(ch chan<- *prometheus.Desc) {
	for _, c := range m {
		c.Describe(ch)
	}
}

func (m multi) Collect(ch chan<- prometheus.Metric) {
	for _, c := range m {
		c.Collect(ch)
	}
}
