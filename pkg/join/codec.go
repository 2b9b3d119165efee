package join

import (
	"encoding/binary"
	"errors"
	"time"

	"github.com/adtrack/postback/pkg/event"
)

// Record tags of the JSON values earlier versions wrote on the internal
// repartition topics (the rest is the JSON of the tagged type); they are
// still decoded so that such records drain after an upgrade. Current
// values are binary (wire.go).
const (
	tagClick      byte = 'c' // event.Click
	tagImpression byte = 'i' // event.Impression
	tagInstall    byte = 'I' // pending: an install and the candidates found so far
	tagAttributed byte = 'A' // event.AttributedInstall, Raw stripped
)

// pending is an install travelling between stages with the candidates the
// stages before found for it (docs/attribution-design.md: no stage needs
// another's state).
type pending struct {
	Install          event.Install      `json:"install"`
	ByClickID        *event.Click       `json:"by_click_id,omitempty"`
	ByDevice         []event.Click      `json:"by_device,omitempty"`
	Impressions      []event.Impression `json:"impressions,omitempty"`
	DeviceClickCount int                `json:"device_click_count,omitempty"`
	PriorInstall     *time.Time         `json:"prior_install,omitempty"`

	// raw is the install's JSON as ingest wrote it, when Install holds
	// only the fields a binary value's header carries (decodePending).
	raw []byte
}

// errShort is a state value too short for the time it starts with.
var errShort = errors.New("truncated state value")

// appendTouch encodes what a stage keeps of a touch: its time and the
// fields the rules credit (media source, placement, currency), with the app
// id when the key does not already hold it. Varints and length-prefixed
// strings, no field names: a stored click costs ~40 bytes plus its key.
func appendTouch(dst []byte, t *event.Touch, withApp bool) []byte {
	dst = binary.AppendVarint(dst, t.Time.UnixNano())
	fields := touchFields(t)
	for _, s := range fields[skipApp(withApp):] {
		dst = appendString(dst, *s)
	}
	return appendOptionalSubs(dst, &t.PublisherSubs)
}

// decodeTouch is the inverse of appendTouch.
func decodeTouch(b []byte, t *event.Touch, withApp bool) error {
	r := wireReader{b: b}
	r.touch(t, withApp)
	r.optionalSubs(&t.PublisherSubs)
	return r.end()
}

// touchFields are the string fields appendTouch keeps, the app id first.
func touchFields(t *event.Touch) [8]*string {
	return [...]*string{&t.AppID, &t.MediaSource, &t.CampaignID, &t.AdsetID, &t.CreativeID, &t.SiteID, &t.SubSiteID, &t.Currency}
}

// skipApp is how many of touchFields an entry leaves out.
func skipApp(withApp bool) int {
	if withApp {
		return 0
	}
	return 1
}

func appendString(dst []byte, s string) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(s)))
	return append(dst, s...)
}

// joinKey builds a key from parts, each prefixed with its length, so that
// no two part lists give the same bytes (ids and user agents may contain any
// byte) and a key of some leading parts is a prefix only of keys that share
// those parts exactly.
func joinKey(parts ...string) []byte {
	n := 0
	for _, p := range parts {
		n += len(p) + binary.MaxVarintLen16
	}
	out := make([]byte, 0, n)
	for _, p := range parts {
		out = appendString(out, p)
	}
	return out
}
