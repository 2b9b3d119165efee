package postback

import (
	"errors"
	"fmt"
	"unicode/utf8"
)

// ErrControlChar is wrapped by the error for a value holding a control
// character (U+0000 to U+001F, U+007F to U+009F) where none may be.
var ErrControlChar = errors.New("control character")

// ErrInvalidUTF8 is wrapped by the error for a value that is not valid
// UTF-8: stored as it is, the JSON encoder would replace the bad bytes with
// U+FFFD and the record would hold something nobody sent.
var ErrInvalidUTF8 = errors.New("invalid UTF-8")

// CheckIdentifier accepts s as an identifier (an app, click, campaign,
// event, device, site or creative id, a media source, an event name...):
// valid UTF-8 with no control character.
func CheckIdentifier(s string) error { return checkChars(s, false) }

// CheckText accepts s as free text (a user agent, a campaign name, an event
// value, a reject reason): valid UTF-8 with no control character other than
// tab, line feed and carriage return.
func CheckText(s string) error { return checkChars(s, true) }

// checkChars scans ASCII byte by byte and hands the rest to the rune loop,
// so the usual all-ASCII value costs one pass and no allocation.
func checkChars(s string, text bool) error {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= utf8.RuneSelf {
			return checkRunes(s, i, text)
		}
		if (c < 0x20 || c == 0x7f) && !(text && (c == '\t' || c == '\n' || c == '\r')) {
			return controlErr(rune(c), i)
		}
	}
	return nil
}

func checkRunes(s string, from int, text bool) error {
	for i := from; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			return &valueError{msg: fmt.Sprintf("is not valid UTF-8 (byte 0x%02x at offset %d)", s[i], i), kind: ErrInvalidUTF8}
		case r < 0x20 && !(text && (r == '\t' || r == '\n' || r == '\r')), r >= 0x7f && r <= 0x9f:
			return controlErr(r, i)
		}
		i += size
	}
	return nil
}

func controlErr(r rune, at int) error {
	return &valueError{msg: fmt.Sprintf("holds a control character (U+%04X at offset %d)", r, at), kind: ErrControlChar}
}

// textFields are the free-text fields; every other field is held to
// CheckIdentifier before its own normalizer reads it (times, amounts and
// UUIDs would refuse such bytes anyway, with a less precise reason).
var textFields = [numFields]bool{
	fUA: true, fCampaignName: true, fEventValue: true, fRejectReason: true, fRejectReasonValue: true,
}

// screen refuses, in field order (so the error does not depend on the
// parameters' order), the first collected value with a control character or
// invalid UTF-8.
func (fv *fieldValues) screen() error {
	for f := range fv {
		s := &fv[f]
		if !s.set {
			continue
		}
		if err := checkChars(s.val, textFields[f]); err != nil {
			return fieldErr(s.key, err)
		}
	}
	return nil
}
