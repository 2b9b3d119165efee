package stage

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/adtrack/postback/pkg/kafkaconn"
	"github.com/adtrack/postback/pkg/statestore"
	"github.com/adtrack/postback/pkg/testenv"
)

func testLogger(t testing.TB) *slog.Logger {
	if os.Getenv("STAGE_TEST_LOG") == "" {
		return nil
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: testLogLevel()}))
}

// countsScenario runs the counter stage over inputs produced in chunks
// while it runs (so there are many transactions), stops it, wipes its state
// directory, produces more, and runs it again: every key's outputs must be
// 1..n exactly once, which the second run can only produce from state
// restored from the changelog.
func countsScenario(t *testing.T, cfg Config, out string) {
	const keys, chunks, chunk, more = 17, 10, 60, 400
	brokers, in := cfg.Kafka.Brokers(), cfg.Inputs[0]
	counts := map[string]int{}

	stop := runStage(t, cfg, counter{out: out})
	for range chunks {
		produceInputs(t, brokers, in, chunk, keys, counts)
		time.Sleep(20 * time.Millisecond)
	}
	n := chunks * chunk
	waitOutputs(t, brokers, out, n, 2*time.Minute)
	if err := stop(); err != nil {
		t.Fatalf("first run: %v", err)
	}
	checkCounts(t, testenv.ReadAll(t, brokers, out), counts)

	if err := os.RemoveAll(filepath.Join(cfg.StateDir, cfg.Name)); err != nil {
		t.Fatal(err)
	}
	produceInputs(t, brokers, in, more, keys, counts)
	stop = runStage(t, cfg, counter{out: out})
	waitOutputs(t, brokers, out, n+more, 2*time.Minute)
	if err := stop(); err != nil {
		t.Fatalf("second run: %v", err)
	}
	checkCounts(t, testenv.ReadAll(t, brokers, out), counts)
	if _, err := os.Stat(filepath.Join(cfg.StateDir, cfg.Name, "0")); err != nil {
		t.Errorf("state dir of partition 0: %v", err)
	}
}

func TestCountsAndRestoreKfake(t *testing.T) {
	const in, out = "in", "out"
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(3, in, out, "test.count-changelog"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	countsScenario(t, Config{
		Name: "count", Kafka: kafkaconn.Plain(c.ListenAddrs()), Group: "test", Inputs: []string{in},
		StateDir: t.TempDir(), TransactionTimeout: 10 * time.Second, MaxPollRecords: 50,
		Logger: testLogger(t),
	}, out)
}

func TestRefusesUnequalPartitions(t *testing.T) {
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(3, "a"), kfake.SeedTopics(4, "b"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	err = Run(t.Context(), Config{Name: "x", Kafka: kafkaconn.Plain(c.ListenAddrs()), Group: "g", Inputs: []string{"a", "b"}, StateDir: t.TempDir()}, counter{out: "a"})
	if err == nil || !strings.Contains(err.Error(), "a has 3 partitions, b has 4") {
		t.Fatalf("got %v, want a co-partitioning error naming both topics", err)
	}
}

// twoInstancesScenario: instance A runs alone, B joins mid-stream (the
// group splits the partitions, open transactions abort), A leaves (B takes
// over its partitions with an empty disk of its own), and the outputs are
// still exactly 1..n per key.
func twoInstancesScenario(t *testing.T, cfg Config, out string) {
	const keys, chunk = 13, 50
	brokers, in := cfg.Kafka.Brokers(), cfg.Inputs[0]
	counts := map[string]int{}
	produced := 0
	feed := func(chunks int) {
		for range chunks {
			produceInputs(t, brokers, in, chunk, keys, counts)
			produced += chunk
			time.Sleep(20 * time.Millisecond)
		}
	}
	cfgA, cfgB := cfg, cfg
	cfgA.StateDir, cfgB.StateDir = filepath.Join(cfg.StateDir, "a"), filepath.Join(cfg.StateDir, "b")
	cfgA.TransactionalID, cfgB.TransactionalID = "", ""

	stopA := runStage(t, cfgA, counter{out: out, delay: time.Millisecond})
	feed(6)
	waitOutputs(t, brokers, out, 100, 2*time.Minute)
	stopB := runStage(t, cfgB, counter{out: out, delay: time.Millisecond})
	feed(6)
	waitOutputs(t, brokers, out, produced-100, 2*time.Minute)
	if err := stopA(); err != nil {
		t.Fatalf("instance A: %v", err)
	}
	feed(6)
	waitOutputs(t, brokers, out, produced, 3*time.Minute)
	if err := stopB(); err != nil {
		t.Fatalf("instance B: %v", err)
	}
	checkCounts(t, testenv.ReadAll(t, brokers, out), counts)
	if _, err := os.Stat(filepath.Join(cfgB.StateDir, cfg.Name)); err != nil {
		t.Errorf("instance B kept no state: %v", err)
	}
}

func TestTwoInstancesKfake(t *testing.T) {
	const in, out = "in", "out"
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(3, in, out, "test.count-changelog"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	twoInstancesScenario(t, Config{
		Name: "count", Kafka: kafkaconn.Plain(c.ListenAddrs()), Group: "test", Inputs: []string{in},
		StateDir: t.TempDir(), TransactionTimeout: 10 * time.Second, MaxPollRecords: 20,
		Logger: testLogger(t),
	}, out)
}

// TestProcessErrorAbortsKfake: an error from Process aborts the open
// transaction and ends Run with it; nothing of that transaction is visible,
// and a restarted stage continues exactly.
func TestProcessErrorAbortsKfake(t *testing.T) {
	const in, out = "in", "out"
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(3, in, out, "test.count-changelog"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	cfg := Config{
		Name: "count", Kafka: kafkaconn.Plain(c.ListenAddrs()), Group: "test", Inputs: []string{in},
		StateDir: t.TempDir(), TransactionTimeout: 10 * time.Second, MaxPollRecords: 20,
		Logger: testLogger(t),
	}
	counts := map[string]int{}
	produceInputs(t, cfg.Kafka.Brokers(), in, 300, 7, counts)
	boom := errors.New("boom")
	seen := 0
	failing := ProcessorFunc(func(ctx context.Context, rec *kgo.Record, st *statestore.Batch, emit func(*kgo.Record)) error {
		if seen++; seen == 150 {
			return boom
		}
		return counter{out: out}.Process(ctx, rec, st, emit)
	})
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	if err := Run(ctx, cfg, failing); !errors.Is(err, boom) {
		t.Fatalf("Run returned %v, want the processor's error", err)
	}
	partial := testenv.ReadAll(t, cfg.Kafka.Brokers(), out)
	if len(partial) >= 150 {
		t.Fatalf("%d outputs committed, want fewer than 150 (the failing transaction's must be aborted)", len(partial))
	}
	stop := runStage(t, cfg, counter{out: out})
	waitOutputs(t, cfg.Kafka.Brokers(), out, 300, time.Minute)
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	checkCounts(t, testenv.ReadAll(t, cfg.Kafka.Brokers(), out), counts)
}

// TestMergeByTime: records of several partitions come out in timestamp
// order, each partition's in offset order even where its timestamps go
// back, and ties keep the queues' order.
func TestMergeByTime(t *testing.T) {
	at := func(topic string, off int64, sec int) *kgo.Record {
		return &kgo.Record{Topic: topic, Offset: off, Timestamp: time.Unix(int64(sec), 0)}
	}
	installs := []*kgo.Record{at("i", 0, 5), at("i", 1, 9)}
	clicks := []*kgo.Record{at("c", 0, 1), at("c", 1, 7), at("c", 2, 6), at("c", 3, 9)}
	got := mergeByTime([][]*kgo.Record{installs, clicks})
	var order []string
	for _, r := range got {
		order = append(order, fmt.Sprintf("%s%d", r.Topic, r.Offset))
	}
	want := "[c0 i0 c1 c2 i1 c3]"
	if fmt.Sprint(order) != want {
		t.Fatalf("merged %v, want %s", order, want)
	}
}

// testLogLevel is STAGE_TEST_LOG_LEVEL (debug shows franz-go's lines), else info.
func testLogLevel() slog.Level {
	var l slog.Level
	if err := l.UnmarshalText([]byte(os.Getenv("STAGE_TEST_LOG_LEVEL"))); err != nil {
		return slog.LevelInfo
	}
	return l
}
