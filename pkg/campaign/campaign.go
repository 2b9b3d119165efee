// Package campaign keeps the campaign registry that ingest and attribution
// read: which app and media source a campaign belongs to, its MMP tracking
// link, and its cost model. Campaigns live on the compacted campaigns.v1
// topic; every service follows it into an in-memory Registry (package
// campaigntopic), so an update published by `postbackctl campaigns apply`
// reaches them within a second. This package does no I/O.
//
//	camps, err := campaign.ParseYAML(data)          // validate a file
//	reg := campaign.NewRegistry()
//	reg.Put(camps[0])
//	c, ok := reg.Get("c1")
//	link := campaign.FillLink(c.TrackingLink, map[string]string{"click_id": id})
package campaign

import (
	"bytes"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"go.yaml.in/yaml/v3"

	"github.com/adtrack/postback/pkg/event"
	"github.com/adtrack/postback/pkg/money"
	"github.com/adtrack/postback/pkg/postback"
)

// Cost models.
const (
	CPI = "CPI" // cost per install
	CPC = "CPC" // cost per click
	CPM = "CPM" // cost per thousand impressions
)

// Registry is a concurrency-safe map of campaigns by id.
type Registry struct {
	mu     sync.RWMutex
	m      map[string]event.Campaign
	loaded atomic.Bool
}

// NewRegistry returns an empty registry, not loaded yet: until SetLoaded,
// a campaign it lacks may still be on its way (ingest answers 503 rather
// than 404 for it).
func NewRegistry() *Registry { return &Registry{m: map[string]event.Campaign{}} }

// SetLoaded records that the registry holds every campaign of its source
// (campaigntopic.Follower calls it once its initial load is complete; a
// registry filled by hand calls it after the last Put).
func (r *Registry) SetLoaded() { r.loaded.Store(true) }

// Loaded reports whether SetLoaded was called: only then does a missing
// campaign mean an unknown one.
func (r *Registry) Loaded() bool { return r.loaded.Load() }

// Get returns the campaign with id.
func (r *Registry) Get(id string) (event.Campaign, bool) {
	r.mu.RLock()
	c, ok := r.m[id]
	r.mu.RUnlock()
	return c, ok
}

// Put adds or replaces a campaign.
func (r *Registry) Put(c event.Campaign) {
	r.mu.Lock()
	r.m[c.ID] = c
	r.mu.Unlock()
}

// Delete removes a campaign.
func (r *Registry) Delete(id string) {
	r.mu.Lock()
	delete(r.m, id)
	r.mu.Unlock()
}

// MMPs are the MMP names mmp_ids may be keyed by (package postback's list;
// kept here because package postback does not know campaigns).
var MMPs = []string{"appsflyer", "adjust", "branch", "singular", "kochava", "tenjin", "generic"}

// KnownMMP reports whether name is one of MMPs.
func KnownMMP(name string) bool {
	for _, m := range MMPs {
		if m == name {
			return true
		}
	}
	return false
}

// SKANMatch says how a SKAN postback was mapped to a campaign.
type SKANMatch string

// SKAN matches.
const (
	SKANExact     SKANMatch = "exact"     // campaign-id, or all four digits of the source identifier
	SKANPrefix    SKANMatch = "partial"   // two or three digits of a source identifier, one campaign has them
	SKANAmbiguous SKANMatch = "ambiguous" // several campaigns of the app and network have them
	SKANNone      SKANMatch = "none"      // no campaign declares them
)

// FindSKAN returns the campaign of app (our app id, "id<App Store id>")
// whose SKAN ids declare adNetworkID with campaignID (SKAdNetwork 2-3, 0
// when absent) or sourceID (SKAdNetwork 4 and AdAttributionKit: the 2, 3
// or 4 rightmost digits of the hierarchical source identifier that the
// postback's data tier lets through). Only a single match is returned: two
// campaigns sharing the digits is SKANAmbiguous and no campaign.
func (r *Registry) FindSKAN(app, adNetworkID string, campaignID int, sourceID string) (event.Campaign, SKANMatch) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	var found event.Campaign
	n, exact := 0, false
	for _, c := range r.m {
		k := c.SKAN
		if k == nil || c.AppID != app || k.AdNetworkID != adNetworkID {
			continue
		}
		hit, full := false, false
		if campaignID > 0 {
			for _, id := range k.CampaignIDs {
				hit = hit || id == campaignID
			}
			full = hit
		}
		if !hit && len(sourceID) >= 2 && len(sourceID) <= 4 {
			for _, id := range k.SourceIdentifiers {
				if strings.HasSuffix(id, sourceID) || (len(sourceID) == 4 && id == sourceID) {
					hit, full = true, len(sourceID) == 4
					break
				}
			}
		}
		if hit {
			n++
			found, exact = c, full
		}
	}
	switch {
	case n == 0:
		return event.Campaign{}, SKANNone
	case n > 1:
		return event.Campaign{}, SKANAmbiguous
	case exact:
		return found, SKANExact
	}
	return found, SKANPrefix
}

// Len returns the number of campaigns.
func (r *Registry) Len() int {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return len(r.m)
}

// Validate checks one campaign and normalizes its currency and cost model.
// Errors name the campaign and the field.
func Validate(c *event.Campaign) error {
	fail := func(field, format string, args ...any) error {
		return fmt.Errorf("campaign %q: %s: %s", c.ID, field, fmt.Sprintf(format, args...))
	}
	if c.ID == "" || strings.ContainsAny(c.ID, "/?#% ") {
		return fail("campaign_id", "must be non-empty and URL-safe (no / ? # %% or spaces)")
	}
	for _, f := range []struct{ name, v string }{{"campaign_id", c.ID}, {"app_id", c.AppID}, {"media_source", c.MediaSource}, {"mmp", c.MMP}} {
		if err := postback.CheckIdentifier(f.v); err != nil {
			return fail(f.name, "%v", err)
		}
	}
	if c.AppID == "" {
		return fail("app_id", "required")
	}
	if c.MediaSource == "" {
		return fail("media_source", "required")
	}
	if !c.Platform.Valid() {
		return fail("platform", "%q is not ios, android or web", c.Platform)
	}
	c.CostModel = strings.ToUpper(c.CostModel)
	switch c.CostModel {
	case CPI, CPC, CPM:
	default:
		return fail("cost_model", "%q is not CPI, CPC or CPM", c.CostModel)
	}
	if c.Bid < 0 {
		return fail("bid", "must not be negative")
	}
	cur, err := money.NormalizeCurrency(c.Currency)
	if err != nil {
		return fail("currency", "%v", err)
	}
	c.Currency = cur
	for mmp, ids := range c.MMPIDs {
		if !KnownMMP(mmp) {
			return fail("mmp_ids", "%q is not an MMP (%s)", mmp, strings.Join(MMPs, ", "))
		}
		if ids.CampaignID == "" && ids.MediaSource == "" {
			return fail("mmp_ids."+mmp, "set campaign_id, media_source or both")
		}
	}
	if k := c.SKAN; k != nil {
		if k.AdNetworkID == "" {
			return fail("skan.ad_network_id", "required")
		}
		if len(k.CampaignIDs) == 0 && len(k.SourceIdentifiers) == 0 {
			return fail("skan", "declare campaign_ids (SKAdNetwork 2-3), source_identifiers (SKAdNetwork 4, AdAttributionKit) or both")
		}
		for _, id := range k.CampaignIDs {
			if id < 1 || id > 100 {
				return fail("skan.campaign_ids", "%d is not in 1..100", id)
			}
		}
		for i, id := range k.SourceIdentifiers {
			n, err := strconv.Atoi(id)
			if err != nil || n < 0 || n > 9999 || len(id) > 4 || strings.TrimLeft(id, "0123456789") != "" {
				return fail("skan.source_identifiers", "%q is not a source identifier of up to four digits", id)
			}
			k.SourceIdentifiers[i] = fmt.Sprintf("%04d", n)
		}
	}
	if c.TrackingLink != "" {
		u, err := url.Parse(c.TrackingLink)
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			return fail("tracking_link", "%q is not an absolute http(s) URL", c.TrackingLink)
		}
	}
	return nil
}

// File is the YAML document `postbackctl campaigns apply` reads.
type File struct {
	Campaigns []event.Campaign `yaml:"campaigns"`
}

// ParseYAML reads and validates a campaigns file. Unknown keys and duplicate
// ids are errors.
func ParseYAML(data []byte) ([]event.Campaign, error) {
	var raw struct {
		Campaigns []struct {
			ID           string `yaml:"campaign_id"`
			AppID        string `yaml:"app_id"`
			Platform     string `yaml:"platform"`
			MediaSource  string `yaml:"media_source"`
			MMP          string `yaml:"mmp"`
			TrackingLink string `yaml:"tracking_link"`
			CostModel    string `yaml:"cost_model"`
			Bid          string `yaml:"bid"`
			Currency     string `yaml:"currency"`
			MMPIDs       map[string]struct {
				CampaignID  string `yaml:"campaign_id"`
				MediaSource string `yaml:"media_source"`
			} `yaml:"mmp_ids"`
			SKAN *struct {
				AdNetworkID       string   `yaml:"ad_network_id"`
				CampaignIDs       []int    `yaml:"campaign_ids"`
				SourceIdentifiers []string `yaml:"source_identifiers"`
			} `yaml:"skan"`
		} `yaml:"campaigns"`
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&raw); err != nil {
		return nil, fmt.Errorf("campaigns file: %w", err)
	}
	if len(raw.Campaigns) == 0 {
		return nil, errors.New("campaigns file: no campaigns")
	}
	seen := map[string]bool{}
	out := make([]event.Campaign, 0, len(raw.Campaigns))
	for i, r := range raw.Campaigns {
		bid, err := money.Parse(r.Bid)
		if err != nil {
			return nil, fmt.Errorf("campaigns[%d] (%q): bid: %w", i, r.ID, err)
		}
		c := event.Campaign{ID: r.ID, AppID: r.AppID, Platform: event.Platform(strings.ToLower(r.Platform)),
			MediaSource: r.MediaSource, MMP: r.MMP, TrackingLink: r.TrackingLink, CostModel: r.CostModel,
			Bid: bid, Currency: r.Currency}
		for mmp, ids := range r.MMPIDs {
			if c.MMPIDs == nil {
				c.MMPIDs = map[string]event.MMPIDs{}
			}
			c.MMPIDs[mmp] = event.MMPIDs{CampaignID: ids.CampaignID, MediaSource: ids.MediaSource}
		}
		if r.SKAN != nil {
			c.SKAN = &event.SKANIDs{AdNetworkID: r.SKAN.AdNetworkID, CampaignIDs: r.SKAN.CampaignIDs,
				SourceIdentifiers: r.SKAN.SourceIdentifiers}
		}
		if err := Validate(&c); err != nil {
			return nil, fmt.Errorf("campaigns[%d]: %w", i, err)
		}
		if seen[c.ID] {
			return nil, fmt.Errorf("campaigns[%d]: campaign %q listed twice", i, c.ID)
		}
		seen[c.ID] = true
		out = append(out, c)
	}
	return out, nil
}

// TouchCost is what one impression or click of c costs: the bid under CPC
// for a click, bid/1000 under CPM for an impression, zero otherwise.
func TouchCost(c event.Campaign, click bool) money.Amount {
	switch {
	case click && c.CostModel == CPC:
		return c.Bid
	case !click && c.CostModel == CPM:
		return c.Bid.MulDiv(1, 1000)
	}
	return 0
}

// InstallCost is what one install of c costs: the bid under CPI, else zero.
func InstallCost(c event.Campaign) money.Amount {
	if c.CostModel == CPI {
		return c.Bid
	}
	return 0
}

// Macros are the tracking-link macros the click endpoint owns and fills,
// in a campaign's tracking_link as {name} (or percent-encoded, see
// FillLink). Every other placeholder is the MMP's and is left alone.
var Macros = []string{"click_id", "campaign_id", "app_id", "media_source", "site_id", "sub_site_id",
	"creative_id", "adset_id", "idfa", "gaid", "ip", "ua", "country", "sub1", "sub2", "sub3", "sub4", "sub5"}

// mmpPlaceholders are the placeholders an MMP fills itself inside the
// callbacks a tracking link hands it (Adjust's install_callback, ...).
// A name in both sets is the MMP's there: Adjust's {idfa} inside the
// encoded callback is the device's IDFA as Adjust knows it, never ours.
var mmpPlaceholders = map[string]map[string]bool{
	"adjust": set("app_id", "os_name", "gps_adid", "idfa", "idfv", "android_id", "adid", "ip_address", "user_agent",
		"country", "installed_at", "created_at", "click_time", "engagement_time", "network_name", "campaign_name",
		"adgroup_name", "creative_name", "activity_kind", "is_reattributed", "is_redownload", "match_type",
		"cost_type", "cost_amount", "cost_currency", "event", "event_name", "revenue", "revenue_float", "currency",
		"rejection_reason", "tracker", "tracker_name", "random", "nonce", "label"),
}

func set(names ...string) map[string]bool {
	m := make(map[string]bool, len(names))
	for _, n := range names {
		m[n] = true
	}
	return m
}

// MMPPlaceholder reports whether name is a placeholder mmp fills itself
// inside the callbacks of a tracking link (so FillLink leaves it there).
func MMPPlaceholder(mmp, name string) bool { return mmpPlaceholders[mmp][name] }

// FillLink fills the macros of a tracking-link template whose names are
// keys of vals, and leaves everything else byte for byte: the MMP's own
// placeholders ({gps_adid}, %7Binstalled_at%7D, (clickid), ...), unknown
// names, and text that only looks like a macro.
//
// A macro may be written raw, {click_id}, or percent-encoded once or twice,
// %7Bclick_id%7D or %257Bclick_id%257D, as it appears inside a callback
// URL carried as a parameter value (Adjust's install_callback). The value
// is query-escaped once per level plus once, so that after the MMP decodes
// the callback it carries the value correctly escaped for its own query.
// Inside an encoded callback (level 1 or 2), a name the campaign's MMP fills
// itself (MMPPlaceholder) is the MMP's, not ours. A name in vals with an
// empty value becomes empty.
func FillLink(tmpl string, vals map[string]string, mmp string) string {
	var b strings.Builder
	b.Grow(len(tmpl) + 64)
	for i := 0; i < len(tmpl); {
		level, open, close := macroOpener(tmpl[i:])
		if level < 0 {
			b.WriteByte(tmpl[i])
			i++
			continue
		}
		rest := tmpl[i+open:]
		end := indexFold(rest, close)
		if end < 0 {
			b.WriteString(tmpl[i : i+open])
			i += open
			continue
		}
		name := rest[:end]
		v, ours := vals[name]
		if !validMacro(name) || !ours || (level > 0 && MMPPlaceholder(mmp, name)) {
			b.WriteString(tmpl[i : i+open])
			i += open
			continue
		}
		for range level + 1 {
			v = url.QueryEscape(v)
		}
		b.WriteString(v)
		i += open + end + len(close)
	}
	return b.String()
}

// macroOpener reports the encoding level of a macro opening at the start
// of s (0 for "{", 1 for "%7B", 2 for "%257B", -1 for none), the opener's
// length and the closer to look for.
func macroOpener(s string) (level, n int, close string) {
	switch {
	case s[0] == '{':
		return 0, 1, "}"
	case len(s) >= 3 && strings.EqualFold(s[:3], "%7B"):
		return 1, 3, "%7D"
	case len(s) >= 5 && strings.EqualFold(s[:5], "%257B"):
		return 2, 5, "%257D"
	}
	return -1, 0, ""
}

// indexFold is strings.Index with ASCII case folding of sub's hex digits,
// bounded to a macro name's length so a stray opener cannot scan far.
func indexFold(s, sub string) int {
	limit := min(len(s), 64+len(sub))
	for i := 0; i+len(sub) <= limit; i++ {
		if strings.EqualFold(s[i:i+len(sub)], sub) {
			return i
		}
	}
	return -1
}

// Fill replaces every {name} macro of tmpl with escape(vals[name]); a
// malformed {...} is kept as written. The forwarder's callback templates
// fill through it (their macros are validated when endpoints are applied);
// tracking links use FillLink, which leaves the MMP's placeholders alone.
func Fill(tmpl string, vals map[string]string, escape func(string) string) string {
	return FillFunc(tmpl, func(name string) string { return vals[name] }, escape)
}

// FillFunc is Fill with each macro's value from value(name), so a caller
// computes only the values its template names.
func FillFunc(tmpl string, value func(name string) string, escape func(string) string) string {
	var b strings.Builder
	b.Grow(len(tmpl) + 64)
	for {
		open := strings.IndexByte(tmpl, '{')
		if open < 0 {
			b.WriteString(tmpl)
			return b.String()
		}
		end := strings.IndexByte(tmpl[open:], '}')
		if end < 0 {
			b.WriteString(tmpl)
			return b.String()
		}
		name := tmpl[open+1 : open+end]
		b.WriteString(tmpl[:open])
		if validMacro(name) {
			b.WriteString(escape(value(name)))
		} else {
			b.WriteString(tmpl[open : open+end+1])
		}
		tmpl = tmpl[open+end+1:]
	}
}

func validMacro(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c == '_' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) {
			return false
		}
	}
	return true
}
