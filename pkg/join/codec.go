package join

import (
	"encoding/binary"
	"errors"
	"fmt"
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

var errShort = errors.New("truncated touch entry")

// appendTouch encodes what a stage keeps of a touch: its time and the
// fields the rules credit (media source, placement, currency), with the app
// id when the key does not already hold it. Varints and length-prefixed
// strings, no field names: a stored click costs ~40 bytes plus its key.
func appendTouch(dst []byte, t *event.Touch, withApp bool) []byte {
	dst = binary.AppendVarint(dst, t.Time.UnixNano())
	if withApp {
		dst = appendString(dst, t.AppID)
	}
	for _, s := range [...]string{t.MediaSource, t.CampaignID, t.AdsetID, t.CreativeID, t.SiteID, t.SubSiteID, t.Currency} {
		dst = appendString(dst, s)
	}
	return dst
}

// decodeTouch is the inverse of appendTouch.
func decodeTouch(b []byte, t *event.Touch, withApp bool) error {
	ns, n := binary.Varint(b)
	if n <= 0 {
		return errShort
	}
	b = b[n:]
	t.Time = time.Unix(0, ns).UTC()
	fields := [...]*string{&t.AppID, &t.MediaSource, &t.CampaignID, &t.AdsetID, &t.CreativeID, &t.SiteID, &t.SubSiteID, &t.Currency}
	start := 1
	if withApp {
		start = 0
	}
	for _, f := range fields[start:] {
		l, n := binary.Uvarint(b)
		if n <= 0 || uint64(len(b)-n) < l {
			return errShort
		}
		*f = string(b[n : n+int(l)])
		b = b[n+int(l):]
	}
	if len(b) != 0 {
		return fmt.Errorf("touch entry has %d trailing bytes", len(b))
	}
	return nil
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
