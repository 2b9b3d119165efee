//go:build integration

package join

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/adtrack/postback/pkg/campaigntopic"
	"github.com/adtrack/postback/pkg/event"
	"github.com/adtrack/postback/pkg/kafkaconn"
	"github.com/adtrack/postback/pkg/money"
	"github.com/adtrack/postback/pkg/testenv"
	"github.com/adtrack/postback/pkg/topics"
)

// integrationConfig is testConfig on the real broker, with fresh topics of
// 4 partitions and a fresh group.
func integrationConfig(t *testing.T) Config {
	cfg, _ := integrationConfigCampaigns(t)
	return cfg
}

// integrationConfigCampaigns also returns the fresh campaigns topic.
func integrationConfigCampaigns(t *testing.T) (Config, string) {
	return integrationConfigOn(t, testenv.Kafka(t))
}

// brokerConfig is testConfig on brokers, with fresh topics of 4 partitions
// and a fresh group named from group; it also returns the topics.
func brokerConfig(t testing.TB, brokers []string, group string) (Config, topics.Config) {
	tc := testenv.Topics(t, brokers, 4)
	cfg := testConfig(t)
	cfg.Kafka = kafkaconn.Plain(brokers)
	cfg.Group = testenv.Name(group)
	cfg.Topics = Topics{Clicks: tc.Clicks, Impressions: tc.Impressions, InstallsRaw: tc.InstallsRaw, EventsRaw: tc.EventsRaw,
		InstallsAttributed: tc.InstallsAttributed, EventsAttributed: tc.EventsAttributed, Rejected: tc.Rejected}
	return cfg, tc
}

// integrationConfigOn is integrationConfigCampaigns on the given brokers.
func integrationConfigOn(t *testing.T, brokers []string) (Config, string) {
	cfg, tc := brokerConfig(t, brokers, "attr")
	cfg.TransactionTimeout = 10 * time.Second
	cfg.SessionTimeout = 6 * time.Second
	cfg.MaxPollRecords = 100
	// The joins' log is shown when the test fails (or always with
	// JOIN_TEST_LOG set).
	var logs syncBuffer
	var w io.Writer = &logs
	if os.Getenv("JOIN_TEST_LOG") != "" {
		w = os.Stderr
	}
	cfg.Logger = slog.New(slog.NewTextHandler(w, nil))
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("joins log:\n%s", logs.String())
		}
	})
	return cfg, tc.Campaigns
}

func checkAgainstOracle(t *testing.T, cfg Config, ws ...workload) {
	t.Helper()
	wantI, wantE := expected(t, cfg, ws...)
	compareOutcomes(t, "install", installOutcomes(t, testenv.ReadAll(t, cfg.Kafka.Brokers(), cfg.Topics.InstallsAttributed)), wantI)
	compareOutcomes(t, "event", eventOutcomes(t, testenv.ReadAll(t, cfg.Kafka.Brokers(), cfg.Topics.EventsAttributed)), wantE)
}

// TestWipedStateIntegration: clicks are stored, the instance stops, its
// state directory is deleted, and a new instance (restoring every stage
// from its changelog) attributes installs to those clicks.
func TestWipedStateIntegration(t *testing.T) {
	cfg := integrationConfig(t)
	w := makeWorkload(cfg.Topics, 0, 500, time.Now().Add(-2*time.Hour).Truncate(time.Second))
	j, _ := New(cfg)

	stop := runJoiner(t, cfg)
	produce(t, cfg.Kafka.Brokers(), w.touches)
	waitRouted(t, cfg.Kafka.Brokers(), j, w)
	// Stage B and C store what A routed; give them their transactions.
	waitCaughtUp(t, cfg, j, StageDevice, StageIPUA)
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if err := os.RemoveAll(cfg.StateDir); err != nil {
		t.Fatal(err)
	}

	stop = runJoiner(t, cfg)
	produce(t, cfg.Kafka.Brokers(), w.installs)
	waitCount(t, cfg.Kafka.Brokers(), cfg.Topics.InstallsAttributed, w.uniqueInstalls, 2*time.Minute)
	waitCaughtUp(t, cfg, j, StageEvents) // see waitCaughtUp
	produce(t, cfg.Kafka.Brokers(), w.events)
	waitCount(t, cfg.Kafka.Brokers(), cfg.Topics.EventsAttributed, w.uniqueEvents, 2*time.Minute)
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	checkMix(t, installOutcomes(t, testenv.ReadAll(t, cfg.Kafka.Brokers(), cfg.Topics.InstallsAttributed)), 500)
	checkAgainstOracle(t, cfg, w)
}

// TestTwoInstancesIntegration: a second instance joins while installs
// flow (every stage's group splits its partitions), then the first leaves;
// the outputs equal one instance's, each exactly once.
func TestTwoInstancesIntegration(t *testing.T) {
	cfg := integrationConfig(t)
	start := time.Now().Add(-2 * time.Hour).Truncate(time.Second)
	w := makeWorkload(cfg.Topics, 0, 1500, start)
	j, _ := New(cfg)
	cfgA, cfgB := cfg, cfg
	cfgA.StateDir, cfgB.StateDir = filepath.Join(cfg.StateDir, "a"), filepath.Join(cfg.StateDir, "b")

	stopA := runJoiner(t, cfgA)
	produce(t, cfg.Kafka.Brokers(), w.touches)
	waitRouted(t, cfg.Kafka.Brokers(), j, w)
	waitCaughtUp(t, cfg, j, StageDevice, StageIPUA)

	third := len(w.installs) / 3
	produce(t, cfg.Kafka.Brokers(), w.installs[:third])
	stopB := runJoiner(t, cfgB)
	produce(t, cfg.Kafka.Brokers(), w.installs[third:2*third])
	time.Sleep(3 * time.Second) // let the groups rebalance with both members
	for _, st := range Stages {
		if ents, err := os.ReadDir(filepath.Join(cfgB.StateDir, st)); err != nil || len(ents) == 0 {
			t.Errorf("instance B got no partition of stage %s (%v)", st, err)
		}
	}
	if err := stopA(); err != nil {
		t.Fatalf("instance A: %v", err)
	}
	produce(t, cfg.Kafka.Brokers(), w.installs[2*third:])
	waitCount(t, cfg.Kafka.Brokers(), cfg.Topics.InstallsAttributed, w.uniqueInstalls, 3*time.Minute)
	waitCaughtUp(t, cfg, j, StageEvents) // see waitCaughtUp
	produce(t, cfg.Kafka.Brokers(), w.events)
	waitCount(t, cfg.Kafka.Brokers(), cfg.Topics.EventsAttributed, w.uniqueEvents, 2*time.Minute)
	if err := stopB(); err != nil {
		t.Fatalf("instance B: %v", err)
	}
	checkAgainstOracle(t, cfg, w)
}

// TestSIGKILLIntegration runs the attribution binary and kills it with
// SIGKILL while installs and events flow, four times, then lets a last
// instance finish: a read_committed consumer sees every output exactly
// once and equal to the in-process engine's, and a read_uncommitted one
// shows that killed transactions had written outputs (so kills did land
// mid-transaction).
func TestSIGKILLIntegration(t *testing.T) {
	cfg, campaigns := integrationConfigCampaigns(t)
	tc := cfg.Topics
	bin := buildAttribution(t)
	publishCampaign(t, cfg.Kafka.Brokers(), campaigns)
	// The workload's times are two hours old, so ticks (the wall clock)
	// would make installs still on their way late for the events sent
	// with them; live traffic never has such times (the chaos test runs
	// with ticks).
	conf := serviceConfig(t, cfg, campaigns, `join: {transaction_timeout: 10s, session_timeout: 6s, max_poll_records: 50, tick_interval: 0s}
telemetry: {addr: "", log_format: text, log_level: info}`)
	var logs syncBuffer // written by the running process's copier, read here
	startBin := func() *serviceProcess { return startService(t, bin, conf, &logs) }
	defer func() {
		if t.Failed() || os.Getenv("JOIN_TEST_LOG") != "" {
			t.Logf("service logs:\n%s", logs.String())
		}
	}()

	w := makeWorkload(tc, 0, 3000, time.Now().Add(-2*time.Hour).Truncate(time.Second))
	j, _ := New(cfg)
	cmd := startBin()
	produce(t, cfg.Kafka.Brokers(), w.touches)
	waitRouted(t, cfg.Kafka.Brokers(), j, w)
	waitCaughtUp(t, cfg, j, StageDevice, StageIPUA)

	// A read_uncommitted consumer sees outputs as soon as they are
	// produced, before their transaction commits: killing right then lands
	// inside a transaction.
	watch, err := kgo.NewClient(kgo.SeedBrokers(cfg.Kafka.Brokers()...), kgo.ConsumeTopics(tc.InstallsAttributed),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchIsolationLevel(kgo.ReadUncommitted()))
	if err != nil {
		t.Fatal(err)
	}
	defer watch.Close()
	seen := 0
	waitOutput := func(more int) {
		ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
		defer cancel()
		for target := seen + more; seen < target; {
			fs := watch.PollFetches(ctx)
			if ctx.Err() != nil {
				t.Fatalf("no new outputs within 2m (%d seen)", seen)
			}
			seen += fs.NumRecords()
		}
	}
	chunk := len(w.installs) / 4
	for i := range 4 {
		restarted, base := time.Now(), seen
		if i > 0 {
			cmd = startBin()
		}
		produce(t, cfg.Kafka.Brokers(), w.installs[i*chunk:min((i+1)*chunk, len(w.installs))])
		if i == 3 {
			produce(t, cfg.Kafka.Brokers(), w.installs[4*chunk:])
			produce(t, cfg.Kafka.Brokers(), w.events[:len(w.events)/2])
		}
		waitOutput(1)
		if i > 0 {
			// The restarted instance fences its predecessor's open
			// transactions (same transactional ids) instead of waiting
			// out the transaction timeout (10 s here).
			t.Logf("restart %d: first output %v after the restart", i, time.Since(restarted).Round(100*time.Millisecond))
		}
		waitOutput(max(0, base+20+40*i-seen))
		_ = cmd.cmd.Process.Signal(syscall.SIGKILL)
		<-cmd.exited
	}
	cmd = startBin()
	defer func() { _ = cmd.cmd.Process.Kill(); <-cmd.exited }()
	produce(t, cfg.Kafka.Brokers(), w.events[len(w.events)/2:])
	waitCount(t, cfg.Kafka.Brokers(), tc.InstallsAttributed, w.uniqueInstalls, 3*time.Minute)
	waitCount(t, cfg.Kafka.Brokers(), tc.EventsAttributed, w.uniqueEvents, 3*time.Minute)
	checkAgainstOracle(t, cfg, w)

	committed := len(testenv.ReadAll(t, cfg.Kafka.Brokers(), tc.InstallsAttributed))
	uncommitted := readUncommitted(t, cfg.Kafka.Brokers(), tc.InstallsAttributed)
	t.Logf("installs.attributed: %d committed records, %d in the log including aborted transactions", committed, uncommitted)
	if uncommitted <= committed {
		t.Errorf("no aborted output in the log (%d records, %d committed): no kill landed inside a transaction", uncommitted, committed)
	}
	if !strings.Contains(logs.String(), "restored") {
		t.Errorf("no restore logged")
	}
}

// TestBacklogIntegration is backlogScenario on the real broker.
func TestBacklogIntegration(t *testing.T) {
	backlogScenario(t, integrationConfig(t))
}

// syncBuffer is a bytes.Buffer safe for one writer and concurrent readers.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// publishCampaign registers the workload's campaign (cmp-1, CPI 1.50 USD)
// on the campaigns topic the service follows.
func publishCampaign(t *testing.T, brokers []string, topic string) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	if err := campaigntopic.Publish(t.Context(), cl, topic, []event.Campaign{{ID: "cmp-1", AppID: "app", MediaSource: "net",
		CostModel: "CPI", Bid: money.FromMicros(1_500_000), Currency: "USD"}}); err != nil {
		t.Fatal(err)
	}
}
