//go:build integration

package analytics_test

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/segmentio/encoding/json"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/adtrack/postback/pkg/chconn"
	"github.com/adtrack/postback/pkg/event"
	"github.com/adtrack/postback/pkg/kafkaconn"
	"github.com/adtrack/postback/pkg/money"
	"github.com/adtrack/postback/pkg/servicecfg"
	"github.com/adtrack/postback/pkg/sink"
	"github.com/adtrack/postback/pkg/telemetry"
	"github.com/adtrack/postback/pkg/testenv"
)

// TestAnalyticsThroughSink sends the same hand-made fixtures as JSON records
// through real Kafka topics and the sink, then runs every view assertion of
// TestAnalytics: the numbers analysts see are the numbers the pipeline
// loads, not only the numbers a direct insert produces.
func TestAnalyticsThroughSink(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	chCfg, conn := testenv.MigratedClickHouse(t)
	now := time.Now()
	loadThroughSink(ctx, t, conn, chCfg, append(fixedFixture(), recentFixture(now)...))

	checkViews(ctx, t, conn)
}

func amount(t *testing.T, s string) money.Amount {
	t.Helper()
	if s == "" {
		return 0
	}
	a, err := money.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// loadThroughSink produces the fixture to fresh topics as the attribution
// service and ingest would, runs the sink until every record is loaded, and
// stops it.
func loadThroughSink(ctx context.Context, t *testing.T, conn driver.Conn, chCfg chconn.Config, batches []batch) {
	t.Helper()
	brokers := testenv.Kafka(t)
	topics := testenv.Topics(t, brokers, 3)
	var recs []*kgo.Record
	add := func(topic, key string, v any) {
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		recs = append(recs, &kgo.Record{Topic: topic, Key: []byte(key), Value: b})
	}
	touchOf := func(r touch) event.Touch {
		p := r.p
		return event.Touch{Time: r.at, AppID: p.app, Platform: event.Platform(p.platform), MediaSource: p.media,
			Placement: event.Placement{CampaignID: p.campaign, AdsetID: p.adset, CreativeID: p.creative, SiteID: p.site, SubSiteID: p.subSite},
			Country:   p.country, Cost: amount(t, r.cost), Currency: r.currency}
	}
	attribution := func(p placement, at time.Time, match, touchID string) event.Attribution {
		return event.Attribution{MatchType: event.MatchType(match), TouchID: touchID, MediaSource: p.media, CampaignID: p.campaign,
			AdsetID: p.adset, CreativeID: p.creative, SiteID: p.site, SubSiteID: p.subSite, FraudFlags: []string{}, AttributedAt: at}
	}
	rows := 0
	for _, bt := range batches {
		for _, r := range bt.impressions {
			add(topics.Impressions, r.id, event.Impression{ImpressionID: r.id, Touch: touchOf(r)})
		}
		for _, r := range bt.clicks {
			add(topics.Clicks, r.id, event.Click{ClickID: r.id, Touch: touchOf(r)})
		}
		for _, r := range bt.installs {
			p := r.p
			a := attribution(p, r.at, r.match, "touch-"+r.id)
			a.Cost, a.CostCurrency, a.Reinstall = amount(t, r.cost), r.currency, r.reinstall
			if r.flags != nil {
				a.FraudFlags = r.flags
			}
			add(topics.InstallsAttributed, r.id, event.AttributedInstall{
				Install: event.Install{Postback: event.Postback{EventID: r.id, MMP: "appsflyer", ReceivedAt: r.at, AppID: p.app,
					Platform: event.Platform(p.platform), Country: p.country, Raw: event.Raw{Method: "GET", Path: "/"}},
					InstallTime: r.at, Rejected: r.rejected},
				Attribution: a})
		}
		for _, r := range bt.events {
			p := r.p
			add(topics.EventsAttributed, r.id, event.AttributedEvent{
				InAppEvent: event.InAppEvent{Postback: event.Postback{EventID: r.id, MMP: "appsflyer", ReceivedAt: r.at, AppID: p.app,
					Platform: event.Platform(p.platform), Country: p.country, Raw: event.Raw{Method: "GET", Path: "/"}},
					EventTime: r.at, Name: event.Taxonomy(r.name), OriginalName: "af_" + r.name, Revenue: 999_000_000, Currency: "JPY"},
				Attribution:    attribution(p, r.at, "click_id", ""),
				InstallEventID: r.install, RevenueReporting: amount(t, r.revenue), ReportingCurrency: r.currency})
		}
	}
	for _, bt := range batches {
		for _, r := range bt.skan {
			match := "exact"
			if r.p.campaign == "" {
				match = "none"
			}
			p := event.SKANPostback{PostbackID: r.id, Framework: r.framework(), Version: r.version, AdNetworkID: "test123.skadnetwork",
				SourceIdentifier: "5239", AppID: r.p.app, TransactionID: r.tx(), Redownload: r.redownload, CoarseConversionValue: r.coarse,
				DidWin: r.win, PostbackSequenceIndex: int64(r.seq), ConversionType: r.convType, Signature: "MEUC",
				CampaignID: r.p.campaign, MediaSource: r.p.media, CampaignMatch: match, Raw: event.Raw{Method: "POST", Path: "/v1/skan"}}
			if r.fine != nil {
				v := int64(*r.fine)
				p.ConversionValue = &v
			}
			for d := 0; d < r.deliveries; d++ {
				p.ReceivedAt = r.at.Add(time.Duration(d) * time.Hour)
				add(topics.SKAN, r.id, p)
			}
		}
	}
	rows = len(recs)
	prod, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		t.Fatal(err)
	}
	defer prod.Close()
	if err := prod.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}

	cfg := servicecfg.DefaultSink()
	cfg.Kafka.Brokers, cfg.Kafka.Topics, cfg.ClickHouse = brokers, topics, chCfg
	cfg.Group = testenv.Name("analytics")
	cfg.SessionTimeout = 6 * time.Second
	cfg.Sink.FlushInterval = 200 * time.Millisecond
	l, err := sink.New(cfg.Loader(kafkaconn.Plain(cfg.Kafka.Brokers)), conn, telemetry.New(), slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	rctx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- l.Run(rctx) }()
	defer func() {
		stop()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}()
	for {
		var n uint64
		if err := conn.QueryRow(ctx, `SELECT (SELECT count() FROM impressions) + (SELECT count() FROM clicks)
			+ (SELECT count() FROM installs) + (SELECT count() FROM events) + (SELECT count() FROM rejected)
			+ (SELECT count() FROM skan_postbacks)`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if int(n) == rows {
			return
		}
		if int(n) > rows || ctx.Err() != nil {
			t.Fatalf("%d rows loaded, want %d", n, rows)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
