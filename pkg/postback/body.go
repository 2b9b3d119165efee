package postback

import (
	"bytes"
	stdjson "encoding/json"
	"errors"
	"mime"
	"net/url"
	"strconv"
	"unicode/utf8"

	"github.com/segmentio/encoding/json"
)

// maxJSONDepth bounds how deeply a JSON body may nest; MMP payloads nest two
// or three levels (Branch: last_attributed_touch_data.~campaign).
const maxJSONDepth = 32

// BodyParams turns a POST body into parameters.
//
//   - An empty (or all white space) body gives no parameters, whatever the
//     content type: GET requests have none.
//   - application/json (also text/json and */*+json): the body must be one
//     JSON object. Nested objects are flattened with dots
//     ({"user_data":{"idfa":"x"}} gives "user_data.idfa"); array elements
//     are indexed the same way ({"a":["x","y"]} gives "a.0" and "a.1");
//     numbers keep their exact text ("4.990" stays "4.990", never a float);
//     booleans become "true"/"false"; null is absent (no parameter). A key
//     repeated in the object gives a repeated parameter, which Parse refuses
//     if the values differ.
//   - application/x-www-form-urlencoded: as in a query string.
//   - No content type: a body starting with "{" is read as JSON, any other
//     as a form (some senders omit the header).
//
// Any other content type is a *FieldError on "content-type" wrapping
// ErrUnsupportedContentType; a body that is not valid JSON (or a valid form)
// is a *FieldError on "body".
func BodyParams(contentType string, body []byte) (url.Values, error) {
	trimmed := bytes.TrimSpace(body)
	if len(trimmed) == 0 {
		return url.Values{}, nil
	}
	mediaType := ""
	if contentType != "" {
		mt, _, err := mime.ParseMediaType(contentType)
		if err != nil {
			return nil, &FieldError{Field: "content-type", Problem: "malformed content type " + quoteShort(contentType), Err: ErrUnsupportedContentType}
		}
		mediaType = mt
	} else if trimmed[0] == '{' {
		mediaType = "application/json"
	} else {
		mediaType = "application/x-www-form-urlencoded"
	}
	switch {
	case mediaType == "application/json", mediaType == "text/json", jsonSuffix(mediaType):
		return jsonParams(trimmed)
	case mediaType == "application/x-www-form-urlencoded":
		v, err := url.ParseQuery(string(trimmed))
		if err != nil {
			return nil, &FieldError{Field: "body", Problem: "not a valid form body: " + err.Error(), Err: err}
		}
		return v, nil
	}
	return nil, &FieldError{
		Field:   "content-type",
		Problem: "unsupported content type " + quoteShort(mediaType) + " (want application/json or application/x-www-form-urlencoded)",
		Err:     ErrUnsupportedContentType,
	}
}

func jsonSuffix(mt string) bool {
	const suffix = "+json"
	return len(mt) > len(suffix) && mt[len(mt)-len(suffix):] == suffix
}

// errNotObject is the body problem for JSON that is valid but not an object.
var errNotObject = errors.New("the JSON body must be an object")

// jsonFrame is an object or array being flattened: the name prefix of its
// members ("" at the top, "parent." below) and, for arrays, the next index.
type jsonFrame struct {
	prefix string
	array  bool
	next   int
}

// jsonParams flattens a JSON object with segmentio's tokenizer, which
// hands out numbers as their exact text and is several times faster than
// encoding/json's Token API (webhooks post kilobytes of JSON). The body is
// validated first, so the walk below only sees well-formed JSON.
func jsonParams(body []byte) (url.Values, error) {
	if !json.Valid(body) {
		return nil, jsonErr(jsonSyntax(body))
	}
	if body[0] != '{' {
		return nil, jsonErr(errNotObject)
	}
	// Every member has a ":"; sizing the map up front saves its growth.
	out := make(url.Values, bytes.Count(body, []byte{':'}))
	stack := make([]jsonFrame, 0, 8)
	key := ""
	tok := json.NewTokenizer(body)
	defer tok.Reset(nil) // returns the tokenizer's stack to its pool
	for tok.Next() {
		if tok.IsKey {
			k := tok.String()
			if replaced(tok.Value, k) {
				return nil, &FieldError{Field: "body", Problem: "a member name is not valid UTF-8", Err: ErrInvalidUTF8}
			}
			key = string(k)
			continue
		}
		name := ""
		if n := len(stack); n > 0 {
			top := &stack[n-1]
			if top.array {
				name = top.prefix + strconv.Itoa(top.next)
			} else {
				name = top.prefix + key
			}
		}
		switch tok.Delim {
		case '{', '[':
			if len(stack) > 0 {
				if len(stack) >= maxJSONDepth {
					return nil, jsonErr(errors.New("nested deeper than " + strconv.Itoa(maxJSONDepth) + " levels"))
				}
				name += "."
			}
			stack = append(stack, jsonFrame{prefix: name, array: tok.Delim == '['})
			continue
		case '}', ']':
			stack = stack[:len(stack)-1]
		case ':', ',':
			continue
		default:
			switch v := tok.Value; {
			case v.String():
				str := tok.String()
				if replaced(v, str) {
					return nil, &FieldError{Field: name, Problem: "is not valid UTF-8 (bad bytes or an unpaired surrogate escape)", Err: ErrInvalidUTF8}
				}
				out[name] = append(out[name], string(str))
			case v.True():
				out[name] = append(out[name], "true")
			case v.False():
				out[name] = append(out[name], "false")
			case v.Number():
				out[name] = append(out[name], string(v))
			}
			// null: the parameter is absent.
		}
		if n := len(stack); n > 0 && stack[n-1].array {
			stack[n-1].next++ // a value or a nested object/array ended
		}
	}
	if tok.Err != nil {
		return nil, jsonErr(tok.Err)
	}
	return out, nil
}

// replaced reports whether the tokenizer put U+FFFD in str, the unescaped
// form of the JSON string raw, for bytes that are not UTF-8 or an unpaired
// surrogate escape: the value would be silently changed. The check runs
// only when str holds U+FFFD, which sent text rarely does.
func replaced(raw json.RawValue, str []byte) bool {
	if !bytes.ContainsRune(str, utf8.RuneError) {
		return false
	}
	if !utf8.Valid(raw) {
		return true
	}
	// raw is valid UTF-8: each U+FFFD in str was sent as such, or as the
	// escape that spells it, or came from a bad surrogate escape.
	rep := []byte(string(utf8.RuneError))
	sent := bytes.Count(raw, rep)
	for i := 0; i < len(raw)-1; i++ {
		if raw[i] != '\\' {
			continue
		}
		if raw[i+1] == 'u' && i+6 <= len(raw) && bytes.EqualFold(raw[i+2:i+6], []byte("fffd")) {
			sent++
		}
		i++ // skip the escaped character: in \\\\ufffd the u is text
	}
	return bytes.Count(str, rep) != sent
}

// jsonSyntax explains why a body is not valid JSON; encoding/json's errors
// say where, which helps whoever configured the webhook.
func jsonSyntax(body []byte) error {
	var v any
	if err := stdjson.Unmarshal(body, &v); err != nil {
		return err
	}
	return errors.New("invalid JSON")
}

func jsonErr(err error) error {
	if errors.Is(err, errNotObject) {
		return &FieldError{Field: "body", Problem: "must be a JSON object", Err: err}
	}
	return &FieldError{Field: "body", Problem: "not valid JSON: " + err.Error(), Err: err}
}

// MergeParams merges the query string and the body parameters of one
// request into the parameters Parse reads. The body wins: a name present in
// both takes the body's values only. The body is the MMP's payload (Push
// API, webhooks), while the query carries what we put in the URL template,
// so on a clash the payload is the fresher word. Neither input is modified.
func MergeParams(query, body url.Values) url.Values {
	out := make(url.Values, len(query)+len(body))
	for k, v := range query {
		out[k] = v
	}
	for k, v := range body {
		out[k] = v
	}
	return out
}
