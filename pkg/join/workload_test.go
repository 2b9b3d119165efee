package join

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/segmentio/encoding/json"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/adtrack/postback/pkg/event"
	"github.com/adtrack/postback/pkg/kafkaconn"
	"github.com/adtrack/postback/pkg/money"
	"github.com/adtrack/postback/pkg/stage"
	"github.com/adtrack/postback/schemas/schematest"
)

// workload is a mixed day of traffic for the pipeline tests: users whose
// installs match by click id, device id, IP + UA, impression, or nothing;
// MMP retries of some installs and events; and one in-app event per
// install. Records are keyed like ingest keys them.
type workload struct {
	touches, installs, events    []*kgo.Record
	uniqueInstalls, uniqueEvents int
}

func devID(i int) string { return fmt.Sprintf("00000000-0000-4000-8000-%012d", i) }

// makeWorkload builds users [from, to) with times from start.
func makeWorkload(tp Topics, from, to int, start time.Time) workload {
	var w workload
	at := func(d time.Duration) time.Time { return start.Add(d) }
	for i := from; i < to; i++ {
		tt := at(time.Duration(i) * time.Millisecond)
		touch := event.Touch{Time: tt, AppID: "app", MediaSource: "net", Placement: event.Placement{CampaignID: "cmp-1", SiteID: fmt.Sprint("s", i%7)}, Currency: "USD"}
		if i%2 == 0 {
			touch.PublisherSubs = event.PublisherSubs{Sub1: workloadSub(i), Sub4: "x y"}
		}
		in := event.Install{Postback: event.Postback{EventID: fmt.Sprint("inst-", i), MMP: "appsflyer", AppID: "app"}}
		in.ReceivedAt = at(30*time.Minute + time.Duration(i)*time.Millisecond)
		in.InstallTime = in.ReceivedAt
		switch i % 5 {
		case 0:
			c := event.Click{ClickID: fmt.Sprint("ck-", i), Touch: touch}
			w.touches = append(w.touches, jsonRec(tp.Clicks, c.ClickID, tt, &c))
			in.ClickID, in.IDFA = c.ClickID, devID(i)
		case 1:
			c := event.Click{ClickID: fmt.Sprint("ck-", i), Touch: touch}
			c.IDFA = devID(i)
			w.touches = append(w.touches, jsonRec(tp.Clicks, c.ClickID, tt, &c))
			in.IDFA = devID(i)
		case 2:
			c := event.Click{ClickID: fmt.Sprint("ck-", i), Touch: touch}
			c.IP, c.UA = fmt.Sprintf("10.%d.%d.%d", i>>16&255, i>>8&255, i&255), "UA/"+fmt.Sprint(i%3)
			w.touches = append(w.touches, jsonRec(tp.Clicks, c.ClickID, tt, &c))
			in.IP, in.UA = c.IP, c.UA
		case 3:
			m := event.Impression{ImpressionID: fmt.Sprint("im-", i), Touch: touch}
			m.GAID = devID(i)
			w.touches = append(w.touches, jsonRec(tp.Impressions, m.ImpressionID, tt, &m))
			in.GAID = devID(i)
		case 4:
			in.IDFA = devID(i) // organic
		}
		r := jsonRec(tp.InstallsRaw, in.JoinKey(), in.ReceivedAt, &in)
		w.installs = append(w.installs, r)
		w.uniqueInstalls++
		if i%10 == 3 { // an MMP retry, an hour later
			retry := *r
			retry.Timestamp = r.Timestamp.Add(time.Hour)
			w.installs = append(w.installs, &retry)
		}
		if in.IP != "" {
			continue // IP-only users send no event: nothing to join it by
		}
		ev := event.InAppEvent{Postback: in.Postback, EventTime: in.ReceivedAt.Add(10 * time.Minute),
			Name: event.NamePurchase, OriginalName: "af_purchase", Revenue: money.FromMicros(int64(1_000_000 + i)), Currency: "EUR"}
		ev.EventID = fmt.Sprint("ev-", i)
		ev.ReceivedAt = ev.EventTime
		er := jsonRec(tp.EventsRaw, ev.JoinKey(), ev.ReceivedAt, &ev)
		w.events = append(w.events, er)
		w.uniqueEvents++
		if i%10 == 1 {
			retry := *er
			w.events = append(w.events, &retry)
		}
	}
	return w
}

func jsonRec(topic, key string, ts time.Time, v any) *kgo.Record {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return &kgo.Record{Topic: topic, Key: []byte(key), Value: b, Timestamp: ts}
}

// produce writes records with the default partitioner (ingest's).
func produce(t testing.TB, brokers []string, recs []*kgo.Record) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	fresh := make([]*kgo.Record, len(recs))
	for i, r := range recs {
		fresh[i] = &kgo.Record{Topic: r.Topic, Key: r.Key, Value: r.Value, Timestamp: r.Timestamp}
	}
	if err := cl.ProduceSync(t.Context(), fresh...).FirstErr(); err != nil {
		t.Fatalf("produce: %v", err)
	}
}

// outcome is what the tests compare of an attributed record.
type outcome struct {
	Match                event.MatchType
	Touch, Install, Cost string
	Flags                string
	Reinstall            bool
	Subs                 event.PublisherSubs
}

// workloadSub is user i's sub1 (even users' touches carry sub ids).
func workloadSub(i int) string { return fmt.Sprint("p", i) }

func installOutcomes(t testing.TB, recs []*kgo.Record) map[string]outcome {
	t.Helper()
	m := map[string]outcome{}
	for _, r := range recs {
		var a event.AttributedInstall
		if err := json.Unmarshal(r.Value, &a); err != nil {
			t.Fatalf("attributed install: %v", err)
		}
		if _, dup := m[a.EventID]; dup {
			t.Errorf("install %s published twice", a.EventID)
		}
		m[a.EventID] = outcome{Match: a.MatchType, Touch: a.TouchID, Cost: a.Cost.String(), Flags: fmt.Sprint(a.FraudFlags), Reinstall: a.Reinstall, Subs: a.Subs()}
	}
	return m
}

func eventOutcomes(t testing.TB, recs []*kgo.Record) map[string]outcome {
	t.Helper()
	m := map[string]outcome{}
	for _, r := range recs {
		var a event.AttributedEvent
		if err := json.Unmarshal(r.Value, &a); err != nil {
			t.Fatalf("attributed event: %v", err)
		}
		if _, dup := m[a.EventID]; dup {
			t.Errorf("event %s published twice", a.EventID)
		}
		m[a.EventID] = outcome{Match: a.MatchType, Touch: a.TouchID, Install: a.InstallEventID, Cost: a.RevenueReporting.String(), Flags: fmt.Sprint(a.FraudFlags), Subs: a.Subs()}
	}
	return m
}

// expected runs the workload through the in-process engine (one partition,
// no Kafka): what every multi-partition, multi-instance or crashed run must
// also produce.
func expected(t *testing.T, cfg Config, ws ...workload) (installs, events map[string]outcome) {
	t.Helper()
	cfg.StateDir = t.TempDir()
	cfg.Kafka = kafkaconn.Plain([]string{"unused:1"})
	e := newEngine(t, cfg)
	for _, w := range ws {
		e.feed(w.touches...)
		e.feed(w.installs...)
		e.feed(w.events...)
	}
	return installOutcomes(t, e.out[cfg.Topics.InstallsAttributed]), eventOutcomes(t, e.out[cfg.Topics.EventsAttributed])
}

func compareOutcomes(t *testing.T, what string, got, want map[string]outcome) {
	t.Helper()
	bad := 0
	for id, w := range want {
		if g, ok := got[id]; !ok {
			bad++
			if bad <= 10 {
				t.Errorf("%s %s missing", what, id)
			}
		} else if g != w {
			bad++
			if bad <= 10 {
				t.Errorf("%s %s: got %+v, want %+v", what, id, g, w)
			}
		}
	}
	for id := range got {
		if _, ok := want[id]; !ok {
			t.Errorf("%s %s unexpected", what, id)
		}
	}
	if bad > 0 {
		t.Errorf("%s: %d of %d differ", what, bad, len(want))
	}
}

// waitCount consumes topic read_committed until it has n distinct keys, or
// fails after timeout.
func waitCount(t testing.TB, brokers []string, topic string, n int, timeout time.Duration) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchIsolationLevel(kgo.ReadCommitted()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(t.Context(), timeout)
	defer cancel()
	keys := map[string]bool{}
	for len(keys) < n {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("%s: saw %d of %d keys in %v", topic, len(keys), n, timeout)
		}
		fs.EachRecord(func(r *kgo.Record) { keys[string(r.Key)] = true })
	}
}

// runJoiner starts j.Run in the background; stop cancels it and returns
// its error.
func runJoiner(t testing.TB, cfg Config) (stop func() error) {
	t.Helper()
	j, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		err := j.Run(ctx)
		if err != nil && ctx.Err() == nil {
			t.Errorf("joins stopped on their own: %v", err) // shown even if the test then times out waiting
		}
		done <- err
	}()
	stopped, res := false, error(nil)
	stop = func() error {
		if !stopped {
			stopped = true
			cancel()
			select {
			case err := <-done:
				if !errors.Is(err, context.Canceled) {
					res = err
				}
			case <-time.After(time.Minute):
				res = errors.New("Run did not return within a minute of cancel")
			}
		}
		return res
	}
	t.Cleanup(func() { _ = stop() })
	return stop
}

// waitCaughtUp waits until the given stages have committed all their data
// inputs (only the last transaction marker of each partition is beyond the
// group's offsets). Before producing a workload's events, the events stage
// must have caught up: an install is on installs.attributed.v1 when its
// copies for the events stage are committed, not yet read. The workload's
// times are hours old and ticks move stream time to the wall clock, so an
// event whose install is still on its way is past its grace at once and
// published organic (live events are never that old).
func waitCaughtUp(t testing.TB, cfg Config, j *Joiner, stages ...string) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for _, st := range stages {
		for {
			sc := j.StageConfig(st, "")
			lag, err := groupLag(t, cfg.Kafka.Brokers(), sc.GroupID(), dataInputs(sc))
			if err == nil && lag == 0 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("stage %s: lag %d, err %v after 2m", st, lag, err)
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
}

// groupLag is the number of partitions of topics where group has
// committed records left to process (transaction markers and aborted
// records do not count).
func groupLag(t testing.TB, brokers []string, group string, topics []string) (int, error) {
	p, err := stage.NewProber(kgo.SeedBrokers(brokers...))
	if err != nil {
		return 0, err
	}
	defer p.Close()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	pos, err := p.Backlog(ctx, group, topics, nil)
	if err != nil {
		return 0, err
	}
	lag := 0
	for _, q := range pos {
		if q.Backlog {
			lag++
		}
	}
	return lag, nil
}

// dataInputs are a stage's inputs without the ticks topic.
func dataInputs(c stage.Config) []string {
	return slices.DeleteFunc(slices.Clone(c.Inputs), func(t string) bool { return t == c.Ticks })
}

// readUncommitted counts every data record of topic, aborted ones included.
func readUncommitted(t testing.TB, brokers []string, topic string) int {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchIsolationLevel(kgo.ReadUncommitted()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	n := 0
	for {
		ctx, cancel := context.WithTimeout(t.Context(), 2*time.Second)
		fs := cl.PollFetches(ctx)
		cancel()
		got := fs.NumRecords()
		n += got
		if got == 0 {
			return n
		}
	}
}

// validateRecords checks every record value against the JSON Schema of
// schemaTopic (e.g. "installs.attributed.v1"): what downstream teams and
// the sink are promised.
func validateRecords(t testing.TB, schemaTopic string, recs []*kgo.Record) {
	t.Helper()
	s, err := schematest.Compile(schemaTopic)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range recs {
		var v any
		if err := json.Unmarshal(r.Value, &v); err != nil {
			t.Fatalf("%s: %v", schemaTopic, err)
		}
		if err := schematest.Validate(s, v); err != nil {
			t.Fatalf("%s record %s does not match its schema: %v\n%s", schemaTopic, r.Key, err, r.Value)
		}
	}
}
