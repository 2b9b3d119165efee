// Package statestore is the local state of one stage of the attribution
// service for one partition (docs/attribution-design.md, "State"): a Pebble
// database on disk whose every write is mirrored to a compacted changelog
// topic, so that an instance with an empty disk can rebuild it ([Restore]).
//
// # How a stage uses it
//
//	cache := statestore.NewCache(256 << 20) // one per process
//	s, _ := statestore.Open(dir, statestore.Options{Cache: cache})
//	statestore.Restore(ctx, s, changelog, partition, brokerOpts...) // on assignment
//	for each transaction {
//	    b := s.NewBatch()                 // reads through b see its own writes
//	    ... b.Get / b.Scan / b.Set / b.Delete / statestore.ExpireBefore(b, ...)
//	    recs := b.Records(changelog, partition)
//	    produce outputs and recs in the Kafka transaction, commit it
//	    b.SetChangelogOffset(statestore.LastOffset(recs))
//	    b.Commit()                         // or b.Close() when the transaction aborted
//	}
//
// # Why Pebble is written after the Kafka transaction commits
//
// The changelog is the source of truth, Pebble a cache of it. A batch is
// applied to Pebble only after the transaction holding its changelog records
// committed, and it carries the changelog offset it reflects in the same
// atomic Pebble write. Then every crash leaves Pebble at or behind the
// changelog, never ahead of it: an abort discards the batch (Pebble never saw
// it), and a crash between the Kafka commit and [Batch.Commit] leaves a stored
// offset that [Restore] resumes from. For the same reason Pebble runs
// without a write-ahead log: a crash loses the memtables not yet flushed,
// and with them the offset they carried (a flush holds a prefix of the
// commits), so the store is behind, never torn, and Restore refills it. Hence: run Restore on every
// assignment, even when the directory exists (it is incremental and cheap
// when nothing is missing), and after a failed Batch.Commit treat the
// store as behind (Restore it before the next transaction).
//
// A batch is indexed ([Batch.Get], [Batch.Scan] see its uncommitted writes),
// so one transaction can process a click and then an install that needs it.
//
// # Keys
//
// Keys are opaque bytes in the caller's namespace; the store prefixes them
// internally (user keys with 0x01, its own metadata with 0x00), so no user
// key can collide with the stored changelog offset. The changelog carries the
// caller's key unchanged.
//
// Time-windowed indexes use [TimeKey] (prefix, big-endian time, id), so that
// everything older than a time is one contiguous key range below
// prefix+time. Lookup indexes whose keys do not start with the time (seen
// ids, say) can get a secondary expiry index built with [TimeKey] whose
// values are the primary keys; [ExpireIndex] deletes both. A key that starts
// with a coarse time (a generation) expires by range without one.
//
// # How expiry reaches the changelog
//
// A Pebble range delete has no changelog equivalent (Kafka compaction only
// knows per-key tombstones). [Batch.DeleteRange] therefore scans the range
// (through the batch, so keys written earlier in the same transaction are
// included) and emits one tombstone per live key, then applies a single
// Pebble range tombstone locally. The alternative, a changelog with
// cleanup.policy=compact,delete and retention.ms equal to the window, was
// rejected: time-based deletion drops whole segments by record timestamp
// (wall clock at produce, not stream time), so it would also delete the
// latest value of keys that never expire or expire on a longer window (seen
// event ids, last counted install per device: 90 days next to 7-day clicks
// in the same stage), and a restore would then bring back entries the local
// store had already expired, or miss ones it still needed. Per-key
// tombstones keep the changelog an exact image of the store at every offset,
// at the cost of one small record per expired entry (about the key size plus
// Kafka's record overhead) and of reading the expired keys once. Run expiry
// after every transaction so each one stays small.
//
// # Changelog partitioning
//
// Changelog records carry an explicit partition (the store's). The producer
// must honour it: use [Partitioner] (manual for changelog topics, the
// given partitioner for the rest) or [kgo.ManualPartitioner].
//
// # Concurrency
//
// A Store is safe for concurrent reads; a Batch is not (one per transaction,
// one goroutine). Keep at most one batch open per store: a range delete
// emits tombstones for the keys it saw when it ran, so a key committed by
// another batch in the meantime would vanish locally without a tombstone
// in the changelog. A stage runs one transaction at a time per partition,
// which is exactly this.
package statestore
