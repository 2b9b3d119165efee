package tlsconf

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestBuild(t *testing.T) {
	if tc, err := (Config{}).Build(); tc != nil || err != nil {
		t.Fatalf("disabled: %v, %v; want nil, nil", tc, err)
	}
	dir := t.TempDir()
	notPEM := filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(notPEM, []byte("hello"), 0o600); err != nil {
		t.Fatal(err)
	}
	for name, tc := range map[string]struct {
		cfg  Config
		want string
	}{
		"missing CA":   {Config{Enabled: true, CAFile: filepath.Join(dir, "nope.pem")}, "tls.ca_file"},
		"CA not PEM":   {Config{Enabled: true, CAFile: notPEM}, "no PEM certificate"},
		"missing cert": {Config{Enabled: true, CertFile: filepath.Join(dir, "c.pem"), KeyFile: filepath.Join(dir, "k.pem")}, "tls.cert_file"},
		"half a pair":  {Config{Enabled: true, CertFile: notPEM}, "give both"},
		"skip and CA":  {Config{Enabled: true, CAFile: notPEM, InsecureSkipVerify: true}, "contradicts"},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := tc.cfg.Build()
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want one saying %q", err, tc.want)
			}
		})
	}
	tc, err := (Config{Enabled: true, ServerName: "kafka.internal"}).Build()
	if err != nil || tc.ServerName != "kafka.internal" || tc.MinVersion != tls.VersionTLS12 {
		t.Fatalf("%+v, %v", tc, err)
	}
}

func TestExplain(t *testing.T) {
	for name, tc := range map[string]struct {
		err   error
		tlsOn bool
		want  string
	}{
		"unknown CA":  {fmt.Errorf("dial: %w", x509.UnknownAuthorityError{}), true, "not signed by a CA"},
		"hostname":    {x509.HostnameError{Certificate: &x509.Certificate{}, Host: "x"}, true, "not valid for the host"},
		"plaintext":   {tls.RecordHeaderError{Msg: "first record does not look like a TLS handshake"}, true, "answered in plaintext"},
		"client cert": {errors.New("remote error: tls: certificate required"), true, "client certificate"},
		"closed, off": {errors.New("read: connection reset by peer"), false, ""}, // ClosedEarly + SpeaksTLS decide
		"closed, on":  {errors.New("EOF"), true, ""},
		"unrelated":   {errors.New("connection refused"), false, ""},
	} {
		t.Run(name, func(t *testing.T) {
			got := Explain(tc.err, tc.tlsOn)
			if (tc.want == "") != (got == "") || !strings.Contains(got, tc.want) {
				t.Fatalf("Explain = %q, want one saying %q", got, tc.want)
			}
		})
	}
}
