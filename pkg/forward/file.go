package forward

import (
	"bytes"
	"errors"
	"fmt"
	"reflect"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/adtrack/postback/pkg/money"
)

// ParseYAML reads and validates an endpoints file (`postbackctl endpoints
// apply`): unknown keys, duplicate ids and every Validate error stop it,
// naming the entry and the field.
func ParseYAML(data []byte, egress *Egress) ([]Endpoint, error) {
	type rawPayout struct {
		Model    string `yaml:"model"`
		Amount   string `yaml:"amount"`
		Currency string `yaml:"currency"`
		Share    string `yaml:"share"`
	}
	var raw struct {
		Endpoints []struct {
			ID        string            `yaml:"endpoint_id"`
			Publisher string            `yaml:"publisher"`
			Match     Match             `yaml:"match"`
			URL       string            `yaml:"url"`
			Method    string            `yaml:"method"`
			Body      string            `yaml:"body"`
			Fields    map[string]string `yaml:"fields"`
			Payout    rawPayout         `yaml:"payout"`
			DeviceIDs string            `yaml:"device_ids"`
			KeyID     string            `yaml:"signing_key_id"`
		} `yaml:"endpoints"`
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&raw); err != nil {
		return nil, fmt.Errorf("endpoints file: %w", err)
	}
	if len(raw.Endpoints) == 0 {
		return nil, errors.New("endpoints file: no endpoints")
	}
	amount := func(s string) (money.Amount, error) {
		if s == "" {
			return 0, nil
		}
		return money.Parse(s)
	}
	seen := map[string]bool{}
	out := make([]Endpoint, 0, len(raw.Endpoints))
	for i, r := range raw.Endpoints {
		amt, err := amount(r.Payout.Amount)
		if err != nil {
			return nil, fmt.Errorf("endpoints[%d] (%q): payout.amount: %w", i, r.ID, err)
		}
		share, err := amount(r.Payout.Share)
		if err != nil {
			return nil, fmt.Errorf("endpoints[%d] (%q): payout.share: %w", i, r.ID, err)
		}
		ep := Endpoint{ID: r.ID, Publisher: r.Publisher, Match: r.Match, URL: r.URL, Method: r.Method, Body: r.Body,
			Fields: r.Fields, DeviceIDs: r.DeviceIDs, KeyID: r.KeyID,
			Payout: Payout{Model: r.Payout.Model, Amount: amt, Currency: r.Payout.Currency, Share: share}}
		if err := Validate(&ep, egress); err != nil {
			return nil, fmt.Errorf("endpoints[%d]: %w", i, err)
		}
		if seen[ep.ID] {
			return nil, fmt.Errorf("endpoints[%d]: endpoint %q listed twice", i, ep.ID)
		}
		seen[ep.ID] = true
		out = append(out, ep)
	}
	return out, nil
}

// FileReference renders the keys of an endpoints file as a Markdown table
// from the desc tags of Endpoint, for docs/configuration.md (`make docs`).
func FileReference() string {
	var b strings.Builder
	b.WriteString("| key | meaning |\n|---|---|\n")
	var walk func(t reflect.Type, prefix string)
	walk = func(t reflect.Type, prefix string) {
		for i := 0; i < t.NumField(); i++ {
			f := t.Field(i)
			name := f.Tag.Get("yaml")
			key := prefix + name
			if f.Type.Kind() == reflect.Struct && f.Tag.Get("desc") == "" {
				walk(f.Type, key+".")
				continue
			}
			fmt.Fprintf(&b, "| `%s` | %s |\n", key, f.Tag.Get("desc"))
		}
	}
	walk(reflect.TypeOf(Endpoint{}), "endpoints[].")
	return b.String()
}
