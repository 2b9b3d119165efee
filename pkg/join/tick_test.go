package join

import (
	"testing"
	"time"

	"github.com/segmentio/encoding/json"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/adtrack/postback/pkg/event"
	"github.com/adtrack/postback/pkg/kafkaconn"
	"github.com/adtrack/postback/pkg/money"
	"github.com/adtrack/postback/pkg/testenv"
)

// idleConfig is a kfake pipeline with short graces, where nothing but the
// test's records ever arrives.
func idleConfig(t *testing.T, ticks time.Duration) Config {
	cfg := testConfig(t)
	cfg.Kafka = kafkaconn.Plain(kfakeCluster(t, 4, cfg.Topics))
	cfg.Rules.Default.Grace = 2 * time.Second
	cfg.EventGrace = 2 * time.Second
	cfg.TickInterval, cfg.TickLag = ticks, 500*time.Millisecond
	return cfg
}

// waitingRecords are an install naming a click that never comes and an
// in-app event of a device whose install never comes, both received now:
// each waits for its grace, then must be published (organic).
func waitingRecords(tp Topics) []*kgo.Record {
	now := time.Now().UTC().Truncate(time.Millisecond)
	in := event.Install{Postback: event.Postback{EventID: "inst-unfilled-click", MMP: "adjust", AppID: "app", ReceivedAt: now,
		ClickID: "ck-never-seen"}, InstallTime: now}
	ev := event.InAppEvent{Postback: event.Postback{EventID: "ev-no-install", MMP: "adjust", AppID: "app", ReceivedAt: now},
		EventTime: now, Name: event.NamePurchase, OriginalName: "purchase", Revenue: money.FromMicros(1_000_000), Currency: "USD"}
	ev.IDFA = devID(424242)
	return []*kgo.Record{jsonRec(tp.InstallsRaw, in.JoinKey(), now, &in), jsonRec(tp.EventsRaw, ev.JoinKey(), now, &ev)}
}

// TestIdlePartitionsSettleKfake: an install waiting for a click and an
// event waiting for its install, on partitions that receive nothing after
// them, are published once their grace has passed: ticks move stream time
// while the whole pipeline is caught up.
func TestIdlePartitionsSettleKfake(t *testing.T) {
	cfg := idleConfig(t, 200*time.Millisecond)
	stop := runJoiner(t, cfg)
	produce(t, cfg.Kafka.Brokers(), waitingRecords(cfg.Topics))
	waitCount(t, cfg.Kafka.Brokers(), cfg.Topics.InstallsAttributed, 1, 30*time.Second)
	waitCount(t, cfg.Kafka.Brokers(), cfg.Topics.EventsAttributed, 1, 30*time.Second)
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	var a event.AttributedInstall
	recs := testenv.ReadAll(t, cfg.Kafka.Brokers(), cfg.Topics.InstallsAttributed)
	if err := json.Unmarshal(recs[0].Value, &a); err != nil {
		t.Fatal(err)
	}
	if a.EventID != "inst-unfilled-click" || a.MatchType != event.MatchOrganic {
		t.Errorf("install: %s %s, want inst-unfilled-click organic", a.EventID, a.MatchType)
	}
}

// TestIdlePartitionsWithoutTicksKfake is the control: with ticks off,
// stream time stands still on a quiet partition and nothing waiting is
// ever published (what TestIdlePartitionsSettleKfake guards against).
func TestIdlePartitionsWithoutTicksKfake(t *testing.T) {
	cfg := idleConfig(t, 0)
	stop := runJoiner(t, cfg)
	produce(t, cfg.Kafka.Brokers(), waitingRecords(cfg.Topics))
	time.Sleep(8 * time.Second) // four times the grace
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if n := len(testenv.ReadAll(t, cfg.Kafka.Brokers(), cfg.Topics.InstallsAttributed)) + len(testenv.ReadAll(t, cfg.Kafka.Brokers(), cfg.Topics.EventsAttributed)); n != 0 {
		t.Fatalf("%d records published without ticks; the control is broken", n)
	}
}
