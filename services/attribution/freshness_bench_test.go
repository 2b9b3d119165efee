//go:build integration

package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/adtrack/postback/pkg/campaigntopic"
	"github.com/adtrack/postback/pkg/event"
	"github.com/adtrack/postback/pkg/money"
	"github.com/adtrack/postback/pkg/testenv"
)

// BenchmarkFreshness runs ingest, attribution and the sink as processes on
// the local Kafka and ClickHouse (fresh topics and database), drives
// clicks, installs (with the click id of a click sent a second earlier)
// and in-app events (of installs sent a few seconds earlier) through
// ingest's HTTP API at fixed rates, and measures each install's and
// event's freshness: from its 2xx to the moment its row is queryable in
// ClickHouse (polled every 100 ms, so to within 100 ms). It prints p50/p95/p99 for both, the
// rates reached, and the CPU share of every process of the pipeline.
//
// Rates and durations: BENCH_INSTALLS_PER_SEC (1000), BENCH_CLICKS_PER_SEC
// (5000), BENCH_EVENTS_PER_SEC (500), BENCH_SECONDS measured (30) after
// BENCH_WARMUP_SECONDS (10). The goal (issue #9) is p99 ≤ 2 s for both.
// BENCH_KEEP_LOGS=<dir> copies the three services' logs there;
// BENCH_ATTRIBUTION_BIN runs another build of the attribution service;
// BENCH_DRAIN_SECONDS (15) is how long late rows are waited for. The
// services read POSTBACK_* variables as usual, so, for example,
// POSTBACK_SINK_FLUSH_INTERVAL=500ms measures another flush interval.
func BenchmarkFreshness(b *testing.B) {
	rates := benchRates{
		installs: envInt("BENCH_INSTALLS_PER_SEC", 1000), clicks: envInt("BENCH_CLICKS_PER_SEC", 5000),
		events: envInt("BENCH_EVENTS_PER_SEC", 500),
	}
	warmup := time.Duration(envInt("BENCH_WARMUP_SECONDS", 10)) * time.Second
	measure := time.Duration(envInt("BENCH_SECONDS", 30)) * time.Second

	p := startPipeline(b)
	b.ResetTimer()
	for range b.N {
		res := p.drive(b, rates, warmup, measure)
		res.report(b, rates)
	}
}

type benchRates struct{ installs, clicks, events int }

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v >= 0 {
		return v
	}
	return def
}

// pipeline is the three services started for the benchmark.
type pipeline struct {
	brokers []string
	topics  [2]string // installs and events attributed
	base    string    // ingest's URL
	ch      driver.Conn
	procs   map[string]*exec.Cmd
	metrics map[string]string // service -> telemetry address
	app     string
	cmp     string
	token   string
}

func startPipeline(b *testing.B) *pipeline {
	brokers := testenv.Kafka(b)
	tc := testenv.Topics(b, brokers, 6)
	chCfg, conn := testenv.MigratedClickHouse(b)
	dir := b.TempDir()
	for _, s := range []string{"ingest", "attribution", "sink"} {
		if out, err := exec.Command("go", "build", "-o", filepath.Join(dir, s), "../"+s).CombinedOutput(); err != nil {
			b.Fatalf("build %s: %v\n%s", s, err, out)
		}
	}
	if alt := os.Getenv("BENCH_ATTRIBUTION_BIN"); alt != "" {
		// Another build of the service (an older commit, say), for a
		// comparison on the same machine minutes apart.
		if out, err := exec.Command("cp", alt, filepath.Join(dir, "attribution")).CombinedOutput(); err != nil {
			b.Fatalf("BENCH_ATTRIBUTION_BIN: %v\n%s", err, out)
		}
	}
	p := &pipeline{brokers: brokers, topics: [2]string{tc.InstallsAttributed, tc.EventsAttributed}, ch: conn, procs: map[string]*exec.Cmd{}, metrics: map[string]string{},
		app: "id1234567890", cmp: "bench-cpi", token: "bench-generic-token-0001"}
	kafka := fmt.Sprintf(`kafka:
  brokers: [%q]
  topics: {clicks: %q, impressions: %q, installs_raw: %q, events_raw: %q, installs_attributed: %q, events_attributed: %q, rejected: %q, campaigns: %q, skan: %q}
`, brokers[0], tc.Clicks, tc.Impressions, tc.InstallsRaw, tc.EventsRaw, tc.InstallsAttributed, tc.EventsAttributed, tc.Rejected, tc.Campaigns, tc.SKAN)
	httpAddr := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(b))
	p.base = "http://" + httpAddr
	for _, s := range []string{"ingest", "attribution", "sink"} {
		p.metrics[s] = fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(b))
	}
	p.metrics["ingest"] = httpAddr // ingest serves telemetry on its HTTP address
	confs := map[string]string{
		"ingest": kafka + fmt.Sprintf("http: {addr: %q}\ningest:\n  sources:\n    generic: {tokens: [%q]}\ntelemetry: {log_format: text, log_level: warn}\n", httpAddr, p.token),
		"attribution": kafka + fmt.Sprintf("group: %q\nstate_dir: %q\nrates: {reporting_currency: USD, per_unit: {USD: \"1\", EUR: \"1.08\"}}\ntelemetry: {addr: %q, log_format: text, log_level: warn}\n",
			testenv.Name("bench-attr"), filepath.Join(dir, "state"), p.metrics["attribution"]),
		"sink": kafka + fmt.Sprintf("group: %q\nclickhouse: {addr: [%q], database: %q}\ntelemetry: {addr: %q, log_format: text, log_level: warn}\n",
			testenv.Name("bench-sink"), chCfg.Addr[0], chCfg.Database, p.metrics["sink"]),
	}
	for s, c := range confs {
		path := filepath.Join(dir, s+".yaml")
		if err := os.WriteFile(path, []byte(c), 0o600); err != nil {
			b.Fatal(err)
		}
		cmd := exec.Command(filepath.Join(dir, s), "--config", path)
		log, err := os.Create(filepath.Join(dir, s+".log"))
		if err != nil {
			b.Fatal(err)
		}
		cmd.Stdout, cmd.Stderr = log, log
		if err := cmd.Start(); err != nil {
			b.Fatal(err)
		}
		p.procs[s] = cmd
		b.Cleanup(func() {
			_ = cmd.Process.Signal(os.Interrupt)
			_ = cmd.Wait()
			if dst := os.Getenv("BENCH_KEEP_LOGS"); dst != "" {
				_ = exec.Command("cp", log.Name(), filepath.Join(dst, s+".log")).Run()
			}
			if b.Failed() {
				out, _ := os.ReadFile(log.Name())
				b.Logf("%s log:\n%s", s, out)
			}
		})
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		b.Fatal(err)
	}
	defer cl.Close()
	if err := campaigntopic.Publish(b.Context(), cl, tc.Campaigns, []event.Campaign{{ID: p.cmp, AppID: p.app, MediaSource: "benchnet",
		CostModel: "CPI", Bid: money.FromMicros(1_500_000), Currency: "USD"}}); err != nil {
		b.Fatal(err)
	}
	for s, addr := range p.metrics {
		testenv.WaitHTTP(b, "http://"+addr+"/readyz", s)
	}
	testenv.WaitHTTP(b, p.base+"/v1/click/"+p.cmp+"?s2s=1&ip=203.0.113.1&ua=warmup", "ingest's campaign registry")
	return p
}

// result is one run's measurements.
type result struct {
	installs, events []time.Duration    // freshness of what was measured
	kafka            [2][]time.Duration // to the attributed topics, of the same
	missing          [2]int             // measured installs, events never seen in ClickHouse
	sent             map[string]int
	failed           map[string]int // non-2xx or errors, by kind
	elapsed          time.Duration
	cpu              map[string]float64 // share of one core during the measurement
	aborts           string
}

// drive sends the traffic and polls ClickHouse; see BenchmarkFreshness.
func (p *pipeline) drive(b *testing.B, rates benchRates, warmup, measure time.Duration) result {
	ctx, cancel := context.WithCancel(b.Context())
	defer cancel()
	g := &generator{p: p, client: &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 512, MaxConnsPerHost: 512}},
		accepted: map[string]time.Time{}, sent: map[string]int{}, failed: map[string]int{}}
	seen := newPoller(p.ch)
	go seen.run(ctx)
	inKafka := newPoller(nil)
	go inKafka.consume(ctx, p.brokers, p.topics[:])

	start := time.Now()
	measureFrom, measureTo := start.Add(warmup), start.Add(warmup+measure)
	g.measureFrom, g.measureTo = measureFrom, measureTo
	var cpuStart map[string]float64
	var cpuAt time.Time
	g.run(ctx, rates, warmup+measure, func(now time.Time) {
		if cpuStart == nil && now.After(measureFrom) {
			cpuStart, cpuAt = p.cpuTimes(), time.Now()
		}
	})
	cpuEnd, cpuWall := p.cpuTimes(), time.Since(cpuAt)
	// Let the last measured records arrive.
	time.Sleep(time.Duration(envInt("BENCH_DRAIN_SECONDS", 15)) * time.Second)
	cancel()

	res := result{sent: g.sent, failed: g.failed, elapsed: warmup + measure, cpu: map[string]float64{}}
	for k, v := range cpuEnd {
		res.cpu[k] = (v - cpuStart[k]) / cpuWall.Seconds()
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	for id, at := range g.measured {
		got, ok := seen.at(id)
		i := 0
		if strings.HasPrefix(id, "e") {
			i = 1
		}
		if !ok {
			res.missing[i]++
			continue
		}
		if i == 0 {
			res.installs = append(res.installs, got.Sub(at))
		} else {
			res.events = append(res.events, got.Sub(at))
		}
		if k, ok := inKafka.at(id); ok {
			res.kafka[i] = append(res.kafka[i], k.Sub(at))
		}
	}
	res.aborts = p.scrape(b, "attribution", "attribution_transactions_total")
	return res
}

func (r result) report(b *testing.B, rates benchRates) {
	pct := func(ds []time.Duration, q float64) time.Duration {
		if len(ds) == 0 {
			return 0
		}
		slices.Sort(ds)
		return ds[min(len(ds)-1, int(q*float64(len(ds))))]
	}
	for _, s := range []struct {
		name string
		ds   []time.Duration
		miss int
	}{{"installs", r.installs, r.missing[0]}, {"events", r.events, r.missing[1]},
		{"installs on Kafka", r.kafka[0], -1}, {"events on Kafka", r.kafka[1], -1}} {
		if s.miss >= 0 {
			b.ReportMetric(float64(pct(s.ds, 0.99).Milliseconds()), s.name+"-p99-ms")
		}
		fmt.Printf("freshness %-17s n=%-6d p50 %6dms  p95 %6dms  p99 %6dms  max %6dms  never seen: %d\n", s.name, len(s.ds),
			pct(s.ds, 0.5).Milliseconds(), pct(s.ds, 0.95).Milliseconds(), pct(s.ds, 0.99).Milliseconds(), pct(s.ds, 1).Milliseconds(), s.miss)
	}
	secs := r.elapsed.Seconds()
	fmt.Printf("offered %d installs/s, %d clicks/s, %d events/s; accepted %.0f installs/s, %.0f clicks/s, %.0f events/s; not 2xx: %v\n",
		rates.installs, rates.clicks, rates.events, float64(r.sent["install"])/secs, float64(r.sent["click"])/secs, float64(r.sent["event"])/secs, r.failed)
	names := make([]string, 0, len(r.cpu))
	for k := range r.cpu {
		names = append(names, k)
	}
	slices.Sort(names)
	var parts []string
	total := 0.0
	for _, k := range names {
		parts = append(parts, fmt.Sprintf("%s %.0f%%", k, 100*r.cpu[k]))
		total += r.cpu[k]
	}
	fmt.Printf("CPU (share of one core, 2 cores in all): %s; total %.0f%%\n", strings.Join(parts, ", "), 100*total)
	fmt.Printf("attribution transactions: %s\n", r.aborts)
}

// generator sends the traffic at fixed rates from many connections.
type generator struct {
	p                      *pipeline
	client                 *http.Client
	measureFrom, measureTo time.Time

	mu       sync.Mutex
	accepted map[string]time.Time // install/event id -> 2xx time (all)
	measured map[string]time.Time // the ones sent in the measured window
	sent     map[string]int
	failed   map[string]int
	clickIDs []string // click ids answered, for installs to name
	installs []string // install ids answered with their device, for events
}

// job is one request.
type job struct {
	kind, id, url string
}

func (g *generator) run(ctx context.Context, rates benchRates, d time.Duration, tick func(time.Time)) {
	g.measured = map[string]time.Time{}
	jobs := make(chan job, 4096)
	var wg sync.WaitGroup
	for range 256 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range jobs {
				g.do(ctx, j)
			}
		}()
	}
	const step = 10 * time.Millisecond
	t := time.NewTicker(step)
	defer t.Stop()
	var n atomic.Int64
	start := time.Now()
	var acc [3]float64
	for now := range t.C {
		if now.Sub(start) > d || ctx.Err() != nil {
			break
		}
		tick(now)
		for i, r := range []int{rates.clicks, rates.installs, rates.events} {
			acc[i] += float64(r) * step.Seconds()
			for ; acc[i] >= 1; acc[i]-- {
				j, ok := g.next(i, n.Add(1), now)
				if !ok {
					continue
				}
				select {
				case jobs <- j:
				default:
					g.count("dropped-by-generator", "")
				}
			}
		}
	}
	close(jobs)
	wg.Wait()
}

// next builds the i-th kind of request (0 click, 1 install, 2 event).
func (g *generator) next(kind int, n int64, now time.Time) (job, bool) {
	p := g.p
	dev := fmt.Sprintf("6d92078a-8246-4ba4-ae5b-%012d", n)
	switch kind {
	case 0:
		return job{kind: "click", url: fmt.Sprintf("%s/v1/click/%s?s2s=1&site_id=s%d&ip=10.1.%d.%d&ua=bench-ua&idfa=%s",
			p.base, p.cmp, n%50, n/250%250, n%250, dev)}, true
	case 1:
		click, ok := g.take(&g.clickIDs, func(string) bool { return true })
		if !ok {
			return job{}, false
		}
		id := fmt.Sprintf("i%d", n)
		return job{kind: "install", id: id, url: fmt.Sprintf("%s/v1/postbacks/generic/install?token=%s&event_id=%s&click_id=%s&app_id=%s&idfa=%s&install_time=%d",
			p.base, p.token, id, click, p.app, dev, now.Unix())}, true
	default:
		// Events of installs accepted at least three seconds ago, as an
		// app's first purchase comes after its install.
		inst, ok := g.take(&g.installs, func(id string) bool { return now.Sub(g.accepted[id]) >= 3*time.Second })
		if !ok {
			return job{}, false
		}
		id := fmt.Sprintf("e%d", n)
		return job{kind: "event", id: id, url: fmt.Sprintf("%s/v1/postbacks/generic/event?token=%s&event_id=%s&app_id=%s&idfa=%s&event_name=purchase&event_time=%d&revenue=4.99&currency=USD",
			p.base, p.token, id, p.app, installDevice(inst), now.Unix())}, true
	}
}

// take removes and returns the first id of *q if ready says it may go,
// under g.mu (ready runs under it too).
func (g *generator) take(q *[]string, ready func(id string) bool) (string, bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if len(*q) == 0 || !ready((*q)[0]) {
		return "", false
	}
	id := (*q)[0]
	*q = (*q)[1:]
	return id, true
}

// installDevice is the device id an install job was sent with.
func installDevice(id string) string {
	n, _ := strconv.ParseInt(strings.TrimPrefix(id, "i"), 10, 64)
	return fmt.Sprintf("6d92078a-8246-4ba4-ae5b-%012d", n)
}

func (g *generator) do(ctx context.Context, j job) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, j.url, nil)
	if err != nil {
		return
	}
	resp, err := g.client.Do(req)
	if err != nil {
		g.count(j.kind, "error")
		return
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	at := time.Now()
	if resp.StatusCode/100 != 2 {
		g.count(j.kind, strconv.Itoa(resp.StatusCode))
		return
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	g.sent[j.kind]++
	switch j.kind {
	case "click":
		if i := strings.Index(string(body), `"click_id":"`); i >= 0 {
			rest := string(body[i+len(`"click_id":"`):])
			g.clickIDs = append(g.clickIDs, rest[:strings.IndexByte(rest, '"')])
		}
	case "install", "event":
		g.accepted[j.id] = at
		if j.kind == "install" {
			g.installs = append(g.installs, j.id)
		}
		if at.After(g.measureFrom) && at.Before(g.measureTo) {
			g.measured[j.id] = at
		}
	}
}

func (g *generator) count(kind, what string) {
	g.mu.Lock()
	g.failed[strings.TrimSuffix(kind+" "+what, " ")]++
	g.mu.Unlock()
}

// poller notes when each install and event first shows in ClickHouse.
type poller struct {
	ch   driver.Conn
	mu   sync.Mutex
	seen map[string]time.Time
}

func newPoller(ch driver.Conn) *poller { return &poller{ch: ch, seen: map[string]time.Time{}} }

func (p *poller) at(id string) (time.Time, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	t, ok := p.seen[id]
	return t, ok
}

// consume notes when each install and event is first read (committed)
// from the attributed topics.
func (p *poller) consume(ctx context.Context, brokers, topics []string) {
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ConsumeTopics(topics...),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchIsolationLevel(kgo.ReadCommitted()), kgo.FetchMaxWait(50*time.Millisecond))
	if err != nil {
		return
	}
	defer cl.Close()
	for ctx.Err() == nil {
		fs := cl.PollFetches(ctx)
		now := time.Now()
		p.mu.Lock()
		fs.EachRecord(func(r *kgo.Record) {
			id := strings.TrimPrefix(string(r.Key), "generic:")
			if _, ok := p.seen[id]; !ok {
				p.seen[id] = now
			}
		})
		p.mu.Unlock()
	}
}

// run polls both tables every pollEvery for rows past the offsets already
// seen, per source partition, in one query (a query costs ClickHouse a few
// milliseconds of CPU: the poller must not load the machine it measures).
func (p *poller) run(ctx context.Context) {
	last := map[string]map[uint32]uint64{"installs": {}, "events": {}}
	for ctx.Err() == nil {
		var selects []string
		for _, table := range []string{"installs", "events"} {
			q := fmt.Sprintf("SELECT '%s' AS t, event_id, src_partition, src_offset FROM %s", table, table)
			if len(last[table]) > 0 {
				var conds, parts []string
				for part, off := range last[table] {
					conds = append(conds, fmt.Sprintf("(src_partition = %d AND src_offset > %d)", part, off))
					parts = append(parts, strconv.Itoa(int(part)))
				}
				q += " WHERE " + strings.Join(conds, " OR ") + " OR src_partition NOT IN (" + strings.Join(parts, ",") + ")"
			}
			selects = append(selects, q)
		}
		if rows, err := p.ch.Query(ctx, strings.Join(selects, " UNION ALL ")); err == nil {
			now := time.Now()
			for rows.Next() {
				var table, id string
				var part uint32
				var off uint64
				if rows.Scan(&table, &id, &part, &off) != nil {
					break
				}
				last[table][part] = max(last[table][part], off)
				// Event ids are "generic:<id>" in ClickHouse.
				id = strings.TrimPrefix(id, "generic:")
				p.mu.Lock()
				if _, ok := p.seen[id]; !ok {
					p.seen[id] = now
				}
				p.mu.Unlock()
			}
			rows.Close()
		}
		select {
		case <-ctx.Done():
		case <-time.After(pollEvery):
		}
	}
}

// pollEvery is the poller's period: freshness is measured to within it.
const pollEvery = 100 * time.Millisecond

// cpuTimes returns the CPU seconds used so far by every process of the
// pipeline: the three services, the broker, ClickHouse and the benchmark.
func (p *pipeline) cpuTimes() map[string]float64 {
	out := map[string]float64{}
	for s, cmd := range p.procs {
		out[s] = testenv.ProcCPU(cmd.Process.Pid)
	}
	for name, pid := range testenv.LocalServerPIDs() {
		out[name] = testenv.ProcCPU(pid)
	}
	out["load generator"] = testenv.ProcCPU(os.Getpid())
	return out
}

// scrape returns the series of metric from a service's /metrics.
func (p *pipeline) scrape(b *testing.B, service, metric string) string {
	resp, err := http.Get("http://" + p.metrics[service] + "/metrics")
	if err != nil {
		return err.Error()
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	var out []string
	for _, l := range strings.Split(string(body), "\n") {
		if strings.HasPrefix(l, metric+"{") {
			out = append(out, strings.TrimPrefix(l, metric))
		}
	}
	return strings.Join(out, " ")
}
