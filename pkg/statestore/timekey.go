package statestore

import (
	"encoding/binary"
	"fmt"
	"time"
)

// timeLen is the encoded size of a time in a key.
const timeLen = 8

// AppendTime appends t as 8 big-endian bytes of its Unix nanoseconds with
// the sign bit flipped, so that byte order is time order across 1970 too.
// Unix nanoseconds cover 1678-2262; times outside wrap (time.UnixNano).
func AppendTime(dst []byte, t time.Time) []byte {
	return binary.BigEndian.AppendUint64(dst, uint64(t.UnixNano())^(1<<63))
}

// DecodeTime reads a time written by [AppendTime] from the first 8 bytes of
// b, which must hold them.
func DecodeTime(b []byte) time.Time {
	return time.Unix(0, int64(binary.BigEndian.Uint64(b)^(1<<63))).UTC()
}

// TimeKey returns prefix + time + id, for indexes expired by time: keys of
// one prefix sort by time, then id, so everything older than a time is one
// key range ([ExpireBefore]). The prefix must not be a prefix of another
// index's prefix (use fixed-length or terminated prefixes), or one index's
// expiry range would cut into the other.
func TimeKey(prefix []byte, t time.Time, id string) []byte {
	out := make([]byte, 0, len(prefix)+timeLen+len(id))
	out = append(out, prefix...)
	out = AppendTime(out, t)
	return append(out, id...)
}

// ParseTimeKey splits a key built by [TimeKey] with a prefix of prefixLen bytes.
func ParseTimeKey(key []byte, prefixLen int) (t time.Time, id string, err error) {
	if len(key) < prefixLen+timeLen {
		return time.Time{}, "", fmt.Errorf("statestore: time key of %d bytes, want at least %d", len(key), prefixLen+timeLen)
	}
	return DecodeTime(key[prefixLen:]), string(key[prefixLen+timeLen:]), nil
}

// ExpireBefore deletes, in b, every key prefix+time+id with time strictly
// before t: the range [prefix, prefix+time(t)). A key exactly at t stays,
// matching the rules' inclusive window ends. Each deleted key becomes a
// changelog tombstone ([Batch.DeleteRange]). It returns how many keys it
// deleted.
func ExpireBefore(b *Batch, prefix []byte, t time.Time) int {
	end := AppendTime(append([]byte{}, prefix...), t)
	return b.DeleteRange(prefix, end)
}

// ExpireIndex is ExpireBefore for a secondary expiry index: every entry of
// the index older than t is deleted together with the key stored as its
// value (the primary entry it expires, e.g. the click stored by click id).
// An empty value deletes only the index entry. It returns how many index
// entries it expired.
func ExpireIndex(b *Batch, prefix []byte, t time.Time) int {
	end := AppendTime(append([]byte{}, prefix...), t)
	var primaries [][]byte
	if b.done {
		b.fail(ErrBatchDone)
		return 0
	}
	err := scanRange(b.pb, userKey(prefix), userKey(end), func(_, v []byte) error {
		if len(v) > 0 {
			primaries = append(primaries, append([]byte{}, v...))
		}
		return nil
	})
	if err != nil {
		b.fail(err)
		return 0
	}
	for _, k := range primaries {
		b.Delete(k)
	}
	return b.DeleteRange(prefix, end)
}
