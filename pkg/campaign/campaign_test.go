package campaign

import (
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
	tests := []struct{ tmpl, want string }{
		{"https://x/?c={click_id}&s={site_id}", "https://x/?c=k%2F1&s=pub+1"},
		{"https://x/?i={idfa}", "https://x/?i="},                   // missing value -> empty
		{"https://x/?j={\"a\":1}", "https://x/?j={\"a\":1}"},       // not a macro, kept
		{"https://x/?u={unclosed", "https://x/?u={unclosed"},       // unterminated, kept
		{"https://x/{click_id}{click_id}", "https://x/k%2F1k%2F1"}, // repeated
	}
	vals := map[string]string{"click_id": "k/1", "site_id": "pub 1"}
	for _, tt := range tests {
		if got := FillLink(tt.tmpl, vals); got != tt.want {
			t.Errorf("FillLink(%q) = %q, want %q", tt.tmpl, got, tt.want)
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
