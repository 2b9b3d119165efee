//go:build integration

package testenv

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// TestTransactionsReadCommitted proves the broker the project starts supports
// what attribution relies on: transactional producers whose aborted records
// a read_committed consumer never sees, and whose committed ones it sees once.
func TestTransactionsReadCommitted(t *testing.T) {
	brokers := Kafka(t)
	topic := Topic(t, brokers, 3)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	prod, err := kgo.NewClient(
		kgo.SeedBrokers(brokers...),
		kgo.TransactionalID(Name("txn")),
		kgo.DefaultProduceTopic(topic),
		kgo.RequiredAcks(kgo.AllISRAcks()),
	)
	if err != nil {
		t.Fatal(err)
	}
	defer prod.Close()

	produceTxn := func(prefix string, n int, commit bool) {
		t.Helper()
		if err := prod.BeginTransaction(); err != nil {
			t.Fatalf("begin: %v", err)
		}
		for i := 0; i < n; i++ {
			r := &kgo.Record{Key: []byte(fmt.Sprintf("k%d", i)), Value: []byte(fmt.Sprintf("%s-%d", prefix, i))}
			if err := prod.ProduceSync(ctx, r).FirstErr(); err != nil {
				t.Fatalf("produce %s: %v", prefix, err)
			}
		}
		if err := prod.EndTransaction(ctx, kgo.TransactionEndTry(commit)); err != nil {
			t.Fatalf("end %s: %v", prefix, err)
		}
	}
	produceTxn("committed1", 50, true)
	produceTxn("aborted", 50, false)
	produceTxn("committed2", 50, true)

	cons, err := kgo.NewClient(
		kgo.SeedBrokers(brokers...),
		kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
	)
	if err != nil {
		t.Fatal(err)
	}
	defer cons.Close()
	seen := map[string]int{}
	total := 0
	for total < 100 {
		fs := cons.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			t.Fatalf("consumed %d of 100 committed records before timeout", total)
		}
		fs.EachError(func(topic string, p int32, err error) {
			if !errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("fetch %s/%d: %v", topic, p, err)
			}
		})
		fs.EachRecord(func(r *kgo.Record) {
			seen[string(r.Value)]++
			total++
		})
	}
	// Nothing more may arrive: poll briefly for stragglers (aborted data).
	short, cancelShort := context.WithTimeout(ctx, 2*time.Second)
	defer cancelShort()
	cons.PollFetches(short).EachRecord(func(r *kgo.Record) { seen[string(r.Value)]++; total++ })

	if total != 100 {
		t.Fatalf("read_committed consumer saw %d records, want 100", total)
	}
	for i := 0; i < 50; i++ {
		for _, p := range []string{"committed1", "committed2"} {
			if n := seen[fmt.Sprintf("%s-%d", p, i)]; n != 1 {
				t.Errorf("%s-%d seen %d times, want 1", p, i, n)
			}
		}
		if n := seen[fmt.Sprintf("aborted-%d", i)]; n != 0 {
			t.Errorf("aborted-%d visible to read_committed consumer", i)
		}
	}
}
