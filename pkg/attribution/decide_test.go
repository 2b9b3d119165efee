package attribution

import (
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/adtrack/postback/pkg/campaign"
	"github.com/adtrack/postback/pkg/event"
)

// want is the part of an Attribution a rule table asserts. ctit is checked
// only when the match is not organic; cost is the decimal string.
type want struct {
	match     event.MatchType
	touch     string
	ctit      int64
	flags     []string
	reinstall bool
	cost      string
	cur       string
	disagrees bool
}

type decideCase struct {
	name  string
	rules func(*Rules)
	in    *event.Install
	c     Candidates
	want  want
}

// decideCases is the rule table; TestDecide checks it and TestSchemas
// validates every outcome against the topic schema.
func decideCases() []decideCase {
	none := []string{}
	cpi := func(touch string, m event.MatchType, ctit int64) want {
		return want{match: m, touch: touch, ctit: ctit, flags: none, cost: "1.5", cur: "USD"}
	}
	organic := want{match: event.MatchOrganic, flags: none, cost: "0"}
	with := func(w want, f func(*want)) want { f(&w); return w }

	return []decideCase{
		// --- window boundaries: exactly at the limit attributes, one second past does not.
		{name: "click_id at the click lookback", in: install(withClickID("k1")),
			c: Candidates{ByClickID: clickp("k1", 7*day)}, want: cpi("k1", event.MatchClickID, 7*86400)},
		{name: "click_id 1s past the click lookback is rejected and flagged", in: install(withClickID("k1")),
			c:    Candidates{ByClickID: clickp("k1", 7*day+sec)},
			want: with(organic, func(w *want) { w.flags = []string{event.FraudCTITTooLong} })},
		{name: "device click at the click lookback", in: install(),
			c: Candidates{ByDevice: []event.Click{click("d1", 7*day)}}, want: cpi("d1", event.MatchDeviceID, 7*86400)},
		{name: "device click 1s past the click lookback", in: install(),
			c: Candidates{ByDevice: []event.Click{click("d1", 7*day+sec)}}, want: organic},
		{name: "probabilistic at its window", in: install(),
			c: Candidates{ByIPUA: []event.Click{click("p1", day)}}, want: cpi("p1", event.MatchProbabilistic, 86400)},
		{name: "probabilistic 1s past its window", in: install(),
			c: Candidates{ByIPUA: []event.Click{click("p1", day+sec)}}, want: organic},
		{name: "view-through at the view lookback", in: install(),
			c:    Candidates{Impressions: []event.Impression{impression("v1", day)}},
			want: want{match: event.MatchViewThrough, touch: "v1", ctit: 86400, flags: none, cost: "0", cur: "GBP"}},
		{name: "view-through 1s past the view lookback", in: install(),
			c: Candidates{Impressions: []event.Impression{impression("v1", day+sec)}}, want: organic},
		{name: "injection: CTIT 9s is flagged", in: install(withClickID("k1")),
			c:    Candidates{ByClickID: clickp("k1", 9*sec)},
			want: with(cpi("k1", event.MatchClickID, 9), func(w *want) { w.flags = []string{event.FraudClickInjection} })},
		{name: "injection: CTIT 9.999s is flagged (seconds are floored)", in: install(withClickID("k1")),
			c:    Candidates{ByClickID: clickp("k1", 10*sec-time.Millisecond)},
			want: with(cpi("k1", event.MatchClickID, 9), func(w *want) { w.flags = []string{event.FraudClickInjection} })},
		{name: "injection: CTIT 10s is not flagged", in: install(withClickID("k1")),
			c: Candidates{ByClickID: clickp("k1", 10*sec)}, want: cpi("k1", event.MatchClickID, 10)},
		{name: "injection: device match is checked too", in: install(),
			c:    Candidates{ByDevice: []event.Click{click("d1", 3*sec)}},
			want: with(cpi("d1", event.MatchDeviceID, 3), func(w *want) { w.flags = []string{event.FraudClickInjection} })},
		{name: "injection: a click at the install instant (CTIT 0) wins and is flagged", in: install(),
			c:    Candidates{ByDevice: []event.Click{click("d1", 0)}},
			want: with(cpi("d1", event.MatchDeviceID, 0), func(w *want) { w.flags = []string{event.FraudClickInjection} })},
		{name: "injection: view-through is not checked", in: install(),
			c:    Candidates{Impressions: []event.Impression{impression("v1", 2*sec)}},
			want: want{match: event.MatchViewThrough, touch: "v1", ctit: 2, flags: none, cost: "0", cur: "GBP"}},
		{name: "injection threshold 0 disables the flag", rules: func(r *Rules) { r.InjectionCTIT = 0 }, in: install(),
			c: Candidates{ByDevice: []event.Click{click("d1", 0)}}, want: cpi("d1", event.MatchDeviceID, 0)},
		{name: "reinstall: previous install at the re-attribution window", in: install(),
			c:    Candidates{ByDevice: []event.Click{click("d1", time.Hour)}, PriorInstall: ago(90 * day)},
			want: with(cpi("d1", event.MatchDeviceID, 3600), func(w *want) { w.reinstall, w.cost = true, "0" })},
		{name: "reinstall: previous install 1s past the window is a new install", in: install(),
			c:    Candidates{ByDevice: []event.Click{click("d1", time.Hour)}, PriorInstall: ago(90*day + sec)},
			want: cpi("d1", event.MatchDeviceID, 3600)},
		{name: "reinstall: a 'previous' install processed first but later in time", in: install(),
			c:    Candidates{ByDevice: []event.Click{click("d1", time.Hour)}, PriorInstall: ago(-time.Hour)},
			want: with(cpi("d1", event.MatchDeviceID, 3600), func(w *want) { w.reinstall, w.cost = true, "0" })},
		{name: "reinstall: a 'previous' install 1s past the window, later in time", in: install(),
			c:    Candidates{ByDevice: []event.Click{click("d1", time.Hour)}, PriorInstall: ago(-90*day - sec)},
			want: cpi("d1", event.MatchDeviceID, 3600)},
		{name: "reinstall: the MMP says so", in: install(func(in *event.Install) { in.IsReinstall = true }),
			c:    Candidates{ByDevice: []event.Click{click("d1", time.Hour)}},
			want: with(cpi("d1", event.MatchDeviceID, 3600), func(w *want) { w.reinstall, w.cost = true, "0" })},
		{name: "reinstall: organic reinstall", in: install(), c: Candidates{PriorInstall: ago(day)},
			want: with(organic, func(w *want) { w.reinstall = true })},

		// --- tie-breaks
		{name: "two device clicks: the last one wins", in: install(),
			c: Candidates{ByDevice: []event.Click{click("d-new", time.Hour), click("d-old", 2*time.Hour)}}, want: cpi("d-new", event.MatchDeviceID, 3600)},
		{name: "two device clicks, other order: the last one wins", in: install(),
			c: Candidates{ByDevice: []event.Click{click("d-old", 2*time.Hour), click("d-new", time.Hour)}}, want: cpi("d-new", event.MatchDeviceID, 3600)},
		{name: "two probabilistic clicks: the last one wins", in: install(),
			c: Candidates{ByIPUA: []event.Click{click("p-old", 2*time.Hour), click("p-new", time.Hour)}}, want: cpi("p-new", event.MatchProbabilistic, 3600)},
		{name: "two impressions: the last one wins", in: install(),
			c:    Candidates{Impressions: []event.Impression{impression("v-new", time.Hour), impression("v-old", 2*time.Hour)}},
			want: want{match: event.MatchViewThrough, touch: "v-new", ctit: 3600, flags: none, cost: "0", cur: "GBP"}},
		{name: "equal click times: the greater id wins whatever the order", in: install(),
			c: Candidates{ByDevice: []event.Click{click("d-b", time.Hour), click("d-a", time.Hour), click("d-c", time.Hour)}}, want: cpi("d-c", event.MatchDeviceID, 3600)},
		{name: "click beats a newer impression", in: install(),
			c:    Candidates{ByDevice: []event.Click{click("d1", 20*time.Hour)}, Impressions: []event.Impression{impression("v1", time.Minute)}},
			want: cpi("d1", event.MatchDeviceID, 20*3600)},
		{name: "probabilistic click beats a newer impression", in: install(),
			c:    Candidates{ByIPUA: []event.Click{click("p1", 20*time.Hour)}, Impressions: []event.Impression{impression("v1", time.Minute)}},
			want: cpi("p1", event.MatchProbabilistic, 20*3600)},
		{name: "deterministic beats a newer probabilistic click", in: install(),
			c:    Candidates{ByDevice: []event.Click{click("d1", 6*day)}, ByIPUA: []event.Click{click("p1", time.Minute)}},
			want: cpi("d1", event.MatchDeviceID, 6*86400)},
		{name: "click_id beats a newer device click", in: install(withClickID("k1")),
			c:    Candidates{ByClickID: clickp("k1", 5*day), ByDevice: []event.Click{click("d1", time.Minute)}},
			want: cpi("k1", event.MatchClickID, 5*86400)},
		{name: "a device click 1s after the install never wins", in: install(),
			c: Candidates{ByDevice: []event.Click{click("d-after", -sec), click("d1", 2*time.Hour)}}, want: cpi("d1", event.MatchDeviceID, 7200)},
		{name: "a device click 1ns after the install never wins", in: install(),
			c: Candidates{ByDevice: []event.Click{click("d-after", -time.Nanosecond)}}, want: organic},
		{name: "a probabilistic click 1s after the install never wins", in: install(),
			c: Candidates{ByIPUA: []event.Click{click("p-after", -sec)}}, want: organic},
		{name: "an impression 1s after the install never wins", in: install(),
			c: Candidates{Impressions: []event.Impression{impression("v-after", -sec)}}, want: organic},
		{name: "the click_id click 1s after the install falls through", in: install(withClickID("k1")),
			c:    Candidates{ByClickID: clickp("k1", -sec), ByDevice: []event.Click{click("k1", -sec), click("d1", time.Hour)}},
			want: cpi("d1", event.MatchDeviceID, 3600)},
		{name: "stale click_id falls through to a device click", in: install(withClickID("k1")),
			c:    Candidates{ByClickID: clickp("k1", 8*day), ByDevice: []event.Click{click("d1", time.Hour)}},
			want: with(cpi("d1", event.MatchDeviceID, 3600), func(w *want) { w.flags = []string{event.FraudCTITTooLong} })},
		{name: "click_id not in store, MMP click time beyond window: flagged", in: install(withClickID("k1"), func(in *event.Install) { in.ClickTime = ago(8 * day) }),
			want: with(organic, func(w *want) { w.flags = []string{event.FraudCTITTooLong} })},
		{name: "click_id not in store, MMP click time inside window: other rules", in: install(withClickID("k1"), func(in *event.Install) { in.ClickTime = ago(day) }),
			c: Candidates{ByIPUA: []event.Click{click("p1", time.Hour)}}, want: cpi("p1", event.MatchProbabilistic, 3600)},

		// --- candidates that do not belong to the install are ignored
		{name: "click_id click of another app is not the touch", in: install(withClickID("k1")),
			c: Candidates{ByClickID: clickp("k1", time.Hour, func(k *event.Click) { k.AppID = "com.other" })}, want: organic},
		{name: "click_id click with another id is not the touch", in: install(withClickID("k1")),
			c: Candidates{ByClickID: clickp("k2", time.Hour)}, want: organic},
		{name: "device clicks of another device or app are ignored", in: install(),
			c: Candidates{ByDevice: []event.Click{
				click("d-other-dev", time.Minute, func(k *event.Click) { k.IDFA = other }),
				click("d-other-app", time.Minute, func(k *event.Click) { k.AppID = "com.other" }),
				click("d1", time.Hour)}},
			want: cpi("d1", event.MatchDeviceID, 3600)},
		{name: "impressions of another device or app are ignored", in: install(),
			c: Candidates{Impressions: []event.Impression{
				impression("v-other-dev", time.Minute, func(m *event.Impression) { m.IDFA = other }),
				impression("v-other-app", time.Minute, func(m *event.Impression) { m.AppID = "com.other" })}},
			want: organic},
		{name: "probabilistic needs the same app, IP and UA", in: install(),
			c: Candidates{ByIPUA: []event.Click{
				click("p-ip", time.Minute, func(k *event.Click) { k.IP = "198.51.100.1" }),
				click("p-ua", time.Minute, func(k *event.Click) { k.UA = "curl/8" }),
				click("p-app", time.Minute, func(k *event.Click) { k.AppID = "com.other" })}},
			want: organic},
		{name: "no probabilistic match without the install's UA", in: install(func(in *event.Install) { in.UA = "" }),
			c: Candidates{ByIPUA: []event.Click{click("p1", time.Minute, func(k *event.Click) { k.UA = "" })}}, want: organic},
		{name: "no device or view-through match without an advertising id", in: install(func(in *event.Install) { in.IDFA = "" }),
			c: Candidates{ByDevice: []event.Click{click("d1", time.Minute, func(k *event.Click) { k.IDFA = "" })},
				Impressions: []event.Impression{impression("v1", time.Minute, func(m *event.Impression) { m.IDFA = "" })}},
			want: organic},
		{name: "GAID is the advertising id on Android", in: install(func(in *event.Install) { in.IDFA, in.GAID = "", other }),
			c:    Candidates{ByDevice: []event.Click{click("d1", time.Hour, func(k *event.Click) { k.IDFA, k.GAID = "", other })}},
			want: cpi("d1", event.MatchDeviceID, 3600)},

		// --- organic
		{name: "organic: nothing found", in: install(), want: organic},
		{name: "organic: MMP says Organic too", in: install(withMMP("Organic", "")), want: organic},

		// --- fraud flags
		{name: "click flooding: 51 counted clicks is flagged", in: install(),
			c:    Candidates{ByDevice: []event.Click{click("d1", time.Hour)}, DeviceClickCount: 51},
			want: with(cpi("d1", event.MatchDeviceID, 3600), func(w *want) { w.flags = []string{event.FraudClickFlooding} })},
		{name: "click flooding: 50 counted clicks is not", in: install(),
			c: Candidates{ByDevice: []event.Click{click("d1", time.Hour)}, DeviceClickCount: 50}, want: cpi("d1", event.MatchDeviceID, 3600)},
		{name: "click flooding: counted from ByDevice when the store passes no count", rules: func(r *Rules) { r.FloodClicks = 2 }, in: install(),
			c:    Candidates{ByDevice: []event.Click{click("d1", time.Hour), click("d2", 2*time.Hour), click("d3", 3*time.Hour), click("d-old", 8*day)}},
			want: with(cpi("d1", event.MatchDeviceID, 3600), func(w *want) { w.flags = []string{event.FraudClickFlooding} })},
		{name: "click flooding: clicks outside the window do not count", rules: func(r *Rules) { r.FloodClicks = 2 }, in: install(),
			c:    Candidates{ByDevice: []event.Click{click("d1", time.Hour), click("d2", 2*time.Hour), click("d-old", 8*day), click("d-after", -time.Hour)}},
			want: cpi("d1", event.MatchDeviceID, 3600)},
		{name: "click flooding: applies to a click_id match", in: install(withClickID("k1")),
			c:    Candidates{ByClickID: clickp("k1", time.Hour), DeviceClickCount: 80},
			want: with(cpi("k1", event.MatchClickID, 3600), func(w *want) { w.flags = []string{event.FraudClickFlooding} })},
		{name: "click flooding: not on a view-through install", in: install(),
			c:    Candidates{Impressions: []event.Impression{impression("v1", time.Hour)}, DeviceClickCount: 80},
			want: want{match: event.MatchViewThrough, touch: "v1", ctit: 3600, flags: none, cost: "0", cur: "GBP"}},
		{name: "click flooding: not on an organic install", in: install(), c: Candidates{DeviceClickCount: 80}, want: organic},
		{name: "click flooding: 0 disables", rules: func(r *Rules) { r.FloodClicks = 0 }, in: install(),
			c: Candidates{ByDevice: []event.Click{click("d1", time.Hour)}, DeviceClickCount: 1000}, want: cpi("d1", event.MatchDeviceID, 3600)},
		{name: "mmp_rejected: attributed, flagged, costs nothing in the campaign currency",
			in:   install(func(in *event.Install) { in.Rejected, in.RejectReason = true, "click_flood" }),
			c:    Candidates{ByDevice: []event.Click{click("d1", time.Hour)}},
			want: with(cpi("d1", event.MatchDeviceID, 3600), func(w *want) { w.flags, w.cost = []string{event.FraudMMPRejected}, "0" })},
		{name: "mmp_rejected: the postback's own cost is not charged either",
			in:   install(func(in *event.Install) { in.Rejected, in.RejectReason = true, "ctit_anomalies" }, withCost(2_000_000, "USD")),
			c:    Candidates{ByDevice: []event.Click{click("d1", time.Hour)}},
			want: with(cpi("d1", event.MatchDeviceID, 3600), func(w *want) { w.flags, w.cost = []string{event.FraudMMPRejected}, "0" })},
		{name: "mmp_rejected: organic", in: install(func(in *event.Install) { in.Rejected, in.RejectReason = true, "bots" }),
			want: with(organic, func(w *want) { w.flags = []string{event.FraudMMPRejected} })},
		{name: "every flag at once, in a fixed order",
			in: install(withClickID("k1"), func(in *event.Install) { in.Rejected, in.RejectReason = true, "x" }),
			c:  Candidates{ByClickID: clickp("k1", 8*day), ByDevice: []event.Click{click("d1", 2*sec)}, DeviceClickCount: 51},
			want: with(cpi("d1", event.MatchDeviceID, 2), func(w *want) {
				w.cost = "0"
				w.flags = []string{event.FraudClickInjection, event.FraudCTITTooLong, event.FraudClickFlooding, event.FraudMMPRejected}
			})},

		// --- cost
		{name: "cost: CPI bid of the campaign", in: install(),
			c: Candidates{ByDevice: []event.Click{click("d1", time.Hour)}}, want: cpi("d1", event.MatchDeviceID, 3600)},
		{name: "cost: the postback's own cost beats the bid", in: install(withCost(2_100_000, "EUR")),
			c:    Candidates{ByDevice: []event.Click{click("d1", time.Hour)}},
			want: with(cpi("d1", event.MatchDeviceID, 3600), func(w *want) { w.cost, w.cur = "2.1", "EUR" })},
		{name: "cost: the postback's own cost applies to a reinstall", in: install(withCost(300_000, "USD")),
			c:    Candidates{ByDevice: []event.Click{click("d1", time.Hour)}, PriorInstall: ago(day)},
			want: with(cpi("d1", event.MatchDeviceID, 3600), func(w *want) { w.cost, w.reinstall = "0.3", true })},
		{name: "cost: CPC campaign install is free but carries its currency", in: install(),
			c:    Candidates{ByDevice: []event.Click{click("d1", time.Hour, campaignOf("cpc"))}},
			want: want{match: event.MatchDeviceID, touch: "d1", ctit: 3600, flags: none, cost: "0", cur: "EUR"}},
		{name: "cost: campaign missing from the registry: zero in the touch's currency", in: install(),
			c: Candidates{ByDevice: []event.Click{click("d1", time.Hour, func(k *event.Click) {
				k.Placement = event.Placement{CampaignID: "gone", AdsetID: "as-gone", CreativeID: "cr-gone", SiteID: "site-gone", SubSiteID: "sub-gone"}
				k.PublisherSubs = event.PublisherSubs{Sub1: "p1-gone", Sub5: "p5-gone"}
				k.Currency = "JPY"
			})}},
			want: want{match: event.MatchDeviceID, touch: "d1", ctit: 3600, flags: none, cost: "0", cur: "JPY"}},
		{name: "cost: organic install with a postback cost is not charged", in: install(withCost(1_000_000, "USD")), want: organic},

		// --- MMP disagreement
		{name: "MMP agrees (media source case differs, same campaign)", in: install(withMMP("ACME_int", "cpi")),
			c: Candidates{ByDevice: []event.Click{click("d1", time.Hour)}}, want: cpi("d1", event.MatchDeviceID, 3600)},
		{name: "MMP reports another media source", in: install(withMMP("facebook", "")),
			c:    Candidates{ByDevice: []event.Click{click("d1", time.Hour)}},
			want: with(cpi("d1", event.MatchDeviceID, 3600), func(w *want) { w.disagrees = true })},
		{name: "MMP reports another campaign", in: install(withMMP("acme_int", "cpi-2")),
			c:    Candidates{ByDevice: []event.Click{click("d1", time.Hour)}},
			want: with(cpi("d1", event.MatchDeviceID, 3600), func(w *want) { w.disagrees = true })},
		{name: "MMP attributes an install we find organic", in: install(withMMP("acme_int", "cpi")),
			want: with(organic, func(w *want) { w.disagrees = true })},
		{name: "MMP says organic, we found a click", in: install(withMMP("organic", "")),
			c:    Candidates{ByDevice: []event.Click{click("d1", time.Hour)}},
			want: with(cpi("d1", event.MatchDeviceID, 3600), func(w *want) { w.disagrees = true })},
	}
}

func TestDecide(t *testing.T) {
	for _, tc := range decideCases() {
		t.Run(tc.name, func(t *testing.T) {
			r := DefaultRules()
			if tc.rules != nil {
				tc.rules(&r)
			}
			if err := r.Validate(); err != nil {
				t.Fatal(err)
			}
			before := *tc.in
			got := r.Decide(tc.in, tc.c, camps, decidedAt)
			if !reflect.DeepEqual(before, *tc.in) {
				t.Fatal("Decide modified its install")
			}
			check(t, tc, got)
		})
	}
}

func check(t *testing.T, tc decideCase, got event.AttributedInstall) {
	t.Helper()
	a, w := got.Attribution, tc.want
	if a.MatchType != w.match || a.TouchID != w.touch {
		t.Fatalf("match = %s %q, want %s %q", a.MatchType, a.TouchID, w.match, w.touch)
	}
	if a.FraudFlags == nil || !slices.Equal(a.FraudFlags, w.flags) {
		t.Errorf("flags = %#v, want %#v", a.FraudFlags, w.flags)
	}
	if a.Reinstall != w.reinstall {
		t.Errorf("reinstall = %v, want %v", a.Reinstall, w.reinstall)
	}
	if a.Cost.String() != w.cost || a.CostCurrency != w.cur {
		t.Errorf("cost = %s %q, want %s %q", a.Cost, a.CostCurrency, w.cost, w.cur)
	}
	if a.MMPDisagrees != w.disagrees {
		t.Errorf("mmp_disagrees = %v, want %v", a.MMPDisagrees, w.disagrees)
	}
	if !a.AttributedAt.Equal(decidedAt) {
		t.Errorf("attributed_at = %v", a.AttributedAt)
	}
	if got.EventID != tc.in.EventID {
		t.Errorf("event_id = %q, install not copied", got.EventID)
	}
	if w.match == event.MatchOrganic {
		if a.TouchTime != nil || a.CTITSeconds != nil || a.CampaignID != "" || a.MediaSource != "" || a.SiteID != "" || !a.Subs().IsZero() {
			t.Errorf("organic install carries touch fields: %+v", a)
		}
		return
	}
	if a.CTITSeconds == nil || *a.CTITSeconds != w.ctit {
		t.Errorf("ctit = %v, want %d", a.CTITSeconds, w.ctit)
	}
	if a.TouchTime == nil || a.TouchTime.Location() != time.UTC {
		t.Fatalf("touch_time = %v, want a UTC time", a.TouchTime)
	}
	if got := installAt.Sub(*a.TouchTime); int64(got/time.Second) != w.ctit {
		t.Errorf("touch_time %v does not match ctit %d", a.TouchTime, w.ctit)
	}
	// The placement comes from the winning touch.
	c := a.CampaignID
	if c == "" || a.AdsetID != "as-"+c || a.CreativeID != "cr-"+c || a.SiteID != "site-"+c || a.SubSiteID != "sub-"+c ||
		a.Subs() != (event.PublisherSubs{Sub1: "p1-" + c, Sub5: "p5-" + c}) {
		t.Errorf("placement not taken from the touch: %+v", a)
	}
	if camp, ok := camps[c]; ok && a.MediaSource != camp.MediaSource {
		t.Errorf("media source = %q, want %q", a.MediaSource, camp.MediaSource)
	}
}

func TestDecideMediaSourceFromCampaign(t *testing.T) {
	// A touch recorded without a media source takes its campaign's.
	k := click("d1", time.Hour, func(k *event.Click) { k.MediaSource = "" })
	got := DefaultRules().Decide(install(), Candidates{ByDevice: []event.Click{k}}, camps, decidedAt)
	if got.Attribution.MediaSource != "acme_int" {
		t.Fatalf("media source = %q, want acme_int", got.Attribution.MediaSource)
	}
}

func TestDecideNilLookupAndRegistry(t *testing.T) {
	c := Candidates{ByDevice: []event.Click{click("d1", time.Hour)}}
	// Without a lookup the touch still wins; no bid is known, the touch's currency stays.
	got := DefaultRules().Decide(install(), c, nil, decidedAt)
	if got.Attribution.MatchType != event.MatchDeviceID || got.Attribution.Cost != 0 || got.Attribution.CostCurrency != "USD" {
		t.Fatalf("nil lookup: %+v", got.Attribution)
	}
	// *campaign.Registry is a CampaignLookup.
	reg := campaign.NewRegistry()
	reg.Put(camps["cpi"])
	got = DefaultRules().Decide(install(), c, reg, decidedAt)
	if got.Attribution.Cost.String() != "1.5" {
		t.Fatalf("registry: cost = %s", got.Attribution.Cost)
	}
}

func TestDecideInstallTimeFallback(t *testing.T) {
	// An install without an install time is measured from its receipt.
	in := install(func(in *event.Install) { in.InstallTime = time.Time{}; in.ReceivedAt = installAt })
	got := DefaultRules().Decide(in, Candidates{ByDevice: []event.Click{click("d1", time.Hour)}}, camps, decidedAt)
	if got.Attribution.CTITSeconds == nil || *got.Attribution.CTITSeconds != 3600 {
		t.Fatalf("ctit = %v, want 3600", got.Attribution.CTITSeconds)
	}
}

func TestDecideOrderIndependent(t *testing.T) {
	// Every permutation of the candidates gives the same decision: a store
	// restored from its changelog may return them in any order.
	clicks := []event.Click{
		click("a", time.Hour), click("b", 30*time.Minute), click("c", 30*time.Minute),
		click("d", -time.Minute), click("e", 8*day), click("f", 45*time.Minute, func(k *event.Click) { k.AppID = "x" }),
	}
	var first string
	permute(clicks, 0, func(p []event.Click) {
		got := DefaultRules().Decide(install(), Candidates{ByDevice: slices.Clone(p)}, camps, decidedAt)
		if first == "" {
			first = got.Attribution.TouchID
		}
		if got.Attribution.TouchID != first || first != "c" {
			t.Fatalf("order %v: touch %q, first %q, want c", ids(p), got.Attribution.TouchID, first)
		}
	})
}

func permute(s []event.Click, i int, f func([]event.Click)) {
	if i == len(s) {
		f(s)
		return
	}
	for j := i; j < len(s); j++ {
		s[i], s[j] = s[j], s[i]
		permute(s, i+1, f)
		s[i], s[j] = s[j], s[i]
	}
}

func ids(s []event.Click) []string {
	out := make([]string, len(s))
	for i := range s {
		out[i] = s[i].ClickID
	}
	return out
}

func TestDecideDoesNotAlias(t *testing.T) {
	// The output must not point into the candidates: the store may reuse
	// its buffers for the next install.
	c := Candidates{ByDevice: []event.Click{click("d1", time.Hour)}}
	got := DefaultRules().Decide(install(), c, camps, decidedAt)
	c.ByDevice[0].Time = installAt.Add(-5 * time.Hour)
	c.ByDevice[0].CampaignID = "changed"
	if !got.Attribution.TouchTime.Equal(installAt.Add(-time.Hour)) || got.Attribution.CampaignID != "cpi" {
		t.Fatalf("output aliases the candidates: %+v", got.Attribution)
	}
}

// TestClickWins checks ClickWins against Decide on every case of the rule
// table: it holds exactly when Decide credits rule 1 or 2, and then Decide
// without probabilistic candidates and impressions decides the same.
func TestClickWins(t *testing.T) {
	n := 0
	for _, tc := range decideCases() {
		t.Run(tc.name, func(t *testing.T) {
			r := DefaultRules()
			if tc.rules != nil {
				tc.rules(&r)
			}
			got := r.ClickWins(tc.in, tc.c)
			full := r.Decide(tc.in, tc.c, camps, decidedAt)
			if want := full.MatchType == event.MatchClickID || full.MatchType == event.MatchDeviceID; got != want {
				t.Fatalf("ClickWins = %v, Decide matched %s", got, full.MatchType)
			}
			if !got {
				return
			}
			n++
			c := tc.c
			c.ByIPUA, c.Impressions = nil, nil
			if without := r.Decide(tc.in, c, camps, decidedAt); !reflect.DeepEqual(without, full) {
				t.Errorf("without probabilistic candidates and impressions Decide gives %+v, want %+v", without.Attribution, full.Attribution)
			}
		})
	}
	if n == 0 {
		t.Fatal("no case of the rule table is won by a click")
	}
}
