package join

import (
	"encoding/binary"
	"errors"
	"fmt"
	"time"

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

// nonEmpty reports whether the index holds any entry.
func (ix tindex) nonEmpty(b *statestore.Batch) (bool, error) {
	found := false
	err := b.Scan([]byte{ix.p}, func(_, _ []byte) error { found = true; return errStop })
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

// mayHold reports whether ix may hold entries in batch b of partition p.
func (o occupancy) mayHold(ix tindex, p int32, b *statestore.Batch) (bool, error) {
	m := o[p]
	if m == nil {
		m = &occupied{}
		o[p] = m
	}
	if m.b != b {
		any, err := ix.nonEmpty(b)
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

// sindex is a time series per group (a device, an IP + UA pair): entries
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

func (ix sindex) put(b *statestore.Batch, group []byte, t time.Time, id string, v []byte) {
	b.Set(ix.key(group, t, id), v)
	x := statestore.AppendTime([]byte{ix.x}, t)
	x = binary.AppendUvarint(x, uint64(len(group)))
	x = append(x, group...)
	b.Set(append(x, id...), nil)
}

// window calls fn for the entries of group with from <= time <= to, oldest
// first.
func (ix sindex) window(b *statestore.Batch, group []byte, from, to time.Time, fn func(t time.Time, id string, v []byte) error) error {
	lo := ix.key(group, from, "")
	hi := ix.key(group, to.Add(1), "")
	skip := 1 + len(group)
	return b.ScanRange(lo, hi, func(k, v []byte) error {
		t, id, err := statestore.ParseTimeKey(k, skip)
		if err != nil {
			return err
		}
		return fn(t, id, v)
	})
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
