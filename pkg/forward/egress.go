package forward

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"strings"

	"github.com/adtrack/postback/pkg/config"
)

// Egress says where callbacks may go (the egress section of the forwarder
// and of postbackctl). Callbacks use http or https only; loopback,
// link-local (cloud metadata at 169.254.169.254 included), private,
// shared (CGNAT), unspecified and multicast addresses are refused unless a
// range of AllowCIDRs covers them. The forwarder checks the address it
// dials, after DNS resolution and on every redirect; postbackctl checks IP
// literals and resolves host names at apply time.
type Egress struct {
	AllowCIDRs []string `mapstructure:"allow_cidrs" desc:"Address ranges callbacks may reach although they are loopback, link-local, private or otherwise internal (e.g. [\"10.20.0.0/16\"] for a partner on a private link). Empty: public addresses only."`

	allowed []netip.Prefix
}

// Validate parses AllowCIDRs; keys are relative to egress.
func (e *Egress) Validate() error {
	e.allowed = e.allowed[:0]
	for _, c := range e.AllowCIDRs {
		p, err := netip.ParsePrefix(strings.TrimSpace(c))
		if err != nil {
			return config.Errorf("allow_cidrs", "%q is not a CIDR: %v", c, err)
		}
		e.allowed = append(e.allowed, p.Masked())
	}
	return nil
}

// ErrRefused wraps every refusal of a destination: it is never retried.
var ErrRefused = errors.New("destination refused")

// blocked are the ranges no callback reaches unless allowed, with why.
var blocked = []struct {
	prefix netip.Prefix
	why    string
}{
	{netip.MustParsePrefix("0.0.0.0/8"), "unspecified (this network)"},
	{netip.MustParsePrefix("10.0.0.0/8"), "private (RFC 1918)"},
	{netip.MustParsePrefix("100.64.0.0/10"), "shared address space (CGNAT)"},
	{netip.MustParsePrefix("127.0.0.0/8"), "loopback"},
	{netip.MustParsePrefix("169.254.0.0/16"), "link-local (cloud metadata lives here)"},
	{netip.MustParsePrefix("172.16.0.0/12"), "private (RFC 1918)"},
	{netip.MustParsePrefix("192.0.0.0/24"), "IETF protocol assignments"},
	{netip.MustParsePrefix("192.168.0.0/16"), "private (RFC 1918)"},
	{netip.MustParsePrefix("198.18.0.0/15"), "benchmarking"},
	{netip.MustParsePrefix("224.0.0.0/4"), "multicast"},
	{netip.MustParsePrefix("240.0.0.0/4"), "reserved"},
	{netip.MustParsePrefix("::/128"), "unspecified"},
	{netip.MustParsePrefix("::1/128"), "loopback"},
	{netip.MustParsePrefix("fc00::/7"), "private (unique local)"},
	{netip.MustParsePrefix("fe80::/10"), "link-local"},
	{netip.MustParsePrefix("ff00::/8"), "multicast"},
}

// CheckIP returns nil when a callback may reach ip, else an ErrRefused
// error saying which range it is in.
func (e *Egress) CheckIP(ip netip.Addr) error {
	if e == nil {
		e = &Egress{}
	}
	ip = ip.Unmap()
	for _, p := range e.allowed {
		if p.Contains(ip) {
			return nil
		}
	}
	if ip.Is6() {
		// NAT64 and 6to4 embed IPv4 addresses: judge the embedded one.
		if v4, ok := embeddedV4(ip); ok {
			if err := e.CheckIP(v4); err != nil {
				return fmt.Errorf("%w: %s embeds %s: %v", ErrRefused, ip, v4, errors.Unwrap(err))
			}
		}
	}
	for _, b := range blocked {
		if b.prefix.Contains(ip) {
			return fmt.Errorf("%w: %s is %s (allow it with egress.allow_cidrs)", ErrRefused, ip, b.why)
		}
	}
	return nil
}

var (
	nat64  = netip.MustParsePrefix("64:ff9b::/96")
	sixTo4 = netip.MustParsePrefix("2002::/16")
)

func embeddedV4(ip netip.Addr) (netip.Addr, bool) {
	b := ip.As16()
	switch {
	case nat64.Contains(ip):
		return netip.AddrFrom4([4]byte{b[12], b[13], b[14], b[15]}), true
	case sixTo4.Contains(ip):
		return netip.AddrFrom4([4]byte{b[2], b[3], b[4], b[5]}), true
	}
	return netip.Addr{}, false
}

// CheckURL checks a URL (a template or a redirect target): http or https
// only, and an IP-literal host must pass CheckIP. A host name is not
// resolved here (see CheckHost).
func (e *Egress) CheckURL(raw string) error {
	u, err := url.Parse(strings.NewReplacer("{", "", "}", "").Replace(raw))
	if err != nil {
		return fmt.Errorf("%w: %q does not parse: %v", ErrRefused, raw, err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return fmt.Errorf("%w: scheme %q: only http and https", ErrRefused, u.Scheme)
	}
	if ip, err := netip.ParseAddr(strings.Trim(u.Hostname(), "[]")); err == nil {
		return e.CheckIP(ip)
	}
	return nil
}

// CheckHost resolves the host of URL raw with lookup and checks every
// address: apply-time protection against a name that points inside.
func (e *Egress) CheckHost(raw string, lookup func(host string) ([]net.IP, error)) error {
	if err := e.CheckURL(raw); err != nil {
		return err
	}
	u, _ := url.Parse(strings.NewReplacer("{", "", "}", "").Replace(raw))
	host := u.Hostname()
	if _, err := netip.ParseAddr(host); err == nil {
		return nil
	}
	ips, err := lookup(host)
	if err != nil {
		return fmt.Errorf("resolve %s: %w", host, err)
	}
	for _, ip := range ips {
		a, ok := netip.AddrFromSlice(ip)
		if !ok {
			continue
		}
		if err := e.CheckIP(a); err != nil {
			return fmt.Errorf("%s resolves to refused address: %w", host, err)
		}
	}
	return nil
}
