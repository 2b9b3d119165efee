package postback

import (
	"errors"
	"net/url"
	"testing"
	"time"
)

func TestAPI(t *testing.T) {
	want := []string{"appsflyer", "adjust", "branch", "singular", "kochava", "tenjin", "generic"}
	got := MMPs()
	if len(got) != len(want) {
		t.Fatalf("MMPs() = %v", got)
	}
	for i := range want {
		if got[i] != want[i] || !KnownMMP(want[i]) {
			t.Errorf("MMPs()[%d] = %q, want %q (known)", i, got[i], want[i])
		}
	}
	got[0] = "changed"
	if MMPs()[0] != "appsflyer" {
		t.Error("MMPs() shares its slice")
	}
	for _, bad := range []string{"", "AppsFlyer", "mmp", "appsflyer "} {
		if KnownMMP(bad) {
			t.Errorf("KnownMMP(%q) = true", bad)
		}
	}
	for s, want := range map[string]bool{"install": true, "event": true, "rejected": true, "Install": false, "": false, "events": false} {
		if k, ok := ParseKind(s); ok != want || (ok && string(k) != s) {
			t.Errorf("ParseKind(%q) = %q, %v", s, k, ok)
		}
	}
}

func TestFieldErrorFormat(t *testing.T) {
	_, err := Parse(request(MMPGeneric, KindEvent, url.Values{"app_id": {"a.b"}, "event_name": {"x"},
		"event_time": {"1795858201"}, "revenue": {"abc"}, "currency": {"USD"}}))
	if err == nil || err.Error() != `field "revenue": not a decimal number` {
		t.Errorf("error = %v", err)
	}
	var fe *FieldError
	if !errors.As(err, &fe) || fe.Field != "revenue" {
		t.Errorf("not a FieldError on revenue: %#v", err)
	}
}

func TestParseRefusesBadRequests(t *testing.T) {
	ok := url.Values{"app_id": {"a.b"}, "install_time": {"1795853553"}}
	cases := map[string]struct {
		req   *Request
		field string
	}{
		"nil":           {nil, "request"},
		"unknown mmp":   {&Request{MMP: "appsflyer2", Kind: KindInstall, Params: ok, ReceivedAt: receivedAt}, "mmp"},
		"unknown kind":  {&Request{MMP: MMPGeneric, Kind: "click", Params: ok, ReceivedAt: receivedAt}, "kind"},
		"no time":       {&Request{MMP: MMPGeneric, Kind: KindInstall, Params: ok}, "received_at"},
		"nil params":    {&Request{MMP: MMPGeneric, Kind: KindInstall, ReceivedAt: receivedAt}, "app_id"},
		"missing event": {&Request{MMP: MMPGeneric, Kind: KindEvent, Params: ok, ReceivedAt: receivedAt}, "event_time"},
	}
	for name, c := range cases {
		_, err := Parse(c.req)
		var fe *FieldError
		if !errors.As(err, &fe) || fe.Field != c.field {
			t.Errorf("%s: err = %v, want a FieldError on %q", name, err, c.field)
		}
	}
	_, err := Parse(&Request{MMP: MMPGeneric, Kind: KindInstall, Params: url.Values{"install_time": {"1795853553"}}, ReceivedAt: receivedAt})
	if !errors.Is(err, ErrMissing) {
		t.Errorf("missing app_id: %v does not wrap ErrMissing", err)
	}
}

// TestParamNames covers how parameter names resolve: case-insensitively,
// by table priority, with repeats that must agree, independently of order.
func TestParamNames(t *testing.T) {
	base := func() url.Values {
		return url.Values{"app_id": {"id1"}, "install_unix_ts": {"1795853553"}}
	}
	cases := []struct {
		name  string
		set   url.Values
		click string
		err   string
	}{
		{"upper-case name", url.Values{"ClickID": {"k1"}}, "k1", ""},
		{"first alias wins", url.Values{"clickid": {"k1"}, "click_id": {"k2"}}, "k1", ""},
		{"absent first alias falls through", url.Values{"clickid": {"(clickid)"}, "click_id": {"k2"}}, "k2", ""},
		{"repeat with the same value", url.Values{"clickid": {"k1", "k1", ""}}, "k1", ""},
		{"two spellings, same value", url.Values{"clickid": {"k1"}, "CLICKID": {"k1"}}, "k1", ""},
		{"repeat with different values", url.Values{"clickid": {"k1", "k2"}}, "", "clickid"},
		{"two spellings, different values", url.Values{"clickid": {"k1"}, "ClickId": {"k2"}}, "", "ClickId"},
		{"conflict in a shadowed alias is moot", url.Values{"clickid": {"k1"}, "click_id": {"k2", "k3"}}, "k1", ""},
		{"unknown parameters are ignored", url.Values{"token": {"x"}, "foo": {"bar"}, "clickid": {"k1"}}, "k1", ""},
		{"surrounding space is trimmed", url.Values{"clickid": {"  k1\t"}}, "k1", ""},
	}
	for _, c := range cases {
		for i := 0; i < 10; i++ { // map order varies between runs: the outcome must not
			params := base()
			for k, v := range c.set {
				params[k] = v
			}
			p, err := Parse(request(MMPAppsFlyer, KindInstall, params))
			if c.err != "" {
				var fe *FieldError
				if !errors.As(err, &fe) || fe.Field != c.err {
					t.Fatalf("%s: err = %v, want a FieldError on %q", c.name, err, c.err)
				}
				continue
			}
			if err != nil || p.Install.ClickID != c.click {
				t.Fatalf("%s: click id %q, err %v; want %q", c.name, p.Install.ClickID, err, c.click)
			}
		}
	}
}

// TestReceivedAtIsUTC: ingest may hand a local time; the record is UTC.
func TestReceivedAtIsUTC(t *testing.T) {
	req := request(MMPGeneric, KindInstall, url.Values{"app_id": {"a.b"}, "install_time": {"1795853553"}})
	req.ReceivedAt = receivedAt.In(time.FixedZone("CET", 3600))
	p, err := Parse(req)
	if err != nil || p.Install.ReceivedAt.Location() != time.UTC || !p.Install.ReceivedAt.Equal(receivedAt) {
		t.Errorf("received_at %v, %v", p.Install.ReceivedAt, err)
	}
}
