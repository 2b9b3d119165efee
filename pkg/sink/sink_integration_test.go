//go:build integration

package sink_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/segmentio/encoding/json"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/adtrack/postback/pkg/chconn"
	"github.com/adtrack/postback/pkg/event"
	"github.com/adtrack/postback/pkg/kafkaconn"
	"github.com/adtrack/postback/pkg/migrate"
	"github.com/adtrack/postback/pkg/money"
	"github.com/adtrack/postback/pkg/servicecfg"
	"github.com/adtrack/postback/pkg/sink"
	"github.com/adtrack/postback/pkg/telemetry"
	"github.com/adtrack/postback/pkg/testenv"
	"github.com/adtrack/postback/schemas"
)

func quiet() *slog.Logger {
	if os.Getenv("SINK_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, nil))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

// env is one test's Kafka topics and ClickHouse database, migrated.
type env struct {
	t       testing.TB
	brokers []string
	cfg     servicecfg.Sink
	conn    driver.Conn
	prod    *kgo.Client
}

func newEnv(t testing.TB, partitions int, ch chconn.Config) *env {
	t.Helper()
	brokers := testenv.Kafka(t)
	cfg := servicecfg.DefaultSink()
	cfg.Kafka.Brokers = brokers
	cfg.Kafka.Topics = testenv.Topics(t, brokers, partitions)
	cfg.ClickHouse = ch
	cfg.Group = testenv.Name("sink")
	cfg.SessionTimeout = 6 * time.Second
	cfg.Sink.FlushInterval = 200 * time.Millisecond
	cfg.Sink.RetryMin = 100 * time.Millisecond
	cfg.Sink.RetryMax = time.Second
	cfg.Sink.InsertTimeout = 5 * time.Second
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	conn, err := chconn.Open(ctx, ch)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	if _, err := migrate.Up(ctx, conn, schemas.ClickHouse, "clickhouse", migrate.Options{}); err != nil {
		t.Fatal(err)
	}
	prod, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.RequiredAcks(kgo.AllISRAcks()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(prod.Close)
	return &env{t: t, brokers: brokers, cfg: cfg, conn: conn, prod: prod}
}

var t0 = time.Date(2026, 11, 28, 10, 0, 0, 0, time.UTC)

// produceClicks writes n clicks with ids from..from+n-1 and one undecodable
// record every badEvery records (0: none).
func (e *env) produceClicks(from, n, badEvery int) {
	e.t.Helper()
	recs := make([]*kgo.Record, 0, n)
	for i := from; i < from+n; i++ {
		id := fmt.Sprintf("k%06d", i)
		var v []byte
		if badEvery > 0 && i%badEvery == 0 {
			v = []byte(`{"click_id":"` + id + `","time":"not a time"}`)
		} else {
			v, _ = json.Marshal(event.Click{ClickID: id, Touch: event.Touch{Time: t0.Add(time.Duration(i) * time.Second),
				AppID: "app", Platform: event.PlatformAndroid, MediaSource: "net", Placement: event.Placement{CampaignID: "c1"},
				Cost: 250_000, Currency: "USD"}})
		}
		recs = append(recs, &kgo.Record{Topic: e.cfg.Kafka.Topics.Clicks, Key: []byte(id), Value: v})
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := e.prod.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		e.t.Fatal(err)
	}
}

func (e *env) count(q string) uint64 {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var n uint64
	if err := e.conn.QueryRow(ctx, q).Scan(&n); err != nil {
		e.t.Fatalf("%s: %v", q, err)
	}
	return n
}

// waitRows waits until clicks + sink rejections reach want.
func (e *env) waitRows(want uint64, within time.Duration) {
	e.t.Helper()
	deadline := time.Now().Add(within)
	for {
		got := e.count("SELECT count() FROM clicks") + e.count("SELECT count() FROM rejected WHERE source = 'sink'")
		if got >= want {
			return
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("%d rows after %s, want %d", got, within, want)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// checkExact asserts every click id 0..n-1 is loaded exactly once, in
// clicks or (the bad ones) in the rejected table.
func (e *env) checkExact(n, badEvery int) {
	e.t.Helper()
	bad := 0
	if badEvery > 0 {
		bad = (n-1)/badEvery + 1
	}
	if got := e.count("SELECT count() FROM clicks"); got != uint64(n-bad) {
		e.t.Errorf("clicks has %d rows, want %d", got, n-bad)
	}
	if got := e.count("SELECT uniqExact(click_id) FROM clicks"); got != uint64(n-bad) {
		e.t.Errorf("clicks has %d distinct ids, want %d: duplicates or losses", got, n-bad)
	}
	if got := e.count("SELECT count() FROM rejected WHERE source = 'sink'"); got != uint64(bad) {
		e.t.Errorf("rejected has %d sink rows, want %d", got, bad)
	}
	if got := e.count("SELECT uniqExact(src_partition, src_offset) FROM rejected WHERE source = 'sink'"); got != uint64(bad) {
		e.t.Errorf("rejected has %d distinct sources, want %d", got, bad)
	}
}

func (e *env) runLoader(cfg servicecfg.Sink) (stop func()) {
	e.t.Helper()
	return e.runLoaderWith(cfg, telemetry.New())
}

// runLoaderWith runs a loader whose metrics register with tel.
func (e *env) runLoaderWith(cfg servicecfg.Sink, tel *telemetry.Telemetry) (stop func()) {
	e.t.Helper()
	l, err := sink.New(cfg.Loader(kafkaconn.Plain(cfg.Kafka.Brokers)), e.conn, tel, quiet())
	if err != nil {
		e.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- l.Run(ctx) }()
	return func() {
		cancel()
		if err := <-done; err != nil {
			e.t.Errorf("loader: %v", err)
		}
	}
}

// TestLoadResumeFromClickHouse loads clicks (some undecodable), restarts the
// loader in the same group and in a brand-new group (no committed offsets):
// neither reloads a row, because resume comes from ClickHouse's progress.
func TestLoadResumeFromClickHouse(t *testing.T) {
	e := newEnv(t, 3, testenv.ClickHouse(t))
	e.produceClicks(0, 300, 50)
	tel := telemetry.New()
	stop := e.runLoaderWith(e.cfg, tel)
	e.waitRows(300, 30*time.Second)
	checkLag(t, tel.Registry, e.cfg.Group, e.cfg.Kafka.Topics.Clicks) // before the stop revokes the partitions
	stop()
	e.checkExact(300, 50)
	checkLoadMetrics(t, tel.Registry, 294, 6)

	var cost string
	ctx := context.Background()
	if err := e.conn.QueryRow(ctx, "SELECT toString(sum(cost)) FROM clicks").Scan(&cost); err != nil {
		t.Fatal(err)
	}
	if got, err := money.Parse(cost); err != nil || got.String() != "73.5" {
		t.Errorf("sum(cost) = %s (%v), want 73.5 (294 good clicks x 0.25)", cost, err)
	}
	var reason, body string
	if err := e.conn.QueryRow(ctx, "SELECT reason, raw_body FROM rejected WHERE source = 'sink' LIMIT 1").Scan(&reason, &body); err != nil ||
		!strings.Contains(reason, "record content") || !strings.Contains(body, "not a time") {
		t.Errorf("rejection row: reason %q body %q (%v)", reason, body, err)
	}

	stop = e.runLoader(e.cfg)
	time.Sleep(2 * time.Second)
	stop()
	e.checkExact(300, 50)

	fresh := e.cfg
	fresh.Group = testenv.Name("sink-fresh")
	e.produceClicks(300, 100, 50)
	stop = e.runLoader(fresh)
	e.waitRows(400, 30*time.Second)
	time.Sleep(time.Second)
	stop()
	e.checkExact(400, 50)
}

// TestRebalanceTwoInstances runs two loaders in one group while records
// flow, stops one mid-way (its partitions move), and checks the result is
// exact.
func TestRebalanceTwoInstances(t *testing.T) {
	e := newEnv(t, 6, testenv.ClickHouse(t))
	stopA := e.runLoader(e.cfg)
	stopB := e.runLoader(e.cfg)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; i < 10; i++ {
			e.produceClicks(i*200, 200, 0)
			time.Sleep(150 * time.Millisecond)
		}
	}()
	time.Sleep(700 * time.Millisecond)
	stopB()
	wg.Wait()
	e.waitRows(2000, 60*time.Second)
	time.Sleep(time.Second)
	stopA()
	e.checkExact(2000, 0)
}

// TestSIGKILLMidStream kills the sink binary with SIGKILL several times while
// records flow (including between an insert and its offset commit), restarts
// it, and checks every record is loaded exactly once.
func TestSIGKILLMidStream(t *testing.T) {
	e := newEnv(t, 3, testenv.ClickHouse(t))
	bin := filepath.Join(t.TempDir(), "sink")
	if out, err := exec.Command("go", "build", "-o", bin, "../../services/sink").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	start := func() *exec.Cmd {
		cmd := exec.Command(bin)
		cmd.Env = append(os.Environ(),
			"POSTBACK_KAFKA_BROKERS="+strings.Join(e.brokers, ","),
			"POSTBACK_KAFKA_TOPICS_CLICKS="+e.cfg.Kafka.Topics.Clicks,
			"POSTBACK_SINK_TOPICS="+e.cfg.Kafka.Topics.Clicks,
			"POSTBACK_CLICKHOUSE_ADDR="+strings.Join(e.cfg.ClickHouse.Addr, ","),
			"POSTBACK_CLICKHOUSE_DATABASE="+e.cfg.ClickHouse.Database,
			"POSTBACK_GROUP="+e.cfg.Group,
			"POSTBACK_TELEMETRY_ADDR=",
			"POSTBACK_SINK_FLUSH_INTERVAL=50ms",
			"POSTBACK_SINK_BATCH_ROWS=100",
			"POSTBACK_SESSION_TIMEOUT=6s",
		)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		return cmd
	}
	total := 0
	for round := 0; round < 4; round++ {
		cmd := start()
		for i := 0; i < 5; i++ {
			e.produceClicks(total, 150, 0)
			total += 150
			time.Sleep(120 * time.Millisecond)
		}
		_ = cmd.Process.Signal(os_SIGKILL)
		_ = cmd.Wait()
	}
	cmd := start()
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	e.waitRows(uint64(total), 60*time.Second)
	time.Sleep(time.Second)
	e.checkExact(total, 0)
}

// TestStopFlushesOpenBatch: a stop (SIGTERM in the service) inserts the
// rows buffered so far instead of dropping them.
func TestStopFlushesOpenBatch(t *testing.T) {
	e := newEnv(t, 1, testenv.ClickHouse(t))
	cfg := e.cfg
	cfg.Sink.FlushInterval = time.Hour
	cfg.Sink.BatchRows = 1_000_000
	e.produceClicks(0, 50, 0)
	tel := telemetry.New()
	stop := e.runLoaderWith(cfg, tel)
	// Wait until the loader holds the 50 rows in its open batch (a fixed
	// sleep raced the group join on a loaded machine).
	deadline := time.Now().Add(60 * time.Second)
	for metricValue(t, tel.Registry, "sink_buffered_rows", nil) < 50 {
		if time.Now().After(deadline) {
			t.Fatalf("the loader buffered %v rows in 60s, want 50", metricValue(t, tel.Registry, "sink_buffered_rows", nil))
		}
		time.Sleep(50 * time.Millisecond)
	}
	if n := e.count("SELECT count() FROM clicks"); n != 0 {
		t.Fatalf("%d rows before the stop; the batch should still be open", n)
	}
	stop()
	e.checkExact(50, 0)
}

// privateClickHouse starts a dedicated ClickHouse server (deploy/local's
// script on free ports, stopped at cleanup) with a database "outage", and
// returns its config and a function running the script's actions on it
// ("stop", "start": start returns once the server answers).
func privateClickHouse(t *testing.T) (chconn.Config, func(action string)) {
	t.Helper()
	script, err := filepath.Abs("../../deploy/local/clickhouse.sh")
	if err != nil {
		t.Fatal(err)
	}
	state := t.TempDir()
	port, httpPort := testenv.FreePort(t), testenv.FreePort(t)
	env := append(os.Environ(), "POSTBACK_LOCAL_STATE_DIR="+state,
		fmt.Sprintf("POSTBACK_CLICKHOUSE_PORT=%d", port), fmt.Sprintf("POSTBACK_CLICKHOUSE_HTTP_PORT=%d", httpPort))
	ch := func(action string) {
		t.Helper()
		cmd := exec.Command("bash", script, action)
		cmd.Env = env
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("clickhouse.sh %s: %v\n%s", action, err, out)
		}
	}
	ch("start")
	t.Cleanup(func() { ch("stop") })
	chCfg := testenv.ClickHouseConfig("outage")
	chCfg.Addr = []string{fmt.Sprintf("127.0.0.1:%d", port)}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	srv, err := chconn.OpenServer(ctx, chCfg)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	if err := srv.Exec(ctx, "CREATE DATABASE IF NOT EXISTS outage"); err != nil {
		t.Fatal(err)
	}
	return chCfg, ch
}

// TestClickHouseOutage stops a dedicated ClickHouse server while records
// flow and starts it again: the sink retries, pauses consumption, and loads
// every record exactly once.
func TestClickHouseOutage(t *testing.T) {
	chCfg, ch := privateClickHouse(t)
	e := newEnv(t, 3, chCfg)
	tel := telemetry.New()
	stop := e.runLoaderWith(e.cfg, tel)
	defer stop()
	e.produceClicks(0, 200, 0)
	e.waitRows(200, 30*time.Second)
	ch("stop")
	e.produceClicks(200, 300, 0)
	time.Sleep(3 * time.Second) // the sink retries meanwhile
	ch("start")
	e.waitRows(500, 60*time.Second)
	time.Sleep(time.Second)
	e.checkExact(500, 0)
	if n := metricValue(t, tel.Registry, "sink_insert_failures_total", nil); n == 0 {
		t.Error("no failed INSERT counted while ClickHouse was down")
	}
	if n := metricValue(t, tel.Registry, "sink_insert_retries_total", map[string]string{"table": "clicks"}); n == 0 {
		t.Error("no INSERT retry counted while ClickHouse was down")
	}
}

// TestClickHouseReturnSeenWithinSeconds: after an outage the insert resumes
// within seconds of ClickHouse's return, not at the end of the backoff the
// outage built up. The backoff here is 20 s from the first failure (as one
// that has grown to its cap), so the rows land long before it ends only if
// the sink noticed the server's return by itself.
func TestClickHouseReturnSeenWithinSeconds(t *testing.T) {
	chCfg, ch := privateClickHouse(t)
	e := newEnv(t, 1, chCfg)
	cfg := e.cfg
	cfg.Sink.RetryMin = 20 * time.Second
	cfg.Sink.RetryMax = time.Minute
	tel := telemetry.New()
	stop := e.runLoaderWith(cfg, tel)
	defer stop()
	e.produceClicks(0, 100, 0)
	e.waitRows(100, 60*time.Second)

	ch("stop")
	e.produceClicks(100, 100, 0)
	deadline := time.Now().Add(60 * time.Second)
	for metricValue(t, tel.Registry, "sink_insert_failures_total", nil) < 1 {
		if time.Now().After(deadline) {
			t.Fatal("no insert failed in 60s with ClickHouse stopped")
		}
		time.Sleep(20 * time.Millisecond)
	}
	failed := time.Now()        // the 20 s backoff started about now
	time.Sleep(3 * time.Second) // a few pings fail meanwhile
	ch("start")                 // returns once the server answers
	back := time.Now()
	if back.Sub(failed) > 14*time.Second {
		t.Fatalf("ClickHouse took %s to start: too close to the 20 s backoff to tell a probe from its end", back.Sub(failed))
	}
	e.waitRows(200, 60*time.Second)
	loaded := time.Now()
	t.Logf("insert failed, ClickHouse back %s later, rows loaded %s after that", back.Sub(failed).Round(time.Millisecond), loaded.Sub(back).Round(time.Millisecond))
	// The order is what counts: loaded before the backoff pending since
	// the failure ended, so the sink saw the server's return by itself.
	if !loaded.Before(failed.Add(cfg.Sink.RetryMin)) {
		t.Errorf("rows loaded %s after the failure, %s after ClickHouse returned: the sink waited out its %s backoff",
			loaded.Sub(failed), loaded.Sub(back), cfg.Sink.RetryMin)
	}
	if n := metricValue(t, tel.Registry, "sink_insert_failures_total", nil); n != 1 {
		t.Errorf("%v failed INSERTs, want 1: the retry after the server's return failed too", n)
	}
	e.checkExact(200, 0)
}
