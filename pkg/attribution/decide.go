package attribution

import (
	"strings"
	"time"

	"github.com/adtrack/postback/pkg/campaign"
	"github.com/adtrack/postback/pkg/event"
	"github.com/adtrack/postback/pkg/money"
)

// CampaignLookup finds a campaign by id. *campaign.Registry satisfies it; a
// plain map wrapped in a method does too, which keeps tests and replays free
// of the live registry.
type CampaignLookup interface {
	Get(id string) (event.Campaign, bool)
}

// Candidates are the touches a state store found for one install. They may
// come in any order and may include touches later than the install or
// outside their window (Decide skips those), or records that do not match
// the install at all (other app, other device: skipped too), so the store
// can over-return rather than filter exactly.
type Candidates struct {
	// ByClickID is the click whose id the MMP passed back, if the store has it.
	ByClickID *event.Click
	// ByDevice are clicks of the app with the install's advertising id
	// (IDFA, else GAID).
	ByDevice []event.Click
	// ByIPUA are clicks of the app with the install's IP and user agent.
	ByIPUA []event.Click
	// Impressions are impressions of the app with the install's advertising id.
	Impressions []event.Impression
	// DeviceClickCount is the number of clicks of the app with the install's
	// advertising id in [install time - ClickLookback, install time]. A
	// store may keep a counter here and cap ByDevice to the latest few
	// clicks; Decide uses the larger of this and the ByDevice clicks it
	// finds in the window, so passing 0 with a full ByDevice also works.
	DeviceClickCount int
	// PriorInstall is the install time of the device's previous install of
	// the app (excluding this very install), if the store has one.
	PriorInstall *time.Time
}

// winner is the touch an install is credited to.
type winner struct {
	match event.MatchType
	id    string
	touch *event.Touch // nil when organic
}

// touchTimes holds the two pointed-to values of an Attribution in one
// allocation instead of two.
type touchTimes struct {
	time time.Time
	ctit int64
}

// Decide attributes one install. It never fails: an install nobody can be
// credited for is organic. The returned record embeds a copy of *in; its
// FraudFlags slice is never nil (the schema's consumers expect an array).
//
// See the package documentation for the order of the rules and the choices
// made where they were ambiguous. now is only recorded as AttributedAt.
func (r Rules) Decide(in *event.Install, c Candidates, camps CampaignLookup, now time.Time) event.AttributedInstall {
	out := event.AttributedInstall{Install: *in}
	at := installTime(in)
	w, stale, flood := r.match(in, at, &c)

	a := &out.Attribution
	a.MatchType = w.match
	a.AttributedAt = now.UTC()

	var flags [4]string
	n := 0
	var camp event.Campaign
	campOK := false
	if w.touch != nil {
		t := w.touch
		ctit := at.Sub(t.Time)
		tt := &touchTimes{time: t.Time.UTC(), ctit: int64(ctit / time.Second)}
		a.TouchID, a.TouchTime, a.CTITSeconds = w.id, &tt.time, &tt.ctit
		a.CampaignID = t.CampaignID
		a.AdsetID, a.CreativeID = t.AdsetID, t.CreativeID
		a.SiteID, a.SubSiteID = t.SiteID, t.SubSiteID
		a.SetSubs(t.PublisherSubs)
		if camps != nil && t.CampaignID != "" {
			camp, campOK = camps.Get(t.CampaignID)
		}
		a.MediaSource = t.MediaSource
		if a.MediaSource == "" && campOK {
			a.MediaSource = camp.MediaSource
		}
		if w.match != event.MatchViewThrough && ctit < r.InjectionCTIT {
			flags[n], n = event.FraudClickInjection, n+1
		}
	}
	if stale {
		flags[n], n = event.FraudCTITTooLong, n+1
	}
	if w.touch != nil && w.match != event.MatchViewThrough && r.FloodClicks > 0 && max(flood, c.DeviceClickCount) > r.FloodClicks {
		flags[n], n = event.FraudClickFlooding, n+1
	}
	if in.Rejected {
		flags[n], n = event.FraudMMPRejected, n+1
	}
	a.FraudFlags = make([]string, n)
	copy(a.FraudFlags, flags[:n])

	a.Reinstall = in.IsReinstall || r.reinstall(at, c.PriorInstall)
	a.Cost, a.CostCurrency = installCost(in, w, camp, campOK, a.Reinstall)
	a.MMPDisagrees = disagrees(&in.Postback, a, camp, campOK)
	return out
}

// match runs rules 1-5. stale reports a click_id match rejected for being
// older than the click lookback; flood counts the device's clicks in the
// click window among c.ByDevice.
func (r Rules) match(in *event.Install, at time.Time, c *Candidates) (w winner, stale bool, flood int) {
	w.match = event.MatchOrganic
	// 1. click_id. A click of another app, or later than the install, is
	// not this install's touch whatever id the MMP echoed.
	if in.ClickID != "" {
		if k := c.ByClickID; k != nil {
			if k.ClickID == in.ClickID && k.AppID == in.AppID && !k.Time.After(at) {
				if at.Sub(k.Time) <= r.ClickLookback {
					w = winner{event.MatchClickID, k.ClickID, &k.Touch}
				} else {
					stale = true
				}
			}
		} else if in.ClickTime != nil && at.Sub(*in.ClickTime) > r.ClickLookback {
			// The store no longer has (or never had) the click, but the MMP
			// says it was beyond the window: flag it the same as if found.
			stale = true
		}
	}
	// 2. advertising id. Counted even when rule 1 already won, for flooding.
	adID := in.AdID()
	if adID != "" {
		best := -1
		for i := range c.ByDevice {
			k := &c.ByDevice[i]
			if k.AppID != in.AppID || k.AdID() != adID || !within(at, k.Time, r.ClickLookback) {
				continue
			}
			flood++
			if best < 0 || later(k.Time, k.ClickID, c.ByDevice[best].Time, c.ByDevice[best].ClickID) {
				best = i
			}
		}
		if w.touch == nil && best >= 0 {
			k := &c.ByDevice[best]
			w = winner{event.MatchDeviceID, k.ClickID, &k.Touch}
		}
	}
	if w.touch != nil {
		return w, stale, flood
	}
	// 3. probabilistic IP + user agent; both must be present, an empty pair
	// would match every click that lacks them.
	if in.IP != "" && in.UA != "" {
		best := -1
		for i := range c.ByIPUA {
			k := &c.ByIPUA[i]
			if k.AppID != in.AppID || k.IP != in.IP || k.UA != in.UA || !within(at, k.Time, r.ProbabilisticWindow) {
				continue
			}
			if best < 0 || later(k.Time, k.ClickID, c.ByIPUA[best].Time, c.ByIPUA[best].ClickID) {
				best = i
			}
		}
		if best >= 0 {
			k := &c.ByIPUA[best]
			return winner{event.MatchProbabilistic, k.ClickID, &k.Touch}, stale, flood
		}
	}
	// 4. view-through on the advertising id.
	if adID != "" {
		best := -1
		for i := range c.Impressions {
			m := &c.Impressions[i]
			if m.AppID != in.AppID || m.AdID() != adID || !within(at, m.Time, r.ViewLookback) {
				continue
			}
			if best < 0 || later(m.Time, m.ImpressionID, c.Impressions[best].Time, c.Impressions[best].ImpressionID) {
				best = i
			}
		}
		if best >= 0 {
			m := &c.Impressions[best]
			return winner{event.MatchViewThrough, m.ImpressionID, &m.Touch}, stale, flood
		}
	}
	// 5. organic.
	return w, stale, flood
}

// within reports whether a touch at t may be credited for an install at at:
// not after it, and at most window before it (the limit itself counts).
func within(at, t time.Time, window time.Duration) bool {
	return !t.After(at) && at.Sub(t) <= window
}

// later reports whether the touch (t, id) beats the current best (bt, bid):
// the later touch wins; at equal times the greater id wins, so the result
// does not depend on the order the store returned candidates in.
func later(t time.Time, id string, bt time.Time, bid string) bool {
	if c := t.Compare(bt); c != 0 {
		return c > 0
	}
	return id > bid
}

// reinstall reports whether prior is within the re-attribution window of
// the install at at, on either side: when two installs of a device arrive
// out of order, the second one processed is the reinstall, so a retried or
// doubly-reported install is never counted twice.
func (r Rules) reinstall(at time.Time, prior *time.Time) bool {
	if prior == nil {
		return false
	}
	d := at.Sub(*prior)
	if d < 0 {
		d = -d
	}
	return d <= r.ReattributionWindow
}

// installCost is the cost and currency of an install credited to w.
//
// Organic installs cost nothing in no currency (analytics groups them under
// the empty currency). Attributed ones always carry a currency, the
// campaign's, else the touch's (ingest copied it from the campaign at click
// time), so that CPC and CPM campaigns' installs group under their spend
// currency. The amount:
// zero when the MMP blocked the install (the advertiser will not pay for it;
// the postback's own cost, if any, stays on the record's cost field); else
// the postback's own cost, which is what the MMP reports the advertiser
// pays; else zero for a reinstall (a CPI bid pays for new installs); else
// the campaign's CPI bid.
func installCost(in *event.Install, w winner, camp event.Campaign, campOK, reinstall bool) (money.Amount, string) {
	if w.touch == nil {
		return 0, ""
	}
	cur := w.touch.Currency
	if campOK && camp.Currency != "" {
		cur = camp.Currency
	}
	switch {
	case in.Rejected:
		return 0, cur
	case in.Cost != nil:
		return in.Cost.Amount, in.Cost.Currency
	case reinstall || !campOK:
		return 0, cur
	}
	return campaign.InstallCost(camp), cur
}

// disagrees reports whether the attribution the MMP put in its postback
// differs from ours. Only what the MMP did report is compared: an MMP that
// sends no media source does not disagree. Media sources compare without
// case (MMPs vary it); the MMP's "organic" agrees with our organic.
//
// camp is the attributed campaign (campOK false when none): the MMP's own
// spellings it declares under mmp_ids.<mmp> are accepted beside ours, so
// AppsFlyer's pid "<network>_int", Adjust's network_name and Kochava's own
// campaign id agree once declared. A campaign id compares exactly.
func disagrees(pb *event.Postback, a *event.Attribution, camp event.Campaign, campOK bool) bool {
	var ids event.MMPIDs
	if campOK {
		ids = camp.MMPIDs[pb.MMP]
	}
	if pb.MediaSource != "" {
		if a.MatchType == event.MatchOrganic {
			if !strings.EqualFold(pb.MediaSource, "organic") {
				return true
			}
		} else if !strings.EqualFold(pb.MediaSource, a.MediaSource) &&
			(ids.MediaSource == "" || !strings.EqualFold(pb.MediaSource, ids.MediaSource)) {
			return true
		}
	}
	return pb.CampaignID != "" && pb.CampaignID != a.CampaignID && (ids.CampaignID == "" || pb.CampaignID != ids.CampaignID)
}
