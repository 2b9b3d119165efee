package statestore

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync/atomic"

	"github.com/cockroachdb/pebble"
	"github.com/cockroachdb/pebble/bloom"
)

// Internal key spaces. User keys and metadata live in one Pebble keyspace;
// a one-byte tag keeps them apart so that a user key can never overwrite
// the changelog offset and Scan over all user keys never sees metadata.
const (
	tagMeta byte = 0x00
	tagUser byte = 0x01
)

// offsetKey holds the changelog offset the store reflects (8 bytes, big endian).
var offsetKey = []byte{tagMeta, 'c', 'h', 'a', 'n', 'g', 'e', 'l', 'o', 'g', '-', 'o', 'f', 'f', 's', 'e', 't'}

// DefaultCacheSize is the block cache of a store opened without a shared
// [Cache] or a CacheSize: enough for the index and filter blocks of a few GB
// of tables, small enough for dozens of partitions per process.
const DefaultCacheSize = 8 << 20

// Cache is a block cache shared by all the stores of a process (every stage
// and partition), so that the memory bound is set once per process rather
// than multiplied by the number of partitions assigned.
type Cache struct{ c *pebble.Cache }

// NewCache returns a shared block cache of size bytes. Close it when the
// stores using it are opened (they hold their own references) or closed.
func NewCache(size int64) *Cache { return &Cache{c: pebble.NewCache(size)} }

// Close drops the caller's reference; the memory is freed when the last
// store using the cache is closed too.
func (c *Cache) Close() { c.c.Unref() }

// Options configure a Store.
type Options struct {
	// Cache is the shared block cache to use. Nil means a cache of its
	// own of CacheSize bytes.
	Cache *Cache
	// CacheSize bounds the store's own block cache in bytes when Cache is
	// nil. Zero means DefaultCacheSize.
	CacheSize int64
	// MemTableSize is the size of one memtable (at most two are in memory,
	// one filling and one flushing). Zero means Pebble's 4 MiB. With the
	// cache it is what the store keeps in memory; the data lives on disk,
	// so memory does not grow with the days of traffic a window holds.
	MemTableSize uint64
	// Logger receives Pebble's own log lines (flushes, compactions) at debug
	// level and its fatal errors at error level. Nil discards them.
	Logger *slog.Logger
}

// Store is one partition's state for one stage: a Pebble database under a
// directory of its own. See the package documentation for the write protocol.
type Store struct {
	db *pebble.DB
	// sizeHint is the write count of the last batch: the next one starts
	// with room for as many, so a busy stage's batch does not regrow its
	// index every transaction.
	sizeHint atomic.Int64
}

// Open opens (creating it if needed) the store in dir.
func Open(dir string, opts Options) (*Store, error) {
	cache := opts.Cache
	if cache == nil {
		size := opts.CacheSize
		if size <= 0 {
			size = DefaultCacheSize
		}
		cache = NewCache(size)
		// Open takes its own reference; drop ours so Close frees the cache.
		defer cache.Close()
	}
	po := &pebble.Options{
		Cache:        cache.c,
		MemTableSize: opts.MemTableSize,
		Logger:       pebbleLogger{opts.Logger},
		// The changelog is the store's log (see the package documentation):
		// a crash loses the unflushed memtables and the offset they carried
		// together, and Restore replays both. Kafka Streams runs RocksDB
		// without its WAL for the same reason; writing one cost a tenth of a
		// stored click.
		DisableWAL: true,
	}
	// Pebble's bytewise comparer with its prefix made explicit as the whole
	// key (what the bloom filters hold either way, so tables written before
	// are read alike): point seeks (Batch.Get) need one.
	cmp := *pebble.DefaultComparer
	cmp.Split = func(k []byte) int { return len(k) }
	po.Comparer = &cmp
	// Most lookups miss (a new event id, a click of another partition):
	// bloom filters answer those without reading data blocks.
	po.Levels = make([]pebble.LevelOptions, 7)
	for i := range po.Levels {
		po.Levels[i].FilterPolicy = bloom.FilterPolicy(10)
		// Every open table costs memory (its reader, top-level index,
		// properties); Pebble's 2 MiB default makes hundreds of tables
		// per GB of state, so memory would grow with the data.
		po.Levels[i].TargetFileSize = 64 << 20
	}
	db, err := pebble.Open(dir, po)
	if err != nil {
		return nil, fmt.Errorf("statestore: open %s: %w", dir, err)
	}
	return &Store{db: db}, nil
}

// Close flushes the memtables (there is no WAL to recover them from, and
// a restart should not replay what the store already had) and releases the
// database. Batches must be committed or closed first.
func (s *Store) Close() error {
	ferr := s.db.Flush()
	if err := s.db.Close(); err != nil {
		return err
	}
	if ferr != nil {
		return fmt.Errorf("statestore: flush on close: %w", ferr)
	}
	return nil
}

// Get returns a copy of key's value and whether the key exists.
func (s *Store) Get(key []byte) ([]byte, bool, error) {
	return get(s.db, userKey(key))
}

// Scan calls fn for every key starting with prefix, in key order. key and
// value are only valid during the call (copy them to keep them). An error
// from fn stops the scan and is returned.
func (s *Store) Scan(prefix []byte, fn func(key, value []byte) error) error {
	return scan(s.db, prefix, fn)
}

// ChangelogOffset returns the highest changelog offset the local state
// reflects, and false when the store has never recorded one (new or wiped).
func (s *Store) ChangelogOffset() (int64, bool, error) {
	v, ok, err := get(s.db, offsetKey)
	if err != nil || !ok {
		return 0, false, err
	}
	if len(v) != 8 {
		return 0, false, fmt.Errorf("statestore: corrupt changelog offset (%d bytes)", len(v))
	}
	return int64(binary.BigEndian.Uint64(v)), true, nil
}

// SetChangelogOffset records off as the highest changelog offset the state
// reflects. Normally the offset travels in a batch ([Batch.SetChangelogOffset]);
// this is for a state that moved without writes (all records restored were
// transaction markers, say).
func (s *Store) SetChangelogOffset(off int64) error {
	return s.db.Set(offsetKey, encodeOffset(off), pebble.NoSync)
}

func encodeOffset(off int64) []byte {
	return binary.BigEndian.AppendUint64(nil, uint64(off))
}

// reader is what Get and Scan need; both *pebble.DB and an indexed
// *pebble.Batch provide it.
type reader interface {
	Get(key []byte) ([]byte, io.Closer, error)
	NewIter(o *pebble.IterOptions) (*pebble.Iterator, error)
}

func get(r reader, key []byte) ([]byte, bool, error) {
	v, closer, err := r.Get(key)
	if errors.Is(err, pebble.ErrNotFound) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("statestore: get: %w", err)
	}
	out := append([]byte{}, v...)
	if err := closer.Close(); err != nil {
		return nil, false, err
	}
	return out, true, nil
}

func scan(r reader, prefix []byte, fn func(key, value []byte) error) error {
	lo := userKey(prefix)
	return scanRange(r, lo, successor(lo), fn)
}

// scanRange iterates internal keys in [lo, hi) and passes user keys to fn.
func scanRange(r reader, lo, hi []byte, fn func(key, value []byte) error) error {
	return scanRanges(r, [][2][]byte{{lo, hi}}, fn)
}

// scanRanges is scanRange over several ranges of internal keys, in the
// order given, with one iterator.
func scanRanges(r reader, ranges [][2][]byte, fn func(key, value []byte) error) (err error) {
	if len(ranges) == 0 {
		return nil
	}
	it, err := r.NewIter(&pebble.IterOptions{LowerBound: ranges[0][0], UpperBound: ranges[0][1]})
	if err != nil {
		return fmt.Errorf("statestore: iterator: %w", err)
	}
	defer func() {
		if cerr := it.Close(); err == nil && cerr != nil {
			err = fmt.Errorf("statestore: iterator: %w", cerr)
		}
	}()
	for i, rg := range ranges {
		if i > 0 {
			it.SetBounds(rg[0], rg[1])
		}
		for ok := it.First(); ok; ok = it.Next() {
			v, verr := it.ValueAndErr()
			if verr != nil {
				return fmt.Errorf("statestore: value: %w", verr)
			}
			if err := fn(it.Key()[1:], v); err != nil {
				return err
			}
		}
		// An iterator that fails (a corrupt or unreadable table) just stops.
		if err := it.Error(); err != nil {
			return fmt.Errorf("statestore: iterate: %w", err)
		}
	}
	return nil
}

// userKey returns key in the user key space.
func userKey(key []byte) []byte {
	out := make([]byte, 1+len(key))
	out[0] = tagUser
	copy(out[1:], key)
	return out
}

// successor returns the smallest key greater than every key starting with
// p. p always starts with a tag byte below 0xff, so one exists.
func successor(p []byte) []byte {
	out := append([]byte{}, p...)
	for i := len(out) - 1; i >= 0; i-- {
		if out[i] != 0xff {
			out[i]++
			return out[:i+1]
		}
	}
	panic("statestore: no successor of an all-0xff key")
}

// pebbleLogger routes Pebble's logging to slog.
type pebbleLogger struct{ l *slog.Logger }

func (p pebbleLogger) Infof(format string, args ...any) {
	if p.l != nil {
		p.l.Debug(fmt.Sprintf(format, args...), "component", "pebble")
	}
}

// Fatalf must not return (Pebble's contract: the database is unusable).
// Panic rather than exit so the process's own handling and defers run.
func (p pebbleLogger) Fatalf(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	if p.l != nil {
		p.l.Error(msg, "component", "pebble")
	}
	panic("pebble: " + msg)
}

// Size returns the bytes of the store's sstables: the state itself, without
// the write-ahead log and memtables (call Compact first for a settled figure).
func (s *Store) Size() int64 { return s.db.Metrics().Total().Size }

// Usage is a store's footprint, for monitoring.
type Usage struct {
	// Disk is what the store takes on disk: its live tables, obsolete
	// ones not yet deleted, and Pebble's manifest and options files.
	Disk int64
	// Live is the bytes of the live tables: the state flushed so far.
	Live int64
}

// Usage returns the store's footprint. It reads Pebble's counters (no I/O
// beyond a statfs), so it is cheap enough for a periodic collect.
func (s *Store) Usage() Usage {
	m := s.db.Metrics()
	return Usage{Disk: int64(m.DiskSpaceUsage()), Live: m.Total().Size}
}

// Count returns how many keys start with prefix. It iterates them, so
// keep it for small key ranges or rare calls.
func (s *Store) Count(prefix []byte) (n int, err error) {
	lo := userKey(prefix)
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: lo, UpperBound: successor(lo)})
	if err != nil {
		return 0, fmt.Errorf("statestore: iterator: %w", err)
	}
	for ok := it.First(); ok; ok = it.Next() {
		n++
	}
	if err := it.Close(); err != nil {
		return 0, fmt.Errorf("statestore: count: %w", err)
	}
	return n, nil
}

// Compact flushes the memtables and compacts every key, so that deleted and
// overwritten entries stop costing disk. Pebble compacts in the background
// anyway; this is for measurements and operators' one-off use.
func (s *Store) Compact() error {
	if err := s.db.Flush(); err != nil {
		return fmt.Errorf("statestore: flush: %w", err)
	}
	if err := s.db.Compact([]byte{0x00}, []byte{0xff}, false); err != nil {
		return fmt.Errorf("statestore: compact: %w", err)
	}
	return nil
}

// Metrics returns Pebble's metrics report (levels, files, cache hit
// rates), for diagnosis.
func (s *Store) Metrics() string { return s.db.Metrics().String() }

// Compare reports the first difference between the user keys and values
// of a and b (nil when they hold the same), for verification: a store
// restored afresh from the changelog must equal the one a stage kept.
func Compare(a, b *Store) error {
	type kv struct{ k, v []byte }
	var left []kv
	if err := a.Scan(nil, func(k, v []byte) error {
		left = append(left, kv{append([]byte{}, k...), append([]byte{}, v...)})
		return nil
	}); err != nil {
		return err
	}
	i := 0
	err := b.Scan(nil, func(k, v []byte) error {
		switch {
		case i == len(left):
			return fmt.Errorf("statestore: key %q only in the second store", k)
		case !bytes.Equal(left[i].k, k):
			if bytes.Compare(left[i].k, k) < 0 {
				return fmt.Errorf("statestore: key %q only in the first store", left[i].k)
			}
			return fmt.Errorf("statestore: key %q only in the second store", k)
		case !bytes.Equal(left[i].v, v):
			return fmt.Errorf("statestore: key %q differs: %q vs %q", k, left[i].v, v)
		}
		i++
		return nil
	})
	if err == nil && i < len(left) {
		err = fmt.Errorf("statestore: key %q only in the first store", left[i].k)
	}
	return err
}
