package statestore

import (
	"errors"
	"fmt"

	"github.com/cockroachdb/pebble"
	"github.com/twmb/franz-go/pkg/kgo"
)

// ErrBatchDone is returned by a batch used after Commit or Close.
var ErrBatchDone = errors.New("statestore: batch already committed or closed")

// Batch collects the writes of one transaction. Reads through the batch
// ([Batch.Get], [Batch.Scan]) see its own uncommitted writes; the Store does
// not see them until [Batch.Commit]. Write methods do not return errors so
// that processing code stays linear; the first error is kept and returned by
// Commit (and by Records' caller via [Batch.Err]).
type Batch struct {
	s      *Store
	pb     *pebble.Batch
	ops    []op
	last   map[string]int // key -> index in ops of its latest write
	off    int64
	hasOff bool
	err    error
	done   bool
	// stored reads the store for keys the batch has not written (Get):
	// one iterator for the batch, whose point seeks cost less than a
	// pebble Get each (that builds an iterator per table per call).
	stored *pebble.Iterator
}

// op is one changelog write: value nil is a tombstone. Only the latest op
// per key is live; earlier ones are superseded (dead) and not produced.
type op struct {
	key, value []byte
	dead       bool
}

// NewBatch starts a batch. Commit or Close it.
func (s *Store) NewBatch() *Batch {
	n := s.sizeHint.Load()
	return &Batch{s: s, pb: s.db.NewIndexedBatch(), ops: make([]op, 0, n), last: make(map[string]int, n)}
}

func (b *Batch) fail(err error) {
	if b.err == nil && err != nil {
		b.err = err
	}
}

func (b *Batch) record(key, value []byte) {
	if i, ok := b.last[string(key)]; ok {
		b.ops[i].dead = true
	}
	b.last[string(key)] = len(b.ops)
	b.ops = append(b.ops, op{key: key, value: value})
}

// Set writes key = value. Both are copied. A nil value is stored as an
// empty one: nil is the changelog's tombstone.
func (b *Batch) Set(key, value []byte) {
	if b.done {
		b.fail(ErrBatchDone)
		return
	}
	uk := userKey(key)
	v := append([]byte{}, value...)
	b.fail(b.pb.Set(uk, v, nil))
	b.record(uk[1:], v)
}

// Delete removes key (a tombstone in the changelog, whether or not the key
// existed: the batch does not read to find out, and a spare tombstone is
// harmless to compaction).
func (b *Batch) Delete(key []byte) {
	if b.done {
		b.fail(ErrBatchDone)
		return
	}
	uk := userKey(key)
	b.fail(b.pb.Delete(uk, nil))
	b.record(uk[1:], nil)
}

// DeleteRange removes every key in [start, end). Locally it is one Pebble
// range tombstone; for the changelog it scans the range (through the batch)
// and records one tombstone per key found, since Kafka has no range delete.
// It returns how many keys it removed.
func (b *Batch) DeleteRange(start, end []byte) int {
	if b.done {
		b.fail(ErrBatchDone)
		return 0
	}
	lo, hi := userKey(start), userKey(end)
	var keys [][]byte
	err := scanRange(b.pb, lo, hi, func(k, _ []byte) error {
		keys = append(keys, append([]byte{}, k...))
		return nil
	})
	if err != nil {
		b.fail(err)
		return 0
	}
	if len(keys) == 0 {
		return 0 // nothing to hide, and no range tombstone to compact later
	}
	b.fail(b.pb.DeleteRange(lo, hi, nil))
	for _, k := range keys {
		b.record(k, nil)
	}
	return len(keys)
}

// Get reads key through the batch: its own writes first, then the store.
// A key the batch has not written is read from the store directly: most
// lookups are of such keys, and reading through the indexed batch merges
// its skiplist in for nothing.
func (b *Batch) Get(key []byte) ([]byte, bool, error) {
	if b.done {
		return nil, false, ErrBatchDone
	}
	if _, written := b.last[string(key)]; !written {
		return b.getStored(userKey(key))
	}
	return get(b.pb, userKey(key))
}

// getStored reads an internal key from the store with the batch's
// iterator. The iterator sees the store as of the batch's first such read:
// a store has one open batch at a time (package documentation, Concurrency).
// The seek is a point lookup (the comparer's prefix is the whole key), so
// the tables' bloom filters answer for keys they do not hold.
func (b *Batch) getStored(key []byte) ([]byte, bool, error) {
	if b.stored == nil {
		it, err := b.s.db.NewIter(nil)
		if err != nil {
			return nil, false, fmt.Errorf("statestore: get: %w", err)
		}
		b.stored = it
	}
	if !b.stored.SeekPrefixGE(key) {
		if err := b.stored.Error(); err != nil {
			return nil, false, fmt.Errorf("statestore: get: %w", err)
		}
		return nil, false, nil
	}
	v, err := b.stored.ValueAndErr()
	if err != nil {
		return nil, false, fmt.Errorf("statestore: get: %w", err)
	}
	return append([]byte{}, v...), true, nil
}

// Scan is [Store.Scan] through the batch.
func (b *Batch) Scan(prefix []byte, fn func(key, value []byte) error) error {
	if b.done {
		return ErrBatchDone
	}
	return scan(b.pb, prefix, fn)
}

// ScanRange calls fn, in key order, for every key in [lo, hi) as seen
// through the batch. key and value are valid only during the call. An
// error from fn stops the scan and is returned.
func (b *Batch) ScanRange(lo, hi []byte, fn func(key, value []byte) error) error {
	if b.done {
		return ErrBatchDone
	}
	return scanRange(b.pb, userKey(lo), userKey(hi), fn)
}

// ScanRanges is ScanRange over several ranges, in the order given, with one
// iterator: cheaper than a ScanRange each when a lookup spans ranges.
func (b *Batch) ScanRanges(ranges [][2][]byte, fn func(key, value []byte) error) error {
	if b.done {
		return ErrBatchDone
	}
	internal := make([][2][]byte, len(ranges))
	for i, r := range ranges {
		internal[i] = [2][]byte{userKey(r[0]), userKey(r[1])}
	}
	return scanRanges(b.pb, internal, fn)
}

// Len is the number of changelog records the batch will produce.
func (b *Batch) Len() int { return len(b.last) }

// Err returns the first error a write method met, if any.
func (b *Batch) Err() error { return b.err }

// Records returns the changelog records to produce, in the caller's Kafka
// transaction, for the batch's writes: the latest write of each key in
// write order, key unchanged, value nil for a delete. Partition is set
// explicitly (see [Partitioner]). Produce all of them before committing the
// transaction; the records are fresh on every call.
func (b *Batch) Records(topic string, partition int32) []*kgo.Record {
	out := make([]*kgo.Record, 0, len(b.last))
	for _, o := range b.ops {
		if o.dead {
			continue
		}
		out = append(out, &kgo.Record{Topic: topic, Partition: partition, Key: o.key, Value: o.value})
	}
	return out
}

// SetChangelogOffset sets the changelog offset Commit records with the
// writes: the offset of the last of this batch's records once produced and
// committed ([LastOffset]). Without it, or with a negative offset (the
// LastOffset of no records), Commit leaves the stored offset as it is.
func (b *Batch) SetChangelogOffset(off int64) {
	if off >= 0 {
		b.off, b.hasOff = off, true
	}
}

// Commit applies the writes and the changelog offset to Pebble atomically
// and closes the batch. Call it after the Kafka transaction that produced
// the batch's records committed (see the package documentation).
func (b *Batch) Commit() error {
	if b.done {
		return ErrBatchDone
	}
	defer b.Close()
	if b.err != nil {
		return b.err
	}
	if b.hasOff {
		if err := b.pb.Set(offsetKey, encodeOffset(b.off), nil); err != nil {
			return fmt.Errorf("statestore: commit: %w", err)
		}
	}
	if err := b.pb.Commit(pebble.NoSync); err != nil {
		return fmt.Errorf("statestore: commit: %w", err)
	}
	return nil
}

// Close discards an uncommitted batch (the transaction aborted). It is a
// no-op after Commit.
func (b *Batch) Close() {
	if b.done {
		return
	}
	b.done = true
	b.s.sizeHint.Store(int64(len(b.ops)))
	if b.stored != nil {
		_ = b.stored.Close()
	}
	_ = b.pb.Close()
}

// LastOffset returns the highest offset among produced records, -1 when
// there are none: the value for [Batch.SetChangelogOffset]. Offsets are
// known once the records are acknowledged (ProduceSync, or Flush before
// ending the transaction).
func LastOffset(recs []*kgo.Record) int64 {
	off := int64(-1)
	for _, r := range recs {
		off = max(off, r.Offset)
	}
	return off
}

// Partitioner returns a partitioner that sends records of changelog topics
// to their Record.Partition and partitions every other topic with
// fallback, so one transactional producer can write outputs (hashed by key)
// and changelogs (the store's partition) together.
func Partitioner(isChangelog func(topic string) bool, fallback kgo.Partitioner) kgo.Partitioner {
	return partitioner{isChangelog: isChangelog, manual: kgo.ManualPartitioner(), fallback: fallback}
}

type partitioner struct {
	isChangelog      func(string) bool
	manual, fallback kgo.Partitioner
}

func (p partitioner) ForTopic(topic string) kgo.TopicPartitioner {
	if p.isChangelog(topic) {
		return p.manual.ForTopic(topic)
	}
	return p.fallback.ForTopic(topic)
}
