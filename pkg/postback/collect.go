package postback

import (
	"net/url"
	"strings"
	"unicode/utf8"
)

// slot is the value found for one canonical field.
type slot struct {
	key  string // the parameter name as the MMP sent it, for errors
	val  string // the value, trimmed of surrounding white space
	prio uint8  // the alias's rank in the MMP's table; lower wins
	unit TimeUnit
	set  bool
	// conflict: parameters of the winning rank disagree (a name repeated,
	// or spelt twice, with different values); key is then the smallest of
	// their names, so the error is the same whatever the map order.
	conflict bool
}

// fieldValues holds one slot per canonical field.
type fieldValues [numFields]slot

// collect resolves params through the MMP's aliases into fv. The outcome
// does not depend on the order of params or of their values: the alias
// ranked first in the table wins, and among parameters of that rank (a name
// repeated, or spelt "IDFA" and "idfa") equal values are fine while
// different ones are an error.
func (s *spec) collect(params url.Values, fv *fieldValues) error {
	conflicts := false
	for key, vals := range params {
		a, ok := s.aliases.get(key)
		if !ok {
			continue
		}
		val, found, conflict := pick(vals)
		if !found {
			continue
		}
		cur := &fv[a.field]
		switch {
		case !cur.set || a.prio < cur.prio:
			*cur = slot{key: key, val: val, prio: a.prio, unit: a.unit, set: true, conflict: conflict}
		case a.prio > cur.prio:
			continue
		default: // same rank: another spelling of the parameter
			cur.conflict = cur.conflict || conflict || cur.val != val
			if key < cur.key {
				cur.key, cur.val = key, val
			}
		}
		conflicts = conflicts || cur.conflict
	}
	if !conflicts {
		return nil
	}
	for f := range fv {
		if fv[f].conflict {
			return &FieldError{Field: fv[f].key, Problem: "given more than once with different values"}
		}
	}
	return nil
}

// pick returns the value of a parameter: absent values are skipped, and
// conflict reports repeats that disagree.
func pick(vals []string) (val string, found, conflict bool) {
	for _, v := range vals {
		if n := len(v); n > 0 && (v[0] <= ' ' || v[n-1] <= ' ' || v[0] >= utf8.RuneSelf || v[n-1] >= utf8.RuneSelf) {
			v = strings.TrimSpace(v) // only when an end may be space: most values have none
		}
		if absent(v) {
			continue
		}
		if found && v != val {
			conflict = true
			continue
		}
		val, found = v, true
	}
	return val, found, conflict
}

func hasUpper(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 'A' && s[i] <= 'Z' {
			return true
		}
	}
	return false
}

func lower(c byte) byte {
	if c >= 'A' && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}
