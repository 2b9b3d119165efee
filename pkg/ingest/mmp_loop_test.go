package ingest

import (
	"bufio"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/encoding/json"

	"github.com/adtrack/postback/pkg/attribution"
	"github.com/adtrack/postback/pkg/campaign"
	"github.com/adtrack/postback/pkg/event"
)

// The per-MMP loop, in process: register a campaign with the tracking link
// docs/mmp/<mmp>.md documents, click it through GET /v1/click, take the 302
// Location, do what the MMP does with it (keep the link's parameters, decode
// Adjust's callback, fill the MMP's own placeholders of the documented
// install template), send the resulting postback to ingest, and attribute
// the install: it must match our click by click_id, on the right campaign,
// and agree with the MMP once the campaign declares the MMP's ids.

const (
	loopToken = "loop-token-0123456789"
	loopIDFA  = "6D92078A-8246-4BA4-AE5B-76104861E7DC"
	loopIP    = "203.0.113.7"
	loopUA    = "MyGame/3.1 CFNetwork/1490.0.4 Darwin/23.2.0"
)

// docBlock returns the body of the first fenced block of docs/mmp/<mmp>.md
// whose info string is info ("link click", "template install").
func docBlock(t *testing.T, mmp, info string) string {
	t.Helper()
	f, err := os.Open(filepath.Join("..", "..", "docs", "mmp", mmp+".md"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	in := false
	var body []string
	for sc.Scan() {
		line := sc.Text()
		switch {
		case !in && line == "```"+info:
			in = true
		case in && line == "```":
			return strings.TrimSpace(strings.Join(body, "\n"))
		case in:
			body = append(body, line)
		}
	}
	t.Fatalf("docs/mmp/%s.md has no ```%s block", mmp, info)
	return ""
}

// fillPlaceholders replaces every open+name+close of s by the
// query-escaped vals[name] ("" when the MMP has no value, as MMPs do).
func fillPlaceholders(s, open, close string, vals map[string]string) string {
	var b strings.Builder
	for {
		i := strings.Index(s, open)
		if i < 0 {
			b.WriteString(s)
			return b.String()
		}
		j := strings.Index(s[i+len(open):], close)
		if j < 0 {
			b.WriteString(s)
			return b.String()
		}
		name := s[i+len(open) : i+len(open)+j]
		b.WriteString(s[:i])
		b.WriteString(url.QueryEscape(vals[name]))
		s = s[i+len(open)+j+len(close):]
	}
}

// loopMMP describes one MMP: how its campaign is declared and what it does
// between our redirect and its postback.
type loopMMP struct {
	app string // the app id as the MMP reports it
	ids event.MMPIDs
	// postback builds the install postback URL from the documented
	// template (host and token already set) and the redirect's Location.
	postback func(t *testing.T, tmpl string, loc *url.URL, installed time.Time) string
	// viewThrough turns an install postback into the MMP's view-through
	// report of the same device, or nil when the MMP has no view-through.
	viewThrough func(postback string) string
}

func loopMMPs() map[string]loopMMP {
	return map[string]loopMMP{
		"appsflyer": {app: "id1234567890", ids: event.MMPIDs{MediaSource: "adtrack_int"},
			postback: func(t *testing.T, tmpl string, loc *url.URL, at time.Time) string {
				q := loc.Query()
				v := map[string]string{"app-id": "id1234567890", "idfa": loopIDFA, "ip": loopIP, "user-agent": loopUA,
					"country_code": "US", "install-unix-ts": strconv.FormatInt(at.Unix(), 10), "match-type": "srn",
					"appsflyer-device-id": "1795853553120-6543210", "campaign": q.Get("c")}
				for _, k := range []string{"clickid", "pid", "af_c_id", "af_adset_id", "af_ad_id", "af_siteid", "af_sub_siteid",
					"af_cost_model", "af_cost_value", "af_cost_currency"} {
					v[k] = q.Get(k)
				}
				return fillPlaceholders(tmpl, "(", ")", v)
			},
			viewThrough: func(pb string) string { return replaceParam(pb, "match_type", "impression") },
		},
		"adjust": {app: "id1234567890", ids: event.MMPIDs{MediaSource: "AdTrack Network"},
			postback: func(t *testing.T, _ string, loc *url.URL, at time.Time) string {
				// Adjust decodes the callback (once, as a query value) and
				// fills its own placeholders; ours were filled by the click.
				cb := loc.Query().Get("install_callback")
				if cb == "" {
					t.Fatalf("no install_callback in %s", loc)
				}
				ts := strconv.FormatInt(at.Unix(), 10)
				return fillPlaceholders(cb, "{", "}", map[string]string{"app_id": "1234567890", "os_name": "ios", "idfa": loopIDFA,
					"idfv": "CCB300A0-DE1B-4D48-BC7E-599E453B8DD4", "adid": "18546f6171f67e29d1cb983322ad1329", "ip_address": loopIP,
					"user_agent": loopUA, "country": "us", "installed_at": ts, "created_at": ts, "network_name": "AdTrack Network",
					"campaign_name": loc.Query().Get("campaign"), "adgroup_name": loc.Query().Get("adgroup"),
					"creative_name": loc.Query().Get("creative"), "activity_kind": "install", "is_reattributed": "0",
					"is_redownload": "0", "match_type": "adid", "cost_type": "cpi", "cost_amount": "1.50", "cost_currency": "USD"})
			},
			viewThrough: func(pb string) string { return replaceParam(pb, "match_type", "impression") },
		},
		"branch": {app: "id1234567890", ids: event.MMPIDs{MediaSource: "AdTrack Ads"},
			postback: func(t *testing.T, tmpl string, loc *url.URL, at time.Time) string {
				v := map[string]string{"id": "1367459301282981099", "name": "INSTALL",
					"event_timestamp": strconv.FormatInt(at.UnixMilli(), 10), "user_data.os": "IOS", "user_data.idfa": loopIDFA,
					"user_data.ip": loopIP, "user_data.user_agent": loopUA, "user_data.geo_country_code": "US",
					"last_attributed_touch_type": "CLICK", "last_attributed_touch_data.~advertising_partner_name": "AdTrack Ads"}
				for k, vals := range loc.Query() {
					if strings.HasPrefix(k, "~") {
						v["last_attributed_touch_data."+k] = vals[0]
					}
				}
				return fillPlaceholders(tmpl, "${(", ")!}", v)
			},
			viewThrough: func(pb string) string { return replaceParam(pb, "last_attributed_touch_type", "IMPRESSION") },
		},
		"singular": {app: "id1234567890", ids: event.MMPIDs{MediaSource: "AdTrack Network"},
			postback: func(t *testing.T, tmpl string, loc *url.URL, at time.Time) string {
				q := loc.Query()
				return fillPlaceholders(tmpl, "{", "}", map[string]string{"cl?AdTrack": q.Get("cl"), "pcrid?AdTrack": q.Get("pcrid"),
					"psid?AdTrack": q.Get("psid"), "PUBLIC_ID": "1234567890", "LONGNAME": "com.example.game", "OS": "iOS",
					"IDFA": loopIDFA, "ATTRIBUTION_IP": loopIP, "COUNTRY": "US", "UTCM": strconv.FormatInt(at.Unix(), 10),
					"NETWORK": "AdTrack Network", "CID": q.Get("pcn"), "IS_RE_ENG": "0", "IS_VIEWTHROUGH": "0"})
			},
			viewThrough: func(pb string) string { return replaceParam(pb, "is_viewthrough", "1") },
		},
		"kochava": {app: "id1234567890", ids: event.MMPIDs{CampaignID: "koadtrack-ios-5f1a2b", MediaSource: "AdTrack"},
			postback: func(t *testing.T, tmpl string, loc *url.URL, at time.Time) string {
				q := loc.Query()
				return fillPlaceholders(tmpl, "{", "}", map[string]string{"click_id": q.Get("click_id"), "site_id": q.Get("site_id"),
					"sub_site_id": q.Get("sub_site_id"), "creative_id": q.Get("creative_id"), "campaign_id": q.Get("campaign_id"),
					"event_name": "_install", "event_time": at.UTC().Format("2006-01-02 15:04:05"), "idfa": loopIDFA,
					"kochava_device_id": "KA1795853553t3a5e9c1b2d4f6a8", "ip_address": loopIP, "device_ua": loopUA,
					"network_name": "AdTrack"})
			},
			// Kochava's custom postback has no view-through mark: the
			// install comes back with the device id and no click id.
			viewThrough: func(pb string) string { return pb },
		},
		"tenjin": {app: "com.example.game",
			postback: func(t *testing.T, tmpl string, loc *url.URL, at time.Time) string {
				q := loc.Query()
				return fillPlaceholders(tmpl, "{{", "}}", map[string]string{"click_id": q.Get("click_id"), "site_id": q.Get("site_id"),
					"campaign_name": q.Get("campaign_name"), "creative_name": q.Get("creative_name"), "bundle_id": "com.example.game",
					"platform": "ios", "advertising_id": strings.ReplaceAll(strings.ToLower(loopIDFA), "-", ""),
					"analytics_installation_id": "29eeb1610fe74997b6d53f02e9711f8c", "ip_address": loopIP, "country": "US",
					"acquired_at_ms": strconv.FormatInt(at.UnixMilli(), 10)})
			},
		},
		"generic": {app: "id1234567890",
			postback: func(t *testing.T, tmpl string, loc *url.URL, at time.Time) string {
				q := loc.Query()
				v := map[string]string{"event_id": "adv-install-1", "app_id": "id1234567890", "platform": "ios", "idfa": loopIDFA,
					"ip": loopIP, "ua": loopUA, "country": "US", "install_time": at.UTC().Format(time.RFC3339), "media_source": "adtrack"}
				for _, k := range []string{"click_id", "campaign_id", "site_id", "sub_site_id", "creative_id", "adset_id"} {
					v[k] = q.Get(k)
				}
				return fillPlaceholders(tmpl, "<", ">", v)
			},
			viewThrough: func(pb string) string { return replaceParam(pb, "match_type", "view_through") },
		},
	}
}

// replaceParam sets one query parameter of a URL, keeping the others.
func replaceParam(raw, name, val string) string {
	u, err := url.Parse(raw)
	if err != nil {
		panic(err)
	}
	q := u.Query()
	q.Set(name, val)
	u.RawQuery = q.Encode()
	return u.String()
}

func loopHarness(t *testing.T) *harness {
	return newHarness(t, func(c *Config) {
		c.Ingest.Sources = map[string]Source{}
		for mmp := range loopMMPs() {
			c.Ingest.Sources[mmp] = Source{Tokens: []string{loopToken}}
		}
	})
}

// register validates and stores the campaign of mmp with its documented link.
func register(t *testing.T, h *harness, mmp string, m loopMMP, link string) event.Campaign {
	t.Helper()
	ids := ""
	if m.ids != (event.MMPIDs{}) {
		b, _ := json.Marshal(map[string]any{mmp: map[string]string{"campaign_id": m.ids.CampaignID, "media_source": m.ids.MediaSource}})
		ids = ", mmp_ids: " + strings.ReplaceAll(strings.ReplaceAll(string(b), `"campaign_id":"",`, ""), `,"media_source":""`, "")
	}
	l, _ := json.Marshal(link)
	doc := fmt.Sprintf("campaigns:\n  - {campaign_id: loop-%s, app_id: %s, platform: ios, media_source: adtrack, mmp: %s, cost_model: CPI, bid: '1.5', currency: USD, tracking_link: %s%s}\n",
		mmp, m.app, mmp, l, ids)
	camps, err := campaign.ParseYAML([]byte(doc))
	if err != nil {
		t.Fatalf("%s: campaign with the documented link: %v\n%s", mmp, err, doc)
	}
	h.srv.reg.Put(camps[0])
	return camps[0]
}

// lastInstall reads the newest install of installs.raw.
func lastInstall(t *testing.T, h *harness) event.Install {
	t.Helper()
	recs := h.records(h.cfg.Topics.InstallsRaw)
	if len(recs) == 0 {
		t.Fatal("no install on installs.raw")
	}
	var in event.Install
	newest := recs[0]
	for _, r := range recs {
		if r.Timestamp.After(newest.Timestamp) || (r.Timestamp.Equal(newest.Timestamp) && r.Offset > newest.Offset) {
			newest = r
		}
	}
	if err := json.Unmarshal(newest.Value, &in); err != nil {
		t.Fatal(err)
	}
	return in
}

// loopSetup starts ingest with every MMP enabled, its clock an hour ago,
// and registers mmp's campaign with the documented tracking link.
func loopSetup(t *testing.T, mmp string, m loopMMP) (h *harness, host string, t0 time.Time, c event.Campaign) {
	t.Helper()
	h = loopHarness(t)
	t0 = time.Now().UTC().Truncate(time.Second).Add(-time.Hour)
	h.srv.now = func() time.Time { return t0 }
	host = strings.TrimPrefix(h.http.URL, "http://")
	link := strings.NewReplacer("<host>", host, "<token>", loopToken).Replace(docBlock(t, mmp, "link click"))
	return h, host, t0, register(t, h, mmp, m, link)
}

// installTemplate is the documented install template with the values the
// user sets up (host, token, a fixed app id) in place.
func installTemplate(t *testing.T, mmp string, m loopMMP, host string) string {
	return strings.NewReplacer("<host>", host, "<token>", loopToken, "<app id>", m.app).Replace(docBlock(t, mmp, "template install"))
}

func TestMMPLoopClick(t *testing.T) {
	for mmp, m := range loopMMPs() {
		t.Run(mmp, func(t *testing.T) {
			h, host, t0, c := loopSetup(t, mmp, m)

			// The click, from a device in a browser.
			a := h.do("GET", "/v1/click/"+c.ID+"?site_id=pub%2093&sub_site_id=sub%201&creative_id=cr-3&adset_id=as-7",
				"", "", map[string]string{"User-Agent": loopUA})
			if a.code != 302 {
				t.Fatalf("click: %d %s", a.code, a.body)
			}
			loc, err := url.Parse(a.header.Get("Location"))
			if err != nil {
				t.Fatalf("Location %q: %v", a.header.Get("Location"), err)
			}
			clicks := h.records(h.cfg.Topics.Clicks)
			if len(clicks) != 1 {
				t.Fatalf("%d clicks", len(clicks))
			}
			var click event.Click
			if err := json.Unmarshal(clicks[0].Value, &click); err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(loc.String(), click.ClickID) {
				t.Fatalf("the redirect does not carry our click id %s: %s", click.ClickID, loc)
			}

			// The MMP's install postback, ten minutes later.
			installed := t0.Add(10 * time.Minute)
			h.srv.now = func() time.Time { return installed.Add(time.Minute) }
			tmpl := installTemplate(t, mmp, m, host)
			pb := m.postback(t, tmpl, loc, installed)
			u, err := url.Parse(pb)
			if err != nil {
				t.Fatalf("postback %q: %v", pb, err)
			}
			if b := h.get(u.RequestURI()); b.code != 200 {
				t.Fatalf("postback %s: %d %s", pb, b.code, b.body)
			}
			in := lastInstall(t, h)
			if in.ClickID != click.ClickID {
				t.Fatalf("the %s postback carries click id %q, want ours %q\npostback: %s", mmp, in.ClickID, click.ClickID, pb)
			}
			got := attribution.DefaultRules().Decide(&in, attribution.Candidates{ByClickID: &click}, h.srv.reg, installed)
			if got.MatchType != event.MatchClickID || got.TouchID != click.ClickID || got.Attribution.CampaignID != c.ID {
				t.Fatalf("attributed %s to %q (%s), want click %s of %s", mmp, got.TouchID, got.MatchType, click.ClickID, c.ID)
			}
			if got.MMPDisagrees {
				t.Errorf("%s: honest postback (media source %q, campaign %q) disagrees", mmp, in.MediaSource, in.Placement.CampaignID)
			}
			if in.SiteID != "" && in.SiteID != "pub 93" {
				t.Errorf("%s: site came back as %q", mmp, in.SiteID)
			}
			// A postback naming another network is a real disagreement.
			if in.MediaSource != "" {
				other := in
				other.MediaSource = "someone_else"
				if d := attribution.DefaultRules().Decide(&other, attribution.Candidates{ByClickID: &click}, h.srv.reg, installed); !d.MMPDisagrees {
					t.Errorf("%s: another network's install agrees", mmp)
				}
			}
		})
	}
}

// TestMMPLoopImpression: for MMPs with view-through attribution, an
// impression recorded by our pixel and the MMP's view-through install of
// the same device are joined as view_through on the right campaign.
func TestMMPLoopImpression(t *testing.T) {
	for mmp, m := range loopMMPs() {
		if m.viewThrough == nil {
			continue
		}
		t.Run(mmp, func(t *testing.T) {
			h, host, t0, c := loopSetup(t, mmp, m)
			if a := h.get("/v1/impression/" + c.ID + "?pixel=1&site_id=pub%2093&idfa=" + loopIDFA); a.code != 200 {
				t.Fatalf("impression: %d %s", a.code, a.body)
			}
			imps := h.records(h.cfg.Topics.Impressions)
			if len(imps) != 1 {
				t.Fatalf("%d impressions", len(imps))
			}
			var imp event.Impression
			if err := json.Unmarshal(imps[0].Value, &imp); err != nil {
				t.Fatal(err)
			}
			// No click: the MMP's view-through postback has no click id.
			installed := t0.Add(2 * time.Hour / 3)
			h.srv.now = func() time.Time { return installed.Add(time.Minute) }
			tmpl := installTemplate(t, mmp, m, host)
			// The MMP's view-through link is the click link (Adjust's
			// view.adjust.com/impression/... carries the same callbacks),
			// with no click id of ours.
			vals := map[string]string{"site_id": "pub 93", "campaign_id": c.ID}
			for _, name := range campaign.Macros {
				if _, ok := vals[name]; !ok {
					vals[name] = ""
				}
			}
			vtLink, err := url.Parse(campaign.FillLink(c.TrackingLink, vals, c.MMP))
			if err != nil {
				t.Fatal(err)
			}
			pb := m.viewThrough(m.postback(t, tmpl, vtLink, installed))
			u, _ := url.Parse(pb)
			if b := h.get(u.RequestURI()); b.code != 200 {
				t.Fatalf("postback %s: %d %s", pb, b.code, b.body)
			}
			in := lastInstall(t, h)
			if in.IDFA != strings.ToLower(loopIDFA) || in.ClickID != "" {
				t.Fatalf("view-through install: idfa %q click %q", in.IDFA, in.ClickID)
			}
			got := attribution.DefaultRules().Decide(&in, attribution.Candidates{Impressions: []event.Impression{imp}}, h.srv.reg, installed)
			if got.MatchType != event.MatchViewThrough || got.TouchID != imp.ImpressionID || got.Attribution.CampaignID != c.ID {
				t.Fatalf("attributed to %q (%s) of %q, want impression %s of %s", got.TouchID, got.MatchType, got.Attribution.CampaignID, imp.ImpressionID, c.ID)
			}
		})
	}
}
