package postback

import (
	"errors"
	"net/url"
	"reflect"
	"strings"
	"testing"
)

func TestBodyParamsJSON(t *testing.T) {
	body := `{
	  "name": "PURCHASE",
	  "event_timestamp": 1795858201456,
	  "revenue": 4.990,
	  "big": 12345678901234567890123,
	  "exp": 1e3,
	  "attributed": true, "lat": false,
	  "custom_data": null,
	  "user_data": {"idfa": "x", "geo": {"country": "DE"}},
	  "content_items": [{"$sku": "gems_100"}, {"$sku": "gems_500"}],
	  "tags": ["a", 2, null, []],
	  "empty": {},
	  "dup": "1", "dup": "2",
	  "uni": "caf\u00e9"
	}`
	got, err := BodyParams("application/json", []byte(body))
	if err != nil {
		t.Fatal(err)
	}
	want := url.Values{
		"name": {"PURCHASE"}, "event_timestamp": {"1795858201456"},
		"revenue": {"4.990"}, "big": {"12345678901234567890123"}, "exp": {"1e3"}, // exact text, never a float
		"attributed": {"true"}, "lat": {"false"},
		"user_data.idfa": {"x"}, "user_data.geo.country": {"DE"},
		"content_items.0.$sku": {"gems_100"}, "content_items.1.$sku": {"gems_500"},
		"tags.0": {"a"}, "tags.1": {"2"},
		"dup": {"1", "2"},
		"uni": {"café"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("BodyParams:\n got %v\nwant %v", got, want)
	}
}

func TestBodyParamsContentTypes(t *testing.T) {
	cases := []struct {
		name, ct, body string
		want           url.Values
		errField       string
	}{
		{"empty body, no type", "", "", url.Values{}, ""},
		{"empty body, any type", "image/png", "  \n", url.Values{}, ""},
		{"json with charset", "application/json; charset=utf-8", `{"a":"1"}`, url.Values{"a": {"1"}}, ""},
		{"json suffix", "application/vnd.kochava+json", `{"a":1}`, url.Values{"a": {"1"}}, ""},
		{"text/json", "text/json", `{"a":1}`, url.Values{"a": {"1"}}, ""},
		{"form", "application/x-www-form-urlencoded", "a=1&b=x%20y&a=2", url.Values{"a": {"1", "2"}, "b": {"x y"}}, ""},
		{"sniffed json", "", `{"a":true}`, url.Values{"a": {"true"}}, ""},
		{"sniffed form", "", "a=1", url.Values{"a": {"1"}}, ""},
		{"unsupported type", "text/plain", "a=1", nil, "content-type"},
		{"malformed type", "application/", "a=1", nil, "content-type"},
		{"invalid json", "application/json", `{"a":`, nil, "body"},
		{"json array", "application/json", `[{"a":1}]`, nil, "body"},
		{"json scalar", "application/json", `"a"`, nil, "body"},
		{"trailing data", "application/json", `{"a":1} {"b":2}`, nil, "body"},
		{"too deep", "application/json", strings.Repeat(`{"a":`, 40) + "1" + strings.Repeat("}", 40), nil, "body"},
		{"too deep arrays", "application/json", `{"a":` + strings.Repeat("[", 40) + strings.Repeat("]", 40) + "}", nil, "body"},
		{"bad form escape", "application/x-www-form-urlencoded", "a=%zz", nil, "body"},
	}
	for _, c := range cases {
		got, err := BodyParams(c.ct, []byte(c.body))
		if c.errField != "" {
			var fe *FieldError
			if !errors.As(err, &fe) || fe.Field != c.errField {
				t.Errorf("%s: err = %v, want a FieldError on %q", c.name, err, c.errField)
			}
			continue
		}
		if err != nil || !reflect.DeepEqual(got, c.want) {
			t.Errorf("%s: got %v, %v; want %v", c.name, got, err, c.want)
		}
	}
	if _, err := BodyParams("text/plain", []byte("x")); !errors.Is(err, ErrUnsupportedContentType) {
		t.Errorf("unsupported content type error %v does not wrap ErrUnsupportedContentType", err)
	}
}

// TestBodyParamsDepthLimit checks the deepest accepted nesting.
func TestBodyParamsDepthLimit(t *testing.T) {
	ok := strings.Repeat(`{"a":`, maxJSONDepth) + "1" + strings.Repeat("}", maxJSONDepth)
	got, err := BodyParams("application/json", []byte(ok))
	if err != nil || got.Get(strings.TrimSuffix(strings.Repeat("a.", maxJSONDepth), ".")) != "1" {
		t.Errorf("%d levels: %v, %v", maxJSONDepth, got, err)
	}
}

func TestMergeParams(t *testing.T) {
	query := url.Values{"token": {"t"}, "app_id": {"from-query"}, "click_id": {"k1"}}
	body := url.Values{"app_id": {"from-body"}, "idfa": {"x"}}
	got := MergeParams(query, body)
	want := url.Values{"token": {"t"}, "app_id": {"from-body"}, "click_id": {"k1"}, "idfa": {"x"}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("MergeParams = %v, want %v (the body wins)", got, want)
	}
	if query.Get("app_id") != "from-query" || len(body) != 2 {
		t.Error("MergeParams modified its inputs")
	}
	if got := MergeParams(nil, nil); got == nil || len(got) != 0 {
		t.Errorf("MergeParams(nil, nil) = %v, want empty", got)
	}
}
