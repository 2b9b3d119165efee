package forward

import (
	"crypto/sha256"
	"encoding/hex"
	"strconv"
	"strings"
	"time"

	"github.com/adtrack/postback/pkg/event"
	"github.com/adtrack/postback/pkg/money"
)

// Conversion is an attributed install or in-app event as the rules see it.
type Conversion struct {
	Kind string // KindInstall or KindEvent
	// Install or Event is set, by Kind.
	Install *event.AttributedInstall
	Event   *event.AttributedEvent
}

// FromInstall wraps an attributed install.
func FromInstall(a *event.AttributedInstall) Conversion {
	return Conversion{Kind: KindInstall, Install: a}
}

// FromEvent wraps an attributed in-app event.
func FromEvent(a *event.AttributedEvent) Conversion {
	return Conversion{Kind: KindEvent, Event: a}
}

// EventID is the conversion's deterministic event_id.
func (c Conversion) EventID() string { return c.postback().EventID }

// AppID is the conversion's app.
func (c Conversion) AppID() string { return c.postback().AppID }

func (c Conversion) postback() *event.Postback {
	if c.Install != nil {
		return &c.Install.Postback
	}
	return &c.Event.Postback
}

func (c Conversion) attribution() *event.Attribution {
	if c.Install != nil {
		return &c.Install.Attribution
	}
	return &c.Event.Attribution
}

// Attribution is the conversion's attribution (ours, not the MMP's).
func (c Conversion) Attribution() *event.Attribution { return c.attribution() }

// Forwardable reports whether any endpoint may receive the conversion:
// organic conversions and installs the MMP rejected never are.
func (c Conversion) Forwardable() bool {
	a := c.attribution()
	if a.MatchType == event.MatchOrganic || a.MatchType == "" || a.TouchID == "" {
		return false
	}
	if c.Install != nil && c.Install.Rejected {
		return false
	}
	return true
}

// DeliveryID is the deterministic id of the delivery of conversion kind/eventID
// to endpointID: the Idempotency-Key receivers de-duplicate by, the same
// on every attempt, after every restart and on every instance.
func DeliveryID(kind, eventID, endpointID string) string {
	h := sha256.New()
	for _, s := range []string{kind, eventID, endpointID} {
		h.Write([]byte(s))
		h.Write([]byte{0})
	}
	return hex.EncodeToString(h.Sum(nil)[:16])
}

// macroNames lists every macro, in documentation order.
var macroNames = []string{
	"delivery_id", "event_id", "kind", "app_id", "platform", "country",
	"click_id", "touch_id", "match_type", "media_source", "campaign_id", "adset_id", "creative_id", "site_id", "sub_site_id",
	"sub1", "sub2", "sub3", "sub4", "sub5",
	"touch_time", "install_time", "install_unix", "ctit", "attributed_at",
	"event_name", "original_event_name", "event_time", "event_value", "install_event_id",
	"revenue", "currency", "revenue_reporting", "reporting_currency", "payout", "payout_currency",
	"is_reinstall", "fraud_flags",
	"idfa", "gaid", "idfv", "android_id", "ip", "ua",
}

var macroSet = func() map[string]bool {
	m := make(map[string]bool, len(macroNames))
	for _, n := range macroNames {
		m[n] = true
	}
	return m
}()

func knownMacro(name string) bool { return macroSet[name] }

// Macros returns the names of every macro, for docs and tests.
func Macros() []string { return append([]string(nil), macroNames...) }

// deviceMacros are the values governed by Endpoint.DeviceIDs.
var deviceMacros = map[string]bool{"idfa": true, "gaid": true, "idfv": true, "android_id": true, "ip": true, "ua": true}

func rfc3339(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339)
}

// values returns every macro's value for conversion c sent to ep; device
// ids follow ep.DeviceIDs.
func values(ep *Endpoint, c Conversion, deliveryID string, payout money.Amount, payoutCurrency string) map[string]string {
	pb, at := c.postback(), c.attribution()
	// Every macro has a key (empty when it has no value): a POST without
	// fields lists them all. Sized once: this runs per delivery.
	v := make(map[string]string, len(macroNames))
	for _, name := range macroNames {
		v[name] = ""
	}
	v["delivery_id"], v["event_id"], v["kind"], v["app_id"] = deliveryID, pb.EventID, c.Kind, pb.AppID
	v["platform"], v["country"] = string(pb.Platform), pb.Country
	v["touch_id"], v["match_type"], v["media_source"] = at.TouchID, string(at.MatchType), at.MediaSource
	v["campaign_id"], v["adset_id"], v["creative_id"] = at.CampaignID, at.AdsetID, at.CreativeID
	v["site_id"], v["sub_site_id"], v["attributed_at"] = at.SiteID, at.SubSiteID, rfc3339(at.AttributedAt)
	v["sub1"], v["sub2"], v["sub3"], v["sub4"], v["sub5"] = at.Sub1, at.Sub2, at.Sub3, at.Sub4, at.Sub5
	v["fraud_flags"], v["is_reinstall"] = strings.Join(at.FraudFlags, ","), "0"
	v["idfa"], v["gaid"], v["idfv"], v["android_id"], v["ip"], v["ua"] = pb.IDFA, pb.GAID, pb.IDFV, pb.AndroidID, pb.IP, pb.UA
	if at.MatchType != event.MatchViewThrough {
		v["click_id"] = at.TouchID
	}
	if at.TouchTime != nil {
		v["touch_time"] = rfc3339(*at.TouchTime)
	}
	if at.CTITSeconds != nil {
		v["ctit"] = strconv.FormatInt(*at.CTITSeconds, 10)
	}
	if at.Reinstall {
		v["is_reinstall"] = "1"
	}
	var install time.Time
	switch {
	case c.Install != nil:
		install = c.Install.InstallTime
		if c.Install.IsReinstall {
			v["is_reinstall"] = "1"
		}
	case c.Event != nil:
		e := c.Event
		if e.InAppEvent.InstallTime != nil {
			install = *e.InAppEvent.InstallTime
		}
		v["event_name"], v["original_event_name"] = string(e.Name), e.OriginalName
		v["event_time"], v["event_value"], v["install_event_id"] = rfc3339(e.EventTime), e.Value, e.InstallEventID
		if e.Currency != "" {
			v["revenue"], v["currency"] = e.Revenue.String(), e.Currency
		}
		if e.ReportingCurrency != "" {
			v["revenue_reporting"], v["reporting_currency"] = e.RevenueReporting.String(), e.ReportingCurrency
		}
	}
	v["install_time"] = rfc3339(install)
	if !install.IsZero() {
		v["install_unix"] = strconv.FormatInt(install.Unix(), 10)
	}
	if payoutCurrency != "" {
		v["payout"], v["payout_currency"] = payout.String(), payoutCurrency
	}

	for name := range deviceMacros {
		switch ep.DeviceIDs {
		case DeviceRaw:
		case DeviceHashed:
			if v[name] != "" {
				sum := sha256.Sum256([]byte(strings.ToLower(v[name])))
				v[name] = hex.EncodeToString(sum[:])
			}
		default:
			v[name] = ""
		}
	}
	return v
}

// PayoutOf returns what ep pays for c, and its currency ("" when nothing).
func PayoutOf(ep *Endpoint, c Conversion) (money.Amount, string) {
	p := ep.Payout
	switch {
	case p.Model == PayoutCPI && c.Kind == KindInstall, p.Model == PayoutCPA && c.Kind == KindEvent:
		return p.Amount, p.Currency
	case p.Model == PayoutRevenueShare && c.Kind == KindEvent && c.Event.ReportingCurrency != "":
		return c.Event.RevenueReporting.MulDiv(p.Share.Micros(), 1_000_000), c.Event.ReportingCurrency
	}
	return 0, ""
}
