package forward

import (
	"fmt"
	"net/url"
	"sort"

	"github.com/segmentio/encoding/json"

	"github.com/adtrack/postback/pkg/campaign"
	"github.com/adtrack/postback/pkg/money"
)

// Request is one rendered callback: what every attempt of a delivery
// sends (only the signature headers change per attempt).
type Request struct {
	DeliveryID  string       `json:"delivery_id"`
	EndpointID  string       `json:"endpoint_id"`
	Method      string       `json:"method"`
	URL         string       `json:"url"`
	ContentType string       `json:"content_type,omitempty"`
	Body        []byte       `json:"body,omitempty"`
	KeyID       string       `json:"key_id"`
	Payout      money.Amount `json:"payout"`
	Currency    string       `json:"payout_currency,omitempty"`
}

// Target is the request target as sent on the request line (path and
// query), the part of the URL the signature covers.
func (r *Request) Target() string {
	u, err := url.Parse(r.URL)
	if err != nil {
		return r.URL
	}
	return u.RequestURI()
}

// Render builds the callback of conversion c for ep: the URL template and
// fields filled, the body encoded, the payout computed.
func Render(ep *Endpoint, c Conversion) (Request, error) {
	id := DeliveryID(c.Kind, c.EventID(), ep.ID)
	payout, cur := PayoutOf(ep, c)
	m := &macros{ep: ep, c: c, deliveryID: id, payout: payout, payoutCurrency: cur}
	req := Request{DeliveryID: id, EndpointID: ep.ID, Method: ep.Method, KeyID: ep.KeyID, Payout: payout, Currency: cur}
	u, err := url.Parse(campaign.FillFunc(ep.URL, m.value, url.QueryEscape))
	if err != nil {
		return req, fmt.Errorf("endpoint %q: filled URL does not parse: %w", ep.ID, err)
	}
	var fields map[string]string
	if len(ep.Fields) > 0 {
		fields = make(map[string]string, len(ep.Fields))
		for name, tmpl := range ep.Fields {
			fields[name] = campaign.FillFunc(tmpl, m.value, func(s string) string { return s })
		}
	}
	if ep.Method == MethodPost && len(ep.Fields) == 0 {
		fields = m.all()
	}
	switch {
	case ep.Method == MethodGet:
		if len(fields) > 0 {
			q := u.Query()
			for _, name := range sortedKeys(fields) {
				q.Set(name, fields[name])
			}
			u.RawQuery = q.Encode()
		}
	case ep.Body == BodyJSON:
		req.ContentType = "application/json"
		// encoding/json sorts map keys: the body is byte-for-byte the same on every render.
		if req.Body, err = json.Marshal(fields); err != nil {
			return req, fmt.Errorf("endpoint %q: encode JSON body: %w", ep.ID, err)
		}
	default:
		req.ContentType = "application/x-www-form-urlencoded"
		form := url.Values{}
		for name, v := range fields {
			form.Set(name, v)
		}
		req.Body = []byte(form.Encode())
	}
	req.URL = u.String()
	return req, nil
}

func sortedKeys(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
