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
	"strings"
	"sync"

	"go.yaml.in/yaml/v3"

	"github.com/adtrack/postback/pkg/event"
	"github.com/adtrack/postback/pkg/money"
)

// Cost models.
const (
	CPI = "CPI" // cost per install
	CPC = "CPC" // cost per click
	CPM = "CPM" // cost per thousand impressions
)

// Registry is a concurrency-safe map of campaigns by id.
type Registry struct {
	mu sync.RWMutex
	m  map[string]event.Campaign
}

// NewRegistry returns an empty registry.
func NewRegistry() *Registry { return &Registry{m: map[string]event.Campaign{}} }

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

// FillLink replaces every {name} macro of a tracking-link template with
// the URL-query-escaped value from vals; a macro with no value becomes
// empty, so no literal "{idfa}" ever reaches an MMP.
func FillLink(tmpl string, vals map[string]string) string {
	return Fill(tmpl, vals, url.QueryEscape)
}

// Fill replaces every {name} macro of tmpl with escape(vals[name]); a
// malformed {...} is kept as written. FillLink and the forwarder's
// callback templates both fill through it.
func Fill(tmpl string, vals map[string]string, escape func(string) string) string {
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
			b.WriteString(escape(vals[name]))
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
