package ingest

import (
	"strings"
	"testing"

	"github.com/segmentio/encoding/json"

	"github.com/adtrack/postback/pkg/event"
	"github.com/adtrack/postback/pkg/skan"
	"github.com/adtrack/postback/pkg/skan/skantest"
)

func skanHarness(t *testing.T, s *skantest.Signer) *harness {
	h := newHarness(t, func(c *Config) {
		k := s.Keys()
		c.Ingest.SKAN = SKAN{AdNetworkIDs: []string{skantest.AdNetwork}, P192Key: k.P192, P256Key: k.P256, AAKKeys: k.AAK}
	})
	h.srv.reg.Put(event.Campaign{ID: "skan-1", AppID: "id525463029", MediaSource: "net_int", CostModel: "CPI", Currency: "USD",
		SKAN: &event.SKANIDs{AdNetworkID: skantest.AdNetwork, CampaignIDs: []int{42}, SourceIdentifiers: []string{"5239"}}})
	return h
}

func (h *harness) postSKAN(body []byte) answer {
	return h.do("POST", "/v1/skan", "application/json", string(body), nil)
}

// TestSKANAccepted: a postback of every version and AdAttributionKit's
// verifies, lands on skan.v1 with its fields and our campaign, and a resend
// keeps its postback id (the views count it once).
func TestSKANAccepted(t *testing.T) {
	s := skantest.New()
	h := skanHarness(t, s)
	var bodies [][]byte
	for _, v := range skan.Versions {
		bodies = append(bodies, s.SKAN(skantest.Example(v)))
	}
	bodies = append(bodies, s.AAK(skantest.AAKPayload(), map[string]any{"coarse-conversion-value": "medium", "country-code": "US"}))
	for i, b := range bodies {
		a := h.postSKAN(b)
		if a.code != 200 || a.json["status"] != "accepted" || a.json["postback_id"] == "" {
			t.Fatalf("postback %d: %d %s", i, a.code, a.body)
		}
	}
	// A resend of the 4.0 postback.
	if a := h.postSKAN(bodies[5]); a.code != 200 {
		t.Fatalf("resend: %d %s", a.code, a.body)
	}
	recs := h.records(h.cfg.Topics.SKAN)
	if len(recs) != len(bodies)+1 {
		t.Fatalf("%d skan records, want %d", len(recs), len(bodies)+1)
	}
	seen := map[string]int{}
	for _, r := range recs {
		var p event.SKANPostback
		if err := json.Unmarshal(r.Value, &p); err != nil {
			t.Fatal(err)
		}
		if string(r.Key) != p.TransactionID || !strings.HasPrefix(p.PostbackID, p.TransactionID+"/") {
			t.Errorf("key %q, transaction_id %q, postback_id %q", r.Key, p.TransactionID, p.PostbackID)
		}
		seen[p.Framework+p.Version]++
		if p.AppID != "id525463029" || p.CampaignID != "skan-1" || p.MediaSource != "net_int" || p.CampaignMatch != "exact" ||
			!p.DidWin || p.Raw.Body == "" || p.Signature == "" {
			t.Errorf("record: %+v", p)
		}
		if p.Framework == "skadnetwork" && p.Version != "1.0" && (p.ConversionValue == nil || *p.ConversionValue != 20 || p.SourceAppID == nil) {
			t.Errorf("fields not kept: %s", r.Value)
		}
		if p.Framework == "adattributionkit" && (p.CoarseConversionValue != "medium" || p.CountryCode != "US" || p.KeyID != skantest.KeyID) {
			t.Errorf("aak fields not kept: %s", r.Value)
		}
	}
	if seen["skadnetwork4.0"] != 2 || seen["adattributionkit"] != 1 || seen["skadnetwork2.0"] != 1 {
		t.Errorf("records by version: %v", seen)
	}
}

// TestSKANRefused: each broken or forged postback gets its 4xx with its
// reason, and a rejected record whose reason starts with it.
func TestSKANRefused(t *testing.T) {
	s := skantest.New()
	h := skanHarness(t, s)
	good := s.SKAN(skantest.Example("3.0"))
	forged := strings.Replace(string(good), `"campaign-id":42`, `"campaign-id":43`, 1)
	other := skantest.Example("4.0")
	other["ad-network-id"] = "other.skadnetwork"
	cases := []struct {
		name   string
		body   string
		code   int
		reason string
	}{
		{"bad signature", forged, 401, skan.ReasonInvalidSignature},
		{"truncated", string(good[:40]), 400, skan.ReasonMalformed},
		{"unknown version", strings.Replace(string(good), `"version":"3.0"`, `"version":"9.0"`, 1), 400, skan.ReasonUnknownVersion},
		{"wrong ad network", string(s.SKAN(other)), 401, skan.ReasonWrongAdNetwork},
		{"wrong field order", string(s.SKANInOrder(skantest.Example("2.2"), "version ad-network-id app-id campaign-id transaction-id redownload ?source-app-id fidelity-type")), 401, skan.ReasonInvalidSignature},
		{"unknown kid", string(s.AAKWithKid(skantest.AAKPayload(), nil, "apple-development-identifier/0")), 401, skan.ReasonUnknownKey},
	}
	for _, c := range cases {
		a := h.postSKAN([]byte(c.body))
		if a.code != c.code || a.json["reason"] != c.reason {
			t.Errorf("%s: %d %s, want %d %s", c.name, a.code, a.body, c.code, c.reason)
		}
	}
	recs := h.records(h.cfg.Topics.Rejected)
	if len(recs) != len(cases) {
		t.Fatalf("%d rejected records, want %d", len(recs), len(cases))
	}
	for i, r := range recs {
		var rej event.Rejected
		if err := json.Unmarshal(r.Value, &rej); err != nil {
			t.Fatal(err)
		}
		if rej.Source != "skan" || !strings.HasPrefix(rej.Reason, cases[i].reason+": ") || rej.Raw.Body != cases[i].body || rej.Raw.Path != "/v1/skan" {
			t.Errorf("%s: rejected %+v", cases[i].name, rej)
		}
		if cases[i].name == "bad signature" && rej.EventID != "6aafb7a5-0170-41b5-bbe4-fe71dedf1e28/0" {
			t.Errorf("bad signature: event_id %q, want the postback id", rej.EventID)
		}
	}
	if n := len(h.records(h.cfg.Topics.SKAN)); n != 0 {
		t.Errorf("%d refused postbacks reached skan.v1", n)
	}
}

func TestSKANOff(t *testing.T) {
	h := newHarness(t, nil)
	if a := h.postSKAN(skantest.New().SKAN(skantest.Example("4.0"))); a.code != 404 {
		t.Fatalf("skan without ad network ids: %d %s", a.code, a.body)
	}
	if a := h.get("/v1/skan"); a.code == 200 {
		t.Fatalf("GET /v1/skan: %d", a.code)
	}
}
