package postback

import (
	"bytes"
	"errors"
	"net/url"
	"reflect"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/segmentio/encoding/json"

	"github.com/adtrack/postback/pkg/event"
)

// FuzzParse feeds arbitrary MMP, kind and query strings to Parse. It must
// never panic; every error must be a *FieldError; a success must hold one
// record whose strings are valid UTF-8 without control characters (free
// text: but tab, CR, LF), that encodes, validates against its topic's
// schema, and keeps its event id when the same parameters are parsed again
// later.
func FuzzParse(f *testing.F) {
	for _, mmp := range MMPs() {
		for _, kind := range []Kind{KindInstall, KindEvent, KindRejected} {
			if _, ok := findBlock(docBlocks(f, mmp), "template", kind); ok {
				f.Add(mmp, string(kind), templateParams(f, mmp, kind).Encode())
			}
		}
	}
	f.Add("adjust", "event", "app_id=com.a.b&created_at=1795858201&event_name=x&revenue=499&currency=eur")
	f.Add("branch", "install", "app_id=id1&event_timestamp=1795853553120&user_data.idfa=00000000-0000-0000-0000-000000000000")
	f.Add("tenjin", "install", "bundle_id=com.a.b&acquired_at_ms=1795853553120&advertising_id=6d92078a82464ba4ae5b76104861e7dc")
	f.Add("appsflyer", "rejected", "app_id=id1&install_unix_ts=1795853553&reject_reason=bots&is_rejected=1")
	f.Add("generic", "event", "app_id=a.b&event_time=2026-11-28+09:30:01.5%2B01:00&event_name=%F0%9F%92%B0&revenue=-0.0000005&currency=usd")
	f.Add("singular", "event", "app_id={LONGNAME}&utcm=1795858201&event=(x)&amount=1&currency=USD&click_id={cl?A B}")
	f.Add("kochava", "install", "app_id=%00%ff&event_time=1795853553&idfa=%7Bidfa%7D")
	// What a black-box run got stored: a NUL, %FF%FE and raw bytes that are
	// not UTF-8 (url.ParseQuery keeps them), a C1 control in a site id.
	f.Add("appsflyer", "install", "app_id=id1%00&install_unix_ts=1795853553")
	f.Add("adjust", "install", "app_id=%FF%FE&installed_at=1795853553")
	f.Add("generic", "install", "app_id=id\xff\xfe&install_time=1795853553")
	f.Add("branch", "event", "app_id=id1&event_timestamp=1795853553120&name=PURCHASE&~site_id=s%C2%85")
	f.Add("tenjin", "event", "bundle_id=com.a.b&event_ts=1795853553&event=x&user_agent=Mozilla%09ok")
	f.Fuzz(func(t *testing.T, mmp, kind, query string) {
		params, _ := url.ParseQuery(query) // keep what parses: the MMP sent it
		req := &Request{MMP: mmp, Kind: Kind(kind), Params: params, ReceivedAt: receivedAt,
			Raw: event.Raw{Method: "GET", Path: "/v1/postbacks/" + mmp + "/" + kind, Query: query}}
		p, err := Parse(req)
		if err != nil {
			var fe *FieldError
			if !errors.As(err, &fe) || fe.Field == "" || fe.Problem == "" {
				t.Fatalf("error %v (%T) is not a FieldError naming a field", err, err)
			}
			return
		}
		rec, pb := record(t, req.Kind, p)
		if _, err := json.Marshal(rec); err != nil {
			t.Fatalf("encode: %v", err)
		}
		checkRecordStrings(t, pb, rec)
		validate(t, req.Kind, rec)
		again := *req
		again.ReceivedAt = receivedAt.Add(36 * time.Hour)
		p2, err := Parse(&again)
		if err != nil {
			// Only the "no more than a day ahead" bound may move with ReceivedAt.
			if !errors.Is(err, ErrTimeRange) {
				t.Fatalf("re-parse failed: %v", err)
			}
			return
		}
		if _, pb2 := record(t, req.Kind, p2); pb2.EventID != pb.EventID {
			t.Fatalf("event id %s on re-parse, %s first", pb2.EventID, pb.EventID)
		}
	})
}

// FuzzBodyParams: never panics; errors are FieldErrors on "body" or
// "content-type", or on a parameter whose JSON string is not UTF-8; a JSON
// body that parses is valid JSON, and valid UTF-8 (the tokenizer would
// silently replace bad bytes).
func FuzzBodyParams(f *testing.F) {
	f.Add("application/json", []byte(`{"a":{"b":[1,{"c":null}]},"d":4.990,"e":true}`))
	f.Add("application/json; charset=utf-8", []byte(`{"name":"PURCHASE","event_data":{"revenue":4.99}}`))
	f.Add("application/x-www-form-urlencoded", []byte("a=1&b=%20&c"))
	f.Add("", []byte(`{"x":"y"}`))
	f.Add("", []byte("x=y"))
	f.Add("text/plain", []byte("x"))
	f.Add("application/json", []byte(`{"a":1}{`))
	f.Add("application/json", []byte(strings.Repeat("[", 100)))
	f.Add("application/json", []byte("{\"app_id\":\"id1\xff\xfe\",\"k\":\"\\u0000\"}"))
	f.Add("", []byte(`{"site_id":"\ud800x","n":"\uFFFD\\ufffd"}`))
	f.Add("application/x-www-form-urlencoded", []byte("app_id=%FF%FE&x=%00"))
	f.Fuzz(func(t *testing.T, ct string, body []byte) {
		v, err := BodyParams(ct, body)
		if err != nil {
			var fe *FieldError
			if !errors.As(err, &fe) || (fe.Field != "body" && fe.Field != "content-type" && !errors.Is(err, ErrInvalidUTF8)) {
				t.Fatalf("error %v is not a FieldError on body or content-type, nor one on a parameter that is not UTF-8", err)
			}
			return
		}
		if v == nil {
			t.Fatal("nil params without an error")
		}
		trimmed := strings.TrimSpace(string(body))
		isJSON := trimmed != "" && strings.HasPrefix(trimmed, "{") && (ct == "" || strings.Contains(ct, "json"))
		if isJSON && !json.Valid([]byte(trimmed)) {
			t.Fatalf("invalid JSON accepted: %q -> %v", body, v)
		}
		// Bytes that are not UTF-8 can only be inside a JSON string, which
		// the tokenizer would silently turn into U+FFFD.
		if isJSON && !utf8.ValidString(trimmed) {
			t.Fatalf("JSON body that is not UTF-8 accepted: %q -> %q", body, v)
		}
	})
}

// FuzzBodyParamsJSON checks the fast JSON flattening against the plain
// encoding/json one (refJSONParams): same parameters, same verdict. Bodies
// that are not valid UTF-8 are skipped: encoding/json replaces bad bytes,
// the tokenizer keeps them, and the encoder replaces them later anyway.
func FuzzBodyParamsJSON(f *testing.F) {
	f.Add([]byte(`{"a":{"b":[1,{"c":null},[true,"x"]]},"d":4.990,"e":"\u00e9\n","a":"dup"}`))
	f.Add([]byte(`{"":{"":""},"k":-0.0e+1,"big":123456789012345678901234567890}`))
	f.Add([]byte(`{"a":1,}`))
	f.Add([]byte(`[1]`))
	f.Add([]byte(`{"a":"\ud800","b":"\uD83D\uDE00","c":"\ufffd"}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		body = bytes.TrimSpace(body)
		if len(body) == 0 || len(body) > 4096 || !utf8.Valid(body) {
			return // webhook bodies are a few kilobytes; larger only slows the search
		}
		got, err := BodyParams("application/json", body)
		if errors.Is(err, ErrInvalidUTF8) {
			return // an unpaired surrogate escape: encoding/json makes it U+FFFD, BodyParams refuses it
		}
		want, refErr := refJSONParams(body)
		if (err == nil) != (refErr == nil) {
			t.Fatalf("%q: BodyParams err %v, reference err %v", body, err, refErr)
		}
		if err == nil && !reflect.DeepEqual(got, want) {
			t.Fatalf("%q:\n got %v\nwant %v", body, got, want)
		}
	})
}

// FuzzParseTime: never panics; a time it returns is UTC, from 2000 on, at
// most a day after receivedAt, and survives an RFC 3339 round trip.
func FuzzParseTime(f *testing.F) {
	for _, s := range []string{"1795853553", "1795853553120", "1795853553.25", "99999999999", "100000000000",
		"2026-11-28T08:12:33Z", "2026-11-28 08:12:33.120", "2026-11-28T09:12:33+01:00", "2026-02-30 00:00:00",
		"946684799", "", "-1", "1e9", "2026-11-28T08:12:33.123456789012Z"} {
		f.Add(s, uint8(UnitAuto))
	}
	f.Add("1795853553120", uint8(UnitMillis))
	f.Add("1795853553", uint8(UnitSeconds))
	f.Fuzz(func(t *testing.T, s string, unit uint8) {
		got, err := ParseTime(s, TimeUnit(unit%3), receivedAt)
		if err != nil {
			if !errors.Is(err, ErrTimeSyntax) && !errors.Is(err, ErrTimeRange) {
				t.Fatalf("ParseTime(%q) error %v wraps neither ErrTimeSyntax nor ErrTimeRange", s, err)
			}
			return
		}
		if got.Location() != time.UTC || got.Year() < 2000 || got.After(receivedAt.Add(24*time.Hour)) {
			t.Fatalf("ParseTime(%q) = %v: out of bounds", s, got)
		}
		back, err := ParseTime(got.Format(time.RFC3339Nano), UnitAuto, receivedAt)
		if err != nil || !back.Equal(got) {
			t.Fatalf("round trip of %v: %v, %v", got, back, err)
		}
	})
}
