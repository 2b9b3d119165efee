package attribution

import (
	"testing"
	"time"

	"github.com/adtrack/postback/pkg/event"
)

// TestDisagreesWithDeclaredMMPIDs: every MMP reports our campaign its own
// way. Once the campaign declares that MMP's spellings (mmp_ids), honest
// postbacks do not disagree; a real mismatch still does. Without the
// declaration, the MMP's own spelling is a disagreement (the old false
// positive, kept so the declaration is what makes the difference).
func TestDisagreesWithDeclaredMMPIDs(t *testing.T) {
	declared := event.Campaign{ID: "cpi", AppID: app, MediaSource: "acme", CostModel: "CPI", Bid: 1_500_000, Currency: "USD",
		MMPIDs: map[string]event.MMPIDs{
			"appsflyer": {MediaSource: "acme_int"},
			"adjust":    {MediaSource: "Acme Network"},
			"kochava":   {CampaignID: "koacme-cpi-5f1a", MediaSource: "Acme"},
			"branch":    {MediaSource: "a_acme"},
			"singular":  {MediaSource: "Acme Ads"},
			"tenjin":    {MediaSource: "acme-tenjin"},
			"generic":   {MediaSource: "acme-generic"},
		}}
	bare := declared
	bare.MMPIDs = nil
	// What each MMP reports for an install of campaign "cpi", honestly.
	honest := map[string][2]string{ // media source, campaign id
		"appsflyer": {"acme_int", "cpi"}, // pid, af_c_id echoed from our link
		"adjust":    {"Acme Network", "cpi"},
		"kochava":   {"Acme", "koacme-cpi-5f1a"}, // Kochava's own campaign id
		"branch":    {"a_acme", "cpi"},
		"singular":  {"Acme Ads", ""},
		"tenjin":    {"acme-tenjin", ""},
		"generic":   {"acme-generic", "cpi"},
	}
	k := click("d1", time.Hour, func(k *event.Click) { k.MediaSource = "acme" })
	for mmp, rep := range honest {
		in := install(withMMP(rep[0], rep[1]), func(in *event.Install) { in.MMP = mmp })
		c := Candidates{ByDevice: []event.Click{k}}
		if got := DefaultRules().Decide(in, c, campaigns{"cpi": declared}, decidedAt); got.MMPDisagrees {
			t.Errorf("%s: honest postback (%q, %q) disagrees with a campaign declaring its ids", mmp, rep[0], rep[1])
		}
		if rep[0] != "acme" || (rep[1] != "" && rep[1] != "cpi") {
			if got := DefaultRules().Decide(in, c, campaigns{"cpi": bare}, decidedAt); !got.MMPDisagrees {
				t.Errorf("%s: (%q, %q) agrees with a campaign that declares nothing", mmp, rep[0], rep[1])
			}
		}
		// A real disagreement: another network, or another campaign.
		for _, lie := range [][2]string{{"facebook", rep[1]}, {rep[0], "someone-else"}} {
			in := install(withMMP(lie[0], lie[1]), func(in *event.Install) { in.MMP = mmp })
			if got := DefaultRules().Decide(in, c, campaigns{"cpi": declared}, decidedAt); !got.MMPDisagrees {
				t.Errorf("%s: (%q, %q) does not disagree", mmp, lie[0], lie[1])
			}
		}
		// Another MMP's spelling is not this MMP's.
		other := "adjust"
		if mmp == other {
			other = "appsflyer"
		}
		in = install(withMMP(honest[other][0], ""), func(in *event.Install) { in.MMP = mmp })
		if honest[other][0] != rep[0] {
			if got := DefaultRules().Decide(in, c, campaigns{"cpi": declared}, decidedAt); !got.MMPDisagrees {
				t.Errorf("%s: %s's spelling %q accepted", mmp, other, honest[other][0])
			}
		}
	}
	// Events compare against the declared ids too.
	inst := DefaultRules().Decide(install(func(in *event.Install) { in.MMP = "kochava" }), Candidates{ByDevice: []event.Click{k}},
		campaigns{"cpi": declared}, decidedAt)
	ev := purchase(func(ev *event.InAppEvent) {
		ev.MMP, ev.MediaSource, ev.CampaignID = "kochava", "Acme", "koacme-cpi-5f1a"
	})
	got, err := AttributeEventIn(ev, &inst, eventRates, campaigns{"cpi": declared}, decidedAt)
	if err != nil || got.MMPDisagrees {
		t.Errorf("kochava event with declared ids: disagrees=%v err=%v", got.MMPDisagrees, err)
	}
	ev.CampaignID = "ko-other"
	if got, _ := AttributeEventIn(ev, &inst, eventRates, campaigns{"cpi": declared}, decidedAt); !got.MMPDisagrees {
		t.Error("kochava event naming another Kochava campaign agrees")
	}
	ev.CampaignID = "koacme-cpi-5f1a"
	if got, _ := AttributeEvent(ev, &inst, eventRates, decidedAt); !got.MMPDisagrees {
		t.Error("without the campaign lookup, Kochava's own id must disagree")
	}
}
