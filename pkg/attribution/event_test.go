package attribution

import (
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/adtrack/postback/pkg/event"
	"github.com/adtrack/postback/pkg/money"
)

var eventRates = Rates{Reporting: "USD", PerUnit: map[string]Rate{"EUR": {mant: 108, scale: 2}}}

// purchase is an in-app event of the fixture device an hour after install.
func purchase(mods ...func(*event.InAppEvent)) *event.InAppEvent {
	ev := &event.InAppEvent{
		Postback: event.Postback{
			EventID: "ev-1", MMP: "appsflyer", ReceivedAt: installAt.Add(time.Hour + time.Minute), AppID: app,
			Platform: event.PlatformIOS, Device: event.Device{IDFA: idfa}, Country: "DE",
			Raw: event.Raw{Method: "GET", Path: "/v1/postbacks/appsflyer/event"},
		},
		EventTime: installAt.Add(time.Hour), Name: event.NamePurchase, OriginalName: "af_purchase",
		Revenue: 9_990_000, Currency: "EUR",
	}
	for _, m := range mods {
		m(ev)
	}
	return ev
}

func TestAttributeEvent(t *testing.T) {
	r := DefaultRules()
	attributed := r.Decide(install(withCost(2_000_000, "USD")),
		Candidates{ByDevice: []event.Click{click("d1", 3*sec)}, PriorInstall: ago(day)}, camps, decidedAt)
	organic := r.Decide(install(func(in *event.Install) { in.EventID = "inst-organic" }), Candidates{}, camps, decidedAt)
	at := decidedAt.Add(2 * time.Hour)

	t.Run("inherits the install's attribution", func(t *testing.T) {
		got, err := AttributeEvent(purchase(), &attributed, eventRates, at)
		if err != nil {
			t.Fatal(err)
		}
		a, ia := got.Attribution, attributed.Attribution
		if a.MatchType != event.MatchDeviceID || a.TouchID != "d1" || *a.CTITSeconds != 3 || !a.TouchTime.Equal(*ia.TouchTime) ||
			a.CampaignID != "cpi" || a.MediaSource != "acme_int" || a.AdsetID != "as-cpi" || a.CreativeID != "cr-cpi" ||
			a.SiteID != "site-cpi" || a.SubSiteID != "sub-cpi" || a.Sub1 != "p1-cpi" || a.Sub5 != "p5-cpi" || !a.Reinstall {
			t.Fatalf("not inherited: %+v", a)
		}
		if !slices.Equal(a.FraudFlags, []string{event.FraudClickInjection}) {
			t.Fatalf("flags = %v", a.FraudFlags)
		}
		if got.InstallEventID != "inst-1" || !a.AttributedAt.Equal(at) {
			t.Fatalf("install_event_id %q, attributed_at %v", got.InstallEventID, a.AttributedAt)
		}
		// The install's cost is not repeated on each of its events.
		if a.Cost != 0 || a.CostCurrency != "" {
			t.Fatalf("event carries the install's cost: %s %s", a.Cost, a.CostCurrency)
		}
		if got.RevenueReporting.String() != "10.7892" || got.ReportingCurrency != "USD" || got.Revenue != 9_990_000 || got.Currency != "EUR" {
			t.Fatalf("revenue %s %s -> %s %s", got.Revenue, got.Currency, got.RevenueReporting, got.ReportingCurrency)
		}
		// No aliasing of the install's pointers and slice.
		a.FraudFlags[0] = "changed"
		*a.CTITSeconds = 99
		if attributed.Attribution.FraudFlags[0] != event.FraudClickInjection || *attributed.Attribution.CTITSeconds != 3 {
			t.Fatal("event aliases its install")
		}
	})
	t.Run("organic install: organic event joined to it", func(t *testing.T) {
		got, err := AttributeEvent(purchase(), &organic, eventRates, at)
		if err != nil {
			t.Fatal(err)
		}
		if got.Attribution.MatchType != event.MatchOrganic || got.InstallEventID != "inst-organic" ||
			got.Attribution.TouchTime != nil || got.Attribution.CTITSeconds != nil || got.Attribution.FraudFlags == nil {
			t.Fatalf("got %+v", got)
		}
	})
	t.Run("no install: organic with an empty install_event_id", func(t *testing.T) {
		got, err := AttributeEvent(purchase(), nil, eventRates, at)
		if err != nil {
			t.Fatal(err)
		}
		a := got.Attribution
		if a.MatchType != event.MatchOrganic || got.InstallEventID != "" || a.FraudFlags == nil || len(a.FraudFlags) != 0 ||
			a.CampaignID != "" || a.TouchTime != nil || got.RevenueReporting.String() != "10.7892" {
			t.Fatalf("got %+v", got)
		}
	})
	t.Run("install of another app is no install", func(t *testing.T) {
		got, _ := AttributeEvent(purchase(func(ev *event.InAppEvent) { ev.AppID = "com.other" }), &attributed, eventRates, at)
		if got.Attribution.MatchType != event.MatchOrganic || got.InstallEventID != "" {
			t.Fatalf("got %+v", got)
		}
	})
	t.Run("event without revenue", func(t *testing.T) {
		got, err := AttributeEvent(purchase(func(ev *event.InAppEvent) { ev.Revenue, ev.Currency = 0, "" }), &attributed, eventRates, at)
		if err != nil || got.RevenueReporting != 0 || got.ReportingCurrency != "USD" {
			t.Fatalf("got %s %s, %v", got.RevenueReporting, got.ReportingCurrency, err)
		}
	})
	t.Run("unknown currency: error, event otherwise complete", func(t *testing.T) {
		got, err := AttributeEvent(purchase(func(ev *event.InAppEvent) { ev.Currency = "CHF" }), &attributed, eventRates, at)
		if !errors.Is(err, ErrNoRate) {
			t.Fatalf("error = %v, want ErrNoRate", err)
		}
		if got.Attribution.MatchType != event.MatchDeviceID || got.InstallEventID != "inst-1" || got.RevenueReporting != 0 {
			t.Fatalf("partial event: %+v", got)
		}
	})
	t.Run("event's own cost and MMP disagreement", func(t *testing.T) {
		ev := purchase(func(ev *event.InAppEvent) {
			ev.Cost = &event.Cost{Model: "CPA", Amount: 500_000, Currency: "EUR"}
			ev.MediaSource = "facebook"
		})
		got, _ := AttributeEvent(ev, &attributed, eventRates, at)
		if got.Attribution.Cost != money.Amount(500_000) || got.Attribution.CostCurrency != "EUR" || !got.Attribution.MMPDisagrees {
			t.Fatalf("got %+v", got.Attribution)
		}
		ev.MediaSource = "acme_int"
		if got, _ := AttributeEvent(ev, &attributed, eventRates, at); got.Attribution.MMPDisagrees {
			t.Fatal("agreeing MMP flagged")
		}
	})
}
