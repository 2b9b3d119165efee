package event

import "github.com/google/uuid"

// Name-based ids of clicks and impressions sent with an idempotency key
// (docs/ingest.md, "Idempotency keys"). Ingest mints a UUIDv7 for every
// other touch; a touch that names a key gets a UUIDv5 of its kind, campaign
// and key instead, so a retry of the same request carries the same id, and
// the sink and attribution drop the repeat (docs/sink.md, "Repeated touch
// ids"). The version digit tells the two apart: only these ids are looked
// for as repeats.
var (
	clickKeySpace      = uuid.MustParse("6f1f0c4e-2b0a-5d57-9a3e-0c8e3a1d7b21")
	impressionKeySpace = uuid.MustParse("0b7d3c52-8e4f-5a16-b5a9-2f6d1e9c4a83")
)

// KeyedClickID is the click id ingest derives from a client's idempotency
// key: the same campaign and key give the same id, another campaign another
// one (campaign ids hold no "/", so the name is unambiguous).
func KeyedClickID(campaignID, key string) string {
	return uuid.NewSHA1(clickKeySpace, []byte(campaignID+"/"+key)).String()
}

// KeyedImpressionID is KeyedClickID for impressions.
func KeyedImpressionID(campaignID, key string) string {
	return uuid.NewSHA1(impressionKeySpace, []byte(campaignID+"/"+key)).String()
}

// IsKeyedTouchID reports whether id has the form of a keyed click or
// impression id: a canonical (lower-case, hyphenated) UUID of version 5.
// ClickHouse's touch_keys views select a superset of these (a 36-character
// id with '5' at the version position), so every id this accepts is in
// touch_keys once loaded.
func IsKeyedTouchID(id string) bool {
	if len(id) != 36 || id[14] != '5' {
		return false
	}
	switch id[19] {
	case '8', '9', 'a', 'b':
	default:
		return false
	}
	for i := 0; i < 36; i++ {
		c := id[i]
		switch i {
		case 8, 13, 18, 23:
			if c != '-' {
				return false
			}
		default:
			if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
				return false
			}
		}
	}
	return true
}
