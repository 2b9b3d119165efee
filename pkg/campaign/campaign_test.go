package campaign

import (
	"strings"
	"testing"

	"github.com/adtrack/postback/pkg/event"
)

const good = `
campaigns:
  - campaign_id: c1
    app_id: id123456789
    platform: iOS
    media_source: acme_int
    mmp: appsflyer
    tracking_link: "https://app.appsflyer.com/id123456789?pid=acme_int&c=c1&clickid={click_id}&af_siteid={site_id}&idfa={idfa}"
    cost_model: cpi
    bid: "1.50"
    currency: usd
  - campaign_id: c2
    app_id: com.example.game
    media_source: acme_int
    cost_model: CPM
    bid: "2.5"
    currency: EUR
`

func TestParseYAML(t *testing.T) {
	camps, err := ParseYAML([]byte(good))
	if err != nil {
		t.Fatal(err)
	}
	if len(camps) != 2 {
		t.Fatalf("%d campaigns", len(camps))
	}
	c := camps[0]
	if c.CostModel != CPI || c.Currency != "USD" || c.Bid.String() != "1.5" || c.Platform != event.PlatformIOS {
		t.Fatalf("c1 not normalized: %+v", c)
	}
	bad := map[string]string{
		"unknown key":     "campaigns:\n  - campaign_id: x\n    colour: red\n",
		"bad model":       "campaigns:\n  - {campaign_id: x, app_id: a, media_source: m, cost_model: CPA, bid: '1', currency: USD}\n",
		"bad currency":    "campaigns:\n  - {campaign_id: x, app_id: a, media_source: m, cost_model: CPI, bid: '1', currency: USX}\n",
		"float bid":       "campaigns:\n  - {campaign_id: x, app_id: a, media_source: m, cost_model: CPI, bid: '1e2', currency: USD}\n",
		"negative bid":    "campaigns:\n  - {campaign_id: x, app_id: a, media_source: m, cost_model: CPI, bid: '-1', currency: USD}\n",
		"relative link":   "campaigns:\n  - {campaign_id: x, app_id: a, media_source: m, cost_model: CPI, bid: '1', currency: USD, tracking_link: '/x'}\n",
		"id with slash":   "campaigns:\n  - {campaign_id: 'a/b', app_id: a, media_source: m, cost_model: CPI, bid: '1', currency: USD}\n",
		"missing app":     "campaigns:\n  - {campaign_id: x, media_source: m, cost_model: CPI, bid: '1', currency: USD}\n",
		"duplicate":       "campaigns:\n  - {campaign_id: x, app_id: a, media_source: m, cost_model: CPI, bid: '1', currency: USD}\n  - {campaign_id: x, app_id: a, media_source: m, cost_model: CPI, bid: '1', currency: USD}\n",
		"empty":           "campaigns: []\n",
		"bad platform":    "campaigns:\n  - {campaign_id: x, app_id: a, platform: symbian, media_source: m, cost_model: CPI, bid: '1', currency: USD}\n",
		"not yaml at all": "{{{",
		"NUL in an id":    "campaigns:\n  - {campaign_id: \"x\\0\", app_id: a, media_source: m, cost_model: CPI, bid: '1', currency: USD}\n",
		"ESC in app id":   "campaigns:\n  - {campaign_id: x, app_id: \"a\\e[2J\", media_source: m, cost_model: CPI, bid: '1', currency: USD}\n",
		"C1 in source":    "campaigns:\n  - {campaign_id: x, app_id: a, media_source: \"m\\x85\", cost_model: CPI, bid: '1', currency: USD}\n",
	}
	for name, doc := range bad {
		if _, err := ParseYAML([]byte(doc)); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestFillLink(t *testing.T) {
	tests := []struct{ name, tmpl, want string }{
		{"raw", "https://x/?c={click_id}&s={site_id}", "https://x/?c=k%2F1&s=pub+1"},
		{"ours without a value", "https://x/?i={idfa}", "https://x/?i="},
		{"not a macro", "https://x/?j={\"a\":1}", "https://x/?j={\"a\":1}"},
		{"unterminated", "https://x/?u={unclosed", "https://x/?u={unclosed"},
		{"repeated", "https://x/{click_id}{click_id}", "https://x/k%2F1k%2F1"},
		{"not ours, raw", "https://x/?g={gps_adid}&t={installed_at}&c={click_id}", "https://x/?g={gps_adid}&t={installed_at}&c=k%2F1"},
		{"not ours, encoded", "https://x/?cb=%7Bgps_adid%7D%26%7binstalled_at%7d", "https://x/?cb=%7Bgps_adid%7D%26%7binstalled_at%7d"},
		// Encoded once: the value is escaped twice, so that the MMP's decoding of
		// the callback leaves it escaped once for the callback's own query.
		{"encoded once", "https://x/?cb=https%3A%2F%2Fh%2Fp%3Fc%3D%7Bclick_id%7D%26s%3D%7bsite_id%7d",
			"https://x/?cb=https%3A%2F%2Fh%2Fp%3Fc%3Dk%252F1%26s%3Dpub%2B1"},
		{"encoded twice", "https://x/?cb=%257Bclick_id%257D", "https://x/?cb=k%25252F1"},
		{"mixed case closer", "https://x/?c=%7bclick_id%7D", "https://x/?c=k%252F1"},
		{"stray opener", "https://x/?a=%7B&c={click_id}", "https://x/?a=%7B&c=k%2F1"},
		{"MMP-style parentheses", "https://x/?c=(clickid)&d={click_id}", "https://x/?c=(clickid)&d=k%2F1"},
	}
	vals := map[string]string{"click_id": "k/1", "site_id": "pub 1", "idfa": ""}
	for _, tt := range tests {
		if got := FillLink(tt.tmpl, vals, ""); got != tt.want {
			t.Errorf("%s: FillLink(%q) = %q, want %q", tt.name, tt.tmpl, got, tt.want)
		}
	}
}

// TestFillLinkAdjust: inside Adjust's encoded callback, the names Adjust
// fills itself ({idfa}, {country}, {app_id}) are Adjust's and survive byte
// for byte; at the top level of the link they are ours.
func TestFillLinkAdjust(t *testing.T) {
	vals := map[string]string{"click_id": "k1", "idfa": "6d92078a-8246-4ba4-ae5b-76104861e7dc", "country": "DE", "app_id": "id1"}
	tmpl := "https://app.adjust.com/abc?idfa={idfa}&install_callback=https%3A%2F%2Fh%2Fi%3Fclick_id%3D%7Bclick_id%7D%26idfa%3D%7Bidfa%7D%26country%3D%7Bcountry%7D%26app_id%3D%7Bapp_id%7D%26t%3D%7Binstalled_at%7D"
	want := "https://app.adjust.com/abc?idfa=6d92078a-8246-4ba4-ae5b-76104861e7dc&install_callback=https%3A%2F%2Fh%2Fi%3Fclick_id%3Dk1%26idfa%3D%7Bidfa%7D%26country%3D%7Bcountry%7D%26app_id%3D%7Bapp_id%7D%26t%3D%7Binstalled_at%7D"
	if got := FillLink(tmpl, vals, "adjust"); got != want {
		t.Errorf("adjust link:\n got %s\nwant %s", got, want)
	}
	// The same link of a campaign of another MMP: every name of ours is filled.
	if got := FillLink(tmpl, vals, "appsflyer"); !strings.Contains(got, "country%3DDE") {
		t.Errorf("non-Adjust campaign: %s", got)
	}
}

func FuzzFillLink(f *testing.F) {
	f.Add("https://x/?c={click_id}&cb=%7Bclick_id%7D%26%257Bsite_id%257D%7B", "k 1/&")
	f.Fuzz(func(t *testing.T, tmpl, v string) {
		vals := map[string]string{"click_id": v, "site_id": v}
		got := FillLink(tmpl, vals, "adjust")
		// Nothing outside our macros changes: with no value, filling is
		// removing the macros, and a template without any is unchanged.
		if !strings.Contains(strings.ToLower(tmpl), "click_id") && !strings.Contains(strings.ToLower(tmpl), "site_id") && got != tmpl {
			t.Fatalf("FillLink(%q) = %q changed a template without our macros", tmpl, got)
		}
	})
}

func TestMMPIDsAndSKAN(t *testing.T) {
	camps, err := ParseYAML([]byte(`
campaigns:
  - campaign_id: k1
    app_id: id525463029
    media_source: adtrack
    mmp: kochava
    cost_model: CPI
    bid: "1"
    currency: USD
    mmp_ids:
      kochava: {campaign_id: koadtrack-42-abc}
      appsflyer: {media_source: adtrack_int}
    skan: {ad_network_id: example123.skadnetwork, campaign_ids: [42], source_identifiers: ["5239", "17"]}
  - campaign_id: k2
    app_id: id525463029
    media_source: adtrack
    cost_model: CPI
    bid: "1"
    currency: USD
    skan: {ad_network_id: example123.skadnetwork, source_identifiers: ["1139"]}
`))
	if err != nil {
		t.Fatal(err)
	}
	k1 := camps[0]
	if k1.MMPIDs["kochava"].CampaignID != "koadtrack-42-abc" || k1.MMPIDs["appsflyer"].MediaSource != "adtrack_int" {
		t.Fatalf("mmp_ids: %+v", k1.MMPIDs)
	}
	if got := k1.SKAN.SourceIdentifiers; len(got) != 2 || got[0] != "5239" || got[1] != "0017" {
		t.Fatalf("source identifiers not normalized to four digits: %v", got)
	}
	reg := NewRegistry()
	for _, c := range camps {
		reg.Put(c)
	}
	for _, tt := range []struct {
		net, source string
		campaignID  int
		want        string
		match       SKANMatch
	}{
		{"example123.skadnetwork", "", 42, "k1", SKANExact},
		{"example123.skadnetwork", "5239", 0, "k1", SKANExact},
		{"example123.skadnetwork", "239", 0, "k1", SKANPrefix},
		{"example123.skadnetwork", "17", 0, "k1", SKANPrefix},
		{"example123.skadnetwork", "39", 0, "", SKANAmbiguous}, // 5239 and 1139
		{"example123.skadnetwork", "", 41, "", SKANNone},
		{"other.skadnetwork", "5239", 0, "", SKANNone},
		{"example123.skadnetwork", "9", 0, "", SKANNone}, // one digit is never sent
	} {
		c, m := reg.FindSKAN("id525463029", tt.net, tt.campaignID, tt.source)
		if c.ID != tt.want || m != tt.match {
			t.Errorf("FindSKAN(%s, %d, %q) = %q %s, want %q %s", tt.net, tt.campaignID, tt.source, c.ID, m, tt.want, tt.match)
		}
	}
	bad := map[string]string{
		"unknown mmp":      "mmp_ids: {fooflyer: {media_source: x}}",
		"empty ids":        "mmp_ids: {adjust: {}}",
		"no network":       "skan: {campaign_ids: [1]}",
		"no skan ids":      "skan: {ad_network_id: n}",
		"campaign id 101":  "skan: {ad_network_id: n, campaign_ids: [101]}",
		"five digits":      "skan: {ad_network_id: n, source_identifiers: ['12345']}",
		"not digits":       "skan: {ad_network_id: n, source_identifiers: ['12a4']}",
		"negative":         "skan: {ad_network_id: n, source_identifiers: ['-1']}",
		"unknown skan key": "skan: {ad_network_id: n, campaign_ids: [1], colour: red}",
	}
	for name, extra := range bad {
		doc := "campaigns:\n  - {campaign_id: x, app_id: a, media_source: m, cost_model: CPI, bid: '1', currency: USD}\n"
		doc = strings.Replace(doc, "currency: USD}", "currency: USD, "+extra+"}", 1)
		if _, err := ParseYAML([]byte(doc)); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestCosts(t *testing.T) {
	camps, _ := ParseYAML([]byte(good))
	cpi, cpm := camps[0], camps[1]
	if TouchCost(cpi, true) != 0 || TouchCost(cpi, false) != 0 || InstallCost(cpi).String() != "1.5" {
		t.Errorf("CPI costs wrong")
	}
	if got := TouchCost(cpm, false).String(); got != "0.0025" {
		t.Errorf("CPM impression cost = %s, want 0.0025", got)
	}
	if TouchCost(cpm, true) != 0 || InstallCost(cpm) != 0 {
		t.Errorf("CPM click/install must cost nothing")
	}
	cpc := cpi
	cpc.CostModel = CPC
	if TouchCost(cpc, true) != cpc.Bid || TouchCost(cpc, false) != 0 {
		t.Errorf("CPC costs wrong")
	}
}
