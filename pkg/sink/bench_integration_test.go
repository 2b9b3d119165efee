//go:build integration

package sink_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/segmentio/encoding/json"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/adtrack/postback/pkg/chconn"
	"github.com/adtrack/postback/pkg/event"
	"github.com/adtrack/postback/pkg/kafkaconn"
	"github.com/adtrack/postback/pkg/migrate"
	"github.com/adtrack/postback/pkg/servicecfg"
	"github.com/adtrack/postback/pkg/sink"
	"github.com/adtrack/postback/pkg/telemetry"
	"github.com/adtrack/postback/pkg/testenv"
	"github.com/adtrack/postback/schemas"
)

// BenchmarkSinkVsRaw loads the same clicks into the real clicks table twice
// in one run: through the sink (Kafka fetch, JSON decode, batch INSERT with
// the default batching) and as raw clickhouse-go batch inserts of the
// already-built rows (the ceiling), then reports both rates and the ratio,
// plus the INSERT size and rate the defaults produced. Run with -benchtime=1x.
func BenchmarkSinkVsRaw(b *testing.B) {
	const n = 300_000
	brokers := testenv.Kafka(b)
	topics := testenv.Topics(b, brokers, 6)
	values := make([][]byte, n)
	prod, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ProducerLinger(5*time.Millisecond))
	if err != nil {
		b.Fatal(err)
	}
	defer prod.Close()
	ctx := context.Background()
	for i := range values {
		id := fmt.Sprintf("k%07d", i)
		values[i], _ = json.Marshal(event.Click{ClickID: id, Touch: event.Touch{Time: t0.Add(time.Duration(i) * time.Millisecond),
			AppID: "com.example.game", Platform: event.PlatformAndroid, MediaSource: "net_int",
			Placement: event.Placement{CampaignID: fmt.Sprint("c", i%20), SiteID: fmt.Sprint("s", i%500), CreativeID: "cr1"},
			Country:   "DE", Device: event.Device{GAID: "38400000-8cf0-11bd-b23e-10b96e40000d", IP: "203.0.113.7", UA: "Mozilla/5.0"},
			Cost: 120_000, Currency: "USD"}})
		prod.Produce(ctx, &kgo.Record{Topic: topics.Clicks, Key: []byte(id), Value: values[i]}, nil)
	}
	if err := prod.Flush(ctx); err != nil {
		b.Fatal(err)
	}

	for iter := 0; iter < b.N; iter++ {
		// Raw: the same rows, already decoded, in 50k-row batches.
		rawCfg := testenv.ClickHouse(b)
		raw, err := chconn.Open(ctx, rawCfg)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := migrate.Up(ctx, raw, schemas.ClickHouse, "clickhouse", migrate.Options{}); err != nil {
			b.Fatal(err)
		}
		tab := sink.Tables(topics.Clicks, "i", "ia", "ea", "r", "s")[topics.Clicks]
		rows := make([][]any, n)
		for i, v := range values {
			r, err := tab.Row(v)
			if err != nil {
				b.Fatal(err)
			}
			rows[i] = append(r, topics.Clicks, uint32(i%6), uint64(i))
		}
		cols := strings.Join(append(append([]string(nil), tab.Columns...), "src_topic", "src_partition", "src_offset"), ", ")
		start := time.Now()
		for off := 0; off < n; off += 50_000 {
			batch, err := raw.PrepareBatch(ctx, "INSERT INTO clicks ("+cols+")")
			if err != nil {
				b.Fatal(err)
			}
			for _, r := range rows[off:min(off+50_000, n)] {
				if err := batch.Append(r...); err != nil {
					b.Fatal(err)
				}
			}
			if err := batch.Send(); err != nil {
				b.Fatal(err)
			}
		}
		rawSecs := time.Since(start).Seconds()
		raw.Close()

		// Sink: from Kafka into a fresh database, default batching.
		e := newEnv(b, 6, testenv.ClickHouse(b))
		cfg := e.cfg
		cfg.Kafka.Topics = topics
		cfg.Sink = servicecfg.DefaultSink().Sink
		cfg.Sink.Topics = []string{topics.Clicks}
		tel := telemetry.New()
		l, err := sink.New(cfg.Loader(kafkaconn.Plain(cfg.Kafka.Brokers)), e.conn, tel, quiet())
		if err != nil {
			b.Fatal(err)
		}
		rctx, cancel := context.WithCancel(ctx)
		done := make(chan error, 1)
		start = time.Now()
		go func() { done <- l.Run(rctx) }()
		// Steady state: from the first loaded batch to the last, so the
		// group join and first fetch (startup) are reported apart.
		var first uint64
		var firstAt time.Time
		for {
			c := e.count("SELECT count() FROM clicks")
			if c > 0 && first == 0 {
				first, firstAt = c, time.Now()
			}
			if c >= n {
				break
			}
			time.Sleep(10 * time.Millisecond)
		}
		sinkSecs := time.Since(firstAt).Seconds()
		startup := firstAt.Sub(start)
		cancel()
		<-done
		inserts, rowsIn := histogram(b, tel.Registry, "sink_batch_rows")

		sinkRate, rawRate := float64(n-first)/sinkSecs, n/rawSecs
		b.ReportMetric(sinkRate, "sink_rows/s")
		b.ReportMetric(rawRate, "raw_rows/s")
		b.ReportMetric(100*sinkRate/rawRate, "sink_%_of_raw")
		b.ReportMetric(startup.Seconds(), "sink_startup_s")
		b.ReportMetric(rowsIn/inserts, "rows/insert")
		b.ReportMetric(inserts/sinkSecs, "inserts/s")
	}
}

func histogram(b *testing.B, reg prometheus.Gatherer, name string) (count, sum float64) {
	mfs, err := reg.Gather()
	if err != nil {
		b.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			var h *dto.Histogram = mf.GetMetric()[0].GetHistogram()
			return float64(h.GetSampleCount()), h.GetSampleSum()
		}
	}
	b.Fatalf("metric %s not found", name)
	return 0, 0
}
