package skan

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"
)

// fields reads typed values out of one JSON object.
type fields map[string]json.RawMessage

// object decodes a single JSON object with nothing after it.
func object(b []byte) (fields, error) {
	if !utf8.Valid(b) {
		return nil, fmt.Errorf("not UTF-8")
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var obj fields
	if err := dec.Decode(&obj); err != nil {
		return nil, fmt.Errorf("not a JSON object: %v", err)
	}
	if obj == nil {
		return nil, fmt.Errorf("not a JSON object")
	}
	if dec.More() {
		return nil, fmt.Errorf("data after the JSON object")
	}
	if _, err := dec.Token(); err == nil {
		return nil, fmt.Errorf("data after the JSON object")
	}
	return obj, nil
}

func (f fields) has(name string) bool {
	v, ok := f[name]
	return ok && string(v) != "null"
}

// str reads a string field of at most 256 bytes; required ones fail when
// absent or empty.
func (f fields) str(name string, required bool) (string, error) {
	return f.strMax(name, required, 256)
}

func (f fields) strMax(name string, required bool, max int) (string, error) {
	if !f.has(name) {
		if required {
			return "", fail(ReasonMissingField, name, "required")
		}
		return "", nil
	}
	var s string
	if err := json.Unmarshal(f[name], &s); err != nil {
		return "", fail(ReasonMalformed, name, "is not a string")
	}
	if required && s == "" {
		return "", fail(ReasonMissingField, name, "is empty")
	}
	if len(s) > max {
		return "", fail(ReasonBadField, name, "longer than %d bytes", max)
	}
	return s, nil
}

// integer reads a non-negative integer sent as a JSON number or a string
// of digits (relays re-encode): nil when absent.
func (f fields) integer(name string, required bool) (*int64, error) {
	if !f.has(name) {
		if required {
			return nil, fail(ReasonMissingField, name, "required")
		}
		return nil, nil
	}
	raw := string(f[name])
	if strings.HasPrefix(raw, `"`) {
		if err := json.Unmarshal(f[name], &raw); err != nil {
			return nil, fail(ReasonMalformed, name, "is not an integer")
		}
	}
	if raw == "" || len(raw) > 18 || strings.TrimLeft(raw, "0123456789") != "" {
		return nil, fail(ReasonMalformed, name, "%s is not a non-negative integer", quote(raw))
	}
	v, err := strconv.ParseInt(raw, 10, 64)
	if err != nil {
		return nil, fail(ReasonMalformed, name, "%s is not a non-negative integer", quote(raw))
	}
	return &v, nil
}

// boolean reads true/false, also as the strings "true"/"false" and the
// numbers 1/0 (Apple's early examples).
func (f fields) boolean(name string, required bool) (*bool, error) {
	if !f.has(name) {
		if required {
			return nil, fail(ReasonMissingField, name, "required")
		}
		return nil, nil
	}
	var v bool
	switch string(f[name]) {
	case "true", `"true"`, "1":
		v = true
	case "false", `"false"`, "0":
	default:
		return nil, fail(ReasonMalformed, name, "%s is not a boolean", quote(string(f[name])))
	}
	return &v, nil
}

func quote(s string) string {
	if len(s) > 40 {
		s = s[:40] + "..."
	}
	return strconv.Quote(s)
}
