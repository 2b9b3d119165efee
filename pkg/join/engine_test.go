package join

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/segmentio/encoding/json"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/adtrack/postback/pkg/attribution"
	"github.com/adtrack/postback/pkg/event"
	"github.com/adtrack/postback/pkg/kafkaconn"
	"github.com/adtrack/postback/pkg/money"
	"github.com/adtrack/postback/pkg/statestore"
)

// engine drives the four stage processors in process, without Kafka: one
// partition per stage, one Pebble store each, one batch per stage and
// round (like one transaction per poll). Records a stage emits to an
// internal topic are delivered to the next stage in the next round; the
// rest are the outputs.
type engine struct {
	t      testing.TB
	j      *Joiner
	procs  map[string]procStore
	queues map[string][]*kgo.Record
	out    map[string][]*kgo.Record // by topic
	// spent is the time each stage took (processing and commit).
	spent map[string]time.Duration
}

type procStore struct {
	p interface {
		Process(context.Context, *kgo.Record, *statestore.Batch, func(*kgo.Record)) error
	}
	s *statestore.Store
}

var testTopics = Topics{
	Clicks: "clicks.v1", Impressions: "impressions.v1", InstallsRaw: "installs.raw.v1", EventsRaw: "events.raw.v1",
	InstallsAttributed: "installs.attributed.v1", EventsAttributed: "events.attributed.v1", Rejected: "postbacks.rejected.v1",
}

func testConfig(t testing.TB) Config {
	rates, err := attribution.ParseRates("USD", map[string]string{"EUR": "1.1", "USD": "1"})
	if err != nil {
		t.Fatal(err)
	}
	// The service's defaults (pkg/config documents them).
	return Config{
		Kafka: kafkaconn.Plain([]string{"unused:9092"}), Group: "attr", StateDir: t.TempDir(), Topics: testTopics,
		Rules: attribution.RuleSet{Default: attribution.DefaultRules()}, Rates: rates,
		Campaigns: campaigns{"cmp-1": {ID: "cmp-1", AppID: "app", MediaSource: "net", CostModel: "CPI", Bid: money.FromMicros(1_500_000), Currency: "USD"}},
		Settings:  DefaultSettings(),
	}
}

type campaigns map[string]event.Campaign

func (c campaigns) Get(id string) (event.Campaign, bool) { v, ok := c[id]; return v, ok }

func newEngine(t testing.TB, cfg Config) *engine {
	t.Helper()
	j, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	e := &engine{t: t, j: j, procs: map[string]procStore{}, queues: map[string][]*kgo.Record{}, out: map[string][]*kgo.Record{}, spent: map[string]time.Duration{}}
	for _, name := range Stages {
		s, err := statestore.Open(filepath.Join(cfg.StateDir, name), statestore.Options{Cache: cfg.Cache})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		e.procs[name] = procStore{j.Processor(name), s}
	}
	return e
}

func (e *engine) stageOf(topic string) string {
	t := e.j.cfg.Topics
	switch topic {
	case t.Clicks, t.Impressions, t.InstallsRaw:
		return StageClickID
	case e.j.byDevice:
		return StageDevice
	case e.j.byIPUA:
		return StageIPUA
	case t.EventsRaw, e.j.byJoinKey:
		return StageEvents
	}
	return ""
}

// feed queues input records and runs rounds until every queue is empty.
func (e *engine) feed(recs ...*kgo.Record) {
	e.t.Helper()
	for _, r := range recs {
		st := e.stageOf(r.Topic)
		e.queues[st] = append(e.queues[st], r)
	}
	for busy := true; busy; {
		busy = false
		for _, name := range Stages {
			q := e.queues[name]
			if len(q) == 0 {
				continue
			}
			busy = true
			e.queues[name] = nil
			ps := e.procs[name]
			began := time.Now()
			b := ps.s.NewBatch()
			for _, r := range q {
				err := ps.p.Process(context.Background(), r, b, func(o *kgo.Record) {
					if o.Timestamp.IsZero() {
						e.t.Fatalf("stage %s emitted a record without a timestamp to %s", name, o.Topic)
					}
					if st := e.stageOf(o.Topic); st != "" {
						e.queues[st] = append(e.queues[st], o)
					} else {
						e.out[o.Topic] = append(e.out[o.Topic], o)
					}
				})
				if err != nil {
					e.t.Fatalf("stage %s: %v", name, err)
				}
			}
			if err := b.Commit(); err != nil {
				e.t.Fatal(err)
			}
			e.spent[name] += time.Since(began)
		}
	}
}

func (e *engine) installs() map[string]event.AttributedInstall {
	e.t.Helper()
	m := map[string]event.AttributedInstall{}
	for _, r := range e.out[testTopics.InstallsAttributed] {
		var a event.AttributedInstall
		if err := json.Unmarshal(r.Value, &a); err != nil {
			e.t.Fatal(err)
		}
		if _, dup := m[a.EventID]; dup {
			e.t.Errorf("install %s published twice", a.EventID)
		}
		if string(r.Key) != a.EventID {
			e.t.Errorf("install %s keyed %q", a.EventID, r.Key)
		}
		m[a.EventID] = a
	}
	return m
}

func (e *engine) events() map[string]event.AttributedEvent {
	e.t.Helper()
	m := map[string]event.AttributedEvent{}
	for _, r := range e.out[testTopics.EventsAttributed] {
		var a event.AttributedEvent
		if err := json.Unmarshal(r.Value, &a); err != nil {
			e.t.Fatal(err)
		}
		if _, dup := m[a.EventID]; dup {
			e.t.Errorf("event %s published twice", a.EventID)
		}
		m[a.EventID] = a
	}
	return m
}

// --- record builders. Times are offsets from base; the record timestamp
// (stream time) is the receipt time.

var base = time.Date(2026, 11, 20, 12, 0, 0, 0, time.UTC)

const (
	idfa1 = "6d9a1f0c-7b1e-4f2a-9a59-0c8f3b2a1e01"
	idfa2 = "6d9a1f0c-7b1e-4f2a-9a59-0c8f3b2a1e02"
	ua    = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X)"
)

type clickOpt func(*event.Click)

func click(id string, at time.Duration, opts ...clickOpt) *kgo.Record {
	c := event.Click{ClickID: id, Touch: event.Touch{Time: base.Add(at), AppID: "app", MediaSource: "net",
		Placement: event.Placement{CampaignID: "cmp-1", SiteID: "site-" + id}, Currency: "USD"}}
	for _, o := range opts {
		o(&c)
	}
	return rec(testTopics.Clicks, c.ClickID, c.Time, &c)
}

func withIDFA(id string) clickOpt { return func(c *event.Click) { c.IDFA = id } }
func withIPUA(ip string) clickOpt { return func(c *event.Click) { c.IP, c.UA = ip, ua } }
func withApp(app string) clickOpt { return func(c *event.Click) { c.AppID = app } }

func impression(id string, at time.Duration, idfa string) *kgo.Record {
	m := event.Impression{ImpressionID: id, Touch: event.Touch{Time: base.Add(at), AppID: "app", MediaSource: "net",
		Placement: event.Placement{CampaignID: "cmp-1"}, Device: event.Device{IDFA: idfa}, Currency: "USD"}}
	return rec(testTopics.Impressions, id, m.Time, &m)
}

type installOpt func(*event.Install)

// install is received at `at` and installed then too.
func install(id string, at time.Duration, opts ...installOpt) *kgo.Record {
	in := event.Install{Postback: event.Postback{EventID: id, MMP: "appsflyer", ReceivedAt: base.Add(at), AppID: "app"},
		InstallTime: base.Add(at)}
	for _, o := range opts {
		o(&in)
	}
	return rec(testTopics.InstallsRaw, in.JoinKey(), in.ReceivedAt, &in)
}

func iClick(id string) installOpt { return func(in *event.Install) { in.ClickID = id } }
func iIDFA(id string) installOpt  { return func(in *event.Install) { in.IDFA = id } }
func iIPUA(ip string) installOpt  { return func(in *event.Install) { in.IP, in.UA = ip, ua } }
func iReceived(d time.Duration) installOpt {
	return func(in *event.Install) { in.ReceivedAt = base.Add(d) }
}

func inAppEvent(id string, at time.Duration, opts ...func(*event.InAppEvent)) *kgo.Record {
	ev := event.InAppEvent{Postback: event.Postback{EventID: id, MMP: "appsflyer", ReceivedAt: base.Add(at), AppID: "app"},
		EventTime: base.Add(at), Name: event.NamePurchase, OriginalName: "af_purchase",
		Revenue: money.FromMicros(2_000_000), Currency: "EUR"}
	for _, o := range opts {
		o(&ev)
	}
	return rec(testTopics.EventsRaw, ev.JoinKey(), ev.ReceivedAt, &ev)
}

func rec(topic, key string, ts time.Time, v any) *kgo.Record {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return &kgo.Record{Topic: topic, Key: []byte(key), Value: b, Timestamp: ts}
}

func counter(t testing.TB, c interface{ Write(*dto.Metric) error }) float64 {
	t.Helper()
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		t.Fatal(err)
	}
	return m.GetCounter().GetValue()
}
