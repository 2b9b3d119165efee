package ingest

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/adtrack/postback/pkg/telemetry"
)

// TestRequestMetrics: requests are counted by route, MMP (source) and
// status code, and accepted postbacks and clicks by source and kind.
func TestRequestMetrics(t *testing.T) {
	h := newHarness(t, nil)
	if a := h.get(installQuery("")); a.code != 200 {
		t.Fatalf("install: %d %s", a.code, a.body)
	}
	if a := h.get("/v1/postbacks/generic/install?token=wrong-token-0123456789&app_id=a"); a.code != 401 {
		t.Fatalf("wrong token: %d %s", a.code, a.body)
	}
	if a := h.get("/v1/postbacks/nope/install?token=x"); a.code != 404 {
		t.Fatalf("unknown MMP: %d %s", a.code, a.body)
	}
	if a := h.get(installQuery("&install_time=yesterday")); a.code != 400 {
		t.Fatalf("malformed: %d %s", a.code, a.body)
	}
	if a := h.get("/v1/click/cpi?site_id=s1"); a.code != 302 {
		t.Fatalf("click: %d %s", a.code, a.body)
	}
	reg := h.tel.Registry
	for _, c := range []struct {
		route, source, code string
	}{
		{"postback", "generic", "200"},
		{"postback", "generic", "401"},
		{"postback", "unknown", "404"},
		{"postback", "generic", "400"},
		{"click", "click", "302"},
	} {
		if got := metricSum(t, reg, "ingest_requests_total", map[string]string{"route": c.route, "source": c.source, "code": c.code}); got != 1 {
			t.Errorf("ingest_requests_total{route=%s,source=%s,code=%s} = %v, want 1", c.route, c.source, c.code, got)
		}
	}
	if got := metricSum(t, reg, "ingest_accepted_total", map[string]string{"source": "generic", "kind": "install"}); got != 1 {
		t.Errorf("ingest_accepted_total{source=generic,kind=install} = %v, want 1", got)
	}
	if got := metricSum(t, reg, "ingest_unauthenticated_total", map[string]string{"source": "generic", "reason": "bad_token"}); got != 1 {
		t.Errorf("ingest_unauthenticated_total{source=generic,reason=bad_token} = %v, want 1", got)
	}
	if got := metricSum(t, reg, "ingest_rejected_total", map[string]string{"source": "generic"}); got != 1 {
		t.Errorf("ingest_rejected_total{source=generic} = %v, want 1", got)
	}
	if got := metricSum(t, reg, "ingest_request_duration_seconds", map[string]string{"route": "postback"}); got != 4 {
		t.Errorf("ingest_request_duration_seconds{route=postback} has %v samples, want 4", got)
	}
}

// metricSum adds up the series of name whose labels include labels:
// counter and gauge values, histogram sample counts.
func metricSum(t *testing.T, reg prometheus.Gatherer, name string, labels map[string]string) float64 {
	t.Helper()
	ms, err := telemetry.Series(reg, name, labels)
	if err != nil {
		t.Fatal(err)
	}
	sum := 0.0
	for _, m := range ms {
		sum += m.GetCounter().GetValue() + m.GetGauge().GetValue() + float64(m.GetHistogram().GetSampleCount())
	}
	return sum
}
