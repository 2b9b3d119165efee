package forwarder

import (
	"bytes"

	"github.com/segmentio/asm/ascii"
)

// rawSpan returns the bytes [from, to) of value that hold its top-level
// "raw" member with one comma next to it, and true; or false when value is
// not an object holding such a member that can be cut out safely. Decoding
// the rest is about a third of the work: even skipped, the raw request's
// ~1 KB of escaped query is parsed by the decoder. The cut is only a
// shortcut: the record is still decoded with Raw shadowed, so a raw member
// left in place (escaped key, unusual value) is skipped all the same.
//
// The members before and after are left for the decoder to check. The cut
// member's value must be in a conservative subset of JSON (objects,
// arrays, printable ASCII strings with valid escapes, null, true, false):
// anything else is left to the decoder, so the cut never makes an invalid
// record decode.
func rawSpan(value []byte) (from, to int, ok bool) {
	i := skipSpace(value, 0)
	if i >= len(value) || value[i] != '{' {
		return 0, 0, false
	}
	i++
	prevSep := -1 // the comma before the current member; -1 for the first
	for {
		keyStart := skipSpace(value, i)
		keyEnd, valStart, keyOK := skipKey(value, keyStart, false)
		if !keyOK {
			return 0, 0, false // "}" of an empty object, or not JSON
		}
		isRaw := string(value[keyStart:keyEnd]) == `"raw"`
		valEnd, valOK := skipValue(value, valStart, isRaw, 0)
		if !valOK {
			return 0, 0, false
		}
		i = skipSpace(value, valEnd)
		if i >= len(value) {
			return 0, 0, false
		}
		sep := value[i]
		if sep != ',' && sep != '}' {
			return 0, 0, false
		}
		if isRaw {
			switch {
			case sep == ',': // the member and its comma, if a member follows
				if next := skipSpace(value, i+1); next >= len(value) || value[next] != '"' {
					return 0, 0, false
				}
				return keyStart, i + 1, true
			case prevSep >= 0: // the last member: the comma before it
				return prevSep, valEnd, true
			}
			return keyStart, valEnd, true
		}
		if sep == '}' {
			return 0, 0, false // no raw member
		}
		prevSep = i
		i++
	}
}

// maxCutDepth bounds the nesting the cut follows; deeper values are left
// to the decoder.
const maxCutDepth = 16

// skipValue returns the index after the JSON value starting at i. strict
// (the value to cut) accepts only the conservative subset rawSpan
// documents; otherwise numbers and literals are scanned loosely, the
// decoder checking them later.
func skipValue(b []byte, i int, strict bool, depth int) (int, bool) {
	if i >= len(b) || depth > maxCutDepth {
		return 0, false
	}
	switch c := b[i]; c {
	case '"':
		return skipString(b, i, strict)
	case '{', '[':
		closing := byte('}')
		if c == '[' {
			closing = ']'
		}
		i = skipSpace(b, i+1)
		if i < len(b) && b[i] == closing {
			return i + 1, true
		}
		for {
			if c == '{' {
				var ok bool
				if _, i, ok = skipKey(b, i, strict); !ok {
					return 0, false
				}
			}
			end, ok := skipValue(b, i, strict, depth+1)
			if !ok {
				return 0, false
			}
			i = skipSpace(b, end)
			if i >= len(b) {
				return 0, false
			}
			if b[i] == closing {
				return i + 1, true
			}
			if b[i] != ',' {
				return 0, false
			}
			i = skipSpace(b, i+1)
		}
	}
	if strict {
		for _, lit := range []string{"null", "true", "false"} {
			if len(b)-i >= len(lit) && string(b[i:i+len(lit)]) == lit {
				return i + len(lit), true
			}
		}
		return 0, false
	}
	start := i
	for i < len(b) && isScalarByte(b[i]) {
		i++
	}
	return i, i > start
}

// skipKey returns, for the object member whose key starts at i, the index
// after its key and the index of its value (past the colon and spaces).
func skipKey(b []byte, i int, strict bool) (keyEnd, valStart int, ok bool) {
	if i >= len(b) || b[i] != '"' {
		return 0, 0, false
	}
	if keyEnd, ok = skipString(b, i, strict); !ok {
		return 0, 0, false
	}
	i = skipSpace(b, keyEnd)
	if i >= len(b) || b[i] != ':' {
		return 0, 0, false
	}
	return keyEnd, skipSpace(b, i+1), true
}

// isScalarByte reports whether c can be part of a number or a literal.
func isScalarByte(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '-' || c == '+' || c == '.'
}

// skipString returns the index after the string starting at b[i] == '"'.
// strict accepts printable ASCII and valid escapes only. Quotes and
// backslashes are found with bytes.IndexByte: a raw query is a kilobyte
// with an escape every few dozen bytes.
func skipString(b []byte, i int, strict bool) (int, bool) {
	start, j := i+1, i+1
	for {
		k := bytes.IndexByte(b[j:], '"')
		if k < 0 {
			return 0, false
		}
		j += k
		n := 0 // backslashes right before: an odd count escapes the quote
		for p := j - 1; p >= start && b[p] == '\\'; p-- {
			n++
		}
		if n%2 == 0 {
			break
		}
		j++
	}
	if strict && !strictContent(b[start:j]) {
		return 0, false
	}
	return j + 1, true
}

// strictContent reports whether a string's content is printable ASCII
// whose escapes are all valid and none a surrogate half (left to the
// decoder).
func strictContent(s []byte) bool {
	if !ascii.ValidPrint(s) {
		return false
	}
	for {
		k := bytes.IndexByte(s, '\\')
		if k < 0 {
			return true
		}
		if k+1 >= len(s) {
			return false
		}
		switch s[k+1] {
		case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
			s = s[k+2:]
		case 'u':
			if k+5 >= len(s) {
				return false
			}
			if !isHex(s[k+2]) || !isHex(s[k+3]) || !isHex(s[k+4]) || !isHex(s[k+5]) || s[k+2]|0x20 == 'd' && s[k+3] >= '8' {
				return false
			}
			s = s[k+6:]
		default:
			return false
		}
	}
}

func isHex(c byte) bool { return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F' }

// skipSpace returns the index of the first byte at or after i that is not
// JSON whitespace.
func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}
