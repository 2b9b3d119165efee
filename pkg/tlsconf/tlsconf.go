// Package tlsconf turns the `tls` settings of a connection section (Kafka,
// ClickHouse) into a *tls.Config, and explains a failed handshake in terms
// of those settings, so both connections are secured, and fail, the same way.
//
//	tc, err := cfg.TLS.Build() // nil, nil when tls.enabled is false
//	...
//	if why := tlsconf.Explain(err, tlsOn); why != "" { ... }
//	if !tlsOn && tlsconf.ClosedEarly(err) && tlsconf.SpeaksTLS(ctx, addr) { ... expects TLS }
package tlsconf

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"
)

// Config is the `tls` part of a connection section.
type Config struct {
	Enabled            bool   `mapstructure:"enabled" desc:"Connect over TLS."`
	CAFile             string `mapstructure:"ca_file" desc:"PEM file of the CA certificates that sign the server's certificate (empty: the system roots)."`
	CertFile           string `mapstructure:"cert_file" desc:"PEM client certificate, for servers that require one (mutual TLS); needs key_file."`
	KeyFile            string `mapstructure:"key_file" desc:"PEM private key of cert_file."`
	ServerName         string `mapstructure:"server_name" desc:"Name the server's certificate must carry (empty: the host of the address dialled)."`
	InsecureSkipVerify bool   `mapstructure:"insecure_skip_verify" desc:"Accept any server certificate. Only for a test bench: anyone on the path can read and change the traffic."`
}

// Validate checks the settings without reading the files. Keys are named
// relative to the section (tls.ca_file); the caller prefixes its own.
func (c Config) Validate() error {
	set := c.CAFile != "" || c.CertFile != "" || c.KeyFile != "" || c.ServerName != "" || c.InsecureSkipVerify
	switch {
	case !c.Enabled && set:
		return fmt.Errorf("tls.enabled: is false but other tls keys are set; set tls.enabled: true to use them")
	case (c.CertFile == "") != (c.KeyFile == ""):
		return fmt.Errorf("tls.cert_file and tls.key_file: give both or neither")
	case c.InsecureSkipVerify && c.CAFile != "":
		return fmt.Errorf("tls.insecure_skip_verify: contradicts tls.ca_file; drop one")
	}
	return nil
}

// Build reads the files and returns the TLS configuration, or nil when TLS
// is off. Errors name the file and what is wrong with it.
func (c Config) Build() (*tls.Config, error) {
	if !c.Enabled {
		return nil, nil
	}
	if err := c.Validate(); err != nil {
		return nil, err
	}
	tc := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: c.ServerName, InsecureSkipVerify: c.InsecureSkipVerify}
	if c.CAFile != "" {
		pem, err := os.ReadFile(c.CAFile)
		if err != nil {
			return nil, fmt.Errorf("tls.ca_file: %w", err)
		}
		tc.RootCAs = x509.NewCertPool()
		if !tc.RootCAs.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("tls.ca_file %s: no PEM certificate in it", c.CAFile)
		}
	}
	if c.CertFile != "" {
		cert, err := tls.LoadX509KeyPair(c.CertFile, c.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("tls.cert_file %s with tls.key_file %s: %w", c.CertFile, c.KeyFile, err)
		}
		tc.Certificates = []tls.Certificate{cert}
	}
	return tc, nil
}

// Explain names the likely cause of a connection error in terms of the tls
// settings, or returns "" when err is not a TLS failure. tlsOn says whether
// the client used TLS. A plaintext client talking to a TLS listener sees no
// TLS error at all, only a connection closed at its first request, which a
// server going down or starting up causes too: Explain leaves that to
// ClosedEarly and SpeaksTLS, which ask the server.
func Explain(err error, tlsOn bool) string {
	if err == nil {
		return ""
	}
	var unknown x509.UnknownAuthorityError
	var host x509.HostnameError
	var verify *tls.CertificateVerificationError
	var header tls.RecordHeaderError
	msg := err.Error()
	switch {
	case errors.As(err, &host):
		return "the server's certificate is not valid for the host dialled: fix the address or set tls.server_name to a name the certificate carries"
	case errors.As(err, &unknown), errors.As(err, &verify) && strings.Contains(msg, "unknown authority"):
		return "the server's certificate is not signed by a CA in tls.ca_file (wrong CA file, or the server presents another chain)"
	case errors.As(err, &verify):
		return "the server's certificate failed verification (expired, not yet valid, or not for this use): check it and tls.ca_file"
	case errors.As(err, &header):
		return "tls.enabled is true but the server answered in plaintext: point at its TLS port or listener"
	case strings.Contains(msg, "certificate required"), strings.Contains(msg, "bad certificate"):
		return "the server requires a client certificate it accepts: set tls.cert_file and tls.key_file (signed by a CA the server trusts)"
	case strings.Contains(msg, "tls: "):
		return "the TLS handshake failed: check tls.* against the server's TLS settings"
	}
	return ""
}

// ExpectsTLS is what to say when a plaintext client's connection was closed
// at its first request by a listener that SpeaksTLS.
const ExpectsTLS = "the server closed the connection at the first request and answers a TLS handshake on that port: it expects TLS"

// ClosedEarly reports whether err is a connection closed at the first
// request (EOF, reset, broken pipe): a plaintext client at a TLS listener,
// or a server that is going down or starting up. SpeaksTLS tells them apart.
func ClosedEarly(err error) bool {
	if err == nil {
		return false
	}
	msg := err.Error()
	return strings.Contains(msg, "EOF") || strings.Contains(msg, "connection reset") || strings.Contains(msg, "broken pipe")
}

// speaksTLSTimeout bounds SpeaksTLS's handshake.
const speaksTLSTimeout = 3 * time.Second

// SpeaksTLS reports whether the listener at addr answers a TLS handshake,
// so that a connection it closed early is a settings mismatch (no retry
// fixes it) rather than a server restarting (a chaos run saw ClickHouse's
// restart taken for one and the sink stop). The probe verifies nothing and
// sends nothing after the handshake: it only asks whether the port is TLS.
func SpeaksTLS(ctx context.Context, addr string) bool {
	ctx, cancel := context.WithTimeout(ctx, speaksTLSTimeout)
	defer cancel()
	d := tls.Dialer{Config: &tls.Config{InsecureSkipVerify: true}} //nolint:gosec // a probe of the protocol, no data is exchanged
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err == nil {
		conn.Close()
		return true
	}
	// A server that requires a client certificate refuses the handshake
	// with a TLS alert: it speaks TLS all the same.
	var alert tls.AlertError
	return errors.As(err, &alert) || strings.Contains(err.Error(), "remote error: tls:")
}
