package stage

import (
	"context"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/kversion"

	"github.com/adtrack/postback/pkg/kafkaconn"
	"github.com/adtrack/postback/pkg/statestore"
	"github.com/adtrack/postback/pkg/testenv"
)

// faultCase breaks one Kafka call while the counter stage runs.
type faultCase struct {
	name string
	opts []kfake.Opt
	// inject starts the fault and returns how to tell it happened.
	inject func(t *testing.T, c *kfake.Cluster) (hits func() int)
	// slow, if set, makes the processor block once (for timeouts).
	slow time.Duration
	// early injects the fault before the stage starts.
	early bool
	// outcome is the transaction outcome the fault must produce at
	// least once ("failed": unknown outcome, "aborted").
	outcome string
}

func fault(f kfake.Fault) func(t *testing.T, c *kfake.Cluster) func() int {
	return func(t *testing.T, c *kfake.Cluster) func() int {
		h := c.Fault(f)
		t.Cleanup(h.Remove)
		return h.Hits
	}
}

// faultTxnID is the stage's transactional id in the fault tests; faults
// name it so the test's own input producer is not hit.
const faultTxnID = "test.count.instance-a"

var faultCases = []faultCase{
	{
		// The broker commits but the answer never arrives: the outcome
		// is unknown to the stage. It must not exit, must not apply the
		// state itself, and must find it in the changelog.
		name:    "end transaction outcome unknown",
		inject:  fault(kfake.Fault{Keys: []kmsg.Key{kmsg.EndTxn}, Err: kerr.RequestTimedOut, Count: 3, TxnID: faultTxnID}),
		outcome: "failed",
	},
	{
		name:    "producer fenced at end transaction",
		inject:  fault(kfake.Fault{Keys: []kmsg.Key{kmsg.EndTxn}, Err: kerr.ProducerFenced, Count: 1, TxnID: faultTxnID}),
		outcome: "failed",
	},
	{
		name:    "offset commit refused",
		inject:  fault(kfake.Fault{Keys: []kmsg.Key{kmsg.TxnOffsetCommit}, Err: kerr.CoordinatorNotAvailable, Count: 12, Group: "test.count"}),
		outcome: "aborted",
	},
	{
		name: "produce fails",
		inject: fault(kfake.Fault{Keys: []kmsg.Key{kmsg.Produce}, Err: kerr.InvalidTxnState, Count: 1, When: func(r kmsg.Request) bool {
			pr, ok := r.(*kmsg.ProduceRequest)
			return ok && pr.TransactionID != nil && *pr.TransactionID == faultTxnID
		}}),
		outcome: "aborted",
	},
	{
		// Before KIP-890 the producer adds partitions itself.
		name:    "add partitions to transaction fails",
		opts:    []kfake.Opt{kfake.MaxVersions(kversion.V3_8_0())},
		inject:  fault(kfake.Fault{Keys: []kmsg.Key{kmsg.AddPartitionsToTxn}, Err: kerr.InvalidTxnState, Count: 1, TxnID: faultTxnID}),
		outcome: "aborted",
	},
	{
		// Nothing to end yet: the session fails to start and retries.
		name:   "transaction coordinator unavailable at start",
		early:  true,
		inject: fault(kfake.Fault{Keys: []kmsg.Key{kmsg.InitProducerID}, Err: kerr.CoordinatorNotAvailable, Count: 12, TxnID: faultTxnID}),
	},
	{
		name: "coordinators move",
		opts: []kfake.Opt{kfake.NumBrokers(3)},
		inject: func(t *testing.T, c *kfake.Cluster) func() int {
			c.RehashCoordinators()
			return func() int { return 1 }
		},
	},
	{
		// The broker aborts a transaction left open past its timeout.
		name:    "transaction timeout",
		slow:    6 * time.Second,
		inject:  func(*testing.T, *kfake.Cluster) func() int { return func() int { return 1 } },
		outcome: "aborted",
	},
}

// TestFaultsKfake: for every way a Kafka call of the transaction can fail,
// the stage rides it out without returning, every key's outputs are still
// exactly 1..n, and each partition's local state equals a store restored
// afresh from the changelog (local state is never ahead of, or apart from,
// what Kafka committed).
func TestFaultsKfake(t *testing.T) {
	for _, fc := range faultCases {
		t.Run(fc.name, func(t *testing.T) {
			t.Parallel()
			faultScenario(t, fc)
		})
	}
}

func faultScenario(t *testing.T, fc faultCase) {
	const in, out, keys = "in", "out", 11
	c, err := kfake.NewCluster(append([]kfake.Opt{kfake.NumBrokers(1), kfake.SeedTopics(3, in, out, "test.count-changelog")}, fc.opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	reg := prometheus.NewRegistry()
	cfg := Config{
		// Give up on a failing request quickly, so the test does not
		// wait out kgo's default retries.
		Name: "count", Kafka: kafkaconn.Plain(c.ListenAddrs(), kgo.RequestRetries(3), kgo.RetryTimeout(5*time.Second),
			kgo.RetryBackoffFn(func(int) time.Duration { return 50 * time.Millisecond })),
		Group: "test", Inputs: []string{in},
		StateDir: t.TempDir(), TransactionalID: faultTxnID,
		TransactionTimeout: 4 * time.Second, SessionTimeout: 6 * time.Second, MaxPollRecords: 20,
		Metrics: NewMetrics(reg, "test"), Logger: testLogger(t),
	}
	var slowOnce atomic.Bool
	proc := ProcessorFunc(func(ctx context.Context, rec *kgo.Record, st *statestore.Batch, emit func(*kgo.Record)) error {
		if fc.slow > 0 && rec.Offset > 60 && slowOnce.CompareAndSwap(false, true) {
			time.Sleep(fc.slow)
		}
		return counter{out: out}.Process(ctx, rec, st, emit)
	})
	counts := map[string]int{}
	var hits func() int
	if fc.early {
		hits = fc.inject(t, c)
	}
	stop := runStage(t, cfg, proc)
	produceInputs(t, cfg.Kafka.Brokers(), in, 200, keys, counts)
	waitOutputs(t, cfg.Kafka.Brokers(), out, 100, time.Minute)
	if !fc.early {
		hits = fc.inject(t, c)
	}
	for range 8 {
		produceInputs(t, cfg.Kafka.Brokers(), in, 50, keys, counts)
		time.Sleep(50 * time.Millisecond)
	}
	waitOutputs(t, cfg.Kafka.Brokers(), out, 600, 2*time.Minute)
	if err := stop(); err != nil {
		t.Fatalf("Run returned %v; it must ride the fault out", err)
	}
	if hits() == 0 {
		t.Fatal("the fault was never hit: the case tests nothing")
	}
	checkCounts(t, testenv.ReadAll(t, cfg.Kafka.Brokers(), out), counts)
	checkStateMatchesChangelog(t, cfg, 3)
	if fc.outcome != "" {
		n := 0.0
		mfs, _ := reg.Gather()
		for _, mf := range mfs {
			if mf.GetName() != "test_transactions_total" {
				continue
			}
			for _, m := range mf.GetMetric() {
				if labelOf(m, "outcome") == fc.outcome {
					n += m.GetCounter().GetValue()
				}
			}
		}
		if n == 0 {
			t.Errorf("no transaction counted with outcome %q: %v", fc.outcome, counted(reg))
		}
	}
}

func labelOf(m *dto.Metric, name string) string {
	for _, l := range m.GetLabel() {
		if l.GetName() == name {
			return l.GetValue()
		}
	}
	return ""
}

// checkStateMatchesChangelog compares every partition's kept store with
// one restored afresh from the changelog.
func checkStateMatchesChangelog(t testing.TB, cfg Config, partitions int) {
	t.Helper()
	changelog := cfg.Group + "." + cfg.Name + "-changelog"
	for p := range partitions {
		dir := filepath.Join(cfg.StateDir, cfg.Name, strconv.Itoa(p))
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		if err := statestore.Verify(ctx, dir, changelog, int32(p), kgo.SeedBrokers(cfg.Kafka.Brokers()...)); err != nil {
			t.Errorf("partition %d: local state differs from its changelog: %v", p, err)
		}
		cancel()
	}
}

// counted lists the counters of reg by labels, for failure messages.
func counted(reg *prometheus.Registry) []string {
	var out []string
	mfs, _ := reg.Gather()
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			if strings.HasSuffix(mf.GetName(), "_total") {
				out = append(out, fmt.Sprintf("%s{outcome=%s,reason=%s}=%v", mf.GetName(), labelOf(m, "outcome"), labelOf(m, "reason"), m.GetCounter().GetValue()))
			}
		}
	}
	return out
}
