package skan

import (
	"crypto/ecdsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"fmt"
	"math/big"
	"sort"
	"strings"
)

// Keys are the public keys postbacks are verified with, base64 DER
// SubjectPublicKeyInfo as Apple publishes them.
type Keys struct {
	// P192 verifies SKAdNetwork 1.0 and 2.0.
	P192 string
	// P256 verifies SKAdNetwork 2.1 and later.
	P256 string
	// AAK verifies AdAttributionKit postbacks by the JWS header's kid.
	AAK map[string]string
}

// DefaultKeys are Apple's production keys (see keys.go for their sources).
// AdAttributionKit's development keys are not among them.
func DefaultKeys() Keys {
	return Keys{P192: AppleP192, P256: AppleP256, AAK: map[string]string{KidProduction: AppleP256}}
}

// Verifier checks signatures and that a postback is for one of our ad
// networks. It is immutable and safe for concurrent use.
type Verifier struct {
	p192     point
	p256     *ecdsa.PublicKey
	aak      map[string]*ecdsa.PublicKey
	networks map[string]bool
}

// NewVerifier parses keys. adNetworkIDs are our registered ad network ids;
// a postback for any other is refused (wrong_ad_network_id). At least one
// is required.
func NewVerifier(keys Keys, adNetworkIDs []string) (*Verifier, error) {
	if len(adNetworkIDs) == 0 {
		return nil, fmt.Errorf("no ad network id: postbacks could not be for us")
	}
	v := &Verifier{aak: map[string]*ecdsa.PublicKey{}, networks: map[string]bool{}}
	for _, id := range adNetworkIDs {
		v.networks[id] = true
	}
	der, err := base64.StdEncoding.DecodeString(keys.P192)
	if err != nil {
		return nil, fmt.Errorf("p192 key: not base64: %w", err)
	}
	if v.p192, err = p192.parseKey(der); err != nil {
		return nil, fmt.Errorf("p192 key: %w", err)
	}
	if v.p256, err = parseP256(keys.P256); err != nil {
		return nil, fmt.Errorf("p256 key: %w", err)
	}
	for kid, k := range keys.AAK {
		if v.aak[kid], err = parseP256(k); err != nil {
			return nil, fmt.Errorf("aak key %s: %w", kid, err)
		}
	}
	return v, nil
}

// ParseP256Key checks a base64 DER P-256 public key (for configuration).
func ParseP256Key(b64 string) error { _, err := parseP256(b64); return err }

// ParseP192Key checks a base64 DER P-192 public key (for configuration).
func ParseP192Key(b64 string) error {
	der, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		return fmt.Errorf("not base64: %w", err)
	}
	_, err = p192.parseKey(der)
	return err
}

func parseP256(b64 string) (*ecdsa.PublicKey, error) {
	der, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		return nil, fmt.Errorf("not base64: %w", err)
	}
	k, err := x509.ParsePKIXPublicKey(der)
	if err != nil {
		return nil, err
	}
	ek, ok := k.(*ecdsa.PublicKey)
	if !ok || ek.Curve.Params().Name != "P-256" {
		return nil, fmt.Errorf("not an ECDSA P-256 key")
	}
	return ek, nil
}

// Verify checks Apple's signature over p, then that p is for one of our
// ad networks. Every error is *Error with Unauthorized true.
func (v *Verifier) Verify(p *Postback) error {
	if !v.signatureOK(p) {
		if p.jws {
			if _, ok := v.aak[p.KeyID]; !ok {
				return fail(ReasonUnknownKey, "kid", "%s is not a configured AdAttributionKit key id (%s)", quote(p.KeyID), strings.Join(v.kids(), ", "))
			}
			return fail(ReasonInvalidSignature, "jws-string", "the JWS signature does not verify with key %s", p.KeyID)
		}
		return fail(ReasonInvalidSignature, "attribution-signature", "does not verify over the version %s fields with Apple's %s key", p.Version, curveOf(p.Version))
	}
	if !v.networks[p.AdNetworkID] {
		field := "ad-network-id"
		if p.jws {
			field = "ad-network-identifier"
		}
		return fail(ReasonWrongAdNetwork, field, "%s is not one of our ad network ids", quote(p.AdNetworkID))
	}
	return nil
}

func curveOf(version string) string {
	if version == "1.0" || version == "2.0" {
		return "P-192"
	}
	return "P-256"
}

func (v *Verifier) kids() []string {
	out := make([]string, 0, len(v.aak))
	for k := range v.aak {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func (v *Verifier) signatureOK(p *Postback) bool {
	digest := sha256.Sum256(p.signed)
	if p.jws {
		key := v.aak[p.KeyID]
		if key == nil || len(p.sig) != 64 {
			return false
		}
		r, s := new(big.Int).SetBytes(p.sig[:32]), new(big.Int).SetBytes(p.sig[32:])
		return ecdsa.Verify(key, digest[:], r, s)
	}
	if curveOf(p.Version) == "P-192" {
		r, s, err := parseDERSig(p.sig)
		return err == nil && p192.verify(v.p192, p.signed, r, s)
	}
	return ecdsa.VerifyASN1(v.p256, digest[:], p.sig)
}
