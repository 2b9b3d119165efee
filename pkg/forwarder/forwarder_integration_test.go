//go:build integration

package forwarder_test

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/adtrack/postback/pkg/forward"
	"github.com/adtrack/postback/pkg/kafkaconn"
	"github.com/adtrack/postback/pkg/servicecfg"
	"github.com/adtrack/postback/pkg/sink"
	"github.com/adtrack/postback/pkg/telemetry"
	"github.com/adtrack/postback/pkg/testenv"
)

// TestReceivers: each misbehaving receiver gets exactly the documented
// attempts (retry.max_attempts 3), the healthy one is not held up by the
// slow ones, and the delivery log says what happened.
func TestReceivers(t *testing.T) {
	e := newEnv(t, 2)
	egress := localEgress(t)
	ok := newReceiver(t, func(w http.ResponseWriter, n int) { w.WriteHeader(http.StatusOK) })
	flaky := newReceiver(t, func(w http.ResponseWriter, n int) {
		if n < 2 {
			w.WriteHeader(http.StatusInternalServerError)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
	slow := newReceiver(t, func(w http.ResponseWriter, n int) { time.Sleep(1500 * time.Millisecond) })
	limited := newReceiver(t, func(w http.ResponseWriter, n int) {
		if n == 0 {
			w.Header().Set("Retry-After", "1")
			w.WriteHeader(http.StatusTooManyRequests)
			return
		}
		w.WriteHeader(http.StatusOK)
	})
	bad := newReceiver(t, func(w http.ResponseWriter, n int) {
		w.WriteHeader(http.StatusBadRequest)
		_, _ = w.Write([]byte(`{"error":"unknown click"}`))
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	downURL := "http://" + ln.Addr().String() + "/cb?click={click_id}"
	ln.Close() // nothing listens there: connection refused

	okEP := endpoint("ok", ok.srv.URL+"/cb?click={click_id}")
	okEP.Method, okEP.Body = "POST", "json"
	reg := registry(t, egress,
		okEP,
		endpoint("flaky", flaky.srv.URL+"/cb?click={click_id}"),
		endpoint("slow", slow.srv.URL+"/cb?click={click_id}"),
		endpoint("limited", limited.srv.URL+"/cb?click={click_id}"),
		endpoint("bad", bad.srv.URL+"/cb?click={click_id}"),
		endpoint("down", downURL),
	)
	const n = 4
	e.produceInstalls(0, n)
	stop := e.run(e.config(reg, egress))
	defer stop()

	waitFor(t, 60*time.Second, "every receiver's attempts", func() bool {
		return len(ok.hits()) >= n && len(flaky.hits()) >= 3*n && len(slow.hits()) >= 3*n &&
			len(limited.hits()) >= 2*n && len(bad.hits()) >= n
	})
	time.Sleep(2 * time.Second) // room for an extra attempt that must not come
	for name, want := range map[string]struct {
		rc   *receiver
		hits int
	}{"ok": {ok, n}, "flaky": {flaky, 3 * n}, "slow": {slow, 3 * n}, "limited": {limited, 2 * n}, "bad": {bad, n}} {
		hits := want.rc.hits()
		if len(hits) != want.hits || want.rc.distinct() != n {
			t.Errorf("%s: %d requests for %d deliveries, want %d for %d", name, len(hits), want.rc.distinct(), want.hits, n)
		}
		for _, h := range hits {
			if h.sigErr != nil {
				t.Errorf("%s: signature of %s attempt %s: %v", name, h.id, h.attempt, h.sigErr)
			}
		}
	}
	// A tampered copy of a signed callback is refused by the documented
	// snippet; the untouched copy is accepted.
	replay := newReceiver(t, func(w http.ResponseWriter, n int) {})
	for _, tamper := range []bool{false, true} {
		h := ok.hits()[0]
		body := h.body
		if tamper {
			body = strings.Replace(body, `"site_id":"site7"`, `"site_id":"site8"`, 1)
			if body == h.body {
				t.Fatalf("nothing to tamper in %s", body)
			}
		}
		req, _ := http.NewRequest(h.method, replay.srv.URL+h.target, strings.NewReader(body))
		req.Header = h.header.Clone()
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		last := replay.hits()[len(replay.hits())-1]
		if (last.sigErr == nil) == tamper {
			t.Errorf("replay (tampered %v): signature error %v", tamper, last.sigErr)
		}
	}
	// The healthy receiver had everything before the slow one's first
	// attempt had even timed out.
	lastOK := ok.hits()[n-1].at
	firstRetry := slow.hits()[0].at.Add(500 * time.Millisecond)
	if lastOK.After(firstRetry) {
		t.Errorf("the healthy receiver's last callback came %s after the slow receiver's first timeout", lastOK.Sub(firstRetry))
	}
	// Retry-After: 1 was honoured.
	byID := map[string][]time.Time{}
	for _, h := range limited.hits() {
		byID[h.id] = append(byID[h.id], h.at)
	}
	for id, ts := range byID {
		if len(ts) == 2 && ts[1].Sub(ts[0]) < time.Second {
			t.Errorf("limited %s: second attempt %s after the 429 with Retry-After: 1", id, ts[1].Sub(ts[0]))
		}
	}

	// The delivery log: one record per attempt, the last one final.
	want := map[string][]string{
		"ok":      {"delivered"},
		"flaky":   {"retrying", "retrying", "delivered"},
		"slow":    {"retrying", "retrying", "expired"},
		"down":    {"retrying", "retrying", "expired"},
		"limited": {"retrying", "delivered"},
		"bad":     {"failed"},
	}
	var log []forward.Attempt
	waitFor(t, 30*time.Second, "the delivery log", func() bool {
		log = e.deliveries()
		return len(log) >= n*(1+3+3+3+2+1)
	})
	got := map[string][]forward.Attempt{}
	for _, a := range log {
		got[a.DeliveryID] = append(got[a.DeliveryID], a)
	}
	if len(got) != 6*n {
		t.Errorf("delivery log has %d deliveries, want %d", len(got), 6*n)
	}
	for id, as := range got {
		sort.Slice(as, func(i, k int) bool { return as[i].Attempt < as[k].Attempt })
		var outcomes []string
		for i, a := range as {
			outcomes = append(outcomes, a.Outcome)
			if a.Attempt != i+1 {
				t.Errorf("%s (%s): attempt %d at position %d", id, a.EndpointID, a.Attempt, i)
			}
			if a.Final != (i == len(as)-1) {
				t.Errorf("%s (%s): attempt %d final=%v", id, a.EndpointID, a.Attempt, a.Final)
			}
		}
		ep := as[0].EndpointID
		if fmt.Sprint(outcomes) != fmt.Sprint(want[ep]) {
			t.Errorf("%s (%s): outcomes %v, want %v", id, ep, outcomes, want[ep])
		}
		last := as[len(as)-1]
		switch ep {
		case "bad":
			if last.Status != 400 || !strings.Contains(last.Response, "unknown click") {
				t.Errorf("bad: status %d response %q", last.Status, last.Response)
			}
		case "down":
			if last.Status != 0 || !strings.Contains(last.Error, "refused") {
				t.Errorf("down: status %d error %q, want a connection refused", last.Status, last.Error)
			}
		case "slow":
			if !strings.Contains(last.Error, "timeout") {
				t.Errorf("slow: error %q, want a timeout", last.Error)
			}
		}
		if strings.Contains(last.Host, "click=") {
			t.Errorf("the log holds the URL's query: %q", last.Host)
		}
	}

	// The same log in ClickHouse, through the sink, and its daily view.
	stats := e.loadDeliveries(t, len(log))
	for ep, want := range map[string][4]uint64{"ok": {n, n, 0, 0}, "flaky": {n, n, 0, 0}, "limited": {n, n, 0, 0},
		"slow": {n, 0, n, 0}, "down": {n, 0, n, 0}, "bad": {n, 0, n, 0}} {
		if stats[ep] != want {
			t.Errorf("postback_delivery_stats_daily %s: deliveries, delivered, failed, backlog = %v, want %v", ep, stats[ep], want)
		}
	}
}

// loadDeliveries loads the delivery log into a fresh ClickHouse database
// with the sink and returns the per-endpoint outcomes the daily view shows.
func (e *env) loadDeliveries(t *testing.T, rows int) map[string][4]uint64 {
	t.Helper()
	chCfg, conn := testenv.MigratedClickHouse(t)
	cfg := servicecfg.DefaultSink()
	cfg.Kafka.Topics = e.topics
	cfg.ClickHouse = chCfg
	cfg.Group = testenv.Name("sink")
	cfg.SessionTimeout = 6 * time.Second
	cfg.Sink.FlushInterval = 200 * time.Millisecond
	cfg.Sink.Topics = []string{e.topics.Deliveries}
	l, err := sink.New(cfg.Loader(kafkaconn.Plain(e.brokers)), conn, telemetry.New(), quiet())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- l.Run(ctx) }()
	defer func() { cancel(); <-done }()
	waitFor(t, time.Minute, "delivery rows in ClickHouse", func() bool {
		var n uint64
		_ = conn.QueryRow(context.Background(), "SELECT count() FROM postback_deliveries").Scan(&n)
		return n >= uint64(rows)
	})
	out := map[string][4]uint64{}
	r, err := conn.Query(context.Background(), "SELECT endpoint_id, deliveries, delivered, failed + expired, backlog FROM postback_delivery_stats_daily")
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	for r.Next() {
		var ep string
		var d, ok, bad uint64
		var backlog int64
		if err := r.Scan(&ep, &d, &ok, &bad, &backlog); err != nil {
			t.Fatal(err)
		}
		out[ep] = [4]uint64{d, ok, bad, uint64(backlog)}
	}
	return out
}

// TestRetryQueueSurvivesRestart stops the forwarder while deliveries wait
// in the retry queue and starts another instance with nothing new to
// read: the retries resume from the state topic, with their attempt
// numbers, and nothing delivered is sent again.
func TestRetryQueueSurvivesRestart(t *testing.T) {
	e := newEnv(t, 2)
	egress := localEgress(t)
	rc := newReceiver(t, func(w http.ResponseWriter, n int) {
		if n < 2 {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		w.WriteHeader(http.StatusOK)
	})
	reg := registry(t, egress, endpoint("p", rc.srv.URL+"/cb?click={click_id}"))
	cfg := e.config(reg, egress)
	cfg.Retry = forward.Retry{Initial: 3 * time.Second, MaxBackoff: 4 * time.Second, Period: time.Hour, MaxAttempts: 5}
	const n = 6
	e.produceInstalls(0, n)
	stop := e.run(cfg)
	waitFor(t, 30*time.Second, "the first attempts", func() bool { return len(rc.hits()) >= n })
	stop() // every delivery now waits in the retry queue
	if got := len(rc.hits()); got != n {
		t.Fatalf("%d requests before the restart, want %d", got, n)
	}
	stop = e.run(cfg)
	defer stop()
	waitFor(t, 60*time.Second, "the retries after the restart", func() bool { return len(rc.hits()) >= 3*n })
	time.Sleep(2 * time.Second)
	if got := len(rc.hits()); got != 3*n || rc.distinct() != n {
		t.Errorf("%d requests for %d deliveries, want %d for %d", got, rc.distinct(), 3*n, n)
	}
	attempts := map[string][]string{}
	for _, h := range rc.hits() {
		attempts[h.id] = append(attempts[h.id], h.attempt)
	}
	for id, as := range attempts {
		if fmt.Sprint(as) != "[1 2 3]" {
			t.Errorf("%s: attempts %v, want [1 2 3]", id, as)
		}
	}
}

// TestStartAtLatest: a new group with forwarder.start_at latest does not
// call back what was attributed before it started (deploying the
// forwarder does not replay the topics' history); after a restart it
// resumes from its committed offsets, not from the end.
func TestStartAtLatest(t *testing.T) {
	e := newEnv(t, 2)
	egress := localEgress(t)
	rc := newReceiver(t, func(w http.ResponseWriter, n int) { w.WriteHeader(http.StatusOK) })
	reg := registry(t, egress, endpoint("p", rc.srv.URL+"/cb?click={click_id}"))
	cfg := e.config(reg, egress)
	cfg.Settings.StartAt = "latest"
	e.produceInstalls(0, 5) // history
	stop := e.run(cfg)
	next := 1000
	waitFor(t, time.Minute, "a callback for an install after the start", func() bool {
		e.produceInstalls(next, 1)
		next++
		time.Sleep(200 * time.Millisecond)
		return rc.distinct() > 0
	})
	stop()
	before := rc.distinct()
	e.produceInstalls(next, 5) // while stopped: resumed from the commit, on every partition
	next += 5
	stop = e.run(cfg)
	defer stop()
	waitFor(t, time.Minute, "the installs produced while stopped", func() bool { return rc.distinct() >= before+5 })
	time.Sleep(time.Second)
	for _, h := range rc.hits() {
		if strings.Contains(h.target, "click=click-00000") {
			t.Errorf("an install from before the first start was called back: %s", h.target)
		}
	}
	for i := next - 5; i < next; i++ {
		id := forward.DeliveryID(forward.KindInstall, fmt.Sprintf("inst-%06d", i), "p")
		found := false
		for _, h := range rc.hits() {
			found = found || h.id == id
		}
		if !found {
			t.Errorf("install %d, produced while the forwarder was stopped, got no callback", i)
		}
	}
}
