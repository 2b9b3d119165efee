package statestore

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/cockroachdb/pebble"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// restoreBatchRecords bounds one Pebble batch during a restore, so memory
// stays flat and an interrupted restore keeps the progress it made (each
// batch carries the offset it reached).
const restoreBatchRecords = 10_000

// restoreStall is how long Restore waits without any progress (no record,
// no transaction marker) before giving up with an error rather than
// returning a partial state as complete. It exceeds a producer's default
// transaction timeout (kgo: 40 s) plus the coordinator's sweep, so that a
// previous owner's transaction left open is aborted before Restore gives up.
const restoreStall = 90 * time.Second

// ErrAheadOfChangelog is returned by Restore for a store that reflects
// more of its changelog than the topic holds: the changelog was recreated
// or truncated. The store cannot be trusted; wipe it and restore again.
var ErrAheadOfChangelog = errors.New("statestore: store ahead of its changelog")

// Restore brings s up to date with its changelog partition: it replays the
// committed records (read_committed: aborted transactions are skipped)
// after [Store.ChangelogOffset], or from the start of the log when the store
// has no offset (new or wiped directory), applying sets and tombstones, then
// records the offset it reached. It returns the number of records applied.
//
// It reads up to the partition's high watermark as of its start, not merely
// to the last stable offset: a transaction still open then (the previous
// owner's, whose commit markers may land after this instance was assigned
// the partition) must be waited for, or its writes would be missing here
// while the input offsets it committed move past them. The wait ends when
// the transaction commits or aborts; if nothing moves for 90 s, Restore
// fails and the caller should retry (progress made so far is kept).
//
// clientOpts configure the connection only (seed brokers, TLS, SASL; no
// consumer or group options). Restore builds its own short-lived client
// with them because a client's consumption (here: one partition from an
// exact offset, keeping transaction markers to see the end) is fixed at
// creation, and the stage's own client is a group consumer.
//
// A store whose offset is beyond the changelog's end is refused with
// [ErrAheadOfChangelog]: the topic was recreated or truncated, and the
// directory must be wiped (pkg/stage does so and restores again). A store
// that was left behind for longer than the topic's delete.retention.ms can
// miss tombstones that compaction has since dropped; wipe such a directory
// too rather than restoring it incrementally.
func Restore(ctx context.Context, s *Store, topic string, partition int32, clientOpts ...kgo.Opt) (applied int, err error) {
	stored, hasStored, err := s.ChangelogOffset()
	if err != nil {
		return 0, err
	}
	adm, err := kgo.NewClient(clientOpts...)
	if err != nil {
		return 0, fmt.Errorf("statestore: restore client: %w", err)
	}
	end, err := listOffset(ctx, kadm.NewClient(adm).ListEndOffsets, topic, partition)
	if err == nil && !hasStored {
		var first int64
		first, err = listOffset(ctx, kadm.NewClient(adm).ListStartOffsets, topic, partition)
		stored = first - 1
	}
	adm.Close()
	if err != nil {
		return 0, err
	}
	switch {
	case stored+1 > end:
		return 0, fmt.Errorf("%w: store reflects %s/%d offset %d but the changelog ends at %d (topic recreated or truncated?)", ErrAheadOfChangelog, topic, partition, stored, end)
	case stored+1 == end:
		if !hasStored && end > 0 {
			return 0, s.SetChangelogOffset(end - 1) // log fully deleted: nothing to replay
		}
		return 0, nil
	}

	cl, err := kgo.NewClient(append(append([]kgo.Opt{}, clientOpts...),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: {partition: kgo.NewOffset().At(stored + 1)}}),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		// A transactional log ends with a marker; keeping markers lets
		// us see that we reached end-1 (aborted data is still dropped).
		kgo.KeepControlRecords(),
	)...)
	if err != nil {
		return 0, fmt.Errorf("statestore: restore client: %w", err)
	}
	defer cl.Close()

	pb := s.db.NewBatch()
	defer func() { _ = pb.Close() }() // the last batch; Close after Commit is fine
	inBatch := 0
	last := stored
	flush := func() error {
		if err := pb.Set(offsetKey, encodeOffset(last), nil); err != nil {
			return err
		}
		if err := pb.Commit(pebble.NoSync); err != nil {
			return fmt.Errorf("statestore: restore commit: %w", err)
		}
		// A fresh batch rather than Reset: a large committed batch may
		// still be referenced by the memtable as a flushable batch.
		_ = pb.Close()
		pb = s.db.NewBatch()
		inBatch = 0
		return nil
	}
	progress := time.Now()
	for last < end-1 {
		if err := ctx.Err(); err != nil {
			return applied, err
		}
		if time.Since(progress) > restoreStall {
			return applied, fmt.Errorf("statestore: restore of %s/%d stalled at offset %d of %d (a transaction on the changelog still open?)", topic, partition, last, end)
		}
		pctx, cancel := context.WithTimeout(ctx, time.Second)
		fs := cl.PollFetches(pctx)
		cancel()
		for _, fe := range fs.Errors() {
			if errors.Is(fe.Err, context.DeadlineExceeded) || errors.Is(fe.Err, context.Canceled) {
				continue // our poll timeout, or ctx (checked above)
			}
			return applied, fmt.Errorf("statestore: restore fetch %s/%d: %w", fe.Topic, fe.Partition, fe.Err)
		}
		var ferr error
		fs.EachRecord(func(r *kgo.Record) {
			// Records past end are committed too (read_committed), so
			// applying them is correct and keeps the loop from waiting
			// for an end-1 that compaction may have removed.
			if ferr != nil || r.Offset <= last {
				return // already applied
			}
			last = r.Offset
			progress = time.Now()
			if r.Attrs.IsControl() {
				return
			}
			if r.Value == nil {
				ferr = pb.Delete(userKey(r.Key), nil)
			} else {
				ferr = pb.Set(userKey(r.Key), r.Value, nil)
			}
			applied++
			inBatch++
			if ferr == nil && inBatch >= restoreBatchRecords {
				ferr = flush()
			}
		})
		if ferr != nil {
			return applied, ferr
		}
	}
	// last is end-1 here (a record or a marker); record it even when the
	// tail was only markers, so the next restore starts past them.
	return applied, flush()
}

func listOffset(ctx context.Context, list func(context.Context, ...string) (kadm.ListedOffsets, error), topic string, partition int32) (int64, error) {
	offs, err := list(ctx, topic)
	if err == nil {
		err = offs.Error()
	}
	if err != nil {
		return 0, fmt.Errorf("statestore: list offsets of %s: %w", topic, err)
	}
	o, ok := offs.Lookup(topic, partition)
	if !ok {
		return 0, fmt.Errorf("statestore: changelog %s has no partition %d", topic, partition)
	}
	return o.Offset, nil
}

// Verify checks that the closed store in dir holds exactly what its
// changelog partition says: it restores a fresh copy from the changelog
// into a temporary directory and compares the two ([Compare]). For tests
// and for an operator who suspects a store; the store must not be open.
func Verify(ctx context.Context, dir, topic string, partition int32, clientOpts ...kgo.Opt) error {
	kept, err := Open(dir, Options{})
	if err != nil {
		return err
	}
	defer kept.Close()
	tmp, err := os.MkdirTemp("", "statestore-verify-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	fresh, err := Open(tmp, Options{})
	if err != nil {
		return err
	}
	defer fresh.Close()
	if _, err := Restore(ctx, fresh, topic, partition, clientOpts...); err != nil {
		return fmt.Errorf("statestore: verify %s/%d: restore: %w", topic, partition, err)
	}
	if err := Compare(kept, fresh); err != nil {
		return fmt.Errorf("statestore: %s differs from %s/%d: %w", dir, topic, partition, err)
	}
	return nil
}
