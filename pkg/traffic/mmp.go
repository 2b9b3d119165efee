package traffic

import (
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/adtrack/postback/pkg/event"
	"github.com/adtrack/postback/pkg/money"
)

// HTTPRequest is a rendered request: what the simulator sends to ingest.
type HTTPRequest struct {
	Method string
	Path   string // with the query string
	Header map[string]string
}

// Render renders request r for ingest with the MMP's token (tokens by
// MMP; an Unauthenticated request gets a wrong one) and what earlier
// answers resolved. Postbacks are each MMP's GET template of docs/mmp with
// the MMP's macros filled as that MMP fills them; a parameter the MMP has
// no value for is sent empty, as MMPs do.
func Render(r *Request, res Resolved, tokens map[string]string) HTTPRequest {
	if r.Touch != nil {
		return renderTouch(r)
	}
	p := r.Postback
	vals := mmpParams(p, res)
	if p.BadField != "" {
		breakField(p, vals)
	}
	tok := tokens[p.MMP]
	if r.Fault == Unauthenticated {
		tok = "wrong-" + tok
	}
	return HTTPRequest{Method: "GET", Path: fill(templates[p.MMP][p.Kind], tok, vals, appended[p.MMP])}
}

// fill sends every parameter of template tmpl in its order: the token, our
// values and the MMP's by name, empty where there is none (an MMP sends an
// empty value for a macro it cannot fill). Values the template does not
// list (AppsFlyer's appended reject reason) follow it.
func fill(tmpl, token string, vals map[string]string, extra []string) string {
	_, rest, _ := strings.Cut(tmpl, "<host>")
	path, query, _ := strings.Cut(rest, "?")
	var q [][2]string
	used := map[string]bool{}
	for _, kv := range strings.Split(query, "&") {
		name, _, _ := strings.Cut(kv, "=")
		used[name] = true
		if name == "token" {
			q = append(q, [2]string{name, token})
			continue
		}
		q = append(q, [2]string{name, vals[name]})
	}
	for _, name := range extra {
		if v, ok := vals[name]; ok && !used[name] {
			q = append(q, [2]string{name, v})
		}
	}
	return path + "?" + encode(q)
}

// appended are the parameters an MMP adds to its template (AppsFlyer on a
// blocked install: docs/mmp/appsflyer.md "appended rejected").
var appended = map[string][]string{"appsflyer": {"reject_reason", "is_rejected"}}

// encode is url.Values.Encode without sorting, so parameters keep the
// template's order (MMPs send them in template order).
func encode(q [][2]string) string {
	var b strings.Builder
	for i, kv := range q {
		if i > 0 {
			b.WriteByte('&')
		}
		b.WriteString(url.QueryEscape(kv[0]))
		b.WriteByte('=')
		b.WriteString(url.QueryEscape(kv[1]))
	}
	return b.String()
}

func renderTouch(r *Request) HTTPRequest {
	t := r.Touch
	q := url.Values{}
	for k, v := range map[string]string{"site_id": t.SiteID, "sub_site_id": t.SubSiteID, "creative_id": t.CreativeID,
		"adset_id": t.AdsetID, "country": t.Device.Country} {
		q.Set(k, v)
	}
	if t.WithAdID {
		if t.Device.IDFA != "" {
			q.Set("idfa", t.Device.IDFA)
		} else {
			q.Set("gaid", t.Device.GAID)
		}
	}
	// Every touch carries an idempotency key (publishers' click and
	// impression URLs may carry one; server-to-server callers should): a
	// touch retried after a 503 is then counted once (docs/ingest.md).
	q.Set("idempotency_key", fmt.Sprintf("t%d", r.Seq))
	path := "/v1/click/"
	if r.Kind == Impression {
		path = "/v1/impression/"
	}
	h := map[string]string{"User-Agent": t.Device.UA}
	if r.Kind == ClickS2S {
		q.Set("s2s", "1")
		q.Set("ip", t.Device.IP)
		q.Set("ua", t.Device.UA)
		h = map[string]string{"User-Agent": "adtrack-s2s/1.0"}
	}
	return HTTPRequest{Method: "GET", Path: path + url.PathEscape(t.Campaign.ID) + "?" + q.Encode(), Header: h}
}

func sec(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return strconv.FormatInt(t.Unix(), 10)
}

func ms(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return strconv.FormatInt(t.UnixMilli(), 10)
}

// mmpParams is what the MMP fills in p's template, by parameter name.
func mmpParams(p *Postback, res Resolved) map[string]string {
	d := p.Device
	idfa, gaid := "", ""
	if p.WithAdID {
		idfa, gaid = d.IDFA, d.GAID
	}
	ip, ua := "", ""
	if p.WithIPUA {
		ip, ua = d.IP, d.UA
	}
	activity := res.InstallTime
	if p.Kind == InAppEvent {
		activity = res.EventTime
	}
	var camp, source string
	if p.Campaign != nil {
		camp, source = p.Campaign.ID, p.Campaign.MediaSource
	}
	ios := p.App.Platform == event.PlatformIOS
	idfv, androidID, os := "", "", "android"
	if ios {
		idfv, os = d.IDFV, "ios"
	} else {
		androidID = d.AndroidID
	}
	v := map[string]string{}
	set := func(pairs ...string) {
		for i := 0; i+1 < len(pairs); i += 2 {
			v[pairs[i]] = pairs[i+1]
		}
	}
	switch p.MMP {
	case "appsflyer":
		set("clickid", res.ClickID, "app_id", p.App.ID, "idfa", idfa, "vendorid", idfv, "advertiserid", gaid,
			"android_id", androidID, "appsflyer_id", d.MMPDeviceID, "ip", ip, "user_agent", ua,
			"country_code", d.Country, "install_unix_ts", sec(res.InstallTime), "click_ts", sec(res.ClickTime),
			"pid", source, "campaign", camp, "af_c_id", camp,
			"event_name", p.EventName, "timestamp", sec(res.EventTime), "orig_monetary", p.Revenue, "currency", p.Currency)
		if p.Kind == RejectedCB {
			set("reject_reason", p.RejectReason, "is_rejected", "1")
		}
	case "adjust":
		kind := map[Kind]string{Install: "install", InAppEvent: "event", RejectedCB: "rejected_install"}[p.Kind]
		set("click_id", res.ClickID, "campaign_id", camp, "app_id", p.App.ID, "os_name", os, "gps_adid", gaid,
			"idfa", idfa, "idfv", idfv, "android_id", androidID, "adid", d.MMPDeviceID,
			"ip_address", ip, "user_agent", ua, "country", strings.ToLower(d.Country),
			"installed_at", sec(res.InstallTime), "created_at", sec(activity), "click_time", sec(res.ClickTime),
			"network_name", source, "activity_kind", kind, "rejection_reason", p.RejectReason)
		if p.Kind == InAppEvent {
			set("event", "abc123", "event_name", p.EventName, "revenue_float", p.Revenue, "currency", p.Currency)
			if p.Revenue != "" {
				a, _ := money.Parse(p.Revenue)
				set("revenue", strconv.FormatInt(int64(a)/10_000, 10)) // Adjust's {revenue} is in cents
			}
		}
	case "branch":
		name := "INSTALL"
		if p.Kind == InAppEvent {
			name = p.EventName
		}
		set("app_id", p.App.ID, "id", p.MMPEventID, "name", name, "event_timestamp", ms(activity),
			"install_activity.timestamp", ms(res.InstallTime), "last_attributed_touch_timestamp", ms(res.ClickTime),
			"user_data.os", strings.ToUpper(os), "user_data.idfa", idfa, "user_data.aaid", gaid, "user_data.idfv", idfv,
			"user_data.android_id", androidID, "user_data.ip", ip, "user_data.user_agent", ua,
			"user_data.geo_country_code", d.Country, "last_attributed_touch_data.~click_id", res.ClickID,
			"last_attributed_touch_data.~advertising_partner_name", source, "last_attributed_touch_data.~campaign_id", camp,
			"event_data.revenue", p.Revenue, "event_data.currency", p.Currency)
	case "singular":
		set("click_id", res.ClickID, "app_id", p.App.ID, "os", map[bool]string{true: "iOS", false: "Android"}[ios],
			"idfa", idfa, "aifa", gaid, "idfv", idfv, "andi", androidID, "attribution_ip", ip, "country", d.Country,
			"utcm", sec(activity), "network", source, "event", p.EventName, "amount", p.Revenue, "currency", p.Currency)
		if p.Kind == InAppEvent {
			set("event_ip", ip)
		}
	case "kochava":
		name := "_install"
		if p.Kind == InAppEvent {
			name = p.EventName
		}
		set("app_id", p.App.ID, "click_id", res.ClickID, "event_name", name, "event_time", sec(activity),
			"revenue", p.Revenue, "currency", p.Currency, "idfa", idfa, "adid", gaid, "android_id", androidID,
			"kochava_device_id", d.MMPDeviceID, "ip_address", ip, "device_ua", ua, "network_name", source)
	case "tenjin":
		set("click_id", res.ClickID, "bundle_id", p.App.ID, "platform", os, "advertising_id", idfa+gaid,
			"developer_device_id", idfv, "analytics_installation_id", d.MMPDeviceID, "ip_address", ip,
			"country", d.Country, "acquired_at_ms", ms(res.InstallTime), "engaged_at_ms", ms(res.ClickTime),
			"created_at_ms", ms(res.EventTime), "event_name", p.EventName, "revenue_usd_gross", p.Revenue)
	default: // generic
		set("event_id", p.MMPEventID, "click_id", res.ClickID, "app_id", p.App.ID, "platform", os,
			"idfa", idfa, "gaid", gaid, "idfv", idfv, "android_id", androidID, "ip", ip, "ua", ua,
			"country", d.Country, "install_time", sec(res.InstallTime), "click_time", sec(res.ClickTime),
			"event_time", sec(res.EventTime), "event_name", p.EventName, "revenue", p.Revenue, "currency", p.Currency,
			"media_source", source, "campaign_id", camp, "reject_reason", p.RejectReason)
	}
	return v
}

func iff(cond bool, v string) string {
	if cond {
		return v
	}
	return ""
}

// breakField spoils the value p.BadField names the way broken integrations
// do: an unknown currency, an advertising id that is not a UUID, no app id,
// an install time in words.
func breakField(p *Postback, v map[string]string) {
	var names []string
	switch p.BadField {
	case "currency":
		names = []string{"currency", "event_data.currency"}
	case "idfa":
		names = []string{"idfa", "user_data.idfa", "gps_adid", "advertiserid", "aifa", "adid", "advertising_id", "gaid", "user_data.aaid"}
	case "app_id":
		names = []string{"app_id", "bundle_id"}
	case "install_time":
		names = []string{"install_unix_ts", "installed_at", "acquired_at_ms", "install_time"}
		if p.Kind == Install {
			names = append(names, "event_timestamp", "utcm", "event_time", "created_at")
		}
	}
	for _, n := range names {
		switch {
		case p.BadField == "app_id":
			v[n] = ""
		case p.BadField == "install_time":
			v[n] = "yesterday"
		case p.BadField == "currency":
			v[n] = "XXQ"
		default:
			v[n] = "not-an-advertising-id"
		}
	}
}
