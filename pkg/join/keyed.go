package join

import (
	"errors"
	"fmt"
	"time"

	"github.com/adtrack/postback/pkg/statestore"
)

// keyed is a keyed index expired by sweeping rather than by an expiry
// index: the entry p+id holds the entry's time (8 bytes) and its value, so
// an entry is one write where a tindex makes it two (seen ids, last
// installs: the install-side state). Lookups ignore entries older than the
// bound they are given, so expiry only reclaims space: each expiry run of a
// partition visits the next entries from where its last run stopped, four
// for every entry written since, and deletes those past their window. A
// pass over the whole index therefore ends before it grows by a quarter,
// and no entry outlives its window by more than such a pass.
//
// old is the tindex an earlier version kept the same entries in: read
// while it holds entries (checked once per batch), expired as before.
type keyed struct {
	p   byte
	old tindex
	// oldTimed: old's values start with the entry's time, as ours do;
	// else they are bare (seen ids) and valid while present.
	oldTimed bool
	parts    map[int32]*keyedPart
	had      occupancy // of old
}

// keyedPart is a partition's sweep position: memory only, so a restarted
// process starts its sweeps from the index's first key.
type keyedPart struct {
	next []byte // key the next sweep starts from; nil: the index's start
	puts int    // entries written since the last sweep
}

// sweepMin is the fewest entries a sweep visits, so a quiet partition
// still gets through its index.
const sweepMin = 1024

func newKeyed(p byte, old tindex, oldTimed bool) keyed {
	return keyed{p: p, old: old, oldTimed: oldTimed, parts: map[int32]*keyedPart{}, had: occupancy{}}
}

func (k keyed) key(id []byte) []byte { return append([]byte{k.p}, id...) }

func (k keyed) part(p int32) *keyedPart {
	kp := k.parts[p]
	if kp == nil {
		kp = &keyedPart{}
		k.parts[p] = kp
	}
	return kp
}

// put stores v under id with time t, replacing any entry of id.
func (k keyed) put(b *statestore.Batch, p int32, id []byte, t time.Time, v []byte) {
	b.Set(k.key(id), append(statestore.AppendTime(make([]byte, 0, 8+len(v)), t), v...))
	k.part(p).puts++
}

// get returns the entry of id if its time is at or after since: its time
// and value. An entry of the old index has no time when !oldTimed; since
// is returned for it.
func (k keyed) get(b *statestore.Batch, p int32, id []byte, since time.Time) (time.Time, []byte, bool, error) {
	v, ok, err := b.Get(k.key(id))
	if err != nil {
		return time.Time{}, nil, false, err
	}
	if ok {
		if len(v) < 8 {
			return time.Time{}, nil, false, fmt.Errorf("entry %q: %w", id, errShort)
		}
		if t := decodeTime(v); !t.Before(since) {
			return t, v[8:], true, nil
		}
	}
	if had, err := k.had.mayHold(k.old.p, p, b); err != nil || !had {
		return time.Time{}, nil, false, err
	}
	if v, ok, err = k.old.get(b, id); err != nil || !ok {
		return time.Time{}, nil, false, err
	}
	if !k.oldTimed {
		return since, v, true, nil
	}
	if len(v) < 8 {
		return time.Time{}, nil, false, fmt.Errorf("entry %q of the earlier layout: %w", id, errShort)
	}
	if t := decodeTime(v); !t.Before(since) {
		return t, v[8:], true, nil
	}
	return time.Time{}, nil, false, nil
}

// expire sweeps partition p's next entries, deleting those before
// `before`, and expires the old index. It returns how many entries it
// removed.
func (k keyed) expire(b *statestore.Batch, p int32, before time.Time) (int, error) {
	n, err := k.old.expire(b, before, nil)
	if err != nil {
		return 0, err
	}
	kp := k.part(p)
	budget := max(sweepMin, 4*kp.puts)
	kp.puts = 0
	lo, hi := kp.next, []byte{k.p + 1}
	if lo == nil {
		lo = []byte{k.p}
	}
	var dead [][]byte
	var next []byte // nil: the end was reached, start over next time
	visited := 0
	err = b.ScanRange(lo, hi, func(key, v []byte) error {
		if len(v) < 8 {
			return fmt.Errorf("entry %q: %w", key, errShort)
		}
		if decodeTime(v).Before(before) {
			dead = append(dead, append([]byte{}, key...))
		}
		if visited++; visited == budget {
			next = append(append([]byte{}, key...), 0) // the key right after this one
			return errStop
		}
		return nil
	})
	if err != nil && !errors.Is(err, errStop) {
		return 0, err
	}
	kp.next = next
	for _, key := range dead {
		b.Delete(key)
	}
	return n + len(dead), b.Err()
}
