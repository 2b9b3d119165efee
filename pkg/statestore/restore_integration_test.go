//go:build integration

package statestore

import (
	"context"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/adtrack/postback/pkg/testenv"
)

// compactedTopic creates a changelog topic as a stage would (compacted, two
// partitions) and deletes it when the test ends. Small segments and a low
// dirty ratio let the cleaner run while the test is going on.
func compactedTopic(t *testing.T, brokers []string) string {
	t.Helper()
	name := testenv.TopicWithConfigs(t, brokers, 2, map[string]string{
		"cleanup.policy":            "compact",
		"segment.ms":                "1000",
		"min.cleanable.dirty.ratio": "0.01",
	})
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	// The configs must have taken: a non-compacted changelog would lose state.
	cfgs, err := adm.DescribeTopicConfigs(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	rc, err := cfgs.On(name, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range rc.Configs {
		if c.Key == "cleanup.policy" && c.MaybeValue() != "compact" {
			t.Fatalf("cleanup.policy = %q", c.MaybeValue())
		}
	}
	return name
}

// TestRestoreRealBroker is the restore-after-wipe scenario on the real
// broker: transactional changelog writes with one aborted transaction,
// restored from an empty directory, then incrementally.
func TestRestoreRealBroker(t *testing.T) {
	brokers := testenv.Kafka(t)
	topic := compactedTopic(t, brokers)
	restoreScenario(t, []kgo.Opt{kgo.SeedBrokers(brokers...)}, topic, true)
}

// TestRestoreWaitsForOpenTransactionRealBroker: a changelog transaction
// still open when Restore starts is waited for, on the real broker.
func TestRestoreWaitsForOpenTransactionRealBroker(t *testing.T) {
	brokers := testenv.Kafka(t)
	topic := compactedTopic(t, brokers)
	lateCommitScenario(t, []kgo.Opt{kgo.SeedBrokers(brokers...)}, topic)
}
