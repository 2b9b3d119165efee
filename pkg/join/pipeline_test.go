package join

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/adtrack/postback/pkg/event"
	"github.com/adtrack/postback/pkg/kafkaconn"
	"github.com/adtrack/postback/pkg/testenv"
)

func kfakeCluster(t *testing.T, partitions int32, tp Topics) []string {
	t.Helper()
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(partitions, tp.Clicks, tp.Impressions, tp.InstallsRaw, tp.EventsRaw,
		tp.InstallsAttributed, tp.EventsAttributed, tp.Rejected))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c.ListenAddrs()
}

// pipelineScenario runs the joins over Kafka on several partitions and
// compares every published install and event with the in-process engine's.
// Touches go first and are routed before installs are produced, as in live
// traffic (clicks precede their installs by minutes).
func pipelineScenario(t *testing.T, cfg Config, users int) {
	brokers, tp := cfg.Kafka.Brokers(), cfg.Topics
	w := makeWorkload(tp, 0, users, time.Now().Add(-2*time.Hour).Truncate(time.Second))
	wantI, wantE := expected(t, cfg, w)
	checkMix(t, wantI, users)

	stop := runJoiner(t, cfg)
	produce(t, brokers, w.touches)
	j, _ := New(cfg)
	waitRouted(t, brokers, j, w)
	produce(t, brokers, w.installs)
	waitCount(t, brokers, tp.InstallsAttributed, w.uniqueInstalls, 2*time.Minute)
	waitCaughtUp(t, cfg, j, StageEvents) // see waitCaughtUp
	produce(t, brokers, w.events)
	waitCount(t, brokers, tp.EventsAttributed, w.uniqueEvents, 2*time.Minute)
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	gotI := testenv.ReadAll(t, brokers, tp.InstallsAttributed)
	gotE := testenv.ReadAll(t, brokers, tp.EventsAttributed)
	validateRecords(t, "installs.attributed.v1", gotI)
	validateRecords(t, "events.attributed.v1", gotE)
	compareOutcomes(t, "install", installOutcomes(t, gotI), wantI)
	compareOutcomes(t, "event", eventOutcomes(t, gotE), wantE)
}

// waitRouted waits until stage A has routed every touch of w that has a
// device or IP + UA (so the installs produced next find them).
func waitRouted(t testing.TB, brokers []string, j *Joiner, w workload) {
	t.Helper()
	waitCount(t, brokers, j.byDevice, countDevTouches(w), 2*time.Minute)
}

func countDevTouches(w workload) int {
	n := 0
	for _, r := range w.touches {
		if strings.Contains(string(r.Value), `"idfa"`) || strings.Contains(string(r.Value), `"gaid"`) {
			n++
		}
	}
	return n
}

func TestPipelineKfake(t *testing.T) {
	cfg := testConfig(t)
	cfg.Kafka = kafkaconn.Plain(kfakeCluster(t, 4, cfg.Topics))
	cfg.TransactionTimeout = 10 * time.Second
	cfg.MaxPollRecords = 200
	pipelineScenario(t, cfg, 600)
}

func TestRefusesUnequalPartitionsKfake(t *testing.T) {
	cfg := testConfig(t)
	tp := cfg.Topics
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(4, tp.Clicks, tp.Impressions, tp.InstallsRaw), kfake.SeedTopics(3, tp.EventsRaw))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	cfg.Kafka = kafkaconn.Plain(c.ListenAddrs())
	j, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	err = j.Run(t.Context())
	if err == nil || !strings.Contains(err.Error(), "not co-partitioned") || !strings.Contains(err.Error(), tp.EventsRaw+" has 3") {
		t.Fatalf("got %v, want a co-partitioning error naming %s", err, tp.EventsRaw)
	}
}

// checkMix guards the oracle: the workload must exercise every rule (a
// broken engine that made everything organic would agree with a broken
// pipeline).
func checkMix(t *testing.T, installs map[string]outcome, users int) {
	t.Helper()
	by := map[event.MatchType]int{}
	for id, o := range installs {
		by[o.Match]++
		var i int
		if _, err := fmt.Sscanf(id, "inst-%d", &i); err != nil {
			t.Fatalf("install id %q: %v", id, err)
		}
		// The winning touch's publisher sub ids come along.
		if want := i%2 == 0 && o.Match != event.MatchOrganic; (o.Subs.Sub1 == workloadSub(i)) != want || (!want && !o.Subs.IsZero()) {
			t.Fatalf("install %s (%s): sub ids %+v", id, o.Match, o.Subs)
		}
	}
	for _, m := range []event.MatchType{event.MatchClickID, event.MatchDeviceID, event.MatchProbabilistic, event.MatchViewThrough, event.MatchOrganic} {
		if by[m] != users/5 {
			t.Fatalf("expected outcomes: %d %s installs, want %d (all: %v)", by[m], m, users/5, by)
		}
	}
}

// backlogScenario starts the joins on a backlog: clicks, impressions and
// the installs they caused (minutes later) are all in Kafka before the
// service starts, as after an outage. Partitions of different topics are
// fetched at different speeds, but installs must still meet the touches of
// every partition that precede them (the stages align their partitions by
// record time): the outcome equals the in-process engine's. Without the
// alignment most installs of this test turn organic.
func backlogScenario(t *testing.T, cfg Config) {
	w := makeWorkload(cfg.Topics, 0, 2000, time.Now().Add(-3*time.Hour).Truncate(time.Second))
	wantI, wantE := expected(t, cfg, w)
	produce(t, cfg.Kafka.Brokers(), w.touches)
	produce(t, cfg.Kafka.Brokers(), w.installs)
	produce(t, cfg.Kafka.Brokers(), w.events)
	stop := runJoiner(t, cfg)
	waitCount(t, cfg.Kafka.Brokers(), cfg.Topics.InstallsAttributed, w.uniqueInstalls, 3*time.Minute)
	waitCount(t, cfg.Kafka.Brokers(), cfg.Topics.EventsAttributed, w.uniqueEvents, 3*time.Minute)
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	compareOutcomes(t, "install", installOutcomes(t, testenv.ReadAll(t, cfg.Kafka.Brokers(), cfg.Topics.InstallsAttributed)), wantI)
	compareOutcomes(t, "event", eventOutcomes(t, testenv.ReadAll(t, cfg.Kafka.Brokers(), cfg.Topics.EventsAttributed)), wantE)
}

func TestBacklogKfake(t *testing.T) {
	cfg := testConfig(t)
	cfg.Kafka = kafkaconn.Plain(kfakeCluster(t, 4, cfg.Topics))
	cfg.TransactionTimeout = 10 * time.Second
	cfg.MaxPollRecords = 100
	backlogScenario(t, cfg)
}
