package forward

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"hash"
	"io"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Headers every callback carries.
const (
	HeaderIdempotencyKey = "Idempotency-Key"      // the delivery id: the same on every attempt
	HeaderAttempt        = "X-Postback-Attempt"   // 1 for the first attempt
	HeaderTimestamp      = "X-Postback-Timestamp" // Unix seconds, signed
	HeaderKeyID          = "X-Postback-Key-Id"    // which shared key signed it
	HeaderSignature      = "X-Postback-Signature" // "v1=" + hex HMAC-SHA256
	signaturePrefix      = "v1="
)

// Sign returns the X-Postback-Signature value of a callback: "v1=" and the
// hex HMAC-SHA256, under secret, of
//
//	timestamp "\n" METHOD "\n" request-target "\n" body
//
// where timestamp is the X-Postback-Timestamp value (Unix seconds) and the
// request target is the path and query as sent (RequestURI).
func Sign(secret []byte, timestamp int64, method, target string, body []byte) string {
	return sign(hmac.New(sha256.New, secret), timestamp, method, target, body)
}

// Signer is Sign for one secret, reusing HMAC states across calls (Sign
// makes a new one each time): the forwarder signs every attempt. It is
// safe for concurrent use.
type Signer struct{ pool sync.Pool }

// NewSigner returns a Signer for secret.
func NewSigner(secret []byte) *Signer {
	key := bytes.Clone(secret)
	return &Signer{pool: sync.Pool{New: func() any { return hmac.New(sha256.New, key) }}}
}

// Sign is Sign with the Signer's secret.
func (s *Signer) Sign(timestamp int64, method, target string, body []byte) string {
	m := s.pool.Get().(hash.Hash)
	sig := sign(m, timestamp, method, target, body)
	m.Reset()
	s.pool.Put(m)
	return sig
}

func sign(m hash.Hash, timestamp int64, method, target string, body []byte) string {
	var buf [len(signaturePrefix) + 2*sha256.Size]byte
	m.Write(strconv.AppendInt(buf[:0], timestamp, 10))
	m.Write([]byte{'\n'})
	io.WriteString(m, method)
	m.Write([]byte{'\n'})
	io.WriteString(m, target)
	m.Write([]byte{'\n'})
	m.Write(body)
	var sum [sha256.Size]byte
	copy(buf[:], signaturePrefix)
	hex.Encode(buf[len(signaturePrefix):], m.Sum(sum[:0]))
	return string(buf[:])
}

// Verification errors.
var (
	ErrBadSignature = errors.New("signature does not match")
	ErrStale        = errors.New("timestamp outside the accepted skew")
)

// Verify is the receiver's check, as docs/forwarder.md shows it: the
// signature must match and the timestamp be within skew of now (which
// bounds replays; the Idempotency-Key drops the rest).
func Verify(secret []byte, sigHeader, tsHeader, method, target string, body []byte, now time.Time, skew time.Duration) error {
	ts, err := strconv.ParseInt(tsHeader, 10, 64)
	if err != nil {
		return ErrStale
	}
	if d := now.Sub(time.Unix(ts, 0)); d > skew || d < -skew {
		return ErrStale
	}
	want := Sign(secret, ts, method, target, body)
	if !strings.HasPrefix(sigHeader, signaturePrefix) || !hmac.Equal([]byte(want), []byte(sigHeader)) {
		return ErrBadSignature
	}
	return nil
}
