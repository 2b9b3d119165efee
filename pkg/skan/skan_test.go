package skan_test

import (
	"errors"
	"os"
	"path/filepath"
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
