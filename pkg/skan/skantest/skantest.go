// Package skantest signs SKAdNetwork and AdAttributionKit postbacks with
// test keys, for tests of package skan, ingest, the sink and the e2e suite.
// Its field orders and its P-192 arithmetic (crypto/elliptic's generic
// CurveParams) are written independently of package skan, so a postback
// that verifies proves the two agree.
//
//	s := skantest.New()
//	v, _ := skan.NewVerifier(s.Keys(), []string{skantest.AdNetwork})
//	body := s.SKAN(skantest.Example("4.0"))           // a signed 4.0 postback
//	body = s.AAK(skantest.AAKPayload(), map[string]any{"coarse-conversion-value": "high"})
package skantest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/asn1"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math/big"
	"strconv"
	"strings"

	"github.com/adtrack/postback/pkg/skan"
)

// AdNetwork is the ad network id the examples are for.
const AdNetwork = "test123.skadnetwork"

// KeyID is the AdAttributionKit kid of the test key.
const KeyID = "test-identifier/0"

// Fixed test private keys (never Apple's): reproducible signatures' keys.
const (
	p192D = "1f2e3d4c5b6a79880716253443526170f9e8d7c6b5a49382"
	p256D = "c9afa9d845ba75166b5c215767b1d6934e50c3db36e89b127b8a622b120f6721"
	aakD  = "519b423d715f8b581f4fa8ee59f4771a5b44c8130b4e3eacca54a56dda72b464"
)

// p192 is NIST P-192 as crypto/elliptic's generic CurveParams (FIPS 186-4).
var p192 = func() *elliptic.CurveParams {
	h := func(s string) *big.Int { v, _ := new(big.Int).SetString(s, 16); return v }
	return &elliptic.CurveParams{
		P:       h("fffffffffffffffffffffffffffffffeffffffffffffffff"),
		N:       h("ffffffffffffffffffffffff99def836146bc9b1b4d22831"),
		B:       h("64210519e59c80e70fa7e9ab72243049feb8deecc146b9b1"),
		Gx:      h("188da80eb03090f67cbf20eb43a18800f4ff0afd82ff1012"),
		Gy:      h("07192b95ffc8da78631011ed6b24cdd573f977a11e794811"),
		BitSize: 192, Name: "P-192",
	}
}()

// Signer signs postbacks with the test keys.
type Signer struct {
	d192     *big.Int
	x192     *big.Int
	y192     *big.Int
	p256     *ecdsa.PrivateKey
	aak      *ecdsa.PrivateKey
	keys     keysJSON
	override map[string]string // version -> order to sign with instead (WrongOrder)
}

type keysJSON struct{ P192, P256, AAK string }

// New returns a Signer over the fixed test keys.
func New() *Signer {
	s := &Signer{}
	s.d192, _ = new(big.Int).SetString(p192D, 16)
	s.x192, s.y192 = p192.ScalarBaseMult(s.d192.Bytes())
	var err error
	if s.p256, err = ecdsa.ParseRawPrivateKey(elliptic.P256(), mustHex(p256D)); err != nil {
		panic(err)
	}
	if s.aak, err = ecdsa.ParseRawPrivateKey(elliptic.P256(), mustHex(aakD)); err != nil {
		panic(err)
	}
	s.keys.P192 = base64.StdEncoding.EncodeToString(spki192(s.x192, s.y192))
	s.keys.P256 = pub256(&s.p256.PublicKey)
	s.keys.AAK = pub256(&s.aak.PublicKey)
	return s
}

func mustHex(s string) []byte {
	b, err := hex.DecodeString(s)
	if err != nil {
		panic(err)
	}
	return b
}

func pub256(k *ecdsa.PublicKey) string {
	der, err := x509.MarshalPKIXPublicKey(k)
	if err != nil {
		panic(err)
	}
	return base64.StdEncoding.EncodeToString(der)
}

// spki192 encodes a P-192 public point as a DER SubjectPublicKeyInfo.
func spki192(x, y *big.Int) []byte {
	pt := make([]byte, 49)
	pt[0] = 4
	x.FillBytes(pt[1:25])
	y.FillBytes(pt[25:])
	type alg struct {
		Algorithm, Parameters asn1.ObjectIdentifier
	}
	der, err := asn1.Marshal(struct {
		Alg alg
		Key asn1.BitString
	}{alg{asn1.ObjectIdentifier{1, 2, 840, 10045, 2, 1}, asn1.ObjectIdentifier{1, 2, 840, 10045, 3, 1, 1}},
		asn1.BitString{Bytes: pt, BitLength: 8 * len(pt)}})
	if err != nil {
		panic(err)
	}
	return der
}

// P192Key, P256Key and AAKKey are the base64 DER public keys.
func (s *Signer) P192Key() string { return s.keys.P192 }
func (s *Signer) P256Key() string { return s.keys.P256 }
func (s *Signer) AAKKey() string  { return s.keys.AAK }

// order is each version's signed field order, from Apple's pages; "?"
// marks a field signed only when present, "|" alternatives.
var order = map[string]string{
	"1.0": "ad-network-id campaign-id app-id transaction-id",
	"2.0": "version ad-network-id campaign-id app-id transaction-id redownload ?source-app-id",
	"2.1": "version ad-network-id campaign-id app-id transaction-id redownload ?source-app-id",
	"2.2": "version ad-network-id campaign-id app-id transaction-id redownload ?source-app-id fidelity-type",
	"3.0": "version ad-network-id campaign-id app-id transaction-id redownload ?source-app-id fidelity-type did-win",
	"4.0": "version ad-network-id source-identifier app-id transaction-id redownload ?source-app-id|source-domain fidelity-type did-win postback-sequence-index",
}

// Example returns a complete, winning postback of version (unsigned): the
// fields a device sends, for AdNetwork and App Store app 525463029.
func Example(version string) map[string]any {
	m := map[string]any{"ad-network-id": AdNetwork, "app-id": 525463029, "transaction-id": "6aafb7a5-0170-41b5-bbe4-fe71dedf1e28"}
	if version != "1.0" {
		m["version"] = version
		m["redownload"] = false
		m["source-app-id"] = 1234567891
		m["conversion-value"] = 20
	}
	if version == "4.0" {
		m["source-identifier"] = "5239"
		m["postback-sequence-index"] = 0
	} else {
		m["campaign-id"] = 42
	}
	if version == "2.2" || version == "3.0" || version == "4.0" {
		m["fidelity-type"] = 1
	}
	if version == "3.0" || version == "4.0" {
		m["did-win"] = true
	}
	return m
}

// signedString joins m's values in the order ord.
func signedString(ord string, m map[string]any) string {
	var parts []string
	for _, f := range strings.Fields(ord) {
		opt := strings.HasPrefix(f, "?")
		f = strings.TrimPrefix(f, "?")
		found := false
		for _, alt := range strings.Split(f, "|") {
			if v, ok := m[alt]; ok {
				parts = append(parts, text(v))
				found = true
				break
			}
		}
		if !found && !opt {
			parts = append(parts, "")
		}
	}
	return strings.Join(parts, "\u2063")
}

func text(v any) string {
	switch v := v.(type) {
	case string:
		return v
	case bool:
		return strconv.FormatBool(v)
	case int:
		return strconv.Itoa(v)
	case int64:
		return strconv.FormatInt(v, 10)
	}
	panic(fmt.Sprintf("skantest: %T value", v))
}

// SKAN signs m (a postback as from Example, "version" absent for 1.0)
// and returns its JSON body with attribution-signature.
func (s *Signer) SKAN(m map[string]any) []byte {
	v, _ := m["version"].(string)
	if v == "" {
		v = "1.0"
	}
	return s.SKANInOrder(m, order[v])
}

// SKANInOrder signs m over the given field order (space-separated names,
// "?" optional, "|" alternatives): with a wrong order the postback must
// not verify.
func (s *Signer) SKANInOrder(m map[string]any, ord string) []byte {
	v, _ := m["version"].(string)
	msg := []byte(signedString(ord, m))
	var sig []byte
	if v == "" || v == "1.0" || v == "2.0" {
		sig = s.sign192(msg)
	} else {
		digest := sha256.Sum256(msg)
		var err error
		if sig, err = ecdsa.SignASN1(rand.Reader, s.p256, digest[:]); err != nil {
			panic(err)
		}
	}
	out := map[string]any{}
	for k, val := range m {
		out[k] = val
	}
	out["attribution-signature"] = base64.StdEncoding.EncodeToString(sig)
	b, err := json.Marshal(out)
	if err != nil {
		panic(err)
	}
	return b
}

// sign192 is ECDSA over P-192 with SHA-256 (SEC 1 4.1.3), DER-encoded.
func (s *Signer) sign192(msg []byte) []byte {
	digest := sha256.Sum256(msg)
	e := new(big.Int).SetBytes(digest[:24]) // leftmost 192 bits
	n := p192.N
	for {
		k, err := rand.Int(rand.Reader, n)
		if err != nil {
			panic(err)
		}
		if k.Sign() == 0 {
			continue
		}
		x, _ := p192.ScalarBaseMult(k.Bytes())
		r := new(big.Int).Mod(x, n)
		if r.Sign() == 0 {
			continue
		}
		sv := new(big.Int).Mul(r, s.d192)
		sv.Add(sv, e)
		sv.Mul(sv, new(big.Int).ModInverse(k, n))
		sv.Mod(sv, n)
		if sv.Sign() == 0 {
			continue
		}
		der, err := asn1.Marshal(struct{ R, S *big.Int }{r, sv})
		if err != nil {
			panic(err)
		}
		return der
	}
}

// AAKPayload is a winning AdAttributionKit postback payload for AdNetwork.
func AAKPayload() map[string]any {
	return map[string]any{
		"ad-network-identifier": AdNetwork, "source-identifier": "5239", "advertised-item-identifier": 525463029,
		"postback-identifier": "85546eb7-fd39-44bc-8990-c98a4ac36a49", "conversion-type": "download",
		"impression-type": "app-impression", "did-win": true, "postback-sequence-index": 0,
		"marketplace-identifier": "com.apple.AppStore", "publisher-item-identifier": 1234567891,
	}
}

// AAK signs payload as a compact JWS with the test AdAttributionKit key
// (kid KeyID) and returns the postback body with the unsigned outer fields.
func (s *Signer) AAK(payload, outer map[string]any) []byte {
	return s.AAKWithKid(payload, outer, KeyID)
}

// AAKWithKid is AAK with another kid in the header (for unknown-key cases).
func (s *Signer) AAKWithKid(payload, outer map[string]any, kid string) []byte {
	h, _ := json.Marshal(map[string]string{"kid": kid, "alg": "ES256"})
	p, _ := json.Marshal(payload)
	input := base64.RawURLEncoding.EncodeToString(h) + "." + base64.RawURLEncoding.EncodeToString(p)
	digest := sha256.Sum256([]byte(input))
	r, sv, err := ecdsa.Sign(rand.Reader, s.aak, digest[:])
	if err != nil {
		panic(err)
	}
	sig := make([]byte, 64)
	r.FillBytes(sig[:32])
	sv.FillBytes(sig[32:])
	out := map[string]any{"jws-string": input + "." + base64.RawURLEncoding.EncodeToString(sig)}
	for k, v := range outer {
		out[k] = v
	}
	b, _ := json.Marshal(out)
	return b
}

// Keys are the test public keys in the form skan.NewVerifier takes.
func (s *Signer) Keys() skan.Keys {
	return skan.Keys{P192: s.keys.P192, P256: s.keys.P256, AAK: map[string]string{KeyID: s.keys.AAK}}
}
