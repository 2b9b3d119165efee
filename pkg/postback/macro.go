package postback

import (
	"net/url"
	"strings"
)

// absent reports whether a (trimmed) value carries nothing: empty, a literal
// null, or a macro the MMP left unexpanded because it had no value for it.
// Such a parameter counts as not sent, never as malformed.
func absent(v string) bool {
	if v == "" {
		return true
	}
	switch v {
	case "null", "NULL", "Null", "undefined", "None", "(null)":
		return true
	}
	return isMacro(v)
}

// maxMacro bounds what can pass for a macro name; longer values are data.
const maxMacro = 160

// isMacro reports whether v is an unexpanded MMP macro: AppsFlyer "(idfa)",
// Adjust/Singular/Kochava "{idfa}" and "{cl?Net}", Tenjin "{{advertising_id}}",
// Branch "${(user_data.idfa)!}" and "<#if ...>", also when percent-encoded
// once more ("%7Bidfa%7D"). JSON objects ("{"a":1}") are not macros.
func isMacro(v string) bool {
	n := len(v)
	if n < 3 || n > maxMacro {
		return false
	}
	switch {
	case strings.HasPrefix(v, "${") && v[n-1] == '}':
		return true
	case strings.HasPrefix(v, "<#"):
		return true
	case strings.HasPrefix(v, "{{") && strings.HasSuffix(v, "}}") && n > 4:
		return macroName(v[2:n-2], true)
	case v[0] == '{' && v[n-1] == '}':
		return macroName(v[1:n-1], true)
	case v[0] == '(' && v[n-1] == ')':
		return macroName(v[1:n-1], false)
	case v[0] == '%':
		// An MMP that encodes its callback twice leaves "%7Bidfa%7D".
		if u, err := url.QueryUnescape(v); err == nil && u != v {
			return isMacro(u)
		}
	}
	return false
}

// macroName reports whether s looks like the inside of a macro. Braced
// macros may hold Singular's "cl?Net Name" and "NETWORK=Name" forms; the
// parenthesized AppsFlyer ones are plain names like "install-unix-ts".
func macroName(s string, braced bool) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9',
			c == '_', c == '-', c == '.':
		case braced && (c == '?' || c == '~' || c == '!' || c == '=' || c == '$' || c == ' '):
		default:
			return false
		}
	}
	return true
}
