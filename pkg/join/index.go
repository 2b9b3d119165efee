package join

import (
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"

	"github.com/adtrack/postback/pkg/statestore"
)

// Every state key starts with one byte naming its index; no index byte is a
// prefix of another's keys, so one index's expiry range never cuts into
// another (statestore.TimeKey).

// tindex is a keyed index expired by time: the entry p+id holds the value,
// and x+time+id (empty value) orders the entries by the time they expire
// from, so expiry is one range scan.
type tindex struct{ p, x byte }

func (ix tindex) key(id []byte) []byte {
	return append([]byte{ix.p}, id...)
}

func (ix tindex) put(b *statestore.Batch, id []byte, t time.Time, v []byte) {
	b.Set(ix.key(id), v)
	b.Set(statestore.TimeKey([]byte{ix.x}, t, string(id)), nil)
}

func (ix tindex) del(b *statestore.Batch, id []byte, t time.Time) {
	b.Delete(ix.key(id))
	b.Delete(statestore.TimeKey([]byte{ix.x}, t, string(id)))
}

func (ix tindex) get(b *statestore.Batch, id []byte) ([]byte, bool, error) {
	return b.Get(ix.key(id))
}

// scan calls fn for every entry whose id starts with prefix.
func (ix tindex) scan(b *statestore.Batch, prefix []byte, fn func(id, v []byte) error) error {
	return b.Scan(ix.key(prefix), func(k, v []byte) error { return fn(k[1:], v) })
}

var errStop = errors.New("stop")

// nonEmpty reports whether any key starts with prefix.
func nonEmpty(b *statestore.Batch, prefix byte) (bool, error) {
	found := false
	err := b.Scan([]byte{prefix}, func(_, _ []byte) error { found = true; return errStop })
	if err != nil && !errors.Is(err, errStop) {
		return false, err
	}
	return found, nil
}

// occupancy remembers, per partition and for the batch at hand, whether an
// index may hold entries, so that a stage looking for waiting entries on
// every record scans once per batch while none wait. Holding the batch
// keeps its address from being reused by a later one.
type occupancy map[int32]*occupied

type occupied struct {
	b   *statestore.Batch
	any bool
}

// mayHold reports whether the index whose keys start with prefix may hold
// entries in batch b of partition p.
func (o occupancy) mayHold(prefix byte, p int32, b *statestore.Batch) (bool, error) {
	m := o[p]
	if m == nil {
		m = &occupied{}
		o[p] = m
	}
	if m.b != b {
		any, err := nonEmpty(b, prefix)
		if err != nil {
			return false, err
		}
		m.b, m.any = b, any
	}
	return m.any, nil
}

// added records that batch b of partition p wrote an entry.
func (o occupancy) added(p int32, b *statestore.Batch) {
	o[p] = &occupied{b: b, any: true}
}

// gaugeWaiting sets the grace-buffer gauge of a stage to the entries whose
// keys start with prefix in the given stores. A buffer holds only what
// arrived within one grace period without its partner, so counting its
// keys every few seconds stays cheap.
func (j *Joiner) gaugeWaiting(stageName, kind string, prefix byte, stores map[int32]*statestore.Store) error {
	total := 0
	for p, s := range stores {
		n, err := s.Count([]byte{prefix})
		if err != nil {
			return fmt.Errorf("count the %s grace buffer of partition %d: %w", stageName, p, err)
		}
		total += n
	}
	j.m.waiting.WithLabelValues(stageName, kind).Set(float64(total))
	return nil
}

// entry is an index entry copied out of a scan.
type entry struct{ id, v []byte }

// entries returns copies of the entries whose id starts with prefix.
func (ix tindex) entries(b *statestore.Batch, prefix []byte) ([]entry, error) {
	var out []entry
	err := ix.scan(b, prefix, func(id, v []byte) error {
		out = append(out, entry{append([]byte{}, id...), append([]byte{}, v...)})
		return nil
	})
	return out, err
}

// expire deletes every entry whose time is before `before`, calling fn (if
// not nil) with each entry's id, time and value first. It returns how many
// entries it removed.
func (ix tindex) expire(b *statestore.Batch, before time.Time, fn func(id []byte, t time.Time, v []byte) error) (int, error) {
	type ent struct {
		id []byte
		t  time.Time
	}
	var ents []ent
	lo := []byte{ix.x}
	hi := statestore.AppendTime([]byte{ix.x}, before)
	err := b.ScanRange(lo, hi, func(k, _ []byte) error {
		t, id, err := statestore.ParseTimeKey(k, 1)
		if err != nil {
			return err
		}
		ents = append(ents, ent{[]byte(id), t})
		return nil
	})
	if err != nil {
		return 0, err
	}
	for _, e := range ents {
		if fn != nil {
			v, ok, err := ix.get(b, e.id)
			if err != nil {
				return 0, err
			}
			if ok {
				if err := fn(e.id, e.t, v); err != nil {
					return 0, err
				}
			}
		}
		b.Delete(ix.key(e.id))
	}
	if len(ents) > 0 {
		b.DeleteRange(lo, hi)
	}
	return len(ents), b.Err()
}

// v7index keeps entries under UUIDv7 ids, the ids ingest mints for clicks:
// the key is p + the id's 16 bytes, which begin with its time in
// milliseconds, so the keys sort by time and expiry is one range with no
// expiry index: one write per entry instead of two, and 17 key bytes
// instead of 37. An id whose embedded time is more than v7Skew from the
// entry's time (not minted when the click was taken) is refused by put,
// and goes to a tindex instead.
type v7index struct{ p byte }

// v7Skew bounds how far a UUIDv7 id's embedded time may be from its
// click's time for the id to be trusted with the click's expiry.
const v7Skew = time.Hour

// v7Key returns the key of a canonical (lowercase, hyphenated) UUIDv7 id.
func v7Key(p byte, id string) ([]byte, bool) {
	if len(id) != 36 {
		return nil, false
	}
	u, err := uuid.Parse(id)
	if err != nil || u.Version() != 7 || u.String() != id {
		return nil, false
	}
	return append([]byte{p}, u[:]...), true
}

// v7Time is the id's embedded time (the key's first 48 bits, in ms).
func v7Time(key []byte) time.Time {
	ms := int64(binary.BigEndian.Uint64(append([]byte{0, 0}, key[1:7]...)))
	return time.UnixMilli(ms)
}

// put stores v under id and reports whether it could (id is a UUIDv7 minted
// within v7Skew of t).
func (ix v7index) put(b *statestore.Batch, id string, t time.Time, v []byte) bool {
	k, ok := v7Key(ix.p, id)
	if !ok {
		return false
	}
	if d := v7Time(k).Sub(t); d > v7Skew || d < -v7Skew {
		return false
	}
	b.Set(k, v)
	return true
}

func (ix v7index) get(b *statestore.Batch, id string) ([]byte, bool, error) {
	k, ok := v7Key(ix.p, id)
	if !ok {
		return nil, false, nil
	}
	return b.Get(k)
}

// expire deletes the entries whose id was minted before before.
func (ix v7index) expire(b *statestore.Batch, before time.Time) (int, error) {
	hi := binary.BigEndian.AppendUint64(nil, uint64(max(0, before.UnixMilli())))
	n := b.DeleteRange([]byte{ix.p}, append([]byte{ix.p}, hi[2:]...))
	return n, b.Err()
}

// gindex is a time series per group (a device, an IP + UA pair) kept in
// generations of a fixed length: the entry p+gen+group+time+id holds the
// value, gen being the entry's time in whole generations since 1970 (4
// bytes). A window is one range scan per generation it overlaps; expiry
// drops whole generations with one range (scanned once for the changelog's
// tombstones). An entry is one write where an expiry index makes it two:
// clicks, the bulk of the state, cost half. Entries outlive their window by
// up to a generation; lookups bound the window themselves. The length is
// part of the key layout: change it only together with the prefix byte.
type gindex struct {
	p   byte
	gen time.Duration
}

func (ix gindex) genOf(t time.Time) uint32 {
	return uint32(max(0, t.Unix()/int64(ix.gen/time.Second)))
}

func (ix gindex) key(gen uint32, group []byte, t time.Time, id string) []byte {
	k := make([]byte, 0, 5+len(group)+8+len(id))
	k = append(k, ix.p)
	k = binary.BigEndian.AppendUint32(k, gen)
	k = append(k, group...)
	k = statestore.AppendTime(k, t)
	return append(k, id...)
}

func (ix gindex) put(b *statestore.Batch, group []byte, t time.Time, id string, v []byte) {
	b.Set(ix.key(ix.genOf(t), group, t, id), v)
}

// window calls fn for the entries of group with from <= time <= to, oldest
// first.
func (ix gindex) window(b *statestore.Batch, group []byte, from, to time.Time, fn func(t time.Time, id string, v []byte) error) error {
	var ranges [][2][]byte
	for g := ix.genOf(from); g <= ix.genOf(to); g++ {
		ranges = append(ranges, [2][]byte{ix.key(g, group, from, ""), ix.key(g, group, to.Add(1), "")})
	}
	return scanSeries(b, ranges, 5+len(group), fn)
}

// scanSeries calls fn for every entry in ranges of a series index, whose
// keys end in time + id after skip bytes.
func scanSeries(b *statestore.Batch, ranges [][2][]byte, skip int, fn func(t time.Time, id string, v []byte) error) error {
	return b.ScanRanges(ranges, func(k, v []byte) error {
		t, id, err := statestore.ParseTimeKey(k, skip)
		if err != nil {
			return err
		}
		return fn(t, id, v)
	})
}

// expire deletes the generations that ended by before and returns how many
// entries they held.
func (ix gindex) expire(b *statestore.Batch, before time.Time) (int, error) {
	n := b.DeleteRange([]byte{ix.p}, binary.BigEndian.AppendUint32([]byte{ix.p}, ix.genOf(before)))
	return n, b.Err()
}

// series is a gindex together with the sindex an earlier version wrote the
// same entries to: writes go to the generations; reads and expiry cover
// both while the old index holds entries (checked once per batch).
type series struct {
	cur gindex
	old sindex
	had occupancy // of old
}

func newSeries(cur gindex, old sindex) series { return series{cur: cur, old: old, had: occupancy{}} }

func (x series) put(b *statestore.Batch, group []byte, t time.Time, id string, v []byte) {
	x.cur.put(b, group, t, id, v)
}

// window is gindex.window over both layouts, the old one first (its
// entries are older).
func (x series) window(b *statestore.Batch, p int32, group []byte, from, to time.Time, fn func(t time.Time, id string, v []byte) error) error {
	if had, err := x.had.mayHold(x.old.p, p, b); err != nil {
		return err
	} else if had {
		if err := x.old.window(b, group, from, to, fn); err != nil {
			return err
		}
	}
	return x.cur.window(b, group, from, to, fn)
}

func (x series) expire(b *statestore.Batch, before time.Time) (int, error) {
	n, err := x.cur.expire(b, before)
	if err != nil {
		return n, err
	}
	m, err := x.old.expire(b, before)
	return n + m, err
}

// sindex is the layout gindex replaced, still read and expired so that a
// store written by an earlier version keeps its entries until they age
// out: a time series per group (a device, an IP + UA pair): entries
// p+group+time+id sort by time within their group, so a window is one range
// scan; x+time+len(group)+group+id orders all entries by time for expiry
// (the group is length-prefixed so the primary key can be rebuilt).
type sindex struct{ p, x byte }

func (ix sindex) key(group []byte, t time.Time, id string) []byte {
	k := make([]byte, 0, 1+len(group)+8+len(id))
	k = append(k, ix.p)
	k = append(k, group...)
	k = statestore.AppendTime(k, t)
	return append(k, id...)
}

// window calls fn for the entries of group with from <= time <= to, oldest
// first.
func (ix sindex) window(b *statestore.Batch, group []byte, from, to time.Time, fn func(t time.Time, id string, v []byte) error) error {
	return scanSeries(b, [][2][]byte{{ix.key(group, from, ""), ix.key(group, to.Add(1), "")}}, 1+len(group), fn)
}

var errIndexKey = errors.New("malformed expiry key")

// expire deletes every entry older than before and returns how many.
func (ix sindex) expire(b *statestore.Batch, before time.Time) (int, error) {
	lo := []byte{ix.x}
	hi := statestore.AppendTime([]byte{ix.x}, before)
	var primaries [][]byte
	err := b.ScanRange(lo, hi, func(k, _ []byte) error {
		t, rest, err := statestore.ParseTimeKey(k, 1)
		if err != nil {
			return err
		}
		l, n := binary.Uvarint([]byte(rest))
		if n <= 0 || uint64(len(rest)-n) < l {
			return fmt.Errorf("%w %q", errIndexKey, k)
		}
		group, id := rest[n:n+int(l)], rest[n+int(l):]
		primaries = append(primaries, ix.key([]byte(group), t, id))
		return nil
	})
	if err != nil {
		return 0, err
	}
	for _, k := range primaries {
		b.Delete(k)
	}
	if len(primaries) > 0 {
		b.DeleteRange(lo, hi)
	}
	return len(primaries), b.Err()
}
