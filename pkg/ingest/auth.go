package ingest

import (
	"crypto/subtle"
	"fmt"
	"math"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"time"
)

// source is the compiled form of one Source.
type source struct {
	name      string
	tokens    [][]byte
	appTokens map[string][][]byte
	allow     []netip.Prefix
	limit     *bucket // nil: unlimited
}

func compileSource(name string, s Source) *source {
	src := &source{name: name, appTokens: map[string][][]byte{}}
	for _, t := range s.Tokens {
		src.tokens = append(src.tokens, []byte(t))
	}
	for app, toks := range s.AppTokens {
		for _, t := range toks {
			src.appTokens[app] = append(src.appTokens[app], []byte(t))
		}
	}
	for _, c := range s.AllowCIDRs {
		if p, err := netip.ParsePrefix(c); err == nil {
			src.allow = append(src.allow, p.Masked())
		}
	}
	if s.RateLimit > 0 {
		src.limit = newBucket(s.RateLimit, s.Burst)
	}
	return src
}

// allowed reports whether ip may send for this source.
func (s *source) allowed(ip netip.Addr) bool {
	if len(s.allow) == 0 {
		return true
	}
	return inAny(ip, s.allow)
}

func inAny(ip netip.Addr, nets []netip.Prefix) bool {
	ip = ip.Unmap()
	for _, p := range nets {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

// tokenMatch says which tokens a presented token matched.
type tokenMatch struct {
	any  bool            // a source-wide token
	apps map[string]bool // app-scoped tokens
}

func (m tokenMatch) ok() bool { return m.any || len(m.apps) > 0 }

// match compares tok with every configured token in constant time per
// token and without early exit, so timing does not reveal which matched.
func (s *source) match(tok string) tokenMatch {
	var m tokenMatch
	b := []byte(tok)
	for _, t := range s.tokens {
		if subtle.ConstantTimeCompare(b, t) == 1 {
			m.any = true
		}
	}
	for app, toks := range s.appTokens {
		for _, t := range toks {
			if subtle.ConstantTimeCompare(b, t) == 1 {
				if m.apps == nil {
					m.apps = map[string]bool{}
				}
				m.apps[app] = true
			}
		}
	}
	return m
}

// bucket is a token-bucket rate limiter.
type bucket struct {
	mu     sync.Mutex
	rate   float64 // tokens per second
	burst  float64
	tokens float64
	last   time.Time
}

func newBucket(rate float64, burst int) *bucket {
	return &bucket{rate: rate, burst: float64(burst), tokens: float64(burst)}
}

// take removes one token if available.
func (b *bucket) take(now time.Time) bool {
	if b == nil {
		return true
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if !b.last.IsZero() {
		b.tokens = math.Min(b.burst, b.tokens+now.Sub(b.last).Seconds()*b.rate)
	}
	b.last = now
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}

// clientIP returns the request's client address: the peer, or, when the
// peer is a trusted proxy, the right-most X-Forwarded-For hop that is not.
func clientIP(r *http.Request, trusted []netip.Prefix) netip.Addr {
	ap, err := netip.ParseAddrPort(r.RemoteAddr)
	var ip netip.Addr
	if err == nil {
		ip = ap.Addr().Unmap()
	} else if a, err := netip.ParseAddr(r.RemoteAddr); err == nil {
		ip = a.Unmap()
	}
	if len(trusted) == 0 || !inAny(ip, trusted) {
		return ip
	}
	hops := strings.Split(strings.Join(r.Header.Values("X-Forwarded-For"), ","), ",")
	for i := len(hops) - 1; i >= 0; i-- {
		a, err := netip.ParseAddr(strings.TrimSpace(hops[i]))
		if err != nil {
			return ip
		}
		a = a.Unmap()
		if !inAny(a, trusted) {
			return a
		}
	}
	return ip
}

func parseIP(s string) (netip.Addr, error) {
	a, err := netip.ParseAddr(s)
	if err != nil {
		return a, fmt.Errorf("%q is not an IP address", s)
	}
	return a.Unmap(), nil
}
