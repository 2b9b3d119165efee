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

// checkChars skips clean ASCII eight bytes at a time, scans the rest byte
// by byte and hands anything past ASCII to the rune loop: the usual
// all-ASCII value costs a fraction of a pass and no allocation (Parse
// screens every value of every postback).
func checkChars(s string, text bool) error {
	i := 0
	for ; i+8 <= len(s); i += 8 {
		if !clean8(s[i : i+8]) {
			break
		}
	}
	for ; i < len(s); i++ {
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

// clean8 reports whether the 8 bytes of w are all printable ASCII (0x20 to
// 0x7e), testing them as one word: no byte below 0x20, none equal to 0x7f,
// none with the high bit (the bit tricks of "hasless" and "haszero"; they
// never miss a byte, and a false alarm only sends the word to the slow path).
func clean8(w string) bool {
	x := uint64(w[0]) | uint64(w[1])<<8 | uint64(w[2])<<16 | uint64(w[3])<<24 |
		uint64(w[4])<<32 | uint64(w[5])<<40 | uint64(w[6])<<48 | uint64(w[7])<<56
	const lo, hi = 0x0101010101010101, 0x8080808080808080
	ctl := (x - 0x20*lo) &^ x & hi
	y := x ^ 0x7f*lo
	del := (y - lo) &^ y & hi
	return ctl|del|x&hi == 0
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
