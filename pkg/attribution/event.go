package attribution

import (
	"time"

	"github.com/adtrack/postback/pkg/event"
)

// AttributeEvent gives an in-app event the attribution of its install and
// converts its revenue to the reporting currency.
//
// install is the attributed install the store joined the event to (by click
// id or device id), or nil when none was found; an install of another app is
// treated as none. Without an install the event is organic with an empty
// InstallEventID: its revenue still counts, under no campaign.
//
// Inherited: match type, touch id and time, CTIT, campaign, media source,
// ad set, creative, site, fraud flags (revenue of a flagged install is
// suspect too) and the reinstall mark. Not inherited: the cost (an install's
// CPI must not be summed once per event; the event carries its own
// postback cost if it has one) and MMPDisagrees, which is recomputed
// against what the event's own postback reports. Pointers and the flags
// slice are copied, so the event never aliases the install.
//
// A conversion error (ErrNoRate, money.ErrRange) is returned with an event
// that is complete except for RevenueReporting, which is zero: the caller
// chooses between rejecting it and publishing it, nothing is half-built.
func AttributeEvent(ev *event.InAppEvent, install *event.AttributedInstall, rates Rates, now time.Time) (event.AttributedEvent, error) {
	return AttributeEventIn(ev, install, rates, nil, now)
}

// AttributeEventIn is AttributeEvent with the campaigns whose declared MMP
// ids (mmp_ids) the event's own postback is compared against for
// MMPDisagrees; camps may be nil.
func AttributeEventIn(ev *event.InAppEvent, install *event.AttributedInstall, rates Rates, camps CampaignLookup, now time.Time) (event.AttributedEvent, error) {
	out := event.AttributedEvent{InAppEvent: *ev, ReportingCurrency: rates.Reporting}
	a := &out.Attribution
	if install != nil && install.AppID == ev.AppID {
		ia := &install.Attribution
		*a = event.Attribution{
			MatchType:   ia.MatchType,
			TouchID:     ia.TouchID,
			CampaignID:  ia.CampaignID,
			MediaSource: ia.MediaSource,
			AdsetID:     ia.AdsetID,
			CreativeID:  ia.CreativeID,
			SiteID:      ia.SiteID,
			SubSiteID:   ia.SubSiteID,
			Reinstall:   ia.Reinstall,
		}
		a.SetSubs(ia.Subs())
		if ia.TouchTime != nil || ia.CTITSeconds != nil {
			tt := new(touchTimes)
			if ia.TouchTime != nil {
				tt.time = *ia.TouchTime
				a.TouchTime = &tt.time
			}
			if ia.CTITSeconds != nil {
				tt.ctit = *ia.CTITSeconds
				a.CTITSeconds = &tt.ctit
			}
		}
		a.FraudFlags = append(make([]string, 0, len(ia.FraudFlags)), ia.FraudFlags...)
		out.InstallEventID = install.EventID
	} else {
		a.MatchType = event.MatchOrganic
		a.FraudFlags = []string{}
	}
	if a.MatchType == "" { // a hand-built install without a decision
		a.MatchType = event.MatchOrganic
	}
	if ev.Cost != nil {
		a.Cost, a.CostCurrency = ev.Cost.Amount, ev.Cost.Currency
	}
	var camp event.Campaign
	campOK := false
	if camps != nil && a.CampaignID != "" {
		camp, campOK = camps.Get(a.CampaignID)
	}
	a.MMPDisagrees = disagrees(&ev.Postback, a, camp, campOK)
	a.AttributedAt = now.UTC()

	rev, err := rates.Convert(ev.Revenue, ev.Currency)
	if err != nil {
		return out, err
	}
	out.RevenueReporting = rev
	return out, nil
}
