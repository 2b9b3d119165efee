package skan_test

import (
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/adtrack/postback/pkg/skan"
	"github.com/adtrack/postback/pkg/skan/skantest"
)

var update = flag.Bool("update", false, "rewrite testdata/signed from the test keys")

type fixture struct {
	body   []byte
	reason string // "" = verifies
}

// signedFixtures are the postbacks of testdata/signed, signed with the
// skantest keys, and the reason each must be refused with.
// `go test ./pkg/skan -run TestSignedFixtures -update` rewrites them.
func signedFixtures(s *skantest.Signer) map[string]fixture {
	out := map[string]fixture{}
	reorder := map[string]string{ // a plausible wrong order per version
		"1.0": "app-id ad-network-id campaign-id transaction-id",
		"2.0": "version ad-network-id app-id campaign-id transaction-id redownload ?source-app-id",
		"2.1": "version ad-network-id campaign-id app-id redownload transaction-id ?source-app-id",
		"2.2": "version ad-network-id campaign-id app-id transaction-id redownload fidelity-type ?source-app-id",
		"3.0": "version ad-network-id campaign-id app-id transaction-id redownload ?source-app-id did-win fidelity-type",
		"4.0": "version ad-network-id app-id source-identifier transaction-id redownload ?source-app-id|source-domain fidelity-type did-win postback-sequence-index",
	}
	for _, v := range skan.Versions {
		m := skantest.Example(v)
		good := s.SKAN(m)
		out["skan-"+v+"-valid.json"] = fixture{good, ""}
		out["skan-"+v+"-bad-signature.json"] = fixture{[]byte(strings.Replace(string(good), `"app-id":525463029`, `"app-id":525463028`, 1)), skan.ReasonInvalidSignature}
		out["skan-"+v+"-wrong-field-order.json"] = fixture{s.SKANInOrder(m, reorder[v]), skan.ReasonInvalidSignature}
		out["skan-"+v+"-truncated.json"] = fixture{good[:len(good)*2/3], skan.ReasonMalformed}
		other := skantest.Example(v)
		other["ad-network-id"] = "someone-else.skadnetwork"
		out["skan-"+v+"-wrong-ad-network-id.json"] = fixture{s.SKAN(other), skan.ReasonWrongAdNetwork}
	}
	future := skantest.Example("4.0")
	future["version"] = "5.0"
	out["skan-5.0-unknown-version.json"] = fixture{s.SKANInOrder(future,
		"version ad-network-id source-identifier app-id transaction-id redownload ?source-app-id fidelity-type did-win postback-sequence-index"), skan.ReasonUnknownVersion}
	aak := s.AAK(skantest.AAKPayload(), map[string]any{"conversion-value": 24, "ad-interaction-type": "click", "country-code": "US"})
	out["aak-valid.json"] = fixture{aak, ""}
	var outer map[string]any
	_ = json.Unmarshal(aak, &outer)
	jws := outer["jws-string"].(string)
	tail := "AA"
	if strings.HasSuffix(jws, "AA") {
		tail = "BA"
	}
	out["aak-bad-signature.json"] = fixture{[]byte(`{"jws-string":"` + jws[:len(jws)-2] + tail + `"}`), skan.ReasonInvalidSignature}
	out["aak-unknown-kid.json"] = fixture{s.AAKWithKid(skantest.AAKPayload(), nil, "apple-cas-identifier/7"), skan.ReasonUnknownKey}
	p := skantest.AAKPayload()
	p["ad-network-identifier"] = "someone-else.adattributionkit"
	out["aak-wrong-ad-network-id.json"] = fixture{s.AAK(p, nil), skan.ReasonWrongAdNetwork}
	out["aak-truncated.json"] = fixture{aak[:len(aak)/2], skan.ReasonMalformed}
	return out
}

// TestSignedFixtures checks every file of testdata/signed: the valid ones
// verify with the test keys, each broken one is refused with its reason.
// The files are committed: signatures are randomized, these stay fixed.
func TestSignedFixtures(t *testing.T) {
	s := skantest.New()
	fx := signedFixtures(s)
	dir := filepath.Join("testdata", "signed")
	if *update {
		_ = os.RemoveAll(dir)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		for name, f := range fx {
			if err := os.WriteFile(filepath.Join(dir, name), f.body, 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	files, _ := filepath.Glob(filepath.Join(dir, "*.json"))
	if len(files) != len(fx) {
		t.Fatalf("%d files in %s, want %d (run with -update)", len(files), dir, len(fx))
	}
	sort.Strings(files)
	v := testVerifier(t, s)
	for _, file := range files {
		name := filepath.Base(file)
		want, ok := fx[name]
		if !ok {
			t.Errorf("%s: not one of signedFixtures", name)
			continue
		}
		body, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		p, err := skan.Parse(body)
		if err == nil {
			err = v.Verify(p)
		}
		if got := reason(err); got != want.reason {
			t.Errorf("%s: %v, want reason %q", name, err, want.reason)
		}
	}
}
