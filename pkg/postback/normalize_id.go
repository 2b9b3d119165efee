package postback

import "errors"

// ErrNotUUID is returned for an advertising id that is not a UUID.
var ErrNotUUID = errors.New("not a UUID")

// maxIDLen bounds the identifiers the event schemas cap at 256 bytes
// (app_id, campaign_id, event_id) and our click ids, which are short: a
// longer one cannot be ours.
const maxIDLen = 256

// zeroUUID is what iOS (limit ad tracking, no ATT consent) and opted-out
// Android devices report instead of an advertising id.
const zeroUUID = "00000000-0000-0000-0000-000000000000"

// NormalizeAdID canonicalizes an IDFA or GAID to the lower-case
// 8-4-4-4-12 form. It accepts any letter case and the 32-hex-digit form
// without hyphens (Tenjin sends that). The all-zero id means "no id" and
// yields "" with no error.
func NormalizeAdID(s string) (string, error) {
	var buf [36]byte
	switch {
	case len(s) == 36 && s[8] == '-' && s[13] == '-' && s[18] == '-' && s[23] == '-':
		copy(buf[:], s)
	case len(s) == 32:
		copy(buf[0:8], s[0:8])
		copy(buf[9:13], s[8:12])
		copy(buf[14:18], s[12:16])
		copy(buf[19:23], s[16:20])
		copy(buf[24:36], s[20:32])
		buf[8], buf[13], buf[18], buf[23] = '-', '-', '-', '-'
	default:
		return "", notUUID(s)
	}
	// Branch-free over the 32 digits: every valid hex digit, lower-cased by
	// the table, has bit 0x20 set, and invalid bytes map to 0, so one AND
	// tells whether all were valid; an OR of the differences tells whether
	// any was upper case. (Branchy per-character tests cost 10x on ids,
	// which mix digits and letters unpredictably.)
	valid, changed := byte(0x20), byte(0)
	for _, seg := range uuidDigits {
		for i := seg[0]; i < seg[1]; i++ {
			l := hexLower[buf[i]]
			valid &= l
			changed |= l ^ buf[i]
			buf[i] = l
		}
	}
	switch {
	case valid == 0:
		return "", notUUID(s)
	case string(buf[:]) == zeroUUID:
		return "", nil
	case changed == 0 && len(s) == 36:
		return s, nil // already canonical: no allocation
	}
	return string(buf[:]), nil
}

// uuidDigits are the [start, end) ranges of the hex digits of a UUID.
var uuidDigits = [5][2]uint8{{0, 8}, {9, 13}, {14, 18}, {19, 23}, {24, 36}}

// hexLower maps hex digits to their lower-case form and every other byte to 0.
var hexLower = func() (t [256]byte) {
	for c := '0'; c <= '9'; c++ {
		t[c] = byte(c)
	}
	for c := 'a'; c <= 'f'; c++ {
		t[c], t[c-'a'+'A'] = byte(c), byte(c)
	}
	return t
}()

func notUUID(s string) error {
	return &valueError{msg: quoteShort(s) + " is " + ErrNotUUID.Error(), kind: ErrNotUUID}
}

// NormalizeVendorID canonicalizes an IDFV: a UUID-shaped value becomes lower
// case with hyphens (so the same device joins whatever case the MMP used);
// anything else is kept as sent. The all-zero UUID yields "".
func NormalizeVendorID(s string) string {
	id, err := NormalizeAdID(s)
	if err != nil {
		return s
	}
	return id
}

// NormalizeAppID returns the app id in the form the pipeline joins on:
// bundle ids and package names as sent, App Store ids as "id<digits>"
// (AppsFlyer's form; Singular's {PUBLIC_ID} and some Adjust apps send bare
// digits). Longer than 256 bytes is an error: the event schema refuses it.
func NormalizeAppID(s string) (string, error) {
	if len(s) > 2 && (s[0] == 'I' || s[0] == 'i') && (s[1] == 'D' || s[1] == 'd') && allDigits(s[2:]) {
		s = s[2:] // "ID123" is spelt "id123" below
	}
	if s != "" && allDigits(s) {
		s = "id" + s
	}
	if len(s) > maxIDLen { // after the prefix, which the schema counts too
		return "", errTooLong
	}
	return s, nil
}

// ErrTooLong is returned for an identifier longer than the schemas allow.
var ErrTooLong = errors.New("longer than 256 bytes")

var errTooLong = &valueError{msg: ErrTooLong.Error(), kind: ErrTooLong}
