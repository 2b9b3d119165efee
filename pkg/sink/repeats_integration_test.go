//go:build integration

package sink_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/segmentio/encoding/json"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/adtrack/postback/pkg/campaign"
	"github.com/adtrack/postback/pkg/event"
	"github.com/adtrack/postback/pkg/ingest"
	"github.com/adtrack/postback/pkg/kafkaconn"
	"github.com/adtrack/postback/pkg/money"
	"github.com/adtrack/postback/pkg/servicecfg"
	"github.com/adtrack/postback/pkg/telemetry"
	"github.com/adtrack/postback/pkg/testenv"
)

// produceTouches writes clicks (or impressions) with the given ids, keyed
// by id as ingest does, all at time t0 + i seconds on site "s".
func (e *env) produceTouches(impressions bool, ids ...string) {
	e.t.Helper()
	recs := make([]*kgo.Record, 0, len(ids))
	for i, id := range ids {
		touch := event.Touch{Time: t0.Add(time.Duration(i) * time.Second), AppID: "app", Platform: event.PlatformAndroid,
			MediaSource: "net", Placement: event.Placement{CampaignID: "c1", SiteID: "s"}, Cost: 250_000, Currency: "USD"}
		var v []byte
		topic := e.cfg.Kafka.Topics.Clicks
		if impressions {
			v, _ = json.Marshal(event.Impression{ImpressionID: id, Touch: touch})
			topic = e.cfg.Kafka.Topics.Impressions
		} else {
			v, _ = json.Marshal(event.Click{ClickID: id, S2S: true, Touch: touch})
		}
		recs = append(recs, &kgo.Record{Topic: topic, Key: []byte(id), Value: v})
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := e.prod.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		e.t.Fatal(err)
	}
}

// beyondProgress counts the records of topic after the last one table
// holds in their partition: what a loader resuming from ClickHouse reads.
func (e *env) beyondProgress(table, topic string) int {
	e.t.Helper()
	ctx := context.Background()
	rows, err := e.conn.Query(ctx, "SELECT src_partition, max(src_offset) FROM "+table+" GROUP BY src_partition")
	if err != nil {
		e.t.Fatal(err)
	}
	defer rows.Close()
	last := map[int32]int64{}
	for rows.Next() {
		var p uint32
		var o uint64
		if err := rows.Scan(&p, &o); err != nil {
			e.t.Fatal(err)
		}
		last[int32(p)] = int64(o)
	}
	n := 0
	for _, r := range testenv.ReadAll(e.t, e.brokers, topic) {
		if o, ok := last[r.Partition]; !ok || r.Offset > o {
			n++
		}
	}
	return n
}

func keyed(prefix string, from, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = event.KeyedClickID("c1", fmt.Sprintf("%s-%d", prefix, from+i))
	}
	return out
}

// waitMetric waits until the counter reaches want.
func waitMetric(t *testing.T, tel *telemetry.Telemetry, name, table string, want float64) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		got := 0.0
		if ms, _ := telemetry.Series(tel.Registry, name, map[string]string{"table": table}); len(ms) > 0 {
			got = ms[0].GetCounter().GetValue()
		}
		if got >= want {
			if got > want {
				t.Fatalf("%s{table=%s} = %v, want %v", name, table, got, want)
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s{table=%s} = %v after 60s, want %v", name, table, got, want)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestKeyedRepeatsLoadedOnce: a keyed click or impression id on its topic
// several times (in one batch, in later batches, after a restart in a fresh
// group) is loaded once, in the base table and in the aggregates; ids
// without a key are loaded as they come.
func TestKeyedRepeatsLoadedOnce(t *testing.T) {
	e := newEnv(t, 3, testenv.ClickHouse(t))
	cfg := e.cfg
	cfg.Sink.FlushInterval = 300 * time.Millisecond
	a := keyed("a", 0, 50)
	plain := make([]string, 20)
	for i := range plain {
		plain[i] = fmt.Sprintf("0190f3a2-0000-7000-8000-%012d", i) // UUIDv7-shaped: not keyed
	}
	imps := []string{event.KeyedImpressionID("c1", "i-1"), event.KeyedImpressionID("c1", "i-2")}

	// One batch holding every keyed id twice, and the impressions thrice.
	e.produceTouches(false, append(append(append([]string{}, a...), a...), plain...)...)
	e.produceTouches(true, append(append(append([]string{}, imps...), imps...), imps...)...)
	tel := telemetry.New()
	stop := e.runLoaderWith(cfg, tel)
	waitMetric(t, tel, "sink_repeats_dropped_total", "clicks", 50)
	waitMetric(t, tel, "sink_repeats_dropped_total", "impressions", 4)
	e.waitRows(70, 30*time.Second)

	// Later batches: the same ids again, and new ones.
	b := keyed("b", 0, 10)
	e.produceTouches(false, a[:25]...)
	e.produceTouches(false, append(append([]string{}, b...), a[25:]...)...)
	waitMetric(t, tel, "sink_repeats_dropped_total", "clicks", 100)
	e.waitRows(80, 30*time.Second)
	stop()

	// A fresh group resumes from ClickHouse's progress: the repeats at the
	// end of the topics (never inserted, so beyond the progress) are read
	// and dropped again, and new repeats too.
	fresh := cfg
	fresh.Group = testenv.Name("sink-fresh")
	e.produceTouches(false, b...)
	e.produceTouches(true, imps...)
	tel = telemetry.New()
	stop = e.runLoaderWith(fresh, tel)
	waitMetric(t, tel, "sink_repeats_dropped_total", "clicks", float64(e.beyondProgress("clicks", e.cfg.Kafka.Topics.Clicks)))
	waitMetric(t, tel, "sink_repeats_dropped_total", "impressions", float64(e.beyondProgress("impressions", e.cfg.Kafka.Topics.Impressions)))
	time.Sleep(time.Second)
	stop()

	for q, want := range map[string]uint64{
		"SELECT count() FROM clicks":                                        80,
		"SELECT uniqExact(click_id) FROM clicks":                            80,
		"SELECT count() FROM impressions":                                   2,
		"SELECT toUInt64(sum(clicks)) FROM hourly_stats":                    80,
		"SELECT toUInt64(sum(impressions)) FROM hourly_stats":               2,
		"SELECT toUInt64(sum(clicks)) FROM stats_daily WHERE site_id = 's'": 80,
		"SELECT count() FROM touch_keys WHERE table_name = 'clicks'":        60,
		"SELECT count() FROM touch_keys WHERE table_name = 'impressions'":   2,
	} {
		if got := e.count(q); got != want {
			t.Errorf("%s = %d, want %d", q, got, want)
		}
	}
	// The first record of an id wins: the row loaded is its first copy.
	first := map[string]int64{}
	for _, r := range testenv.ReadAll(t, e.brokers, e.cfg.Kafka.Topics.Clicks) {
		if o, ok := first[string(r.Key)]; !ok || r.Offset < o {
			first[string(r.Key)] = r.Offset
		}
	}
	rows, err := e.conn.Query(context.Background(), "SELECT click_id, src_offset FROM clicks")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	for rows.Next() {
		var id string
		var off uint64
		if err := rows.Scan(&id, &off); err != nil {
			t.Fatal(err)
		}
		if int64(off) != first[id] {
			t.Errorf("click %s loaded from offset %d, its first copy is at %d", id, off, first[id])
		}
	}
}

// TestKeyedClickRetriedAfter503CountsOnce is what a demanding client sees:
// a server-to-server click sent with an Idempotency-Key while the broker
// is away gets 503, yet its record reaches Kafka once the broker is back;
// the client retries with the same key and gets 200 with the same click
// id. Analysts count one click. The same without a key is counted twice:
// the bound docs/ingest.md states.
func TestKeyedClickRetriedAfter503CountsOnce(t *testing.T) {
	b := testenv.StartBroker(t)
	brokers := b.Brokers()
	topics := testenv.Topics(t, brokers, 3)
	chCfg, conn := testenv.MigratedClickHouse(t)

	icfg := ingest.DefaultConfig()
	icfg.Topics = topics
	icfg.Ingest.Produce.Timeout = 500 * time.Millisecond
	cl, err := kgo.NewClient(ingest.ProducerOpts(kafkaconn.Plain(brokers), icfg.Ingest.Produce)...)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	camps, err := campaign.ParseYAML([]byte("campaigns:\n  - {campaign_id: cpc, app_id: com.example.game, platform: android, media_source: net_int, cost_model: CPC, bid: '0.25', currency: USD}\n"))
	if err != nil {
		t.Fatal(err)
	}
	reg := campaign.NewRegistry()
	reg.Put(camps[0])
	reg.SetLoaded()
	srv, err := ingest.New(icfg, cl, reg, telemetry.New(), quiet())
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	hs := httptest.NewServer(srv.Handler())
	defer hs.Close()
	click := func(site, key string) (int, string) {
		req, _ := http.NewRequest("GET", hs.URL+"/v1/click/cpc?s2s=1&ip=198.51.100.7&ua=UA&site_id="+site, nil)
		if key != "" {
			req.Header.Set("Idempotency-Key", key)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		var m struct {
			ClickID string `json:"click_id"`
		}
		_ = json.Unmarshal(body, &m)
		return resp.StatusCode, m.ClickID
	}
	// Warm the producer up (metadata, producer id) beyond the 500 ms the
	// clicks below are given, with a click of its own.
	warm, _ := json.Marshal(event.Click{ClickID: "warm-1", S2S: true, Touch: event.Touch{Time: time.Now().UTC(), AppID: "com.example.game",
		Platform: event.PlatformAndroid, MediaSource: "net_int", Placement: event.Placement{CampaignID: "cpc", SiteID: "warm"}, Cost: 250_000, Currency: "USD"}})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := cl.ProduceSync(ctx, &kgo.Record{Topic: topics.Clicks, Key: []byte("warm-1"), Value: warm}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	if code, _ := click("up", ""); code != 200 {
		t.Fatalf("click with the broker up: %d", code)
	}

	b.Stop()
	keyedID := event.KeyedClickID("cpc", "req-7f3a")
	if code, _ := click("keyed", "req-7f3a"); code != 503 {
		t.Fatalf("keyed click with the broker away: %d, want 503", code)
	}
	if code, _ := click("plain", ""); code != 503 {
		t.Fatalf("plain click with the broker away: %d, want 503", code)
	}
	b.Start()
	// The producer still holds both records and delivers them: answered
	// 503, written all the same.
	deadline := time.Now().Add(60 * time.Second)
	for {
		sites := map[string]int{}
		for _, r := range testenv.ReadAll(t, brokers, topics.Clicks) {
			var c event.Click
			_ = json.Unmarshal(r.Value, &c)
			sites[c.SiteID]++
			if c.SiteID == "keyed" && c.ClickID != keyedID {
				t.Fatalf("the keyed click's id is %s, want %s", c.ClickID, keyedID)
			}
		}
		if sites["keyed"] == 1 && sites["plain"] == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the clicks answered 503 did not reach Kafka after the broker's return: %v", sites)
		}
		time.Sleep(500 * time.Millisecond)
	}
	// The client retries.
	if code, id := click("keyed", "req-7f3a"); code != 200 || id != keyedID {
		t.Fatalf("keyed retry: %d %s, want 200 with %s", code, id, keyedID)
	}
	if code, _ := click("plain", ""); code != 200 {
		t.Fatalf("plain retry: %d", code)
	}

	scfg := servicecfg.DefaultSink()
	scfg.Kafka.Brokers = brokers
	scfg.Kafka.Topics = topics
	scfg.ClickHouse = chCfg
	scfg.Group = testenv.Name("sink")
	scfg.SessionTimeout = 6 * time.Second
	scfg.Sink.FlushInterval = 200 * time.Millisecond
	e := &env{t: t, brokers: brokers, cfg: scfg, conn: conn}
	tel := telemetry.New()
	stop := e.runLoaderWith(scfg, tel)
	defer stop()
	waitMetric(t, tel, "sink_repeats_dropped_total", "clicks", 1)
	// Counted once the INSERT returned, its views included (a row count
	// could see the clicks' part before hourly_stats' is committed).
	waitMetric(t, tel, "sink_rows_inserted_total", "clicks", 5) // warm, up, keyed, plain twice

	// Clicks per site, as analysts read them: the raw table and the views.
	want := "[('keyed',1),('plain',2),('up',1),('warm',1)]"
	for _, from := range []string{"(SELECT site_id, count() AS n FROM clicks GROUP BY site_id)",
		"(SELECT site_id, sum(clicks) AS n FROM stats_hourly GROUP BY site_id)",
		"(SELECT site_id, sum(clicks) AS n FROM stats_daily GROUP BY site_id)"} {
		var got string
		q := "SELECT toString(groupArray((site_id, toUInt64(n)))) FROM (SELECT * FROM " + from + " ORDER BY site_id)"
		if err := conn.QueryRow(context.Background(), q).Scan(&got); err != nil || got != want {
			t.Errorf("%s: %s (%v), want %s (the keyed click once; the plain one, retried without a key, twice)", from, got, err, want)
		}
	}
	var spend string
	err = conn.QueryRow(context.Background(), "SELECT toString(sum(spend)) FROM stats_daily WHERE site_id = 'keyed'").Scan(&spend)
	if got, perr := money.Parse(spend); err != nil || perr != nil || got.String() != "0.25" {
		t.Errorf("spend of the keyed click: %q (%v), want 0.25 (one CPC click)", spend, err)
	}
}
