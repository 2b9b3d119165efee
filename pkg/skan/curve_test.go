package skan

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/asn1"
	"encoding/base64"
	"encoding/json"
	"math/big"
	"os"
	"testing"
)

// TestCurveConstants: the base points are on their curves and of order n.
func TestCurveConstants(t *testing.T) {
	for _, c := range []*curve{p192, p256} {
		if !c.onCurve(c.gx, c.gy) {
			t.Fatalf("%s: G is not on the curve", c.name)
		}
		if r := c.mul(point{x: c.gx, y: c.gy}, c.n); !r.inf {
			t.Fatalf("%s: n·G is not the point at infinity", c.name)
		}
		nm1 := new(big.Int).Sub(c.n, big.NewInt(1))
		if r := c.mul(point{x: c.gx, y: c.gy}, nm1); r.inf || r.x.Cmp(c.gx) != 0 || new(big.Int).Add(r.y, c.gy).Cmp(c.p) != 0 {
			t.Fatalf("%s: (n-1)·G is not -G", c.name)
		}
	}
	// The P-256 constants are Go's.
	params := elliptic.P256().Params()
	if params.P.Cmp(p256.p) != 0 || params.N.Cmp(p256.n) != 0 || params.B.Cmp(p256.b) != 0 || params.Gx.Cmp(p256.gx) != 0 {
		t.Fatal("P-256 constants differ from crypto/elliptic's")
	}
}

// TestScalarMultMatchesGo: k·G by this package's affine arithmetic equals
// crypto/ecdh's constant-time P-256 for random k (via a public key).
func TestScalarMultMatchesGo(t *testing.T) {
	for range 20 {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		raw, _ := k.Bytes()
		got := p256.mul(point{x: p256.gx, y: p256.gy}, new(big.Int).SetBytes(raw))
		pub, _ := k.PublicKey.Bytes() // 04 || X || Y
		if got.x.Cmp(new(big.Int).SetBytes(pub[1:33])) != 0 || got.y.Cmp(new(big.Int).SetBytes(pub[33:])) != 0 {
			t.Fatal("k·G differs from crypto/ecdsa's public key")
		}
	}
}

// TestVerifyMatchesCryptoECDSA: on P-256, this package's math/big ECDSA
// accepts exactly what crypto/ecdsa signs, and refuses tampered input.
func TestVerifyMatchesCryptoECDSA(t *testing.T) {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	pub, _ := k.PublicKey.Bytes()
	q := point{x: new(big.Int).SetBytes(pub[1:33]), y: new(big.Int).SetBytes(pub[33:])}
	for i := range 20 {
		msg := []byte{byte(i), 'm', 's', 'g'}
		d := sha256.Sum256(msg)
		sig, err := ecdsa.SignASN1(rand.Reader, k, d[:])
		if err != nil {
			t.Fatal(err)
		}
		r, s, err := parseDERSig(sig)
		if err != nil {
			t.Fatal(err)
		}
		if !p256.verify(q, msg, r, s) {
			t.Fatal("a crypto/ecdsa signature does not verify")
		}
		if p256.verify(q, append(msg, 0), r, s) {
			t.Fatal("verifies another message")
		}
		if p256.verify(q, msg, new(big.Int).Add(r, big.NewInt(1)), s) {
			t.Fatal("verifies a changed r")
		}
		if p256.verify(q, msg, r, new(big.Int).Sub(p256.n, s)) != ecdsa.VerifyASN1(&k.PublicKey, d[:], mustDER(r, new(big.Int).Sub(p256.n, s))) {
			t.Fatal("disagrees with crypto/ecdsa on (r, n-s)")
		}
	}
	// Out-of-range values.
	one := big.NewInt(1)
	for _, rs := range [][2]*big.Int{{big.NewInt(0), one}, {one, big.NewInt(0)}, {p256.n, one}, {one, p256.n}} {
		if p256.verify(q, []byte("m"), rs[0], rs[1]) {
			t.Fatalf("verifies r=%v s=%v", rs[0], rs[1])
		}
	}
	// A point off the curve is never a key.
	if p256.verify(point{x: q.x, y: new(big.Int).Add(q.y, one)}, []byte("m"), one, one) {
		t.Fatal("verified with a point off the curve")
	}
}

func mustDER(r, s *big.Int) []byte {
	b, err := (&ecdsaSigMarshal{r, s}).marshal()
	if err != nil {
		panic(err)
	}
	return b
}

// TestP192OpenSSL: signatures OpenSSL made over P-192 with SHA-256 verify
// here; changed messages and signatures do not.
func TestP192OpenSSL(t *testing.T) {
	b, err := os.ReadFile("testdata/openssl-p192.json")
	if err != nil {
		t.Fatal(err)
	}
	var fx struct {
		PublicKey  string `json:"public_key"`
		Signatures []struct{ Message, Signature string }
	}
	if err := json.Unmarshal(b, &fx); err != nil {
		t.Fatal(err)
	}
	der, _ := base64.StdEncoding.DecodeString(fx.PublicKey)
	q, err := p192.parseKey(der)
	if err != nil {
		t.Fatal(err)
	}
	if len(fx.Signatures) == 0 {
		t.Fatal("no fixtures")
	}
	for _, s := range fx.Signatures {
		sig, _ := base64.StdEncoding.DecodeString(s.Signature)
		r, sv, err := parseDERSig(sig)
		if err != nil {
			t.Fatal(err)
		}
		if !p192.verify(q, []byte(s.Message), r, sv) {
			t.Errorf("OpenSSL signature over %q does not verify", s.Message)
		}
		if p192.verify(q, []byte(s.Message+"x"), r, sv) {
			t.Errorf("verifies a changed message")
		}
	}
	// Apple's P-192 key parses and is a point of P-192.
	der, _ = base64.StdEncoding.DecodeString(AppleP192)
	if _, err := p192.parseKey(der); err != nil {
		t.Fatalf("Apple's P-192 key: %v", err)
	}
	der, _ = base64.StdEncoding.DecodeString(AppleP256)
	if _, err := p192.parseKey(der); err == nil {
		t.Fatal("a P-256 key parsed as P-192")
	}
}

func TestParseDERSig(t *testing.T) {
	good, _ := (&ecdsaSigMarshal{big.NewInt(5), big.NewInt(7)}).marshal()
	if _, _, err := parseDERSig(good); err != nil {
		t.Fatal(err)
	}
	for name, b := range map[string][]byte{
		"trailing": append(append([]byte{}, good...), 0),
		"empty":    nil,
		"garbage":  []byte("not der"),
		"negative": func() []byte { b, _ := (&ecdsaSigMarshal{big.NewInt(-5), big.NewInt(7)}).marshal(); return b }(),
	} {
		if _, _, err := parseDERSig(b); err == nil {
			t.Errorf("%s: parsed", name)
		}
	}
}

// ecdsaSigMarshal encodes (r, s) as DER.
type ecdsaSigMarshal struct{ R, S *big.Int }

func (e *ecdsaSigMarshal) marshal() ([]byte, error) { return asn1.Marshal(ecdsaSig{e.R, e.S}) }
