//go:build integration

package forwarder_test

import (
	"context"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/segmentio/encoding/json"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/adtrack/postback/pkg/forward"
	"github.com/adtrack/postback/pkg/forwarder"
)

// BenchmarkForwarderVsPlain measures, in one run against one local
// receiver: deliveries per second of one forwarder instance draining a
// backlog of attributed installs (consume, match, render, sign, send, log
// and state writes), from its first callback to its last, beside a plain
// net/http client loop sending the same rendered requests with the same
// concurrency (the ceiling) just before and just after; three such rounds,
// reported by their median ratio, as one round swings with the machine's
// load. Then the p99 from an install being committed to Kafka to its
// callback being received, at a steady 500 installs/s.
func BenchmarkForwarderVsPlain(b *testing.B) {
	// Enough for a few seconds of steady sending per round: with 20,000
	// the ramp at the start weighed on the figure.
	const n, rounds = 60000, 3
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
	stored, _ := reg.Get("bench")
	next := 0 // the next install number: every round sends new ones

	for i := 0; i < b.N; i++ {
		var fwds, plains, ratios []float64
		plainAfter := 0.0
		for r := 0; r < rounds; r++ {
			// The ceiling: the same requests, rendered and signed, through
			// a plain client with the same concurrency, nothing else.
			reqs := make([]forward.Request, n)
			for k := range reqs {
				a := forwarder.AttributedInstall(next + k)
				reqs[k], _ = forward.Render(stored, forward.FromInstall(&a))
			}
			plainBefore := plainAfter
			if r == 0 {
				plainBefore = plainLoop(b, reqs, concurrency)
			}
			reset()

			// One forwarder draining the same installs from a backlog in
			// Kafka, from the first callback received to the last (group
			// join and restore are not delivery throughput).
			e.produceInstalls(next, n)
			next += n
			stop := e.run(cfg)
			waitFor(b, 5*time.Minute, "the backlog's callbacks", func() bool { return received() >= n })
			stop()
			mu.Lock()
			first, last := time.Now(), time.Time{}
			for _, at := range got {
				first, last = minTime(first, at), maxTime(last, at)
			}
			mu.Unlock()
			fwd := float64(n-1) / last.Sub(first).Seconds()
			reset()
			plainAfter = plainLoop(b, reqs, concurrency)
			reset()
			plain := (plainBefore + plainAfter) / 2
			fwds, plains, ratios = append(fwds, fwd), append(plains, plain), append(ratios, fwd/plain)
		}

		// Freshness: installs at a steady rate, committed to callback, once
		// a first callback shows the forwarder joined and restored.
		stop := e.run(cfg)
		e.produceInstalls(next, 1)
		next++
		waitFor(b, time.Minute, "the warm-up callback", func() bool { return received() >= 1 })
		reset()
		committed := map[string]time.Time{}
		const rate, seconds = 500, 4
		for s := 0; s < rate*seconds/50; s++ {
			recs := make([]*kgo.Record, 0, 50)
			for k := 0; k < 50; k++ {
				a := forwarder.AttributedInstall(next)
				next++
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
		fwd, plain, ratio := median(fwds), median(plains), median(ratios)
		b.ReportMetric(fwd, "forwarder_deliveries/s")
		b.ReportMetric(plain, "plain_http_deliveries/s")
		b.ReportMetric(100*ratio, "%_of_plain")
		b.ReportMetric(float64(p99.Microseconds())/1000, "p99_commit_to_callback_ms")
		b.Logf("forwarder %.0f deliveries/s vs plain net/http loop %.0f/s: %.0f%% (goal >= 70%%; median of %d rounds, each %s); p99 committed -> callback received %s (goal <= 1s), p50 %s",
			fwd, plain, 100*ratio, rounds, percents(ratios), p99, lat[len(lat)/2])
		reset()
	}
}

func minTime(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}

func maxTime(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

func median(xs []float64) float64 {
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	return s[len(s)/2]
}

func percents(xs []float64) string {
	var sb strings.Builder
	for i, x := range xs {
		if i > 0 {
			sb.WriteString(", ")
		}
		fmt.Fprintf(&sb, "%.0f%%", 100*x)
	}
	return sb.String()
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
				if err := forwarder.PlainSend(client, r, []byte(secret)); err != nil {
					b.Error(err)
				}
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
