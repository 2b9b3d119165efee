package skan_test

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/adtrack/postback/pkg/skan"
	"github.com/adtrack/postback/pkg/skan/skantest"
)

// TestFailures: every way a postback can be broken or forged gets its
// reason, and the unauthorized ones are told apart (401) from the
// malformed ones (400).
func TestFailures(t *testing.T) {
	s := skantest.New()
	v := testVerifier(t, s)
	signed := func(version string, mod func(m map[string]any)) []byte {
		m := skantest.Example(version)
		if mod != nil {
			mod(m)
		}
		return s.SKAN(m)
	}
	// tamper changes a field after signing.
	tamper := func(body []byte, field string, val any) []byte {
		var m map[string]any
		if err := json.Unmarshal(body, &m); err != nil {
			t.Fatal(err)
		}
		if val == nil {
			delete(m, field)
		} else {
			m[field] = val
		}
		b, _ := json.Marshal(m)
		return b
	}
	cases := map[string]struct {
		body  []byte
		want  string
		field string
	}{}
	for _, version := range skan.Versions {
		good := signed(version, nil)
		cases[version+"/bad signature"] = struct {
			body  []byte
			want  string
			field string
		}{tamper(good, "transaction-id", "00000000-0000-0000-0000-000000000000"), skan.ReasonInvalidSignature, "attribution-signature"}
		cases[version+"/truncated"] = struct {
			body  []byte
			want  string
			field string
		}{good[:len(good)/2], skan.ReasonMalformed, ""}
		wrong := strings.Fields(map[string]string{
			"1.0": "campaign-id ad-network-id app-id transaction-id",
			"2.0": "version campaign-id ad-network-id app-id transaction-id redownload ?source-app-id",
			"2.1": "version ad-network-id campaign-id transaction-id app-id redownload ?source-app-id",
			"2.2": "version ad-network-id campaign-id app-id transaction-id ?source-app-id redownload fidelity-type",
			"3.0": "version ad-network-id campaign-id app-id transaction-id redownload ?source-app-id did-win fidelity-type",
			"4.0": "version ad-network-id source-identifier app-id transaction-id redownload fidelity-type ?source-app-id|source-domain did-win postback-sequence-index",
		}[version])
		cases[version+"/wrong field order"] = struct {
			body  []byte
			want  string
			field string
		}{s.SKANInOrder(skantest.Example(version), strings.Join(wrong, " ")), skan.ReasonInvalidSignature, "attribution-signature"}
		cases[version+"/wrong ad-network-id"] = struct {
			body  []byte
			want  string
			field string
		}{signed(version, func(m map[string]any) { m["ad-network-id"] = "other.skadnetwork" }), skan.ReasonWrongAdNetwork, "ad-network-id"}
		cases[version+"/missing transaction-id"] = struct {
			body  []byte
			want  string
			field string
		}{tamper(good, "transaction-id", nil), skan.ReasonMissingField, "transaction-id"}
		cases[version+"/signed by another key"] = struct {
			body  []byte
			want  string
			field string
		}{tamper(good, "attribution-signature", "MEUCIQD4rX6eh38qEhuUKHdap345UbmlzA7KEZ1bhWZuYM8MJwIgMnyiiZe6heabDkGwOaKBYrUXQhKtF3P/ERHqkR/XpuA="), skan.ReasonInvalidSignature, "attribution-signature"}
	}
	type c = struct {
		body  []byte
		want  string
		field string
	}
	good4 := signed("4.0", nil)
	more := map[string]c{
		"unknown version 5.0":   {tamper(good4, "version", "5.0"), skan.ReasonUnknownVersion, "version"},
		"unknown version 4":     {tamper(good4, "version", "4"), skan.ReasonUnknownVersion, "version"},
		"version as a number":   {[]byte(strings.Replace(string(good4), `"version":"4.0"`, `"version":4.0`, 1)), skan.ReasonMalformed, "version"},
		"not JSON":              {[]byte("version=4.0"), skan.ReasonMalformed, ""},
		"JSON array":            {[]byte(`[1,2]`), skan.ReasonMalformed, ""},
		"empty":                 {nil, skan.ReasonMalformed, ""},
		"two objects":           {append(append([]byte{}, good4...), good4...), skan.ReasonMalformed, ""},
		"conversion value 64":   {tamper(good4, "conversion-value", 64), skan.ReasonBadField, "conversion-value"},
		"coarse value huge":     {tamper(tamper(good4, "conversion-value", nil), "coarse-conversion-value", "huge"), skan.ReasonBadField, "coarse-conversion-value"},
		"fine and coarse":       {tamper(good4, "coarse-conversion-value", "low"), skan.ReasonBadField, "coarse-conversion-value"},
		"sequence index 3":      {tamper(tamper(good4, "conversion-value", nil), "postback-sequence-index", 3), skan.ReasonBadField, "postback-sequence-index"},
		"one-digit source":      {tamper(good4, "source-identifier", "7"), skan.ReasonBadField, "source-identifier"},
		"signature not base64":  {tamper(good4, "attribution-signature", "!!!"), skan.ReasonMalformed, "attribution-signature"},
		"app-id negative":       {tamper(good4, "app-id", -5), skan.ReasonMalformed, "app-id"},
		"app-id float":          {tamper(good4, "app-id", 5.5), skan.ReasonMalformed, "app-id"},
		"redownload yes":        {tamper(good4, "redownload", "yes"), skan.ReasonMalformed, "redownload"},
		"missing did-win 3.0":   {tamper(signed("3.0", nil), "did-win", nil), skan.ReasonMissingField, "did-win"},
		"missing fidelity 2.2":  {tamper(signed("2.2", nil), "fidelity-type", nil), skan.ReasonMissingField, "fidelity-type"},
		"source domain on 3.0":  {tamper(signed("3.0", func(m map[string]any) { delete(m, "source-app-id") }), "source-domain", "x.com"), skan.ReasonBadField, "source-domain"},
		"app id and domain 4.0": {tamper(good4, "source-domain", "x.com"), skan.ReasonBadField, "source-domain"},
		"did-win flipped":       {tamper(good4, "did-win", false), skan.ReasonInvalidSignature, "attribution-signature"},
		"sequence index moved":  {tamper(tamper(good4, "conversion-value", nil), "postback-sequence-index", 1), skan.ReasonInvalidSignature, "attribution-signature"},
		"2.0 signed as 2.1":     {tamper(signed("2.0", nil), "version", "2.1"), skan.ReasonInvalidSignature, "attribution-signature"},
		// AdAttributionKit.
		"aak unknown kid": {s.AAKWithKid(skantest.AAKPayload(), nil, "apple-cas-identifier/9"), skan.ReasonUnknownKey, "kid"},
		"aak bad signature": {[]byte(strings.Replace(string(s.AAK(skantest.AAKPayload(), nil)), `.eyJ`, `.eyK`, 1)),
			skan.ReasonMalformed, ""}, // the payload no longer decodes as JSON
		"aak wrong network": {s.AAK(func() map[string]any {
			m := skantest.AAKPayload()
			m["ad-network-identifier"] = "other.adattributionkit"
			return m
		}(), nil), skan.ReasonWrongAdNetwork, "ad-network-identifier"},
		"aak truncated":        {[]byte(`{"jws-string":"eyJhbGciOiJFUzI1NiJ9.eyJ9"}`), skan.ReasonMalformed, ""},
		"aak two parts":        {[]byte(`{"jws-string":"a.b"}`), skan.ReasonMalformed, "jws-string"},
		"aak missing field":    {s.AAK(func() map[string]any { m := skantest.AAKPayload(); delete(m, "did-win"); return m }(), nil), skan.ReasonMissingField, "did-win"},
		"aak conversion type":  {s.AAK(func() map[string]any { m := skantest.AAKPayload(); m["conversion-type"] = "x"; return m }(), nil), skan.ReasonBadField, "conversion-type"},
		"aak unsigned changed": {tamper(s.AAK(skantest.AAKPayload(), nil), "conversion-value", 99), skan.ReasonBadField, "conversion-value"},
	}
	// A JWS whose signature bytes are flipped.
	body := s.AAK(skantest.AAKPayload(), nil)
	var m map[string]string
	_ = json.Unmarshal(body, &m)
	jws := m["jws-string"]
	flipped := jws[:len(jws)-3] + map[bool]string{true: "AAA", false: "BBB"}[!strings.HasSuffix(jws, "AAA")]
	more["aak signature flipped"] = c{[]byte(`{"jws-string":"` + flipped + `"}`), skan.ReasonInvalidSignature, "jws-string"}
	for k, v := range more {
		cases[k] = v
	}
	for name, tt := range cases {
		t.Run(name, func(t *testing.T) {
			p, err := skan.Parse(tt.body)
			if err == nil {
				err = v.Verify(p)
			}
			var e *skan.Error
			if !errors.As(err, &e) {
				t.Fatalf("err = %v, want a *skan.Error with reason %s", err, tt.want)
			}
			if e.Reason != tt.want || (tt.field != "" && e.Field != tt.field) {
				t.Fatalf("err = %v (field %q), want reason %s field %q", err, e.Field, tt.want, tt.field)
			}
			unauth := tt.want == skan.ReasonInvalidSignature || tt.want == skan.ReasonUnknownKey || tt.want == skan.ReasonWrongAdNetwork
			if e.Unauthorized() != unauth {
				t.Errorf("Unauthorized() = %v", e.Unauthorized())
			}
		})
	}
}
