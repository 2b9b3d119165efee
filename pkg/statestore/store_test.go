package statestore

import (
	"bytes"
	"crypto/rand"
	"errors"
	"fmt"
	"testing"
	"time"
)

func openTemp(t testing.TB) (*Store, string) {
	t.Helper()
	dir := t.TempDir()
	s, err := Open(dir, Options{CacheSize: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s, dir
}

type kv struct{ k, v string }

// dump is the full user contents of s, in key order.
func dump(t testing.TB, s *Store) []kv {
	t.Helper()
	var out []kv
	if err := s.Scan(nil, func(k, v []byte) error {
		out = append(out, kv{string(k), string(v)})
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return out
}

func mustGet(t *testing.T, s interface {
	Get([]byte) ([]byte, bool, error)
}, key string) (string, bool) {
	t.Helper()
	v, ok, err := s.Get([]byte(key))
	if err != nil {
		t.Fatal(err)
	}
	return string(v), ok
}

func commit(t *testing.T, b *Batch) {
	t.Helper()
	if err := b.Commit(); err != nil {
		t.Fatal(err)
	}
}

func TestSetGetDeleteScan(t *testing.T) {
	s, _ := openTemp(t)
	b := s.NewBatch()
	b.Set([]byte("a/1"), []byte("one"))
	b.Set([]byte("a/2"), []byte("two"))
	b.Set([]byte("b/1"), []byte("bee"))
	b.Set([]byte("a/3"), nil) // stored as empty, not absent
	commit(t, b)

	if v, ok := mustGet(t, s, "a/2"); !ok || v != "two" {
		t.Fatalf("get a/2 = %q, %v", v, ok)
	}
	if v, ok := mustGet(t, s, "a/3"); !ok || v != "" {
		t.Fatalf("get a/3 = %q, %v; want empty and present", v, ok)
	}
	if _, ok := mustGet(t, s, "zz"); ok {
		t.Fatal("missing key found")
	}

	b = s.NewBatch()
	b.Delete([]byte("a/1"))
	commit(t, b)
	var keys []string
	if err := s.Scan([]byte("a/"), func(k, _ []byte) error { keys = append(keys, string(k)); return nil }); err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(keys) != "[a/2 a/3]" {
		t.Fatalf("scan a/ = %v", keys)
	}
	stop := errors.New("stop")
	n := 0
	if err := s.Scan(nil, func(k, _ []byte) error { n++; return stop }); !errors.Is(err, stop) || n != 1 {
		t.Fatalf("scan error not propagated: %v after %d", err, n)
	}
	// The changelog offset is metadata, never a user key.
	if err := s.SetChangelogOffset(7); err != nil {
		t.Fatal(err)
	}
	if got := dump(t, s); len(got) != 3 {
		t.Fatalf("full scan = %v", got)
	}
}

func TestBatchIsInvisibleUntilCommit(t *testing.T) {
	s, _ := openTemp(t)
	b := s.NewBatch()
	b.Set([]byte("k"), []byte("v"))
	b.SetChangelogOffset(41)
	if _, ok := mustGet(t, s, "k"); ok {
		t.Fatal("uncommitted write visible in store")
	}
	if v, ok := mustGet(t, b, "k"); !ok || v != "v" {
		t.Fatal("batch does not read its own write")
	}
	if _, ok, _ := s.ChangelogOffset(); ok {
		t.Fatal("uncommitted offset visible")
	}
	b.Close() // transaction aborted
	if _, ok := mustGet(t, s, "k"); ok {
		t.Fatal("closed batch applied")
	}
	if err := b.Commit(); !errors.Is(err, ErrBatchDone) {
		t.Fatalf("commit after close: %v", err)
	}

	b = s.NewBatch()
	b.Set([]byte("k"), []byte("v2"))
	b.Set([]byte("j"), []byte("w"))
	b.SetChangelogOffset(42)
	commit(t, b)
	if v, _ := mustGet(t, s, "k"); v != "v2" {
		t.Fatal("commit lost a write")
	}
	if off, ok, err := s.ChangelogOffset(); err != nil || !ok || off != 42 {
		t.Fatalf("offset = %d %v %v", off, ok, err)
	}
}

func TestChangelogOffsetRoundTripAndReopen(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok, err := s.ChangelogOffset(); ok || err != nil {
		t.Fatalf("new store has offset: %v %v", ok, err)
	}
	for _, off := range []int64{0, 1 << 40, -1} {
		if err := s.SetChangelogOffset(off); err != nil {
			t.Fatal(err)
		}
		if got, ok, err := s.ChangelogOffset(); err != nil || !ok || got != off {
			t.Fatalf("offset %d read back as %d %v %v", off, got, ok, err)
		}
	}
	b := s.NewBatch()
	b.Set([]byte("x"), []byte("y"))
	b.SetChangelogOffset(99)
	commit(t, b)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s, err = Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if v, ok := mustGet(t, s, "x"); !ok || v != "y" {
		t.Fatal("data lost across reopen")
	}
	if off, ok, _ := s.ChangelogOffset(); !ok || off != 99 {
		t.Fatalf("offset across reopen = %d %v", off, ok)
	}
}

func TestTimeKeyOrder(t *testing.T) {
	base := time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC)
	times := []time.Time{
		time.Date(1969, 12, 31, 23, 59, 59, 0, time.UTC), // negative Unix nanos
		time.Unix(0, 0),
		base.Add(-time.Nanosecond),
		base,
		base.Add(time.Nanosecond),
		base.Add(7 * 24 * time.Hour),
	}
	p := []byte("c:")
	for i := 1; i < len(times); i++ {
		a, b := TimeKey(p, times[i-1], "zzz"), TimeKey(p, times[i], "aaa")
		if bytes.Compare(a, b) >= 0 {
			t.Errorf("TimeKey(%v) >= TimeKey(%v)", times[i-1], times[i])
		}
	}
	if a, b := TimeKey(p, base, "a"), TimeKey(p, base, "b"); bytes.Compare(a, b) >= 0 {
		t.Error("same time not ordered by id")
	}
	got, id, err := ParseTimeKey(TimeKey(p, base, "click-1"), len(p))
	if err != nil || !got.Equal(base) || id != "click-1" {
		t.Fatalf("parse = %v %q %v", got, id, err)
	}
	if _, _, err := ParseTimeKey([]byte("c:"), 2); err == nil {
		t.Fatal("short key parsed")
	}
}

func TestExpireBeforeAndRecords(t *testing.T) {
	s, _ := openTemp(t)
	base := time.Date(2026, 11, 28, 0, 0, 0, 0, time.UTC)
	b := s.NewBatch()
	for i := 0; i < 10; i++ {
		b.Set(TimeKey([]byte("t:"), base.Add(time.Duration(i)*time.Hour), fmt.Sprint(i)), []byte("x"))
	}
	b.Set([]byte("t;neighbour"), []byte("kept")) // sorts right after the t: range
	b.Set([]byte("s:other"), []byte("kept"))
	commit(t, b)

	b = s.NewBatch()
	// A key written in the same batch inside the range must expire too.
	b.Set(TimeKey([]byte("t:"), base.Add(-time.Hour), "new-but-old"), []byte("x"))
	n := ExpireBefore(b, []byte("t:"), base.Add(4*time.Hour)) // hours 0-3 and -1 go; 4 stays
	if n != 5 {
		t.Fatalf("expired %d keys, want 5", n)
	}
	recs := b.Records("cl", 3)
	// The Set and its later tombstone collapse into the tombstone.
	if len(recs) != 5 {
		t.Fatalf("%d records, want 5", len(recs))
	}
	for _, r := range recs {
		if r.Value != nil || r.Topic != "cl" || r.Partition != 3 {
			t.Fatalf("record %+v is not a tombstone for cl/3", r)
		}
		tm, _, err := ParseTimeKey(r.Key, 2)
		if err != nil || !tm.Before(base.Add(4*time.Hour)) {
			t.Fatalf("tombstone for %v", tm)
		}
	}
	commit(t, b)
	var left []string
	_ = s.Scan(nil, func(k, _ []byte) error { left = append(left, string(k)); return nil })
	if len(left) != 8 {
		t.Fatalf("%d keys left, want 6 time keys + 2 neighbours: %q", len(left), left)
	}
	if tm, _, _ := ParseTimeKey([]byte(left[1]), 2); !tm.Equal(base.Add(4 * time.Hour)) {
		t.Fatalf("first remaining time key at %v, want the boundary (inclusive window end)", tm)
	}

	// Nothing to expire: no records, no range tombstone.
	b = s.NewBatch()
	if n := ExpireBefore(b, []byte("t:"), base); n != 0 || b.Len() != 0 {
		t.Fatalf("empty expiry removed %d, %d records", n, b.Len())
	}
	b.Close()
}

func TestExpireIndexDeletesPrimaries(t *testing.T) {
	s, _ := openTemp(t)
	base := time.Date(2026, 11, 28, 0, 0, 0, 0, time.UTC)
	b := s.NewBatch()
	for i := 0; i < 4; i++ {
		id := fmt.Sprint("click-", i)
		b.Set([]byte("c:"+id), []byte("entry"))
		b.Set(TimeKey([]byte("x:"), base.Add(time.Duration(i)*time.Hour), id), []byte("c:"+id))
	}
	commit(t, b)
	b = s.NewBatch()
	if n := ExpireIndex(b, []byte("x:"), base.Add(2*time.Hour)); n != 2 {
		t.Fatalf("expired %d index entries, want 2", n)
	}
	if got := len(b.Records("cl", 0)); got != 4 {
		t.Fatalf("%d tombstones, want 4 (2 primaries + 2 index entries)", got)
	}
	commit(t, b)
	for i, want := range []bool{false, false, true, true} {
		if _, ok := mustGet(t, s, fmt.Sprint("c:click-", i)); ok != want {
			t.Errorf("click-%d present=%v, want %v", i, ok, want)
		}
	}
}

func TestRecordsKeepLatestWritePerKey(t *testing.T) {
	s, _ := openTemp(t)
	b := s.NewBatch()
	defer b.Close()
	b.Set([]byte("a"), []byte("1"))
	b.Set([]byte("b"), []byte("1"))
	b.Delete([]byte("a"))
	b.Set([]byte("c"), nil)
	b.Set([]byte("b"), []byte("2"))
	recs := b.Records("cl", 0)
	var got []string
	for _, r := range recs {
		got = append(got, fmt.Sprintf("%s=%v", r.Key, r.Value))
	}
	if want := "[a=[] c=[] b=[50]]"; fmt.Sprint(got) != want {
		t.Fatalf("records %v, want %s", got, want)
	}
	if recs[0].Value != nil || recs[1].Value == nil {
		t.Fatal("tombstone/empty value confused")
	}
	for i, r := range recs {
		r.Offset = int64(10 + i)
	}
	if LastOffset(recs) != 12 || LastOffset(nil) != -1 {
		t.Fatal("LastOffset")
	}
}

func TestSharedCacheAndConcurrentReads(t *testing.T) {
	cache := NewCache(4 << 20)
	s1, err := Open(t.TempDir(), Options{Cache: cache})
	if err != nil {
		t.Fatal(err)
	}
	s2, err := Open(t.TempDir(), Options{Cache: cache, MemTableSize: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	cache.Close() // the stores keep it alive
	defer s1.Close()
	defer s2.Close()

	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 0; i < 200; i++ {
			if _, _, err := s1.Get([]byte("k")); err != nil {
				t.Error(err)
				return
			}
			_ = s1.Scan(nil, func(_, _ []byte) error { return nil })
		}
	}()
	for i := 0; i < 200; i++ {
		b := s1.NewBatch()
		b.Set([]byte("k"), []byte(fmt.Sprint(i)))
		b.SetChangelogOffset(int64(i))
		commit(t, b)
	}
	<-done
	b := s2.NewBatch()
	b.Set([]byte("other"), []byte("store"))
	b.SetChangelogOffset(LastOffset(nil)) // no records: offset untouched
	commit(t, b)
	if _, ok, _ := s2.ChangelogOffset(); ok {
		t.Fatal("negative offset stored")
	}
	if _, ok := mustGet(t, s1, "other"); ok {
		t.Fatal("stores sharing a cache share data")
	}
}

// TestBatchReadsSeeOwnWrites: Get (whether or not the batch wrote the key)
// and ScanRanges see the store and the batch's own writes and deletes
// together, ranges in the order given.
func TestBatchReadsSeeOwnWrites(t *testing.T) {
	s, _ := openTemp(t)
	b := s.NewBatch()
	for _, k := range []string{"a/1", "a/2", "b/1", "c/1"} {
		b.Set([]byte(k), []byte("stored "+k))
	}
	commit(t, b)

	b = s.NewBatch()
	defer b.Close()
	b.Set([]byte("a/3"), []byte("new"))
	b.Delete([]byte("b/1"))
	b.Set([]byte("c/1"), []byte("changed"))
	for k, want := range map[string]string{"a/1": "stored a/1", "a/3": "new", "b/1": "", "c/1": "changed", "zz": ""} {
		v, ok, err := b.Get([]byte(k))
		if err != nil || string(v) != want || ok != (want != "") {
			t.Errorf("get %s = %q, %v, %v; want %q", k, v, ok, err, want)
		}
	}
	var got []string
	err := b.ScanRanges([][2][]byte{{[]byte("c/"), []byte("c0")}, {[]byte("b/"), []byte("b0")}, {[]byte("a/2"), []byte("a0")}},
		func(k, v []byte) error { got = append(got, string(k)+"="+string(v)); return nil })
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(got) != "[c/1=changed a/2=stored a/2 a/3=new]" {
		t.Errorf("ScanRanges = %v", got)
	}
}

// TestBatchGetOfStoredKeys: a batch reads the keys it has not written from
// the store as committed before it (point and range deletes included),
// through one iterator that Commit and Close release (Pebble refuses to
// close a database with an iterator open).
func TestBatchGetOfStoredKeys(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir, Options{CacheSize: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	b := s.NewBatch()
	for _, k := range []string{"k", "k1", "k2", "r/1", "r/2", "z"} {
		b.Set([]byte(k), []byte("v-"+k))
	}
	commit(t, b)
	if err := s.db.Flush(); err != nil { // some in a table, the deletes in the memtable
		t.Fatal(err)
	}
	b = s.NewBatch()
	b.Delete([]byte("k1"))
	b.DeleteRange([]byte("r/"), []byte("r0"))
	commit(t, b)

	for i, want := range []map[string]string{
		{"k": "v-k", "k1": "", "k2": "v-k2", "r/1": "", "r/2": "", "z": "v-z", "k0": "", "": "", "zz": ""},
		{"z": "v-z", "k": "v-k"}, // a second batch, after one was committed
	} {
		b := s.NewBatch()
		for k, v := range want {
			if got, ok := mustGet(t, b, k); got != v || ok != (v != "") {
				t.Errorf("batch %d: get %q = %q, %v; want %q", i, k, got, ok, v)
			}
		}
		b.Set([]byte("k3"), []byte("new"))
		commit(t, b)
	}
	b = s.NewBatch()
	if got, _ := mustGet(t, b, "k3"); got != "new" {
		t.Errorf("get k3 = %q, want new", got)
	}
	b.Close()
	if err := s.Close(); err != nil {
		t.Fatalf("close after batches that read: %v", err)
	}
}

func TestCountAndUsage(t *testing.T) {
	s, _ := openTemp(t)
	before := s.Usage()
	b := s.NewBatch()
	for i := range 500 {
		v := make([]byte, 100)
		_, _ = rand.Read(v) // incompressible: the tables hold at least these bytes
		b.Set(fmt.Appendf(nil, "w%04d", i), v)
		b.Set(fmt.Appendf(nil, "v%04d", i), nil)
	}
	b.Delete([]byte("w0007"))
	commit(t, b)
	if n, err := s.Count([]byte("w")); err != nil || n != 499 {
		t.Errorf("Count(w) = %d, %v; want 499", n, err)
	}
	if n, err := s.Count([]byte("x")); err != nil || n != 0 {
		t.Errorf("Count(x) = %d, %v; want 0", n, err)
	}
	if err := s.Compact(); err != nil {
		t.Fatal(err)
	}
	after := s.Usage()
	if after.Live < 499*100 || before.Live != 0 {
		t.Errorf("live bytes %d after writing 50 kB (before: %d)", after.Live, before.Live)
	}
	if after.Disk < after.Live {
		t.Errorf("disk bytes %d below live bytes %d", after.Disk, after.Live)
	}
}
