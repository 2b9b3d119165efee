//go:build integration

package forwarder_test

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/segmentio/encoding/json"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/adtrack/postback/pkg/forward"
)

// BenchmarkForwarderVsPlain measures, in one run against one local
// receiver: deliveries per second of one forwarder instance draining a
// backlog of attributed installs (consume, match, render, sign, send, log
// and state writes), from its first callback to its last, beside a plain net/http client loop sending the same
// rendered requests with the same concurrency (the ceiling); then the p99
// from an install being committed to Kafka to its callback being received,
// at a steady 500 installs/s.
func BenchmarkForwarderVsPlain(b *testing.B) {
	// Enough for a few seconds of steady sending: with 20,000 the ramp at
	// the start weighed on the figure.
	const n = 60000
	e := newEnv(b, 4)
	egress := localEgress(b)
	var mu sync.Mutex
	got := map[string]time.Time{}
	rc := newReceiver(b, func(w http.ResponseWriter, _ int) { w.WriteHeader(http.StatusOK) })
	rc.srv.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		if _, ok := got[r.Header.Get(forward.HeaderIdempotencyKey)]; !ok {
			got[r.Header.Get(forward.HeaderIdempotencyKey)] = time.Now()
		}
		mu.Unlock()
		w.WriteHeader(http.StatusOK)
	})
	received := func() int { mu.Lock(); defer mu.Unlock(); return len(got) }
	reset := func() { mu.Lock(); got = map[string]time.Time{}; mu.Unlock() }
	ep := endpoint("bench", rc.srv.URL+"/cb?click={click_id}&sub={sub_site_id}&payout={payout}")
	ep.Payout = forward.Payout{Model: forward.PayoutCPI, Amount: 1_500_000, Currency: "USD"}
	reg := registry(b, egress, ep)
	cfg := e.config(reg, egress)
	concurrency := cfg.Settings.HostConcurrency

	for i := 0; i < b.N; i++ {
		// The ceiling: the same requests, rendered and signed, through a
		// plain client with the same concurrency, nothing else.
		stored, _ := reg.Get("bench")
		reqs := make([]forward.Request, n)
		for k := range reqs {
			a := install(k)
			reqs[k], _ = forward.Render(stored, forward.FromInstall(&a))
		}
		// Before and after the forwarder's run: the machine's load drifts.
		plainBefore := plainLoop(b, reqs, concurrency)
		reset()

		// One forwarder draining the same installs from a backlog in Kafka:
		// from the first callback received to the last (group join and
		// restore are not delivery throughput).
		e.produceInstalls(i*n, n)
		stop := e.run(cfg)
		waitFor(b, 5*time.Minute, "the backlog's callbacks", func() bool { return received() >= n })
		mu.Lock()
		first, last := time.Now(), time.Time{}
		for _, at := range got {
			if at.Before(first) {
				first = at
			}
			if at.After(last) {
				last = at
			}
		}
		mu.Unlock()
		fwd := float64(n-1) / last.Sub(first).Seconds()
		reset()
		plain := (plainBefore + plainLoop(b, reqs, concurrency)) / 2
		reset()

		// Freshness: installs at a steady rate, committed to callback.
		reset()
		committed := map[string]time.Time{}
		const rate, seconds = 500, 4
		for s := 0; s < rate*seconds/50; s++ {
			recs := make([]*kgo.Record, 0, 50)
			for k := 0; k < 50; k++ {
				a := install(1_000_000 + i*rate*seconds + s*50 + k)
				v, _ := json.Marshal(a)
				recs = append(recs, &kgo.Record{Topic: e.topics.InstallsAttributed, Key: []byte(a.EventID), Value: v})
			}
			if err := e.prod.ProduceSync(context.Background(), recs...).FirstErr(); err != nil {
				b.Fatal(err)
			}
			now := time.Now()
			for _, r := range recs {
				committed[forward.DeliveryID(forward.KindInstall, string(r.Key), "bench")] = now
			}
			time.Sleep(time.Second / (rate / 50))
		}
		waitFor(b, time.Minute, "the steady installs' callbacks", func() bool { return received() >= rate*seconds })
		stop()
		var lat []time.Duration
		mu.Lock()
		for id, at := range got {
			if c, ok := committed[id]; ok {
				lat = append(lat, at.Sub(c))
			}
		}
		mu.Unlock()
		sort.Slice(lat, func(x, y int) bool { return lat[x] < lat[y] })
		p99 := lat[len(lat)*99/100]
		b.ReportMetric(fwd, "forwarder_deliveries/s")
		b.ReportMetric(plain, "plain_http_deliveries/s")
		b.ReportMetric(100*fwd/plain, "%_of_plain")
		b.ReportMetric(float64(p99.Microseconds())/1000, "p99_commit_to_callback_ms")
		b.Logf("forwarder %.0f deliveries/s vs plain net/http loop %.0f/s: %.0f%% (goal >= 70%%); p99 committed -> callback received %s (goal <= 1s), p50 %s",
			fwd, plain, 100*fwd/plain, p99, lat[len(lat)/2])
		reset()
	}
}

// plainLoop sends reqs, signed, with a plain net/http client and
// concurrency goroutines, and returns the requests per second.
func plainLoop(b *testing.B, reqs []forward.Request, concurrency int) float64 {
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: concurrency}}
	work := make(chan *forward.Request)
	var wg sync.WaitGroup
	start := time.Now()
	for w := 0; w < concurrency; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for r := range work {
				hr, _ := http.NewRequest(r.Method, r.URL, bytes.NewReader(r.Body))
				hr.Header.Set(forward.HeaderIdempotencyKey, r.DeliveryID)
				ts := time.Now().Unix()
				hr.Header.Set(forward.HeaderTimestamp, fmt.Sprint(ts))
				hr.Header.Set(forward.HeaderSignature, forward.Sign([]byte(secret), ts, r.Method, hr.URL.RequestURI(), r.Body))
				resp, err := client.Do(hr)
				if err != nil {
					b.Error(err)
					continue
				}
				resp.Body.Close()
			}
		}()
	}
	for k := range reqs {
		work <- &reqs[k]
	}
	close(work)
	wg.Wait()
	return float64(len(reqs)) / time.Since(start).Seconds()
}
