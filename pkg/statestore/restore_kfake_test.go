package statestore

import (
	"fmt"
	"testing"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
)

func kfakeCluster(t *testing.T, topic string) []kgo.Opt {
	t.Helper()
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(2, topic))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return []kgo.Opt{kgo.SeedBrokers(c.ListenAddrs()...)}
}

func TestRestoreKfake(t *testing.T) {
	const topic = "attribution.a-changelog.v1"
	restoreScenario(t, kfakeCluster(t, topic), topic, false)
}

func TestRestoreKfakeTransactional(t *testing.T) {
	const topic = "attribution.a-changelog.v1"
	restoreScenario(t, kfakeCluster(t, topic), topic, true)
}

func TestRestoreEmptyChangelog(t *testing.T) {
	const topic = "empty-changelog"
	opts := kfakeCluster(t, topic)
	s, _ := openTemp(t)
	n, err := Restore(t.Context(), s, topic, 0, opts...)
	if err != nil || n != 0 {
		t.Fatalf("restore of an empty changelog: %d, %v", n, err)
	}
	if _, ok, _ := s.ChangelogOffset(); ok {
		t.Fatal("offset recorded for an empty changelog")
	}
	if _, err := Restore(t.Context(), s, "no-such-topic", 0, opts...); err == nil {
		t.Fatal("restore from a missing topic succeeded")
	}
}

// TestRestoreLargeChangelog crosses restoreBatchRecords, so the restore
// commits several Pebble batches and each carries its progress.
func TestRestoreLargeChangelog(t *testing.T) {
	const topic = "large-changelog"
	opts := kfakeCluster(t, topic)
	src, _ := openTemp(t)
	w := newChangelogWriter(t, opts, topic, 0, false)
	for i := 0; i < 25; i++ {
		b := src.NewBatch()
		for j := 0; j < 1000; j++ {
			b.Set([]byte(fmt.Sprintf("k%02d-%04d", i, j)), []byte("value"))
		}
		w.apply(t.Context(), b, true)
	}
	dst, _ := openTemp(t)
	n, err := Restore(t.Context(), dst, topic, 0, opts...)
	if err != nil || n != 25_000 {
		t.Fatalf("restored %d records (%v), want 25000", n, err)
	}
	if got, want := len(dump(t, dst)), len(dump(t, src)); got != want {
		t.Fatalf("restored %d keys, want %d", got, want)
	}
	srcOff, _, _ := src.ChangelogOffset()
	if off, _, _ := dst.ChangelogOffset(); off != srcOff {
		t.Fatalf("restored offset %d, want %d", off, srcOff)
	}
}

// TestRestoreWaitsForOpenTransaction: see lateCommitScenario.
func TestRestoreWaitsForOpenTransaction(t *testing.T) {
	const topic = "late-commit-changelog"
	lateCommitScenario(t, kfakeCluster(t, topic), topic)
}
