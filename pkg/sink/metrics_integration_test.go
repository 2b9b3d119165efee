//go:build integration

package sink_test

import (
	"fmt"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/adtrack/postback/pkg/telemetry"
)

// checkLoadMetrics asserts what a stopped loader that loaded rows clicks
// and rejects rejected rows exports.
func checkLoadMetrics(t *testing.T, reg prometheus.Gatherer, rows, rejects int) {
	t.Helper()
	if got := metricValue(t, reg, "sink_rows_inserted_total", map[string]string{"table": "clicks"}); got != float64(rows) {
		t.Errorf("sink_rows_inserted_total{table=clicks} = %v, want %d", got, rows)
	}
	if got := metricValue(t, reg, "sink_rows_inserted_total", map[string]string{"table": "rejected"}); got != float64(rejects) {
		t.Errorf("sink_rows_inserted_total{table=rejected} = %v, want %d", got, rejects)
	}
	h := find(t, reg, "sink_freshness_seconds", map[string]string{"table": "clicks"}).GetHistogram()
	if h.GetSampleCount() != uint64(rows) || h.GetSampleSum() <= 0 || h.GetSampleSum() > float64(rows)*60 {
		t.Errorf("sink_freshness_seconds{table=clicks}: %d samples summing to %vs, want %d of under a minute", h.GetSampleCount(), h.GetSampleSum(), rows)
	}
	b := find(t, reg, "sink_batch_bytes", nil).GetHistogram()
	if b.GetSampleCount() == 0 || b.GetSampleSum() < float64(rows*50) {
		t.Errorf("sink_batch_bytes: %d inserts of %v bytes in all, want at least 50 bytes per row", b.GetSampleCount(), b.GetSampleSum())
	}
}

// checkLag asserts that a running loader that read every record of the
// three partitions of topic reports no lag on any.
func checkLag(t *testing.T, reg prometheus.Gatherer, group, topic string) {
	t.Helper()
	for p := range 3 {
		labels := map[string]string{"group": group, "topic": topic, "partition": fmt.Sprint(p)}
		if got := metricValue(t, reg, "sink_consumer_lag", labels); got != 0 {
			t.Errorf("sink_consumer_lag%v = %v after every record was read, want 0", labels, got)
		}
	}
}

// metricValue returns the value of the counter or gauge name whose labels
// include labels.
func metricValue(t *testing.T, reg prometheus.Gatherer, name string, labels map[string]string) float64 {
	t.Helper()
	m := find(t, reg, name, labels)
	if m.GetCounter() != nil {
		return m.GetCounter().GetValue()
	}
	return m.GetGauge().GetValue()
}

// find returns the series of name whose labels include labels, failing
// the test when there is none.
func find(t *testing.T, reg prometheus.Gatherer, name string, labels map[string]string) *dto.Metric {
	t.Helper()
	ms, err := telemetry.Series(reg, name, labels)
	if err != nil {
		t.Fatal(err)
	}
	if len(ms) == 0 {
		t.Fatalf("no series %s%v", name, labels)
	}
	return ms[0]
}
