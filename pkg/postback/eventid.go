package postback

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"net/url"
	"time"

	"github.com/adtrack/postback/pkg/money"
)

// maxMMPEventID bounds the MMP's own id so that "<mmp>:rejected:<id>" stays
// within the 256 bytes the event schemas allow.
const maxMMPEventID = 200

// idInput holds the fields that identify a postback when the MMP sends no
// id of its own. All of them are normalized values, so the same postback
// sent as a GET template or a JSON body, with its parameters in any order,
// with or without the token, hashes alike; ReceivedAt is left out on purpose
// so retries (minutes or a day apart) keep their id.
type idInput struct {
	mmp, kind                           string
	appID, clickID                      string
	idfa, gaid, idfv, androidID, mmpDev string
	name, value, currency               string
	when                                time.Time // the MMP's time of the install or event
	revenue                             money.Amount
}

// hashEventID returns the first 16 bytes of the SHA-256 of the identifying
// fields, hex-encoded (32 characters). Each field is written with a tag and
// its length, so no two different inputs encode alike.
func hashEventID(in *idInput) string {
	var buf [384]byte
	b := buf[:0]
	for i, s := range [...]string{in.mmp, in.kind, in.appID, in.clickID, in.idfa, in.gaid,
		in.idfv, in.androidID, in.mmpDev, in.name, in.value, in.currency} {
		b = append(b, byte(i))
		b = binary.AppendUvarint(b, uint64(len(s)))
		b = append(b, s...)
	}
	b = append(b, 0xF0)
	b = binary.BigEndian.AppendUint64(b, uint64(in.when.Unix()))
	b = binary.BigEndian.AppendUint32(b, uint32(in.when.Nanosecond()))
	b = append(b, 0xF1)
	b = binary.BigEndian.AppendUint64(b, uint64(in.revenue.Micros()))
	sum := sha256.Sum256(b)
	var out [32]byte
	hex.Encode(out[:], sum[:16])
	return string(out[:])
}

// mmpEventID is the event id built from the MMP's own id. Rejected-install
// callbacks get their own namespace so that they never collide with the
// install they reject.
func mmpEventID(mmp string, kind Kind, id string) string {
	if kind == KindRejected {
		return mmp + ":rejected:" + id
	}
	return mmp + ":" + id
}

// CarriedEventID returns the event id a postback would get from the MMP's
// own id parameter (Branch `id`, generic `event_id`, ...), or "" when the
// postback carries none usable (absent, given twice with different values,
// or too long). It never fails, so a postback refused for any other reason
// can still be found by the MMP's id in the rejected topic.
func CarriedEventID(mmp string, kind Kind, params url.Values) string {
	sp := specFor(mmp)
	if sp == nil {
		return ""
	}
	var fv fieldValues
	_ = sp.collect(params, &fv) // fv is filled even when another field conflicts
	s := fv[fEventID]
	if !s.set || s.conflict || len(s.val) > maxMMPEventID {
		return ""
	}
	return mmpEventID(sp.name, kind, s.val)
}
