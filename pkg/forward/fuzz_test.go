package forward

import (
	"testing"

	"github.com/segmentio/encoding/json"

	"github.com/adtrack/postback/pkg/event"
)

// FuzzParseYAML: any endpoints file is either refused with an error or
// gives endpoints that validate again unchanged and render every kind of
// conversion without a panic.
func FuzzParseYAML(f *testing.F) {
	f.Add([]byte("endpoints:\n  - {endpoint_id: a, url: \"https://x.example/cb?c={click_id}\", signing_key_id: k}\n"))
	f.Add([]byte("endpoints:\n  - {endpoint_id: a, url: \"https://x.example/{site_id}\", method: post, body: json, fields: {p: \"{payout} {ua}\"}, device_ids: hashed, match: {kinds: [install, event], event_names: [purchase]}, payout: {model: revenue_share, share: \"0.5\"}, signing_key_id: k}\n"))
	f.Add([]byte("endpoints:\n  - {endpoint_id: a, url: \"http://10.0.0.1/\", signing_key_id: k}\n"))
	f.Add([]byte("endpoints: [{url: \"{\"}]"))
	f.Fuzz(func(t *testing.T, data []byte) {
		eps, err := ParseYAML(data, nil)
		if err != nil {
			return
		}
		for i := range eps {
			again := eps[i]
			if err := Validate(&again, nil); err != nil {
				t.Fatalf("a parsed endpoint does not validate again: %v", err)
			}
			renderAll(t, &eps[i])
		}
	})
}

// FuzzRegistryApply: any record of the endpoints topic is refused or
// applied, never a panic, and an applied endpoint renders.
func FuzzRegistryApply(f *testing.F) {
	ep := Endpoint{ID: "a", URL: "https://x.example/?c={click_id}", Method: "POST", Body: "form", KeyID: "k",
		Match: Match{Kinds: []string{KindInstall}}, DeviceIDs: DeviceRaw, Payout: Payout{Model: PayoutCPI, Amount: 1, Currency: "USD"}}
	v, _ := json.Marshal(ep)
	f.Add("a", v)
	f.Add("a", []byte(`{"endpoint_id":"a","url":"file:///x"}`))
	f.Add("b", []byte(`{`))
	f.Add("a", []byte{})
	f.Fuzz(func(t *testing.T, key string, value []byte) {
		reg := NewRegistry(nil)
		if err := reg.Apply(key, value); err != nil {
			return
		}
		if got, ok := reg.Get(key); ok {
			renderAll(t, got)
		}
	})
}

func renderAll(t *testing.T, ep *Endpoint) {
	t.Helper()
	e := ev(event.NamePurchase, "buy")
	for _, c := range []Conversion{FromInstall(inst(event.MatchClickID)), FromEvent(e), FromInstall(inst(event.MatchViewThrough))} {
		if _, err := Render(ep, c); err != nil {
			// A filled template can fail to parse only through its fixed
			// parts, which Validate checked: an error here is a bug.
			t.Fatalf("render %s for %s: %v", ep.ID, c.Kind, err)
		}
	}
}
