package traffic

import (
	"cmp"
	"fmt"
	"hash/fnv"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/adtrack/postback/pkg/event"
	"github.com/adtrack/postback/pkg/money"
)

// mmps are the formats a plan reports through, one app each.
var mmps = []struct {
	name     string
	platform event.Platform
}{
	{"appsflyer", event.PlatformIOS}, {"adjust", event.PlatformAndroid}, {"branch", event.PlatformIOS},
	{"singular", event.PlatformAndroid}, {"kochava", event.PlatformAndroid}, {"tenjin", event.PlatformIOS},
	{"generic", event.PlatformAndroid},
}

// purchaseCurrencies are the currencies purchases are reported in (Tenjin
// reports USD only).
var purchaseCurrencies = []string{"USD", "EUR", "GBP"}

var countries = []string{"US", "US", "US", "DE", "GB", "FR", "BR", "IN", "JP"}

// Generate makes the plan of o: deterministic for one seed and run label.
// It first tours every journey every app's MMP supports (so even a short
// run exercises each MMP and each rule), then adds random users until the
// planned requests reach Rate x Duration.
func Generate(o Options) (*Plan, error) {
	if err := o.Validate(); err != nil {
		return nil, fmt.Errorf("simulation options: %w", err)
	}
	h := fnv.New64a()
	h.Write([]byte(o.Run))
	g := &generator{o: o, rng: rand.New(rand.NewPCG(o.Seed, h.Sum64())), runHash: h.Sum64()}
	g.apps()
	for _, c := range g.plan.Campaigns {
		a := g.appOf(c)
		w := g.touch(Impression, c, g.device(a, true), 0, true)
		w.Warmup = true
	}
	for _, a := range g.plan.Apps {
		for _, c := range casesFor(a.MMP) {
			g.journey(a, c, g.startTime())
		}
	}
	budget := int(o.Rate * o.Duration.Seconds())
	for len(g.reqs) < budget {
		g.randomUser()
	}
	g.finish()
	return &g.plan, nil
}

// casesFor lists the install journeys an MMP's format can carry: IP + UA
// matching needs the user agent in the postback (Singular and Tenjin do not
// send it), rejected-install callbacks exist for AppsFlyer, Adjust and the
// generic format.
func casesFor(mmp string) []Case {
	cs := []Case{CaseClickID, CaseEarly, CaseDeviceID, CaseViewThrough, CaseOrganic, CaseInjected, CaseFlood, CaseReinstall}
	switch mmp {
	case "appsflyer", "adjust", "branch", "kochava", "generic":
		cs = append(cs, CaseProbabilistic)
	}
	switch mmp {
	case "appsflyer", "adjust", "generic":
		cs = append(cs, CaseRejected)
	}
	return cs
}

// generator builds a plan; requests refer to each other by pointer until
// finish sorts them and numbers them.
type generator struct {
	o       Options
	rng     *rand.Rand
	runHash uint64
	plan    Plan
	reqs    []*pending
	devices int
	ids     int // MMP event ids handed out
}

type pending struct {
	Request
	after     *pending
	clickFrom *pending
}

func (g *generator) apps() {
	models := []string{"CPI", "CPC", "CPM"}
	sources := []string{"adtrack_int", "pubnet", "mobnet"}
	for i, m := range mmps {
		a := &App{Platform: m.platform, MMP: m.name}
		if m.platform == event.PlatformIOS {
			a.ID = fmt.Sprintf("id9%02d%07d", i, g.runHash%10_000_000)
		} else {
			a.ID = fmt.Sprintf("com.sim%s.%s", g.o.Run, m.name)
		}
		g.plan.Apps = append(g.plan.Apps, a)
		for k := range 2 {
			model := models[(i+k)%3]
			c := &Campaign{Campaign: event.Campaign{
				ID:    fmt.Sprintf("sim-%s-%s-%s", g.o.Run, m.name, lower(model)),
				AppID: a.ID, Platform: a.Platform, MediaSource: sources[(i+k)%3], MMP: m.name,
				CostModel: model, Bid: bid(model, k), Currency: "USD",
			}}
			c.TrackingLink, c.ClickIDParam = trackingLink(m.name)
			g.plan.Campaigns = append(g.plan.Campaigns, c)
		}
	}
}

func lower(s string) string {
	b := []byte(s)
	for i, c := range b {
		if 'A' <= c && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	return string(b)
}

func bid(model string, k int) money.Amount {
	v := map[string][2]string{"CPI": {"1.80", "2.50"}, "CPC": {"0.12", "0.30"}, "CPM": {"4.00", "6.50"}}[model][k]
	a, _ := money.Parse(v)
	return a
}

// trackingLink is an MMP-style tracking link with our macros, and the
// parameter that carries our click id back (Adjust's is inside its
// URL-encoded install_callback).
func trackingLink(mmp string) (link, clickParam string) {
	switch mmp {
	case "appsflyer":
		return "https://app.appsflyer.com/{app_id}?pid=adtrack_int&c={campaign_id}&clickid={click_id}&af_siteid={site_id}&af_sub_siteid={sub_site_id}&af_c_id={campaign_id}&af_adset={adset_id}&af_ad={creative_id}&idfa={idfa}", "clickid"
	case "adjust":
		return "https://app.adjust.com/sim123?campaign={campaign_id}&adgroup={adset_id}&creative={creative_id}&gps_adid={gaid}&install_callback=https%3A%2F%2Fpostbacks.example%2Fv1%2Fpostbacks%2Fadjust%2Finstall%3Fclick_id%3D{click_id}", "click_id"
	case "branch":
		return "https://sim.app.link/abc?~click_id={click_id}&~campaign_id={campaign_id}&~secondary_publisher={site_id}&%24aaid={gaid}&%24idfa={idfa}", "~click_id"
	case "singular":
		return "https://sng.link/sim/abc?cl={click_id}&pcrid={creative_id}&psid={site_id}&aifa={gaid}", "cl"
	case "kochava":
		return "https://control.kochava.com/v1/cpi/click?campaign_id=kosim&network_id=1&click_id={click_id}&site_id={site_id}&device_id={gaid}", "click_id"
	case "tenjin":
		return "https://track.tenjin.com/v0/click/sim?click_id={click_id}&site_id={site_id}&advertising_id={idfa}", "click_id"
	default:
		return "https://mmp.example/click?click_id={click_id}&campaign_id={campaign_id}&site_id={site_id}", "click_id"
	}
}

// startTime is a random journey start within the touch period.
func (g *generator) startTime() time.Duration {
	return time.Duration(g.rng.Int64N(int64(g.o.Duration)))
}

func (g *generator) between(lo, hi time.Duration) time.Duration {
	if hi <= lo {
		return lo
	}
	return lo + time.Duration(g.rng.Int64N(int64(hi-lo)))
}

func (g *generator) add(at time.Duration, kind Kind, after *pending) *pending {
	p := &pending{Request: Request{At: at, Kind: kind, Sends: 1}, after: after}
	if after != nil && p.At <= after.At {
		p.At = after.At + time.Millisecond
	}
	g.reqs = append(g.reqs, p)
	return p
}

// randomUser is one user of the random part: impressions, maybe a click,
// maybe an install.
func (g *generator) randomUser() {
	a := g.plan.Apps[g.rng.IntN(len(g.plan.Apps))]
	at := g.startTime()
	switch r := g.rng.Float64(); {
	case r < g.o.CTR*g.o.CVR:
		cs := casesFor(a.MMP)
		g.journey(a, cs[g.rng.IntN(len(cs))], at)
	case r < g.o.CTR:
		c := g.campaignOf(a)
		d := g.device(a, true)
		last := g.impressions(c, d, at, true)
		g.click(c, d, last.At+g.between(500*time.Millisecond, 5*time.Second), true, g.rng.IntN(2) == 0)
	case r < g.o.CTR+g.o.VTR:
		g.journey(a, CaseViewThrough, at)
	default:
		g.impressions(g.campaignOf(a), g.device(a, true), at, true)
	}
}

func (g *generator) appOf(c *Campaign) *App {
	for _, a := range g.plan.Apps {
		if a.ID == c.AppID {
			return a
		}
	}
	return nil
}

func (g *generator) campaignOf(a *App) *Campaign {
	var cs []*Campaign
	for _, c := range g.plan.Campaigns {
		if c.AppID == a.ID {
			cs = append(cs, c)
		}
	}
	return cs[g.rng.IntN(len(cs))]
}

// finish sorts the requests by time (a request stays after the one it
// needs) and numbers them.
func (g *generator) finish() {
	slices.SortStableFunc(g.reqs, func(a, b *pending) int {
		return cmp.Compare(a.At, b.At)
	})
	for i, p := range g.reqs {
		p.Seq = i
	}
	for _, p := range g.reqs {
		p.After = -1
		if p.after != nil {
			p.After = p.after.Seq
		}
		if p.Postback != nil {
			p.Postback.ClickFrom = -1
			if p.clickFrom != nil {
				p.Postback.ClickFrom = p.clickFrom.Seq
			}
		}
		r := p.Request
		g.plan.Requests = append(g.plan.Requests, &r)
	}
	g.plan.Options = g.o
}
