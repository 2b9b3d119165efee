package skan

import (
	"crypto/sha256"
	"encoding/asn1"
	"errors"
	"fmt"
	"math/big"
)

// curve is a short Weierstrass curve y² = x³ - 3x + b over GF(p) with a
// base point of prime order n and cofactor 1: the NIST curves. Go's
// crypto/ecdsa has no P-192, which SKAdNetwork 1.0 and 2.0 postbacks are
// signed with, so ECDSA verification over it is done here with math/big.
// Only public data is processed (a signature, a public key, a message), so
// nothing needs to be constant-time; correctness is what matters, and the
// tests check this code against crypto/ecdsa on P-256 and against
// OpenSSL-made P-192 signatures.
type curve struct {
	name      string
	p, n, b   *big.Int
	gx, gy    *big.Int
	byteLen   int // of a coordinate
	curveOID  asn1.ObjectIdentifier
	hashBytes int // bytes of the SHA-256 digest used: the leftmost bitlen(n) bits
}

func hexInt(s string) *big.Int {
	v, ok := new(big.Int).SetString(s, 16)
	if !ok {
		panic("skan: bad curve constant " + s)
	}
	return v
}

// p192 is NIST P-192 (secp192r1, prime192v1), FIPS 186-4 D.1.2.1.
var p192 = &curve{
	name:     "P-192",
	p:        hexInt("fffffffffffffffffffffffffffffffeffffffffffffffff"),
	n:        hexInt("ffffffffffffffffffffffff99def836146bc9b1b4d22831"),
	b:        hexInt("64210519e59c80e70fa7e9ab72243049feb8deecc146b9b1"),
	gx:       hexInt("188da80eb03090f67cbf20eb43a18800f4ff0afd82ff1012"),
	gy:       hexInt("07192b95ffc8da78631011ed6b24cdd573f977a11e794811"),
	byteLen:  24,
	curveOID: asn1.ObjectIdentifier{1, 2, 840, 10045, 3, 1, 1},
}

// p256 is NIST P-256 (secp256r1, prime256v1), FIPS 186-4 D.1.2.3. Apple's
// P-256 keys are verified with crypto/ecdsa; this copy exists so the tests
// can check the math/big code against crypto/ecdsa on the same curve.
var p256 = &curve{
	name:     "P-256",
	p:        hexInt("ffffffff00000001000000000000000000000000ffffffffffffffffffffffff"),
	n:        hexInt("ffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551"),
	b:        hexInt("5ac635d8aa3a93e7b3ebbd55769886bc651d06b0cc53b0f63bce3c3e27d2604b"),
	gx:       hexInt("6b17d1f2e12c4247f8bce6e563a440f277037d812deb33a0f4a13945d898c296"),
	gy:       hexInt("4fe342e2fe1a7f9b8ee7eb4a7c0f9e162bce33576b315ececbb6406837bf51f5"),
	byteLen:  32,
	curveOID: asn1.ObjectIdentifier{1, 2, 840, 10045, 3, 1, 7},
}

// point is an affine point; inf marks the point at infinity.
type point struct {
	x, y *big.Int
	inf  bool
}

// onCurve reports whether (x, y) is a point of c with coordinates in [0, p).
func (c *curve) onCurve(x, y *big.Int) bool {
	if x.Sign() < 0 || y.Sign() < 0 || x.Cmp(c.p) >= 0 || y.Cmp(c.p) >= 0 {
		return false
	}
	// y² ≡ x³ - 3x + b (mod p)
	lhs := new(big.Int).Mul(y, y)
	lhs.Mod(lhs, c.p)
	rhs := new(big.Int).Mul(x, x)
	rhs.Mul(rhs, x)
	rhs.Sub(rhs, new(big.Int).Lsh(x, 1))
	rhs.Sub(rhs, x)
	rhs.Add(rhs, c.b)
	rhs.Mod(rhs, c.p)
	return lhs.Cmp(rhs) == 0
}

// add returns a + b with the affine group law.
func (c *curve) add(a, b point) point {
	switch {
	case a.inf:
		return b
	case b.inf:
		return a
	}
	var lambda *big.Int
	if a.x.Cmp(b.x) == 0 {
		sum := new(big.Int).Add(a.y, b.y)
		if sum.Mod(sum, c.p).Sign() == 0 {
			return point{inf: true} // a = -b (also doubling a point with y = 0)
		}
		// Doubling: λ = (3x² - 3) / 2y.
		num := new(big.Int).Mul(a.x, a.x)
		num.Sub(num, big.NewInt(1))
		num.Mul(num, big.NewInt(3))
		den := new(big.Int).Lsh(a.y, 1)
		lambda = num.Mul(num, den.ModInverse(den.Mod(den, c.p), c.p))
	} else {
		num := new(big.Int).Sub(b.y, a.y)
		den := new(big.Int).Sub(b.x, a.x)
		den.Mod(den, c.p)
		lambda = num.Mul(num, den.ModInverse(den, c.p))
	}
	lambda.Mod(lambda, c.p)
	x := new(big.Int).Mul(lambda, lambda)
	x.Sub(x, a.x)
	x.Sub(x, b.x)
	x.Mod(x, c.p)
	y := new(big.Int).Sub(a.x, x)
	y.Mul(y, lambda)
	y.Sub(y, a.y)
	y.Mod(y, c.p)
	return point{x: x, y: y}
}

// mul returns k·a by double-and-add from the most significant bit.
func (c *curve) mul(a point, k *big.Int) point {
	r := point{inf: true}
	for i := k.BitLen() - 1; i >= 0; i-- {
		r = c.add(r, r)
		if k.Bit(i) == 1 {
			r = c.add(r, a)
		}
	}
	return r
}

// hashToInt is SEC 1 4.1.3 step 5: the leftmost bitlen(n) bits of the hash.
func (c *curve) hashToInt(digest []byte) *big.Int {
	bits := c.n.BitLen()
	if len(digest)*8 > bits {
		digest = digest[:(bits+7)/8]
	}
	e := new(big.Int).SetBytes(digest)
	if excess := len(digest)*8 - bits; excess > 0 {
		e.Rsh(e, uint(excess))
	}
	return e
}

// verify is ECDSA verification (SEC 1 4.1.4) of (r, s) over SHA-256(msg)
// with the public point q, which must be on the curve.
func (c *curve) verify(q point, msg []byte, r, s *big.Int) bool {
	one := big.NewInt(1)
	if r.Cmp(one) < 0 || s.Cmp(one) < 0 || r.Cmp(c.n) >= 0 || s.Cmp(c.n) >= 0 {
		return false
	}
	if q.inf || !c.onCurve(q.x, q.y) {
		return false
	}
	digest := sha256.Sum256(msg)
	e := c.hashToInt(digest[:])
	w := new(big.Int).ModInverse(s, c.n)
	u1 := new(big.Int).Mul(e, w)
	u1.Mod(u1, c.n)
	u2 := new(big.Int).Mul(r, w)
	u2.Mod(u2, c.n)
	x := c.add(c.mul(point{x: c.gx, y: c.gy}, u1), c.mul(q, u2))
	if x.inf {
		return false
	}
	v := new(big.Int).Mod(x.x, c.n)
	return v.Cmp(r) == 0
}

// ecdsaSig is the DER form of an ECDSA signature (RFC 3279).
type ecdsaSig struct{ R, S *big.Int }

// parseDERSig decodes a DER signature, refusing trailing bytes and
// non-positive values.
func parseDERSig(der []byte) (r, s *big.Int, err error) {
	var sig ecdsaSig
	rest, err := asn1.Unmarshal(der, &sig)
	if err != nil {
		return nil, nil, fmt.Errorf("signature is not DER: %w", err)
	}
	if len(rest) > 0 {
		return nil, nil, errors.New("signature has trailing bytes")
	}
	if sig.R == nil || sig.S == nil || sig.R.Sign() <= 0 || sig.S.Sign() <= 0 {
		return nil, nil, errors.New("signature values must be positive")
	}
	return sig.R, sig.S, nil
}

// spki is a SubjectPublicKeyInfo (RFC 5280) of an EC key (RFC 5480).
type spki struct {
	Algorithm struct {
		Algorithm  asn1.ObjectIdentifier
		Parameters asn1.ObjectIdentifier
	}
	PublicKey asn1.BitString
}

var oidECPublicKey = asn1.ObjectIdentifier{1, 2, 840, 10045, 2, 1}

// parseECKey decodes a DER SubjectPublicKeyInfo holding an uncompressed
// point of c, the form Apple publishes its keys in.
func (c *curve) parseKey(der []byte) (point, error) {
	var k spki
	rest, err := asn1.Unmarshal(der, &k)
	if err != nil {
		return point{}, fmt.Errorf("public key is not a DER SubjectPublicKeyInfo: %w", err)
	}
	if len(rest) > 0 {
		return point{}, errors.New("public key has trailing bytes")
	}
	if !k.Algorithm.Algorithm.Equal(oidECPublicKey) {
		return point{}, fmt.Errorf("public key algorithm %v is not id-ecPublicKey", k.Algorithm.Algorithm)
	}
	if !k.Algorithm.Parameters.Equal(c.curveOID) {
		return point{}, fmt.Errorf("public key curve %v is not %s", k.Algorithm.Parameters, c.name)
	}
	b := k.PublicKey.RightAlign()
	if len(b) != 1+2*c.byteLen || b[0] != 4 {
		return point{}, fmt.Errorf("public key is not an uncompressed %s point", c.name)
	}
	x := new(big.Int).SetBytes(b[1 : 1+c.byteLen])
	y := new(big.Int).SetBytes(b[1+c.byteLen:])
	if !c.onCurve(x, y) {
		return point{}, fmt.Errorf("public key is not a point of %s", c.name)
	}
	return point{x: x, y: y}, nil
}
