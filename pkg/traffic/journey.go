package traffic

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/adtrack/postback/pkg/event"
	"github.com/adtrack/postback/pkg/money"
)

// device makes a new user's device for app a; withAdID false is a user with
// limited ad tracking (no IDFA/GAID).
func (g *generator) device(a *App, withAdID bool) Device {
	g.devices++
	n := g.devices
	r := rand.New(rand.NewPCG(g.runHash, uint64(n)))
	d := Device{
		IP:      fmt.Sprintf("%d.%d.%d.%d", 11+r.IntN(89), r.IntN(256), r.IntN(256), 1+r.IntN(254)),
		Country: countries[r.IntN(len(countries))],
		UA:      fmt.Sprintf("Mozilla/5.0 (Linux; Android 14) sim/%s/%d", g.o.Run, n),
	}
	if a.Platform == event.PlatformIOS {
		d.UA = fmt.Sprintf("Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) sim/%s/%d", g.o.Run, n)
	}
	d.MMPDeviceID = fmt.Sprintf("%s-%d", g.o.Run, n)
	if withAdID {
		if a.Platform == event.PlatformIOS {
			d.IDFA = uuid(r)
		} else {
			d.GAID = uuid(r)
		}
	}
	g.newInstallIDs(&d, r)
	return d
}

// newInstallIDs gives d the vendor id of a new install of the app (a
// reinstall gets a new IDFV or Android id, the advertising id stays).
func (g *generator) newInstallIDs(d *Device, r *rand.Rand) {
	d.IDFV = uuid(r)
	d.AndroidID = fmt.Sprintf("%016x", r.Uint64())
}

func uuid(r *rand.Rand) string {
	a, b := r.Uint64(), r.Uint64()
	return fmt.Sprintf("%08x-%04x-4%03x-a%03x-%012x", a>>32, a>>16&0xffff, a&0xfff, b>>48&0xfff, b&0xffffffffffff)
}

// impressions adds one to three impressions of c to d from at; the last.
func (g *generator) impressions(c *Campaign, d Device, at time.Duration, withAdID bool) *pending {
	var last *pending
	for i := range 1 + g.rng.IntN(3) {
		last = g.touch(Impression, c, d, at+time.Duration(i)*g.between(200*time.Millisecond, 3*time.Second), withAdID)
	}
	return last
}

// click adds a click of c by d: a browser redirect or a server-to-server
// click.
func (g *generator) click(c *Campaign, d Device, at time.Duration, withAdID, s2s bool) *pending {
	if s2s {
		return g.touch(ClickS2S, c, d, at, withAdID)
	}
	return g.touch(ClickRedirect, c, d, at, withAdID)
}

func (g *generator) touch(kind Kind, c *Campaign, d Device, at time.Duration, withAdID bool) *pending {
	p := g.add(at, kind, nil)
	site := g.rng.IntN(6)
	p.Touch = &Touch{
		Campaign: c, Device: d, WithAdID: withAdID,
		SiteID: fmt.Sprintf("site%d", site), SubSiteID: fmt.Sprintf("sub%d-%d", site, g.rng.IntN(3)),
		CreativeID: fmt.Sprintf("cr%d", g.rng.IntN(4)), AdsetID: fmt.Sprintf("as%d", g.rng.IntN(2)),
	}
	return p
}

// journey adds a user whose install follows journey cs on app a, from at.
func (g *generator) journey(a *App, cs Case, at time.Duration) {
	g.faults(a)
	c := g.campaignOf(a)
	ctit := g.between(g.o.MinCTIT, g.o.MaxCTIT)
	delay := g.between(0, g.o.MaxDelay)
	s2s := g.rng.IntN(2) == 0
	var in *pending
	switch cs {
	case CaseClickID, CaseEarly, CaseInjected, CaseRejected, CaseReinstall:
		d := g.device(a, true)
		last := g.impressions(c, d, at, true)
		click := g.click(c, d, last.At+g.between(500*time.Millisecond, 5*time.Second), true, s2s)
		kind := Install
		switch cs {
		case CaseEarly:
			delay = 0
		case CaseInjected:
			ctit = 3 * time.Second
		case CaseRejected:
			kind = RejectedCB
		}
		first := cs
		if cs == CaseReinstall {
			first = CaseClickID // the reinstall is the second install below
		}
		in = g.install(a, kind, d, click, click, c, ctit, delay, expect(first, event.MatchClickID, c))
		in.Postback.WithIPUA = true
		if cs == CaseRejected {
			in.Postback.RejectReason = "engagement_injection"
			return
		}
		g.events(in)
		if cs == CaseReinstall {
			d2 := d
			g.newInstallIDs(&d2, rand.New(rand.NewPCG(g.runHash^0x5eed, uint64(in.At))))
			g.install(a, Install, d2, in, nil, c, g.o.ReinstallAfter, g.between(0, g.o.MaxDelay), expect(cs, event.MatchDeviceID, c))
		}
		return
	case CaseDeviceID:
		d := g.device(a, true)
		last := g.impressions(c, d, at, true)
		click := g.click(c, d, last.At+g.between(500*time.Millisecond, 5*time.Second), true, s2s)
		in = g.install(a, Install, d, click, nil, c, ctit, delay, expect(cs, event.MatchDeviceID, c))
		in.Postback.WithIPUA = true
	case CaseProbabilistic:
		d := g.device(a, false)
		last := g.impressions(c, d, at, false)
		click := g.click(c, d, last.At+g.between(500*time.Millisecond, 5*time.Second), false, true)
		in = g.install(a, Install, d, click, nil, c, ctit, delay, expect(cs, event.MatchProbabilistic, c))
		in.Postback.WithAdID, in.Postback.WithIPUA = false, true
	case CaseViewThrough:
		d := g.device(a, true)
		last := g.impressions(c, d, at, true)
		in = g.install(a, Install, d, last, nil, c, ctit, delay, expect(cs, event.MatchViewThrough, c))
	case CaseOrganic:
		d := g.device(a, true)
		in = g.install(a, Install, d, nil, nil, nil, 0, delay, expect(cs, event.MatchOrganic, nil))
		in.At = at
		in.Postback.WithIPUA = true
	case CaseFlood:
		d := g.device(a, true)
		var click *pending
		t := at
		for range g.o.FloodClicks + 1 {
			t += g.between(20*time.Millisecond, 200*time.Millisecond)
			click = g.click(c, d, t, true, g.rng.IntN(2) == 0)
		}
		in = g.install(a, Install, d, click, click, c, ctit, delay, expect(cs, event.MatchClickID, c))
	}
	g.events(in)
}

// expect is the designed outcome of journey cs credited to c.
func expect(cs Case, m event.MatchType, c *Campaign) *Expect {
	e := &Expect{Case: cs, Match: m, Flags: []string{}}
	if c == nil {
		return e
	}
	e.CampaignID = c.ID
	switch cs {
	case CaseInjected:
		e.Flags = []string{event.FraudClickInjection}
	case CaseFlood:
		e.Flags = []string{event.FraudClickFlooding}
	case CaseRejected:
		e.Rejected, e.Flags = true, []string{event.FraudMMPRejected}
	}
	if m == event.MatchDeviceID && cs == CaseReinstall {
		e.Reinstall = true
	}
	e.Cost = "0"
	if c.CostModel == "CPI" && !e.Rejected && !e.Reinstall {
		e.Cost = c.Bid.String()
	}
	return e
}

// install adds an install (or rejected-install callback) of device d: after
// request after (the touch whose answer time anchors the install time, or
// the earlier install of a reinstall), carrying click's id when the MMP
// passes it back.
func (g *generator) install(a *App, kind Kind, d Device, after, click *pending, c *Campaign, ctit, delay time.Duration, e *Expect) *pending {
	at := delay
	if after != nil {
		at += after.At + ctit
	}
	p := g.add(at, kind, after)
	p.clickFrom = click
	p.Sends = g.sends(a.MMP)
	p.Postback = &Postback{
		MMP: a.MMP, App: a, Kind: kind, Device: d, WithAdID: d.IDFA != "" || d.GAID != "",
		CTIT: ctit, Campaign: c, Expect: e,
	}
	if a.MMP == "branch" || a.MMP == "generic" {
		g.ids++
		p.Postback.MMPEventID = fmt.Sprintf("%s-%d", g.o.Run, g.ids)
	}
	if after == nil {
		p.Postback.CTIT = -delay // no touch: the install happened delay before the postback
	}
	return p
}

// sends is how often the MMP sends one postback: once, or for a share of
// postbacks up to its retry count.
func (g *generator) sends(mmp string) int {
	if g.rng.Float64() >= g.o.RetryShare {
		return 1
	}
	most := 3
	switch mmp {
	case "appsflyer":
		most = 5
	case "adjust":
		most = 7
	}
	return 2 + g.rng.IntN(most-1)
}

// eventKinds are the in-app events a user does after installing, by MMP
// spelling: purchases, levels, screen views, registrations, app opens.
var eventKinds = map[string][]string{
	"appsflyer": {"af_purchase", "af_level_achieved", "af_content_view", "af_complete_registration", "af_app_opened"},
	"adjust":    {"purchase", "level_achieved", "content_view", "registration", "session"},
	"branch":    {"PURCHASE", "ACHIEVE_LEVEL", "VIEW_ITEM", "COMPLETE_REGISTRATION", "OPEN"},
	"singular":  {"__iap__", "sng_level_achieved", "sng_content_view", "sng_complete_registration", "session"},
	"kochava":   {"Purchase", "Level Complete", "View", "Registration Complete", "session"},
	"tenjin":    {"purchase", "level_achieved", "screen_view", "registration", "open"},
	"generic":   {"purchase", "level_achieved", "screen_view", "form_submit", "app_open"},
}

// events adds zero to three in-app events after install in (none after a
// rejected install). Each inherits the install's attribution; a purchase
// has revenue in one of purchaseCurrencies (USD for Tenjin).
func (g *generator) events(in *pending) {
	ip := in.Postback
	if ip.Expect.Rejected {
		return
	}
	names := eventKinds[ip.MMP]
	t := in.At
	for range g.rng.IntN(4) {
		name := names[g.rng.IntN(len(names))]
		off := g.between(time.Second, 10*time.Second)
		t += off
		p := g.add(t+g.between(0, g.o.MaxDelay/4), InAppEvent, in)
		p.clickFrom = in.clickFrom
		p.Sends = g.sends(ip.MMP)
		ev := *ip
		ev.Kind, ev.EventName, ev.EventOffset, ev.Revenue, ev.Currency = InAppEvent, name, t-in.At, "", ""
		ev.Expect = &Expect{Case: CaseEvent, Match: ip.Expect.Match, CampaignID: ip.Expect.CampaignID, Flags: ip.Expect.Flags}
		ev.MMPEventID = ""
		if ip.MMPEventID != "" {
			g.ids++
			ev.MMPEventID = fmt.Sprintf("%s-%d", g.o.Run, g.ids)
		}
		if name == names[0] {
			ev.Currency = purchaseCurrencies[g.rng.IntN(len(purchaseCurrencies))]
			if ip.MMP == "tenjin" {
				ev.Currency = "USD"
			}
			ev.Revenue = fmt.Sprintf("%d.%02d", 1+g.rng.IntN(50), g.rng.IntN(100))
			ev.Expect.RevenueReporting = g.reporting(ev.Revenue, ev.Currency)
		} else {
			ev.Expect.RevenueReporting = "0"
		}
		p.Postback = &ev
	}
}

// reporting converts amount in cur to the reporting currency, exactly.
func (g *generator) reporting(amount, cur string) string {
	a, _ := money.Parse(amount) // generated as d.dd
	r := g.o.Rates[cur]
	rate, err := money.Parse(r)
	if err != nil {
		return "rate " + r
	}
	return money.Amount(int64(a) * int64(rate) / 1_000_000).String()
}

// faults adds, with the options' shares, a malformed postback (answered
// 400 and kept in rejected) and an unauthenticated one (401, stored
// nowhere) of app a: each from a device of its own.
func (g *generator) faults(a *App) {
	if g.rng.Float64() < g.o.MalformedShare {
		g.broken(a, Malformed)
	}
	if g.rng.Float64() < g.o.UnauthShare {
		g.broken(a, Unauthenticated)
	}
}

// badFields are the fields a malformed postback breaks, with the kind it
// is sent as.
var badFields = []struct {
	field string
	kind  Kind
}{{"currency", InAppEvent}, {"idfa", Install}, {"app_id", Install}, {"install_time", Install}}

func (g *generator) broken(a *App, f Fault) {
	d := g.device(a, true)
	bf := badFields[g.rng.IntN(len(badFields))]
	p := g.add(g.startTime(), bf.kind, nil)
	p.Fault = f
	p.Postback = &Postback{MMP: a.MMP, App: a, Kind: bf.kind, Device: d, WithAdID: true, WithIPUA: true,
		CTIT: -time.Second, EventName: eventKinds[a.MMP][0], Revenue: "1.00", Currency: "USD"}
	if f == Malformed {
		p.Postback.BadField = bf.field
		if a.MMP == "tenjin" && bf.field == "currency" {
			p.Postback.BadField = "idfa" // Tenjin sends no currency
		}
	}
}

// sortedFlags returns flags sorted (the order the checks compare in).
func sortedFlags(flags []string) []string {
	out := slices.Clone(flags)
	slices.Sort(out)
	return out
}
