package forwarder

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/encoding/json"

	"github.com/adtrack/postback/pkg/event"
	"github.com/adtrack/postback/pkg/forward"
)

// TestDecodeSkipsRaw checks that a record decodes to the conversion the
// full type gives, less its raw request, for installs and events.
func TestDecodeSkipsRaw(t *testing.T) {
	at := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	raw := event.Raw{Method: "GET", Path: "/v1/postbacks/appsflyer", Query: strings.Repeat("af_sub1=a%20b&", 40) + `"quoted"\`,
		Body: `{"raw":{"nested":true}}`, RemoteIP: "198.51.100.7"}
	pb := event.Postback{EventID: "e1", MMP: "appsflyer", ReceivedAt: at, AppID: "com.example", Platform: event.PlatformAndroid,
		Device: event.Device{GAID: "38400000-8cf0-11bd-b23e-10b96e40000d", IP: "203.0.113.7"}, Country: "DE", Raw: raw}
	attr := event.Attribution{MatchType: event.MatchClickID, TouchID: "k1", CampaignID: "c1", MediaSource: "pub", SiteID: "s7", AttributedAt: at}
	attr.SetSubs(event.PublisherSubs{Sub1: "x1", Sub3: "x3"})
	inst := event.AttributedInstall{Install: event.Install{Postback: pb, InstallTime: at}, Attribution: attr}
	ev := event.AttributedEvent{InAppEvent: event.InAppEvent{Postback: pb, EventTime: at, Name: "purchase", OriginalName: "af_purchase"},
		Attribution: attr, InstallEventID: "i1", ReportingCurrency: "USD"}

	for _, c := range []struct {
		name    string
		install bool
		v       any
		full    func([]byte) (forward.Conversion, error)
	}{
		{"install", true, inst, func(b []byte) (forward.Conversion, error) {
			var a event.AttributedInstall
			err := json.Unmarshal(b, &a)
			a.Raw = event.Raw{}
			return forward.FromInstall(&a), err
		}},
		{"event", false, ev, func(b []byte) (forward.Conversion, error) {
			var a event.AttributedEvent
			err := json.Unmarshal(b, &a)
			a.Raw = event.Raw{}
			return forward.FromEvent(&a), err
		}},
	} {
		b, err := json.Marshal(c.v)
		if err != nil {
			t.Fatal(err)
		}
		got, err := decodeConversion(c.install, b)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		want, err := c.full(b)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s: decoded\n%+v\nwant\n%+v", c.name, got, want)
		}
		if got.EventID() != "e1" || got.Attribution().Sub3 != "x3" {
			t.Errorf("%s: fields lost: %q %v", c.name, got.EventID(), got.Attribution().Subs())
		}
		// A raw request that is not even an object is still skipped; a
		// broken record is still an error.
		if _, err := decodeConversion(c.install, []byte(strings.Replace(string(b), `"raw":{`, `"raw":[1,{`, 1)+"}")); err == nil {
			t.Errorf("%s: unbalanced raw decoded", c.name)
		}
		if _, err := decodeConversion(c.install, b[:len(b)/2]); err == nil {
			t.Errorf("%s: truncated record decoded", c.name)
		}
	}
}

// FuzzDecodeConversion: no input panics, and what the full install type
// decodes, the skipping one decodes the same, less the raw request.
func FuzzDecodeConversion(f *testing.F) {
	f.Add([]byte(`{"event_id":"e1","raw":{"query":"a=1"},"attributed_campaign_id":"c1"}`))
	f.Add([]byte(`{"raw":null}`))
	f.Add([]byte(`{"raw":"x","event_id":7}`))
	f.Add(realisticInstall(f))
	f.Add([]byte(`{"event_id":"e1" , "raw" : {"q":["a\u0026b",null,true,{}]} }`))
	f.Add([]byte(`{"raw":{"q":"\ud800"},"event_id":"e1"}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		got, err := decodeConversion(true, b)
		// Cutting the raw member out changes nothing: the record decodes
		// (or fails) as it does with the member skipped in place.
		var r installRecord
		if uncutErr := json.Unmarshal(b, &r); (err == nil) != (uncutErr == nil) {
			t.Fatalf("%q: with the raw member cut: %v; skipped in place: %v", b, err, uncutErr)
		} else if err == nil && !reflect.DeepEqual(got, forward.FromInstall(&r.AttributedInstall)) {
			t.Fatalf("%q: with the raw member cut: %+v; skipped in place: %+v", b, got.Install, r.AttributedInstall)
		}
		var a event.AttributedInstall
		if json.Unmarshal(b, &a) != nil {
			return
		}
		if err != nil {
			t.Fatalf("the full type decodes %q, ours: %v", b, err)
		}
		a.Raw = event.Raw{}
		if !reflect.DeepEqual(got, forward.FromInstall(&a)) {
			t.Fatalf("%q: decoded %+v, want %+v", b, got.Install, a)
		}
		_, _ = decodeConversion(false, b)
	})
}

// BenchmarkDecodeConversion decodes an attributed install as attribution
// publishes it, with its raw AppsFlyer postback, beside the full type.
func BenchmarkDecodeConversion(b *testing.B) {
	v := realisticInstall(b)
	b.Run("forwarder", func(b *testing.B) {
		b.SetBytes(int64(len(v)))
		for i := 0; i < b.N; i++ {
			if _, err := decodeConversion(true, v); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("full_type", func(b *testing.B) {
		b.SetBytes(int64(len(v)))
		for i := 0; i < b.N; i++ {
			var a event.AttributedInstall
			if err := json.Unmarshal(v, &a); err != nil {
				b.Fatal(err)
			}
		}
	})
}
