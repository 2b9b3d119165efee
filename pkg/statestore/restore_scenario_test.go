package statestore

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// changelogWriter applies batches the way a stage does: produce the batch's
// records in a transaction (or plainly), commit it, then commit the batch
// with the offset of its last record.
type changelogWriter struct {
	t         testing.TB
	prod      *kgo.Client
	txn       bool
	topic     string
	partition int32
	produced  int // committed changelog records
}

func newChangelogWriter(t testing.TB, clientOpts []kgo.Opt, topic string, partition int32, txn bool) *changelogWriter {
	t.Helper()
	opts := append(append([]kgo.Opt{}, clientOpts...),
		kgo.RecordPartitioner(Partitioner(func(tp string) bool { return tp == topic }, kgo.StickyKeyPartitioner(nil))),
		kgo.RequiredAcks(kgo.AllISRAcks()),
	)
	if txn {
		opts = append(opts, kgo.TransactionalID(fmt.Sprintf("statestore-test-%d", time.Now().UnixNano())))
	}
	prod, err := kgo.NewClient(opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(prod.Close)
	return &changelogWriter{t: t, prod: prod, txn: txn, topic: topic, partition: partition}
}

// apply produces b's records and commits (or aborts) both sides.
func (w *changelogWriter) apply(ctx context.Context, b *Batch, commit bool) {
	w.t.Helper()
	recs := b.Records(w.topic, w.partition)
	if w.txn {
		if err := w.prod.BeginTransaction(); err != nil {
			w.t.Fatal(err)
		}
	} else if !commit {
		w.t.Fatal("cannot abort without a transaction")
	}
	if err := w.prod.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		w.t.Fatalf("produce changelog: %v", err)
	}
	for _, r := range recs {
		if r.Partition != w.partition {
			w.t.Fatalf("changelog record went to partition %d, want %d", r.Partition, w.partition)
		}
	}
	if w.txn {
		if err := w.prod.EndTransaction(ctx, kgo.TransactionEndTry(commit)); err != nil {
			w.t.Fatalf("end transaction: %v", err)
		}
	}
	if !commit {
		b.Close()
		return
	}
	w.produced += len(recs)
	b.SetChangelogOffset(LastOffset(recs))
	if err := b.Commit(); err != nil {
		w.t.Fatal(err)
	}
}

// fillBatch writes a mix of sets, overwrites, deletes, empty values and
// an expiry, as a stage would: batch i of a run named tag.
func fillBatch(s *Store, tag string, i int, base time.Time) *Batch {
	b := s.NewBatch()
	for j := 0; j < 20; j++ {
		id := fmt.Sprintf("%s-%03d-%02d", tag, i, j)
		tm := base.Add(time.Duration(i*20+j) * time.Minute)
		b.Set([]byte("c:"+id), []byte("click "+id))
		b.Set(TimeKey([]byte("x:"), tm, id), []byte("c:"+id))
	}
	b.Set([]byte(fmt.Sprintf("n:%s-%d", tag, i%3)), []byte(fmt.Sprint(i))) // overwritten across batches
	b.Set([]byte(fmt.Sprintf("e:%s-%d", tag, i)), nil)                     // empty value, not a tombstone
	if i > 0 {
		b.Delete([]byte(fmt.Sprintf("c:%s-%03d-%02d", tag, i-1, 0)))
	}
	if i%4 == 3 {
		ExpireIndex(b, []byte("x:"), base.Add(time.Duration(i*20-30)*time.Minute))
	}
	return b
}

// restoreScenario: write batches (committed, and one aborted when the
// writer is transactional), wipe a copy, restore it from scratch, then
// write more and restore incrementally.
func restoreScenario(t *testing.T, clientOpts []kgo.Opt, topic string, txn bool) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	const partition = 1
	base := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)

	src, _ := openTemp(t)
	w := newChangelogWriter(t, clientOpts, topic, partition, txn)
	// Another store's changelog on partition 0 must not leak into ours.
	other, _ := openTemp(t)
	wo := newChangelogWriter(t, clientOpts, topic, 0, false)
	for i := 0; i < 3; i++ {
		wo.apply(ctx, fillBatch(other, "other", i, base), true)
	}

	for i := 0; i < 12; i++ {
		w.apply(ctx, fillBatch(src, "a", i, base), true)
		if txn && i == 5 {
			// Aborted: neither the source store nor a restore may see it.
			b := src.NewBatch()
			b.Set([]byte("c:aborted"), []byte("must not be restored"))
			b.Delete([]byte("n:a-0"))
			w.apply(ctx, b, false)
		}
	}
	want := dump(t, src)
	if len(want) == 0 {
		t.Fatal("source store is empty")
	}

	dir := filepath.Join(t.TempDir(), "restored")
	dst, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	// Wipe: the restored store starts from an empty directory.
	if err := dst.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	dst, err = Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer dst.Close()
	applied, err := Restore(ctx, dst, topic, partition, clientOpts...)
	if err != nil {
		t.Fatalf("restore: %v", err)
	}
	if applied != w.produced {
		t.Errorf("restore applied %d records, want the %d committed", applied, w.produced)
	}
	if got := dump(t, dst); !reflect.DeepEqual(got, want) {
		t.Fatalf("restored state differs: %d keys, want %d\nfirst got %v\nfirst want %v", len(got), len(want), head(got), head(want))
	}
	if _, ok := mustGet(t, dst, "c:aborted"); ok {
		t.Fatal("aborted write restored")
	}
	srcOff, _, _ := src.ChangelogOffset()
	dstOff, ok, _ := dst.ChangelogOffset()
	if !ok || dstOff < srcOff {
		t.Fatalf("restored offset %d (%v), source reflects %d", dstOff, ok, srcOff)
	}

	// Incremental: only the new records are applied.
	before := w.produced
	for i := 12; i < 16; i++ {
		w.apply(ctx, fillBatch(src, "a", i, base), true)
	}
	applied, err = Restore(ctx, dst, topic, partition, clientOpts...)
	if err != nil {
		t.Fatalf("incremental restore: %v", err)
	}
	if applied != w.produced-before {
		t.Errorf("incremental restore applied %d, want %d", applied, w.produced-before)
	}
	if got, want := dump(t, dst), dump(t, src); !reflect.DeepEqual(got, want) {
		t.Fatalf("incrementally restored state differs: %d keys, want %d", len(got), len(want))
	}
	// Up to date: nothing to do.
	if applied, err = Restore(ctx, dst, topic, partition, clientOpts...); err != nil || applied != 0 {
		t.Fatalf("restore of an up-to-date store applied %d: %v", applied, err)
	}
	// A store ahead of the changelog (topic recreated) is refused.
	if err := dst.SetChangelogOffset(1 << 40); err != nil {
		t.Fatal(err)
	}
	if _, err := Restore(ctx, dst, topic, partition, clientOpts...); err == nil {
		t.Fatal("restore of a store ahead of its changelog succeeded")
	}
}

func head(kvs []kv) []kv {
	if len(kvs) > 3 {
		return kvs[:3]
	}
	return kvs
}

// lateCommitScenario: a transaction open on the changelog when Restore
// starts (a previous owner's, committing late) must be waited for and its
// records restored, not cut off at the last stable offset.
func lateCommitScenario(t *testing.T, opts []kgo.Opt, topic string) {
	ctx := t.Context()
	src, _ := openTemp(t)
	w := newChangelogWriter(t, opts, topic, 0, true)
	b := src.NewBatch()
	b.Set([]byte("early"), []byte("1"))
	w.apply(ctx, b, true)

	// The late transaction: produced, not yet committed.
	b = src.NewBatch()
	b.Set([]byte("late"), []byte("2"))
	recs := b.Records(topic, 0)
	if err := w.prod.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	if err := w.prod.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	type result struct {
		n   int
		err error
	}
	dst, _ := openTemp(t)
	done := make(chan result, 1)
	go func() {
		n, err := Restore(ctx, dst, topic, 0, opts...)
		done <- result{n, err}
	}()
	select {
	case r := <-done:
		t.Fatalf("restore returned (%d, %v) while a transaction was open", r.n, r.err)
	case <-time.After(1500 * time.Millisecond):
	}
	if err := w.prod.EndTransaction(ctx, kgo.TryCommit); err != nil {
		t.Fatal(err)
	}
	b.SetChangelogOffset(LastOffset(recs))
	commit(t, b)
	r := <-done
	if r.err != nil || r.n != 2 {
		t.Fatalf("restore = (%d, %v), want both records", r.n, r.err)
	}
	if v, ok := mustGet(t, dst, "late"); !ok || v != "2" {
		t.Fatal("late-committed write missing after restore")
	}
}
