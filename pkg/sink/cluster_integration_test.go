//go:build integration

package sink

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"reflect"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/segmentio/encoding/json"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/adtrack/postback/pkg/chconn"
	"github.com/adtrack/postback/pkg/event"
	"github.com/adtrack/postback/pkg/kafkaconn"
	"github.com/adtrack/postback/pkg/migrate"
	"github.com/adtrack/postback/pkg/money"
	"github.com/adtrack/postback/pkg/telemetry"
	"github.com/adtrack/postback/pkg/testenv"
	ptopics "github.com/adtrack/postback/pkg/topics"
	"github.com/adtrack/postback/schemas"
)

var clusterT0 = time.Date(2026, 11, 28, 10, 0, 0, 0, time.UTC)

// testLogger discards the sink's log unless SINK_TEST_LOG is set.
func testLogger() *slog.Logger {
	if os.Getenv("SINK_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, nil))
	}
	return slog.New(slog.DiscardHandler)
}

// baseTables are the sink's tables with the column that identifies a row.
var baseTables = map[string]string{"impressions": "impression_id", "clicks": "click_id",
	"installs": "event_id", "events": "event_id", "rejected": "raw_body"}

var analystViews = []string{"stats_hourly", "stats_daily", "spend_by_currency_hourly", "spend_by_currency_daily", "retention_daily"}

// TestCluster runs the sink in cluster mode against a cluster of the test's
// own (2 shards x 2 replicas, deploy/local/clickhouse-cluster.sh).
func TestCluster(t *testing.T) {
	brokers := testenv.Kafka(t)
	cl := testenv.StartClickHouseCluster(t)
	t.Run("RetriedBlockLandsOnce", func(t *testing.T) { testRetriedBlock(t, cl) })
	t.Run("ReplicaStopUnderLoad", func(t *testing.T) { testReplicaStop(t, brokers, cl) })
	t.Run("KeyedLookupWithReplicaDown", func(t *testing.T) { testKeyedLookup(t, cl) })
}

// testKeyedLookup checks the repeat lookup (repeats.go) while a replica is
// down: its shard is answered by the other replica once that one has
// synced, and when that replica lacks a part only the dead one has (its
// fetches stopped), the answer is an error, not a miss.
func testKeyedLookup(t *testing.T, cl *testenv.ClickHouseCluster) {
	ctx, ch, cfg := clusterDatabase(t, cl)
	nodes := nodeConns(t, cl, ch.Database)
	l, err := New(cfg, nodes[0], telemetry.New(), testLogger())
	if err != nil {
		t.Fatal(err)
	}
	var n1 driver.Conn = nodes[0]
	clicks := cfg.Topics.Clicks
	var ids []string
	load := func(from int) {
		var rows []row
		for i := from; i < from+10; i++ {
			id := event.KeyedClickID("c1", fmt.Sprint("k", i))
			ids = append(ids, id)
			v, err := clickRowOf(event.Click{ClickID: id, Touch: event.Touch{Time: clusterT0, AppID: "app",
				MediaSource: "net", Placement: event.Placement{CampaignID: "c1"}, Cost: 250_000, Currency: "USD"}})
			if err != nil {
				t.Fatal(err)
			}
			k := tp{clicks, int32(i % 2)} // partition 0 on shard 1 (nodes 1, 2), 1 on shard 2
			rows = append(rows, row{tp: k, offset: int64(i), vals: append(v, clicks, uint32(k.partition), uint64(i), clusterT0)})
		}
		if err := insert(ctx, n1, l.tables[clicks], rows, true); err != nil {
			t.Fatal(err)
		}
	}
	check := func(what string) error {
		got, err := l.loadedKeys(ctx, "clicks", append(ids, event.KeyedClickID("c1", "never-sent")))
		if err == nil && len(got) != len(ids) {
			t.Errorf("%s: %d of %d keyed ids found", what, len(got), len(ids))
		}
		return err
	}
	load(0)
	if err := check("every node up"); err != nil {
		t.Fatal(err)
	}
	for _, n := range nodes {
		if err := n.Exec(ctx, "SYSTEM SYNC REPLICA touch_keys_local"); err != nil {
			t.Fatal(err)
		}
	}
	cl.StopReplica(1)
	l.conn = nodes[1] // the sink's connection fails over to another address
	if err := check("node 1 down, node 2 synced"); err != nil {
		t.Errorf("node 1 down: %v", err)
	}
	cl.StartReplica(1)

	// Node 2 stops fetching; rows of shard 1 are then only on node 1.
	if err := nodes[1].Exec(ctx, "SYSTEM STOP FETCHES touch_keys_local"); err != nil {
		t.Fatal(err)
	}
	// The pooled connection to node 1 died with it: a new one.
	n1, err = chconn.Open(ctx, cl.NodeConfig(1, ch.Database))
	if err != nil {
		t.Fatal(err)
	}
	defer n1.Close()
	load(10) // through node 1: shard 1's rows are written there
	cl.StopReplica(1)
	if err := check("node 1 down, node 2 not fetching"); err == nil {
		t.Errorf("node 1 down and node 2 without its parts: the lookup answered, want an error")
	}
	if err := nodes[1].Exec(ctx, "SYSTEM START FETCHES touch_keys_local"); err != nil {
		t.Fatal(err)
	}
	cl.StartReplica(1)
	if err := check("every node back"); err != nil {
		t.Error(err)
	}
}

// clickRowOf is the sink's row of c, without its source columns.
func clickRowOf(c event.Click) ([]any, error) {
	v, err := json.Marshal(c)
	if err != nil {
		return nil, err
	}
	return clickRow(v)
}

// testReplicaStop loads the same records through two sinks, one into a
// single server and one into the cluster, stops the replica the cluster sink
// is connected to while records flow and starts it again. Every row must
// then be on both replicas of its shard exactly once, and every table,
// aggregate and analyst view must read as on the single server.
func testReplicaStop(t *testing.T, brokers []string, cl *testenv.ClickHouseCluster) {
	start := time.Now()
	clusterCH, singleCH := cl.Database(t), testenv.ClickHouse(t)
	topics := testenv.Topics(t, brokers, 4)
	single, cluster := migrated(t, singleCH), migrated(t, clusterCH)
	t.Logf("migrated in %s", time.Since(start).Round(time.Millisecond))

	prod, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.RequiredAcks(kgo.AllISRAcks()))
	if err != nil {
		t.Fatal(err)
	}
	defer prod.Close()
	f := &fixture{t: t, prod: prod, topics: topics}
	f.produce(0, 400)

	clusterReg := telemetry.New()
	stopSingle := runSink(t, sinkConfig(brokers, topics, singleCH), single, telemetry.New())
	defer stopSingle()
	stopCluster := runSink(t, sinkConfig(brokers, topics, clusterCH), cluster, clusterReg)
	defer stopCluster()

	// Records flow for about 6 s; node 1, the first address of the cluster
	// sink and a replica of shard 1, is down for about 3 s of it.
	produced := make(chan struct{})
	go func() {
		defer close(produced)
		for i := 1; i <= 40; i++ {
			f.produce(i*100+300, 100)
			time.Sleep(150 * time.Millisecond)
		}
	}()
	time.Sleep(1500 * time.Millisecond)
	cl.StopReplica(1)
	time.Sleep(2 * time.Second)
	cl.StartReplica(1)
	<-produced
	if f.err != nil {
		t.Fatal(f.err)
	}

	want := f.counts()
	waitCounts(t, single, want, "single server")
	waitCounts(t, cluster, want, "cluster")
	t.Logf("loaded %v; cluster sink insert failures: %v", want, counter(t, clusterReg.Registry, "sink_insert_failures_total"))
	keyedUnits := 0
	for i := 0; i < f.units; i += 13 {
		if i%97 != 0 {
			keyedUnits++
		}
	}
	if n := counter(t, clusterReg.Registry, "sink_repeats_dropped_total"); n < float64(2*keyedUnits) {
		t.Errorf("cluster sink dropped %v repeats, want at least %d (a click and an impression per keyed unit)", n, 2*keyedUnits)
	}

	nodes := nodeConns(t, cl, clusterCH.Database)
	syncReplicas(t, nodes)
	checkReplicas(t, nodes, want)
	for table, id := range baseTables {
		q := fmt.Sprintf("SELECT toString(tuple(count(), uniqExact(src_topic, src_partition, src_offset), sum(cityHash64(%s)))) FROM %s", id, table)
		if s, c := dump(t, single, q), dump(t, cluster, q); !reflect.DeepEqual(s, c) {
			t.Errorf("%s: single server %v, cluster %v", table, s, c)
		}
	}
	for _, q := range []string{
		"SELECT * FROM hourly_stats_sums",
		"SELECT table_name, src_topic, src_partition, maxMerge(max_offset) FROM sink_progress GROUP BY table_name, src_topic, src_partition",
	} {
		q = strings.Replace(q, "hourly_stats_sums", "(SELECT hour, campaign_id, site_id, sum(impressions), sum(clicks), sum(installs), sum(events), toString(sum(revenue)), toString(sum(spend_impressions) + sum(spend_clicks) + sum(spend_installs)) FROM hourly_stats GROUP BY hour, campaign_id, site_id)", 1)
		if s, c := dump(t, single, q), dump(t, cluster, q); !reflect.DeepEqual(s, c) || len(s) == 0 {
			t.Errorf("%s:\nsingle server %d rows %.400v\ncluster %d rows %.400v", q, len(s), s, len(c), c)
		}
	}
	for _, view := range analystViews {
		s, c := dump(t, single, "SELECT * FROM "+view), dump(t, cluster, "SELECT * FROM "+view)
		if len(s) == 0 || !reflect.DeepEqual(s, c) {
			t.Errorf("view %s: single server %d rows, cluster %d rows, or their contents differ:\n%.600v\n%.600v", view, len(s), len(c), s, c)
		}
	}
	t.Logf("whole test %s", time.Since(start).Round(time.Millisecond))
}

// clusterDatabase returns a fresh migrated database on the cluster, a sink
// config for it, and a context for the test's queries (2 minutes).
func clusterDatabase(t *testing.T, cl *testenv.ClickHouseCluster) (context.Context, chconn.Config, Config) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	ch := cl.Database(t)
	migrated(t, ch)
	return ctx, ch, sinkConfig(testenv.KafkaBrokers(), ptopics.Defaults(), ch)
}

// migrated opens ch, applies the migrations (in cluster mode when ch names
// a cluster) and returns the connection, closed at cleanup.
func migrated(t *testing.T, ch chconn.Config) driver.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	conn, err := chconn.Open(ctx, ch)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	if _, err := migrate.Up(ctx, conn, schemas.ClickHouse, "clickhouse", migrate.Options{Cluster: ch.Cluster}); err != nil {
		t.Fatalf("migrations on %v (cluster %q): %v", ch.Addr, ch.Cluster, err)
	}
	return conn
}

func sinkConfig(brokers []string, tc ptopics.Config, ch chconn.Config) Config {
	s := DefaultSettings()
	s.FlushInterval = 200 * time.Millisecond
	s.RetryMin = 100 * time.Millisecond
	s.RetryMax = time.Second
	s.InsertTimeout = 5 * time.Second
	return Config{Kafka: kafkaconn.Plain(brokers), Topics: tc, ClickHouse: ch, Group: testenv.Name("sink"),
		SessionTimeout: 6 * time.Second, Sink: s}
}

func runSink(t *testing.T, cfg Config, conn driver.Conn, tel *telemetry.Telemetry) (stop func()) {
	t.Helper()
	l, err := New(cfg, conn, tel, testLogger())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- l.Run(ctx) }()
	var stopped bool
	return func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		if err := <-done; err != nil {
			t.Errorf("sink (%v): %v", cfg.ClickHouse.Addr, err)
		}
	}
}

// fixture produces, for every unit i, an impression and a click; every
// 10th unit an attributed install (every 30th organic) and an in-app event
// of it on day 0, 1 or 2 after the install; every 97th click undecodable;
// every 13th impression and click keyed (an idempotency key's id) and
// written twice, as a client's retry after a 503 may be.
// Times spread over several hours and three days.
type fixture struct {
	t      *testing.T
	prod   *kgo.Client
	topics ptopics.Config
	units  int
	err    error
}

func (f *fixture) produce(from, n int) {
	var recs []*kgo.Record
	add := func(topic, key string, v any) {
		b, err := json.Marshal(v)
		if err != nil {
			panic(err)
		}
		recs = append(recs, &kgo.Record{Topic: topic, Key: []byte(key), Value: b})
	}
	for i := from; i < from+n; i++ {
		at := clusterT0.Add(time.Duration(i) * 7 * time.Second)
		touch := event.Touch{Time: at, AppID: "app", Platform: []event.Platform{event.PlatformAndroid, event.PlatformIOS}[i%2],
			MediaSource: "net", Placement: event.Placement{CampaignID: fmt.Sprint("c", i%3), SiteID: fmt.Sprint("s", i%5)},
			Country: []string{"DE", "US"}[i%2], Cost: money.Amount(1000 * (i%4 + 1)), Currency: "USD"}
		impID, clickID, copies := fmt.Sprint("m", i), fmt.Sprint("k", i), 1
		if i%13 == 0 && i%97 != 0 {
			// Sent with an idempotency key, and its retry written too:
			// loaded once (repeats.go), on every replica.
			impID, clickID, copies = event.KeyedImpressionID(touch.CampaignID, impID), event.KeyedClickID(touch.CampaignID, clickID), 2
		}
		for range copies {
			add(f.topics.Impressions, impID, event.Impression{ImpressionID: impID, Touch: touch})
		}
		touch.Cost = 250_000
		if i%97 == 0 {
			recs = append(recs, &kgo.Record{Topic: f.topics.Clicks, Key: []byte(fmt.Sprint("k", i)), Value: []byte(fmt.Sprintf(`{"click_id":"k%d","time":"never"}`, i))})
		} else {
			for range copies {
				add(f.topics.Clicks, clickID, event.Click{ClickID: clickID, Touch: touch})
			}
		}
		if i%10 != 0 {
			continue
		}
		id := fmt.Sprint("i", i)
		inst := event.AttributedInstall{
			Install: event.Install{Postback: event.Postback{EventID: id, MMP: "adjust", ReceivedAt: at, AppID: "app",
				Platform: touch.Platform, ClickID: fmt.Sprint("k", i), Country: touch.Country}, InstallTime: at.Add(time.Minute)},
			Attribution: event.Attribution{MatchType: event.MatchClickID, TouchID: fmt.Sprint("k", i), CampaignID: touch.CampaignID,
				MediaSource: "net", SiteID: touch.SiteID, Cost: 1_500_000, CostCurrency: "USD", FraudFlags: []string{}, AttributedAt: at},
		}
		if i%30 == 0 {
			inst.Attribution = event.Attribution{MatchType: event.MatchOrganic, FraudFlags: []string{}, AttributedAt: at}
		}
		add(f.topics.InstallsAttributed, id, inst)
		ev := event.AttributedEvent{
			InAppEvent: event.InAppEvent{Postback: event.Postback{EventID: fmt.Sprint("e", i), MMP: "adjust", ReceivedAt: at,
				AppID: "app", Platform: touch.Platform, Country: touch.Country}, EventTime: at.Add(time.Duration(i%3) * 24 * time.Hour),
				Name: event.NamePurchase, OriginalName: "buy", Revenue: 990_000, Currency: "USD"},
			Attribution: inst.Attribution, InstallEventID: id, RevenueReporting: 990_000, ReportingCurrency: "USD",
		}
		add(f.topics.EventsAttributed, ev.EventID, ev)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := f.prod.ProduceSync(ctx, recs...).FirstErr(); err != nil && f.err == nil {
		f.err = fmt.Errorf("produce units %d..%d: %w", from, from+n-1, err)
	}
	f.units = max(f.units, from+n)
}

// counts returns the rows each base table must hold for units 0..units-1.
func (f *fixture) counts() map[string]uint64 {
	bad := uint64(0)
	for i := 0; i < f.units; i += 97 {
		bad++
	}
	tenth := uint64((f.units + 9) / 10)
	return map[string]uint64{"impressions": uint64(f.units), "clicks": uint64(f.units) - bad,
		"installs": tenth, "events": tenth, "rejected": bad}
}

func count(t *testing.T, conn driver.Conn, q string) (uint64, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var n uint64
	err := conn.QueryRow(ctx, q).Scan(&n)
	return n, err
}

// waitCounts waits until every base table holds want rows (more fails at
// once: rows loaded twice).
func waitCounts(t *testing.T, conn driver.Conn, want map[string]uint64, what string) {
	t.Helper()
	deadline := time.Now().Add(90 * time.Second)
	for {
		got := map[string]uint64{}
		for table := range want {
			n, err := count(t, conn, "SELECT count() FROM "+table)
			if err != nil {
				t.Logf("%s: count %s: %v", what, table, err)
			}
			got[table] = n
			if n > want[table] {
				t.Fatalf("%s: %s has %d rows, want %d: rows loaded twice", what, table, n, want[table])
			}
		}
		if reflect.DeepEqual(got, want) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: rows %v after 90 s, want %v", what, got, want)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func nodeConns(t *testing.T, cl *testenv.ClickHouseCluster, db string) []driver.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var conns []driver.Conn
	for n := 1; n <= len(cl.Addrs()); n++ {
		conn, err := chconn.Open(ctx, cl.NodeConfig(n, db))
		if err != nil {
			t.Fatalf("node %d: %v", n, err)
		}
		t.Cleanup(func() { conn.Close() })
		conns = append(conns, conn)
	}
	return conns
}

// syncReplicas makes every replica fetch every part its shard holds.
func syncReplicas(t *testing.T, nodes []driver.Conn) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	for i, conn := range nodes {
		for _, table := range []string{"impressions", "clicks", "installs", "events", "rejected", "hourly_stats", "sink_progress"} {
			if err := conn.Exec(ctx, "SYSTEM SYNC REPLICA "+table+migrate.LocalSuffix); err != nil {
				t.Fatalf("node %d: sync replica %s: %v", i+1, table, err)
			}
		}
	}
}

// checkReplicas asserts both replicas of each shard hold the same rows,
// aggregates and progress, and that the shards add up to want.
func checkReplicas(t *testing.T, nodes []driver.Conn, want map[string]uint64) {
	t.Helper()
	queries := map[string]string{
		"hourly_stats": "SELECT toString(tuple(sum(impressions), sum(clicks), sum(installs), sum(events), sum(revenue), sum(spend_clicks))) FROM hourly_stats_local",
		"sink_progress": "SELECT toString(groupArray(tuple(table_name, src_topic, src_partition, m))) FROM " +
			"(SELECT table_name, src_topic, src_partition, maxMerge(max_offset) AS m FROM sink_progress_local GROUP BY table_name, src_topic, src_partition ORDER BY table_name, src_topic, src_partition)",
	}
	for table, id := range baseTables {
		queries[table] = fmt.Sprintf("SELECT toString(tuple(count(), uniqExact(src_topic, src_partition, src_offset), sum(cityHash64(%s)))) FROM %s_local", id, table)
	}
	for name, q := range queries {
		for shard := 0; shard < testenv.ClusterShards; shard++ {
			var got []string
			for r := 0; r < testenv.ClusterReplicas; r++ {
				got = append(got, dump(t, nodes[shard*testenv.ClusterReplicas+r], q)...)
			}
			if got[0] != got[1] {
				t.Errorf("%s differs between the replicas of shard %d: %s vs %s", name, shard+1, got[0], got[1])
			}
		}
	}
	for table, n := range want {
		var total uint64
		for shard := 0; shard < testenv.ClusterShards; shard++ {
			for r := 0; r < testenv.ClusterReplicas; r++ {
				c, err := count(t, nodes[shard*testenv.ClusterReplicas+r], "SELECT count() FROM "+table+migrate.LocalSuffix)
				if err != nil {
					t.Fatal(err)
				}
				if r == 0 {
					total += c
				}
			}
		}
		if total != n {
			t.Errorf("%s: the shards hold %d rows together, want %d", table, total, n)
		}
	}
}

// dump runs q and returns its rows rendered as text, sorted.
func dump(t *testing.T, conn driver.Conn, q string) []string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	rows, err := conn.Query(ctx, q)
	if err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	defer rows.Close()
	types := rows.ColumnTypes()
	var out []string
	for rows.Next() {
		vals := make([]any, len(types))
		for i, ct := range types {
			vals[i] = reflect.New(ct.ScanType()).Interface()
		}
		if err := rows.Scan(vals...); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
		parts := make([]string, len(vals))
		for i, v := range vals {
			e := reflect.ValueOf(v).Elem()
			switch {
			case e.Kind() == reflect.Pointer && e.IsNil():
				parts[i] = "NULL"
			case e.Kind() == reflect.Pointer:
				parts[i] = fmt.Sprint(e.Elem().Interface())
			default:
				parts[i] = fmt.Sprint(e.Interface())
			}
		}
		out = append(out, strings.Join(parts, "|"))
	}
	if err := rows.Err(); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	sort.Strings(out)
	return out
}

func counter(t testing.TB, reg prometheus.Gatherer, name string) float64 {
	t.Helper()
	ms, err := telemetry.Series(reg, name, nil)
	if err != nil {
		t.Fatal(err)
	}
	sum := 0.0
	for _, m := range ms {
		sum += m.GetCounter().GetValue()
	}
	return sum
}

// testRetriedBlock sends the sink's INSERT of a batch and then retries it as
// after an attempt whose outcome the sink does not know. With node 4 down,
// progress is not known and prepareRetry gives back the same batch, sent
// again through node 2: its rows, their progress and their hourly
// aggregates must land once, on both replicas of each shard. With every
// node up, prepareRetry reads the progress and drops what landed. A batch of
// other clicks whose aggregate rows equal the first's counts in full:
// replicas drop repeated inserted blocks, never the views' blocks.
func testRetriedBlock(t *testing.T, cl *testenv.ClickHouseCluster) {
	ctx, ch, cfg := clusterDatabase(t, cl)
	first, second := cl.NodeConfig(1, ch.Database), cl.NodeConfig(2, ch.Database)
	n1, err := chconn.Open(ctx, first)
	if err != nil {
		t.Fatal(err)
	}
	defer n1.Close()
	n2, err := chconn.Open(ctx, second)
	if err != nil {
		t.Fatal(err)
	}
	defer n2.Close()
	l, err := New(cfg, n1, telemetry.New(), testLogger())
	if err != nil {
		t.Fatal(err)
	}
	clicks := cfg.Topics.Clicks
	batch := func(from int) *buffer {
		l.mu.Lock()
		defer l.mu.Unlock()
		l.buffers = map[string]*buffer{}
		for i := from; i < from+10; i++ {
			k := tp{clicks, int32(i % 2)} // partition 0 on shard 1, 1 on shard 2
			l.owned[k] = true
			v, err := json.Marshal(event.Click{ClickID: fmt.Sprint("k", i), Touch: event.Touch{Time: clusterT0, AppID: "app",
				MediaSource: "net", Placement: event.Placement{CampaignID: "c1"}, Cost: 250_000, Currency: "USD"}})
			if err != nil {
				t.Fatal(err)
			}
			l.add(&kgo.Record{Topic: clicks, Partition: k.partition, Offset: int64(i), Value: v})
		}
		return l.buffers["clicks"]
	}
	b := batch(0)
	if err := insert(ctx, n1, b.table, b.rows, true); err != nil {
		t.Fatalf("first attempt: %v", err)
	}
	cl.StopReplica(4)
	b.uncertain = true
	retry, err := l.prepareRetry(ctx, b)
	if err != nil || !reflect.DeepEqual(retry, b.rows) {
		t.Fatalf("node 4 down: prepareRetry returned %d rows (%v), want the same %d rows", len(retry), err, len(b.rows))
	}
	if err := insert(ctx, n2, b.table, retry, true); err != nil {
		t.Fatalf("retry through node 2: %v", err)
	}
	cl.StartReplica(4)
	b = batch(10)
	if err := insert(ctx, n1, b.table, b.rows, true); err != nil {
		t.Fatalf("second batch: %v", err)
	}
	b.uncertain = true
	if retry, err := l.prepareRetry(ctx, b); err != nil || len(retry) != 0 {
		t.Fatalf("every node up: prepareRetry returned %d rows (%v), want none (all landed)", len(retry), err)
	}
	nodes := nodeConns(t, cl, ch.Database)
	syncReplicas(t, nodes)
	// 20 clicks, half on each shard, 0.25 each.
	sums := func(conn driver.Conn, suffix string) string {
		return strings.Join([]string{
			dump(t, conn, "SELECT toString(count()) FROM clicks"+suffix)[0],
			dump(t, conn, "SELECT toString(sum(clicks)) FROM hourly_stats"+suffix)[0],
			dump(t, conn, "SELECT toString(sum(spend_clicks)) FROM hourly_stats"+suffix)[0],
		}, " ")
	}
	for i, conn := range nodes {
		if got := sums(conn, migrate.LocalSuffix); got != "10 10 2.500000" {
			t.Errorf("node %d: clicks, hourly clicks, hourly spend = %s, want 10 10 2.500000", i+1, got)
		}
	}
	if got := sums(nodes[3], ""); got != "20 20 5.000000" {
		t.Errorf("through the Distributed tables: %s, want 20 20 5.000000", got)
	}
	progress, err := l.readClusterProgress(ctx)
	if err != nil {
		t.Fatal(err)
	}
	wantProgress := map[progressKey]int64{{"clicks", tp{clicks, 0}}: 19, {"clicks", tp{clicks, 1}}: 20}
	if !reflect.DeepEqual(progress, wantProgress) {
		t.Errorf("progress %v, want %v", progress, wantProgress)
	}
}

// BenchmarkSinkCluster loads 200 000 clicks from Kafka (6 partitions) into
// the cluster of the test's own (2 shards x 2 replicas) with the default
// batching, and reports the rate from the first loaded batch to the last
// (compare BenchmarkSinkVsRaw's sink_rows/s on one server) and how long the
// replicas then took to hold every row. Run with -benchtime=1x.
func BenchmarkSinkCluster(b *testing.B) {
	const n = 200_000
	brokers := testenv.Kafka(b)
	cl := testenv.StartClickHouseCluster(b)
	for range b.N {
		ch := cl.Database(b)
		ctx := context.Background()
		conn, err := chconn.Open(ctx, ch)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := migrate.Up(ctx, conn, schemas.ClickHouse, "clickhouse", migrate.Options{Cluster: ch.Cluster}); err != nil {
			b.Fatal(err)
		}
		topics := testenv.Topics(b, brokers, 6)
		prod, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ProducerLinger(5*time.Millisecond))
		if err != nil {
			b.Fatal(err)
		}
		for i := range n {
			v, _ := json.Marshal(event.Click{ClickID: fmt.Sprint("k", i), Touch: event.Touch{Time: clusterT0.Add(time.Duration(i) * time.Millisecond),
				AppID: "app", MediaSource: "net", Placement: event.Placement{CampaignID: fmt.Sprint("c", i%20), SiteID: fmt.Sprint("s", i%500)},
				Country: "DE", Cost: 120_000, Currency: "USD"}})
			prod.Produce(ctx, &kgo.Record{Topic: topics.Clicks, Key: []byte(fmt.Sprint("k", i)), Value: v}, nil)
		}
		if err := prod.Flush(ctx); err != nil {
			b.Fatal(err)
		}
		prod.Close()
		cfg := Config{Kafka: kafkaconn.Plain(brokers), Topics: topics, ClickHouse: ch, Group: testenv.Name("sink"),
			SessionTimeout: 15 * time.Second, Sink: DefaultSettings()}
		cfg.Sink.Topics = []string{topics.Clicks}
		tel := telemetry.New()
		l, err := New(cfg, conn, tel, testLogger())
		if err != nil {
			b.Fatal(err)
		}
		rctx, cancel := context.WithCancel(ctx)
		done := make(chan error, 1)
		go func() { done <- l.Run(rctx) }()
		var first uint64
		var firstAt time.Time
		for {
			var c uint64
			if err := conn.QueryRow(ctx, "SELECT count() FROM clicks").Scan(&c); err != nil {
				b.Fatal(err)
			}
			if c > 0 && first == 0 {
				first, firstAt = c, time.Now()
			}
			if c >= n {
				break
			}
			time.Sleep(10 * time.Millisecond)
		}
		secs := time.Since(firstAt).Seconds()
		cancel()
		if err := <-done; err != nil {
			b.Fatal(err)
		}
		syncStart := time.Now()
		for node := 1; node <= len(cl.Addrs()); node++ {
			nc, err := chconn.Open(ctx, cl.NodeConfig(node, ch.Database))
			if err != nil {
				b.Fatal(err)
			}
			if err := nc.Exec(ctx, "SYSTEM SYNC REPLICA clicks"+migrate.LocalSuffix); err != nil {
				b.Fatal(err)
			}
			nc.Close()
		}
		b.ReportMetric(float64(n-first)/secs, "sink_rows/s")
		b.ReportMetric(counter(b, tel.Registry, "sink_insert_failures_total"), "insert_failures")
		b.ReportMetric(time.Since(syncStart).Seconds(), "replicas_caught_up_s")
		conn.Close()
	}
}
