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

func rfc3339(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339)
}

// macros computes the macro values of one delivery on demand: a template
// naming three macros costs three values, not the whole table (this runs
// per delivery).
type macros struct {
	ep             *Endpoint
	c              Conversion
	deliveryID     string
	payout         money.Amount
	payoutCurrency string
}

// all returns every macro's value, each macro a key (empty when it has no
// value): a POST without fields lists them all.
func (m *macros) all() map[string]string {
	v := make(map[string]string, len(macroNames))
	for _, name := range macroNames {
		v[name] = m.value(name)
	}
	return v
}

// value returns macro name's value, "" for none or an unknown name.
func (m *macros) value(name string) string {
	pb, at := m.c.postback(), m.c.attribution()
	switch name {
	case "delivery_id":
		return m.deliveryID
	case "event_id":
		return pb.EventID
	case "kind":
		return m.c.Kind
	case "app_id":
		return pb.AppID
	case "platform":
		return string(pb.Platform)
	case "country":
		return pb.Country
	case "click_id":
		if at.MatchType == event.MatchViewThrough {
			return ""
		}
		return at.TouchID
	case "install_time":
		return rfc3339(m.installTime())
	case "install_unix":
		if t := m.installTime(); !t.IsZero() {
			return strconv.FormatInt(t.Unix(), 10)
		}
		return ""
	case "is_reinstall":
		if at.Reinstall || m.c.Install != nil && m.c.Install.IsReinstall {
			return "1"
		}
		return "0"
	case "payout":
		if m.payoutCurrency == "" {
			return ""
		}
		return m.payout.String()
	case "payout_currency":
		return m.payoutCurrency
	case "idfa", "gaid", "idfv", "android_id", "ip", "ua":
		return m.device(name, pb)
	}
	if v, ok := attributionMacro(at, name); ok {
		return v
	}
	if m.c.Install == nil && m.c.Event != nil {
		return eventMacro(m.c.Event, name)
	}
	return ""
}

// attributionMacro returns the value of an attribution macro; false when
// name is not one.
func attributionMacro(at *event.Attribution, name string) (string, bool) {
	switch name {
	case "touch_id":
		return at.TouchID, true
	case "match_type":
		return string(at.MatchType), true
	case "media_source":
		return at.MediaSource, true
	case "campaign_id":
		return at.CampaignID, true
	case "adset_id":
		return at.AdsetID, true
	case "creative_id":
		return at.CreativeID, true
	case "site_id":
		return at.SiteID, true
	case "sub_site_id":
		return at.SubSiteID, true
	case "sub1":
		return at.Sub1, true
	case "sub2":
		return at.Sub2, true
	case "sub3":
		return at.Sub3, true
	case "sub4":
		return at.Sub4, true
	case "sub5":
		return at.Sub5, true
	case "attributed_at":
		return rfc3339(at.AttributedAt), true
	case "fraud_flags":
		return strings.Join(at.FraudFlags, ","), true
	case "touch_time":
		if at.TouchTime == nil {
			return "", true
		}
		return rfc3339(*at.TouchTime), true
	case "ctit":
		if at.CTITSeconds == nil {
			return "", true
		}
		return strconv.FormatInt(*at.CTITSeconds, 10), true
	}
	return "", false
}

// eventMacro returns the value of an event-only macro.
func eventMacro(e *event.AttributedEvent, name string) string {
	switch name {
	case "event_name":
		return string(e.Name)
	case "original_event_name":
		return e.OriginalName
	case "event_time":
		return rfc3339(e.EventTime)
	case "event_value":
		return e.Value
	case "install_event_id":
		return e.InstallEventID
	case "revenue":
		if e.Currency == "" {
			return ""
		}
		return e.Revenue.String()
	case "currency":
		return e.Currency
	case "revenue_reporting":
		if e.ReportingCurrency == "" {
			return ""
		}
		return e.RevenueReporting.String()
	case "reporting_currency":
		return e.ReportingCurrency
	}
	return ""
}

// installTime is the install's time, or the event's install's; zero when
// unknown.
func (m *macros) installTime() time.Time {
	switch {
	case m.c.Install != nil:
		return m.c.Install.InstallTime
	case m.c.Event != nil && m.c.Event.InAppEvent.InstallTime != nil:
		return *m.c.Event.InAppEvent.InstallTime
	}
	return time.Time{}
}

// device returns device macro name as ep.DeviceIDs allows: the value, its
// hash, or nothing.
func (m *macros) device(name string, pb *event.Postback) string {
	var v string
	switch name {
	case "idfa":
		v = pb.IDFA
	case "gaid":
		v = pb.GAID
	case "idfv":
		v = pb.IDFV
	case "android_id":
		v = pb.AndroidID
	case "ip":
		v = pb.IP
	case "ua":
		v = pb.UA
	}
	switch m.ep.DeviceIDs {
	case DeviceRaw:
		return v
	case DeviceHashed:
		if v == "" {
			return ""
		}
		sum := sha256.Sum256([]byte(strings.ToLower(v)))
		return hex.EncodeToString(sum[:])
	}
	return ""
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
