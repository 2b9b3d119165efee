package ingest

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"sort"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// loadResult is what one closed-loop load run measured.
type loadResult struct {
	ok       int
	failed   int
	elapsed  time.Duration
	p50, p99 time.Duration
}

func (r loadResult) rps() float64 { return float64(r.ok) / r.elapsed.Seconds() }

// load sends total GET requests from conns keep-alive connections, each
// worker sending its next request as soon as the previous one is answered.
func load(url func(i int64) string, conns int, total int64, want int) loadResult {
	tr := &http.Transport{MaxIdleConnsPerHost: conns, MaxConnsPerHost: conns,
		DialContext: (&net.Dialer{KeepAlive: time.Minute}).DialContext}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr}
	var (
		next   atomic.Int64
		failed atomic.Int64
		mu     sync.Mutex
		lat    = make([]time.Duration, 0, total)
		wg     sync.WaitGroup
	)
	start := time.Now()
	for w := 0; w < conns; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			local := make([]time.Duration, 0, total/int64(conns)+1)
			for {
				i := next.Add(1)
				if i > total {
					break
				}
				t0 := time.Now()
				resp, err := client.Get(url(i))
				if err != nil {
					failed.Add(1)
					continue
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != want {
					failed.Add(1)
					continue
				}
				local = append(local, time.Since(t0))
			}
			mu.Lock()
			lat = append(lat, local...)
			mu.Unlock()
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	r := loadResult{ok: len(lat), failed: int(failed.Load()), elapsed: elapsed}
	if len(lat) > 0 {
		r.p50, r.p99 = lat[len(lat)/2], lat[len(lat)*99/100]
	}
	return r
}

// BenchmarkIngestVsBare measures, side by side in one run, accepted
// postbacks per second and p50/p99 latency at 64 concurrent connections for
// ingest over in-process kfake (parse, normalize, encode, produce, wait for
// the ack) and for a bare net/http handler answering 204 (the ceiling on
// this machine). Rounds alternate to spread machine noise over both.
// Run with -benchtime=1x; each iteration is the whole comparison.
func BenchmarkIngestVsBare(b *testing.B) {
	const (
		conns  = 64
		rounds = 3
		perRun = 20_000
	)
	h := newHarness(b, func(c *Config) { c.Ingest.Produce.Linger = 0 })
	bare := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(204) }))
	defer bare.Close()

	ingestURL := func(i int64) string {
		return fmt.Sprintf("%s/v1/postbacks/appsflyer/install?token=%s&clickid=c%d&app_id=id1234567890&idfa=6d92078a-8246-4ba4-ae5b-76104861e7dc&install_unix_ts=1795853553&click_ts=1795853400&country_code=DE&ip=203.0.113.7&pid=net_int&c=spring&af_c_id=cpi&match_type=srn",
			h.http.URL, benchToken, i)
	}
	bareURL := func(int64) string { return bare.URL + "/" }
	for n := 0; n < b.N; n++ {
		var in, ba loadResult
		for r := 0; r < rounds; r++ {
			x := load(bareURL, conns, perRun, 204)
			y := load(ingestURL, conns, perRun, 200)
			if y.failed > 0 || x.failed > 0 {
				b.Fatalf("failed requests: ingest %d, bare %d", y.failed, x.failed)
			}
			ba = merge(ba, x)
			in = merge(in, y)
		}
		b.ReportMetric(in.rps(), "ingest_req/s")
		b.ReportMetric(ba.rps(), "bare_req/s")
		b.ReportMetric(100*in.rps()/ba.rps(), "ingest_%_of_bare")
		b.ReportMetric(float64(in.p50.Microseconds()), "ingest_p50_µs")
		b.ReportMetric(float64(in.p99.Microseconds()), "ingest_p99_µs")
		b.ReportMetric(float64(ba.p50.Microseconds()), "bare_p50_µs")
		b.ReportMetric(float64(ba.p99.Microseconds()), "bare_p99_µs")
	}
}

// merge adds run y to x; latency percentiles are kept as the worse of the
// rounds, so a noisy round is not averaged away.
func merge(x, y loadResult) loadResult {
	x.ok += y.ok
	x.failed += y.failed
	x.elapsed += y.elapsed
	if y.p50 > x.p50 {
		x.p50 = y.p50
	}
	if y.p99 > x.p99 {
		x.p99 = y.p99
	}
	return x
}
