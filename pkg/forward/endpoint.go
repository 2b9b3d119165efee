// Package forward holds the pure rules of outbound postbacks: which
// publisher or partner endpoint earns a callback for an attributed install
// or event (Match), what the callback says (Render: URL template macros,
// GET or POST with a form or JSON body, the payout), how it is signed
// (Sign, Verify), where it may go (CheckURL, Egress), and when a failed one
// is tried again (Policy). It does no I/O; package forwarder sends.
//
//	eps, err := forward.ParseYAML(data)          // postbackctl endpoints apply
//	c, err := forward.FromInstall(&ai)            // or FromEvent
//	for _, ep := range reg.Match(c) {
//		req, err := forward.Render(ep, c)         // method, URL, body, delivery id
//		sig := forward.Sign(secret, ts, req.Method, req.Target(), req.Body)
//	}
package forward

import (
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"

	"github.com/adtrack/postback/pkg/money"
)

// Kinds of conversions an endpoint can ask for.
const (
	KindInstall = "install"
	KindEvent   = "event"
)

// HTTP methods and POST bodies.
const (
	MethodGet  = "GET"
	MethodPost = "POST"
	BodyForm   = "form"
	BodyJSON   = "json"
)

// Device-id policies: what an endpoint receives in {idfa}, {gaid}, {idfv},
// {android_id}, {ip} and {ua}.
const (
	DeviceNone   = "none"   // the macros are empty
	DeviceHashed = "hashed" // lower-case hex SHA-256 of the value
	DeviceRaw    = "raw"    // the value itself: only for endpoints allowed to receive it
)

// Payout models.
const (
	PayoutNone         = ""
	PayoutCPI          = "cpi"           // a fixed amount per install
	PayoutCPA          = "cpa"           // a fixed amount per matched event
	PayoutRevenueShare = "revenue_share" // a share of the event's revenue in the reporting currency
)

// Endpoint is one publisher's or partner's callback: which conversions it
// receives and what it is sent. It is one entry of the compacted endpoints
// topic (key ID; an empty value deletes it) and of the YAML file
// `postbackctl endpoints apply` reads.
type Endpoint struct {
	ID        string `json:"endpoint_id" yaml:"endpoint_id" desc:"Unique id (URL-safe); the Kafka key, part of every delivery id, the label of its metrics."`
	Publisher string `json:"publisher,omitempty" yaml:"publisher" desc:"Who receives it: the publisher or partner name, for the delivery log and ClickHouse."`
	Match     Match  `json:"match" yaml:"match"`
	URL       string `json:"url" yaml:"url" desc:"URL template: http or https, a fixed host (no macros before the path), {macro}s in the path and query are filled URL-escaped."`
	Method    string `json:"method" yaml:"method" desc:"GET (fields appended to the query) or POST (fields in the body). Default GET."`
	Body      string `json:"body,omitempty" yaml:"body" desc:"POST body: form (application/x-www-form-urlencoded) or json (an object of strings). Default form."`
	// Fields are name -> template pairs: query parameters of a GET, the body of a POST.
	Fields map[string]string `json:"fields,omitempty" yaml:"fields" desc:"Parameters, name -> template with {macro}s: appended to the query of a GET, the body of a POST. A POST without fields sends every macro."`
	Payout Payout            `json:"payout" yaml:"payout"`
	// DeviceIDs is DeviceNone, DeviceHashed or DeviceRaw.
	DeviceIDs string `json:"device_ids" yaml:"device_ids" desc:"What {idfa} {gaid} {idfv} {android_id} {ip} {ua} carry: none (empty, the default), hashed (hex SHA-256 of the lower-cased value) or raw (only for endpoints contractually allowed to receive device ids)."`
	KeyID     string `json:"signing_key_id" yaml:"signing_key_id" desc:"Id of the HMAC key that signs its callbacks: a file of that name in the forwarder's forwarder.keys_dir, shared with the receiver. Sent in X-Postback-Key-Id."`
}

// Match says which conversions an endpoint receives. Empty lists match
// anything; organic conversions and installs the MMP rejected never match.
type Match struct {
	MediaSources []string `json:"media_sources,omitempty" yaml:"media_sources" desc:"Attributed media sources (any of); empty: any."`
	Campaigns    []string `json:"campaigns,omitempty" yaml:"campaigns" desc:"Attributed campaign ids (any of); empty: any."`
	SiteIDs      []string `json:"site_ids,omitempty" yaml:"site_ids" desc:"Attributed site ids (any of); empty: any."`
	Apps         []string `json:"apps,omitempty" yaml:"apps" desc:"App ids (any of); empty: any."`
	Kinds        []string `json:"kinds" yaml:"kinds" desc:"install and/or event. Default [install]."`
	EventNames   []string `json:"event_names,omitempty" yaml:"event_names" desc:"In-app events (any of), by taxonomy name (purchase) or the MMP's original name; empty: every event."`
}

// Payout is what the callback says we pay the publisher for the conversion.
type Payout struct {
	Model    string       `json:"model,omitempty" yaml:"model" desc:"cpi (amount per install), cpa (amount per matched event), revenue_share (share of the event's revenue in the reporting currency), or empty for none."`
	Amount   money.Amount `json:"amount" yaml:"amount" desc:"cpi and cpa: the amount, a decimal string."`
	Currency string       `json:"currency,omitempty" yaml:"currency" desc:"cpi and cpa: ISO-4217 currency of amount."`
	Share    money.Amount `json:"share" yaml:"share" desc:"revenue_share: the fraction of revenue paid, a decimal in (0, 1], e.g. \"0.3\"."`
}

// ErrInvalid wraps every validation error of an endpoint.
var ErrInvalid = errors.New("invalid endpoint")

// Validate checks one endpoint and fills its defaults. The URL is checked
// against egress (CheckURL); a host name is not resolved here. Errors name
// the endpoint and the field.
func Validate(ep *Endpoint, egress *Egress) error {
	fail := func(field, format string, args ...any) error {
		return fmt.Errorf("%w %q: %s: %s", ErrInvalid, ep.ID, field, fmt.Sprintf(format, args...))
	}
	if ep.ID == "" || len(ep.ID) > 128 || strings.ContainsAny(ep.ID, "/?#% \t\n") {
		return fail("endpoint_id", "must be 1..128 URL-safe characters (no / ? # %% or spaces)")
	}
	if ep.Method == "" {
		ep.Method = MethodGet
	}
	ep.Method = strings.ToUpper(ep.Method)
	switch ep.Method {
	case MethodGet:
		if ep.Body != "" {
			return fail("body", "a GET has no body; use method: POST")
		}
	case MethodPost:
		if ep.Body == "" {
			ep.Body = BodyForm
		}
		if ep.Body != BodyForm && ep.Body != BodyJSON {
			return fail("body", "%q is not form or json", ep.Body)
		}
	default:
		return fail("method", "%q is not GET or POST", ep.Method)
	}
	if err := checkTemplate(ep.URL); err != nil {
		return fail("url", "%v", err)
	}
	if err := egress.CheckURL(ep.URL); err != nil {
		return fail("url", "%v", err)
	}
	for name, tmpl := range ep.Fields {
		if name == "" {
			return fail("fields", "a field has an empty name")
		}
		if err := checkMacros(tmpl); err != nil {
			return fail("fields."+name, "%v", err)
		}
	}
	if len(ep.Match.Kinds) == 0 {
		ep.Match.Kinds = []string{KindInstall}
	}
	for _, k := range ep.Match.Kinds {
		if k != KindInstall && k != KindEvent {
			return fail("match.kinds", "%q is not install or event", k)
		}
	}
	if len(ep.Match.EventNames) > 0 && !slices.Contains(ep.Match.Kinds, KindEvent) {
		return fail("match.event_names", "set, but match.kinds lacks event")
	}
	if ep.DeviceIDs == "" {
		ep.DeviceIDs = DeviceNone
	}
	if ep.DeviceIDs != DeviceNone && ep.DeviceIDs != DeviceHashed && ep.DeviceIDs != DeviceRaw {
		return fail("device_ids", "%q is not none, hashed or raw", ep.DeviceIDs)
	}
	if ep.KeyID == "" || strings.ContainsAny(ep.KeyID, "/\\ \t\n") || strings.HasPrefix(ep.KeyID, ".") {
		return fail("signing_key_id", "required: the name of a key file in the forwarder's forwarder.keys_dir (no / or leading .)")
	}
	return validatePayout(&ep.Payout, ep.Match.Kinds, fail)
}

func validatePayout(p *Payout, kinds []string, fail func(field, format string, args ...any) error) error {
	p.Model = strings.ToLower(p.Model)
	switch p.Model {
	case PayoutNone:
		if p.Amount != 0 || p.Share != 0 {
			return fail("payout.model", "amount or share set without a model (cpi, cpa or revenue_share)")
		}
	case PayoutCPI, PayoutCPA:
		if p.Amount <= 0 {
			return fail("payout.amount", "must be positive for %s", p.Model)
		}
		cur, err := money.NormalizeCurrency(p.Currency)
		if err != nil {
			return fail("payout.currency", "%v", err)
		}
		p.Currency = cur
		if p.Share != 0 {
			return fail("payout.share", "only for revenue_share")
		}
		want := map[string]string{PayoutCPI: KindInstall, PayoutCPA: KindEvent}[p.Model]
		if !slices.Contains(kinds, want) {
			return fail("payout.model", "%s pays per %s, but match.kinds lacks %s", p.Model, want, want)
		}
	case PayoutRevenueShare:
		if p.Share <= 0 || p.Share > money.FromMicros(1_000_000) {
			return fail("payout.share", "must be in (0, 1], got %s", p.Share)
		}
		if p.Amount != 0 || p.Currency != "" {
			return fail("payout.amount", "revenue_share pays in the event's reporting currency: no amount or currency")
		}
		if !slices.Contains(kinds, KindEvent) {
			return fail("payout.model", "revenue_share pays on events, but match.kinds lacks event")
		}
	default:
		return fail("payout.model", "%q is not cpi, cpa or revenue_share", p.Model)
	}
	return nil
}

// checkTemplate checks the URL template's shape: absolute http(s), a host
// without macros (so where a callback goes is decided at apply time), known
// macros only.
func checkTemplate(tmpl string) error {
	u, err := url.Parse(strings.NewReplacer("{", "", "}", "").Replace(tmpl))
	if err != nil {
		return fmt.Errorf("%q does not parse: %v", tmpl, err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return fmt.Errorf("scheme %q refused: only http and https", u.Scheme)
	}
	if u.Host == "" || u.User != nil {
		return fmt.Errorf("%q must name a host, without user info", tmpl)
	}
	rest := tmpl[len(u.Scheme)+3:]
	if i := strings.IndexAny(rest, "/?#"); i >= 0 {
		rest = rest[:i]
	}
	if strings.ContainsAny(rest, "{}") {
		return fmt.Errorf("macros in the host are refused: the destination must be fixed when the endpoint is applied")
	}
	return checkMacros(tmpl)
}

// checkMacros refuses a {name} that is not a known macro, so a typo is an
// apply-time error rather than an empty parameter at send time.
func checkMacros(tmpl string) error {
	for {
		open := strings.IndexByte(tmpl, '{')
		if open < 0 {
			return nil
		}
		end := strings.IndexByte(tmpl[open:], '}')
		if end < 0 {
			return fmt.Errorf("unclosed { in %q", tmpl)
		}
		name := tmpl[open+1 : open+end]
		if !knownMacro(name) {
			return fmt.Errorf("unknown macro {%s} (see docs/forwarder.md for the list)", name)
		}
		tmpl = tmpl[open+end+1:]
	}
}
