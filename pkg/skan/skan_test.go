package skan_test

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/adtrack/postback/pkg/skan"
	"github.com/adtrack/postback/pkg/skan/skantest"
)

func appleVerifier(t *testing.T, kids map[string]string, networks ...string) *skan.Verifier {
	t.Helper()
	keys := skan.DefaultKeys()
	for k, v := range kids {
		keys.AAK[k] = v
	}
	v, err := skan.NewVerifier(keys, networks)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func reason(err error) string {
	var e *skan.Error
	if errors.As(err, &e) {
		return e.Reason
	}
	if err != nil {
		return "not *skan.Error: " + err.Error()
	}
	return ""
}

// TestAppleExamples verifies Apple's published examples with Apple's real
// keys and pins which do not (testdata/apple/README.md).
func TestAppleExamples(t *testing.T) {
	allDev := map[string]string{skan.KidDevelopment0: skan.AppleAAKDevelopment0, skan.KidDevelopment1: skan.AppleAAKDevelopment1}
	for _, tt := range []struct {
		file, network, want string
		kids                map[string]string
	}{
		{"skan-2.0.json", "com.example", skan.ReasonInvalidSignature, nil},
		{"skan-2.1.json", "com.example", "", nil},
		{"skan-2.2.json", "com.example", "", nil},
		{"skan-3.0-win.json", "example123.skadnetwork", "", nil},
		{"skan-3.0-nonwin.json", "example123.skadnetwork", "", nil},
		{"skan-4.0-web-high.json", "com.example", "", nil},
		{"skan-4.0-web-low.json", "com.example", "", nil},
		{"aak-production.json", "test.adattributionkit", skan.ReasonInvalidSignature, nil},
		{"aak-development-1.json", "development.adattributionkit", skan.ReasonUnknownKey, nil}, // dev keys are off by default
		{"aak-development-1.json", "development.adattributionkit", "", allDev},
	} {
		t.Run(tt.file, func(t *testing.T) {
			body, err := os.ReadFile(filepath.Join("testdata", "apple", tt.file))
			if err != nil {
				t.Fatal(err)
			}
			p, err := skan.Parse(body)
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			err = appleVerifier(t, tt.kids, tt.network).Verify(p)
			if got := reason(err); got != tt.want {
				t.Fatalf("Verify = %v, want reason %q", err, tt.want)
			}
			if tt.want == "" {
				// The same postback for another ad network is refused.
				if got := reason(appleVerifier(t, tt.kids, "other.skadnetwork").Verify(p)); got != skan.ReasonWrongAdNetwork {
					t.Errorf("for another network: %q", got)
				}
			}
		})
	}
	// The production AdAttributionKit example verifies with no key at all.
	body, _ := os.ReadFile("testdata/apple/aak-production.json")
	p, _ := skan.Parse(body)
	v := appleVerifier(t, map[string]string{skan.KidProduction: skan.AppleP256}, "test.adattributionkit")
	for _, k := range []string{skan.AppleAAKDevelopment0, skan.AppleAAKDevelopment1} {
		v2 := appleVerifier(t, map[string]string{skan.KidProduction: k}, "test.adattributionkit")
		if v2.Verify(p) == nil {
			t.Error("the production AAK example verified with a development key")
		}
	}
	if v.Verify(p) == nil {
		t.Error("the production AAK example verified")
	}
}

func testVerifier(t *testing.T, s *skantest.Signer) *skan.Verifier {
	t.Helper()
	v, err := skan.NewVerifier(s.Keys(), []string{skantest.AdNetwork})
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// TestEveryVersionVerifies: a postback of each version, signed with the
// test keys over that version's field order, parses with every field kept
// and verifies; variants with and without the optional signed fields too.
func TestEveryVersionVerifies(t *testing.T) {
	s := skantest.New()
	v := testVerifier(t, s)
	for _, version := range skan.Versions {
		variants := map[string]func(m map[string]any){
			"complete":         func(map[string]any) {},
			"no source-app-id": func(m map[string]any) { delete(m, "source-app-id"); delete(m, "conversion-value") },
			"test postback":    func(m map[string]any) { m["source-app-id"] = 0; m["conversion-value"] = 0 },
		}
		if version == "4.0" {
			variants["web ad"] = func(m map[string]any) { delete(m, "source-app-id"); m["source-domain"] = "example.com" }
			variants["low tier"] = func(m map[string]any) {
				delete(m, "source-app-id")
				delete(m, "conversion-value")
				m["source-identifier"] = "39"
				m["coarse-conversion-value"] = "low"
			}
			variants["third window"] = func(m map[string]any) {
				delete(m, "conversion-value")
				delete(m, "source-app-id")
				m["postback-sequence-index"] = 2
				m["coarse-conversion-value"] = "high"
				m["country-code"] = "DE"
			}
		}
		if version == "3.0" || version == "4.0" {
			variants["non-winning"] = func(m map[string]any) {
				delete(m, "source-app-id")
				delete(m, "conversion-value")
				m["did-win"] = false
			}
		}
		for name, mod := range variants {
			t.Run(version+"/"+name, func(t *testing.T) {
				m := skantest.Example(version)
				mod(m)
				p, err := skan.Parse(s.SKAN(m))
				if err != nil {
					t.Fatalf("Parse: %v", err)
				}
				if err := v.Verify(p); err != nil {
					t.Fatalf("Verify: %v\nsigned: %q", err, p.SignedString())
				}
				if p.Framework != skan.SKAdNetwork || p.Version != version || p.AdNetworkID != skantest.AdNetwork ||
					p.AppID != 525463029 || p.TransactionID == "" {
					t.Errorf("fields: %+v", p)
				}
				if sa, ok := m["source-app-id"]; ok && (p.SourceAppID == nil || *p.SourceAppID != int64(sa.(int))) {
					t.Errorf("source-app-id not kept: %v", p.SourceAppID)
				}
				if cv, ok := m["conversion-value"]; ok && (p.ConversionValue == nil || *p.ConversionValue != int64(cv.(int))) {
					t.Errorf("conversion-value not kept")
				}
				if c, ok := m["coarse-conversion-value"]; ok && p.CoarseConversionValue != c {
					t.Errorf("coarse-conversion-value not kept")
				}
				if d, ok := m["source-domain"]; ok && p.SourceDomain != d {
					t.Errorf("source-domain not kept")
				}
				if version == "4.0" && (p.PostbackSequenceIndex == nil || p.SourceIdentifier != m["source-identifier"]) {
					t.Errorf("4.0 fields not kept: %+v", p)
				}
				if version != "4.0" && (p.CampaignID == nil || *p.CampaignID != 42) {
					t.Errorf("campaign-id not kept")
				}
			})
		}
	}
	// AdAttributionKit.
	p, err := skan.Parse(s.AAK(skantest.AAKPayload(), map[string]any{"conversion-value": 24, "ad-interaction-type": "view", "country-code": "US"}))
	if err != nil {
		t.Fatal(err)
	}
	if err := v.Verify(p); err != nil {
		t.Fatal(err)
	}
	if p.Framework != skan.AdAttributionKit || p.SourceIdentifier != "5239" || p.AppID != 525463029 || *p.ConversionValue != 24 ||
		p.AdInteractionType != "view" || p.CountryCode != "US" || p.KeyID != skantest.KeyID || p.ConversionType != "download" ||
		p.MarketplaceID != "com.apple.AppStore" || *p.SourceAppID != 1234567891 || !*p.DidWin || *p.Redownload {
		t.Errorf("aak fields: %+v", p)
	}
}

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

func TestDedupKey(t *testing.T) {
	s := skantest.New()
	a, _ := skan.Parse(s.SKAN(skantest.Example("4.0")))
	m := skantest.Example("4.0")
	delete(m, "conversion-value")
	m["postback-sequence-index"] = 1
	m["coarse-conversion-value"] = "low"
	b, _ := skan.Parse(s.SKAN(m))
	c, _ := skan.Parse(s.SKAN(skantest.Example("4.0"))) // a resend: new signature bytes, same conversion
	if a.DedupKey() == b.DedupKey() || a.DedupKey() != c.DedupKey() {
		t.Fatalf("dedup keys: %s %s %s", a.DedupKey(), b.DedupKey(), c.DedupKey())
	}
}

func TestNewVerifierErrors(t *testing.T) {
	k := skan.DefaultKeys()
	if _, err := skan.NewVerifier(k, nil); err == nil {
		t.Error("no ad network accepted")
	}
	bad := k
	bad.P192 = skan.AppleP256
	if _, err := skan.NewVerifier(bad, []string{"n"}); err == nil {
		t.Error("a P-256 key accepted as the P-192 key")
	}
	bad = k
	bad.P256 = skan.AppleP192
	if _, err := skan.NewVerifier(bad, []string{"n"}); err == nil {
		t.Error("a P-192 key accepted as the P-256 key")
	}
	bad = k
	bad.AAK = map[string]string{"x": "not base64!"}
	if _, err := skan.NewVerifier(bad, []string{"n"}); err == nil {
		t.Error("a broken AAK key accepted")
	}
}

// FuzzParse: Parse never panics, returns a *Error or a postback whose
// signed string Verify can check, and never accepts a forged body.
func FuzzParse(f *testing.F) {
	s := skantest.New()
	for _, version := range skan.Versions {
		f.Add(s.SKAN(skantest.Example(version)))
	}
	f.Add(s.AAK(skantest.AAKPayload(), map[string]any{"coarse-conversion-value": "low"}))
	files, _ := filepath.Glob("testdata/apple/*.json")
	for _, file := range files {
		b, _ := os.ReadFile(file)
		f.Add(b)
	}
	f.Add([]byte(`{"version":"4.0","app-id":"1e9"}`))
	f.Add([]byte(`{"jws-string":"..."}`))
	v, err := skan.NewVerifier(s.Keys(), []string{skantest.AdNetwork})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		p, err := skan.Parse(body)
		if err != nil {
			var e *skan.Error
			if !errors.As(err, &e) || e.Reason == "" {
				t.Fatalf("error %v is not a *skan.Error", err)
			}
			return
		}
		if p.AdNetworkID == "" || p.TransactionID == "" {
			t.Fatalf("parsed without required fields: %+v", p)
		}
		_ = v.Verify(p)
		_ = p.DedupKey()
	})
}
