package attribution

import (
	"time"

	"github.com/adtrack/postback/pkg/event"
	"github.com/adtrack/postback/pkg/money"
)

// The fixture: one iOS app, one device, three campaigns with the three cost
// models. Every test builds its install and touches relative to installAt.
var (
	installAt = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	decidedAt = installAt.Add(3 * time.Minute)
)

const (
	app   = "id123456789"
	idfa  = "6d92078a-8246-4ba4-ae5b-76104861e7dc"
	other = "38400000-8cf0-11bd-b23e-10b96e40000d"
	ip    = "203.0.113.7"
	ua    = "Mozilla/5.0 (iPhone; CPU iPhone OS 18_0 like Mac OS X)"
)

// campaigns is a CampaignLookup over a map, the shape tests and replays use.
type campaigns map[string]event.Campaign

func (m campaigns) Get(id string) (event.Campaign, bool) { c, ok := m[id]; return c, ok }

var camps = campaigns{
	"cpi": {ID: "cpi", AppID: app, MediaSource: "acme_int", CostModel: "CPI", Bid: 1_500_000, Currency: "USD"},
	"cpc": {ID: "cpc", AppID: app, MediaSource: "beta_int", CostModel: "CPC", Bid: 200_000, Currency: "EUR"},
	"cpm": {ID: "cpm", AppID: app, MediaSource: "gamma_int", CostModel: "CPM", Bid: 2_500_000, Currency: "GBP"},
}

// touchOf is a touch of campaign c at installAt - ago from the fixture device.
func touchOf(ago time.Duration, c string) event.Touch {
	camp := camps[c]
	return event.Touch{
		Time: installAt.Add(-ago), AppID: app, Platform: event.PlatformIOS, MediaSource: camp.MediaSource,
		Placement:     event.Placement{CampaignID: c, AdsetID: "as-" + c, CreativeID: "cr-" + c, SiteID: "site-" + c, SubSiteID: "sub-" + c},
		PublisherSubs: event.PublisherSubs{Sub1: "p1-" + c, Sub5: "p5-" + c},
		Country:       "DE", Device: event.Device{IDFA: idfa, IP: ip, UA: ua}, Currency: camp.Currency,
	}
}

// click is a CPI-campaign click at installAt - ago; mods adjust it.
func click(id string, ago time.Duration, mods ...func(*event.Click)) event.Click {
	k := event.Click{ClickID: id, Touch: touchOf(ago, "cpi")}
	for _, m := range mods {
		m(&k)
	}
	return k
}

func clickp(id string, ago time.Duration, mods ...func(*event.Click)) *event.Click {
	k := click(id, ago, mods...)
	return &k
}

func impression(id string, ago time.Duration, mods ...func(*event.Impression)) event.Impression {
	m := event.Impression{ImpressionID: id, Touch: touchOf(ago, "cpm")}
	for _, f := range mods {
		f(&m)
	}
	return m
}

func campaignOf(c string) func(*event.Click) {
	return func(k *event.Click) {
		t := touchOf(installAt.Sub(k.Time), c)
		k.Touch = t
	}
}

// install is an install of the fixture device at installAt, received a
// minute later, with no click id and no MMP attribution; mods adjust it.
func install(mods ...func(*event.Install)) *event.Install {
	in := &event.Install{
		Postback: event.Postback{
			EventID: "inst-1", MMP: "appsflyer", ReceivedAt: installAt.Add(time.Minute), AppID: app,
			Platform: event.PlatformIOS, Device: event.Device{IDFA: idfa, IP: ip, UA: ua}, Country: "DE",
			Raw: event.Raw{Method: "GET", Path: "/v1/postbacks/appsflyer/install"},
		},
		InstallTime: installAt,
	}
	for _, m := range mods {
		m(in)
	}
	return in
}

func withClickID(id string) func(*event.Install) { return func(in *event.Install) { in.ClickID = id } }

func withMMP(source, campaignID string) func(*event.Install) {
	return func(in *event.Install) { in.MediaSource, in.CampaignID = source, campaignID }
}

func withCost(amount money.Amount, cur string) func(*event.Install) {
	return func(in *event.Install) { in.Cost = &event.Cost{Model: "CPI", Amount: amount, Currency: cur} }
}

func ago(d time.Duration) *time.Time { t := installAt.Add(-d); return &t }

const (
	day = 24 * time.Hour
	sec = time.Second
)
