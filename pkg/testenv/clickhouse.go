package testenv

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// SecureClickHouse is a ClickHouse server of the test's own, started with
// deploy/local/clickhouse.sh in its secured mode on free ports: a plaintext
// native port (Addr, user default without a password) and a TLS native
// port (SecureAddr) with the user User. It is stopped at cleanup.
type SecureClickHouse struct {
	Addr, SecureAddr string
	// CAFile signs the server's certificate.
	CAFile                       string
	User, Password, PasswordFile string
}

// StartSecureClickHouse starts a dedicated secured ClickHouse and fails the
// test if it cannot.
func StartSecureClickHouse(t testing.TB) *SecureClickHouse {
	t.Helper()
	root, err := repoRoot()
	if err != nil {
		t.Fatal(err)
	}
	state := t.TempDir()
	port, httpPort, tlsPort := FreePort(t), FreePort(t), FreePort(t)
	env := append(os.Environ(), "POSTBACK_LOCAL_STATE_DIR="+state, "POSTBACK_CLICKHOUSE_SECURE=1",
		fmt.Sprintf("POSTBACK_CLICKHOUSE_PORT=%d", port), fmt.Sprintf("POSTBACK_CLICKHOUSE_HTTP_PORT=%d", httpPort),
		fmt.Sprintf("POSTBACK_CLICKHOUSE_SECURE_PORT=%d", tlsPort))
	script := filepath.Join(root, "deploy", "local", "clickhouse.sh")
	run := func(action string) error {
		cmd := exec.Command("bash", script, action)
		cmd.Env = env
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("clickhouse.sh %s: %v\n%s", action, err, out)
		}
		return nil
	}
	if err := run("start"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := run("stop"); err != nil {
			t.Error(err)
		}
	})
	dir := filepath.Join(state, "clickhouse", "tls")
	s := &SecureClickHouse{Addr: fmt.Sprintf("127.0.0.1:%d", port), SecureAddr: fmt.Sprintf("127.0.0.1:%d", tlsPort),
		CAFile: filepath.Join(dir, "ca.pem"), User: "postback", PasswordFile: filepath.Join(dir, "password")}
	pw, err := os.ReadFile(s.PasswordFile)
	if err != nil {
		t.Fatalf("secured ClickHouse's password: %v", err)
	}
	s.Password = strings.TrimSpace(string(pw))
	return s
}

// WriteCA writes, in a temporary file, a CA certificate that signed
// nothing: for tests of a client that must refuse a server's certificate.
func WriteCA(t testing.TB) string {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "another CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IsCA: true,
		BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "other-ca.pem")
	if err := os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// WaitHTTP waits up to two minutes for url to answer 200, and fails the
// test naming what when it does not.
func WaitHTTP(t testing.TB, url, what string) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for {
		resp, err := http.Get(url)
		if err == nil {
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
			err = fmt.Errorf("%d %s", resp.StatusCode, body)
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s not ready: %v", what, err)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// ClickHouseServer is a plaintext ClickHouse server of the test's own,
// started with deploy/local/clickhouse.sh on free ports, for tests that
// stop it. It is stopped at cleanup.
type ClickHouseServer struct {
	t    testing.TB
	Addr string // native protocol, user default without a password
	run  func(action string) error
}

// StartClickHouse starts a dedicated ClickHouse and fails the test if it
// cannot.
func StartClickHouse(t testing.TB) *ClickHouseServer {
	t.Helper()
	root, err := repoRoot()
	if err != nil {
		t.Fatal(err)
	}
	port, httpPort := FreePort(t), FreePort(t)
	env := append(os.Environ(), "POSTBACK_LOCAL_STATE_DIR="+t.TempDir(),
		fmt.Sprintf("POSTBACK_CLICKHOUSE_PORT=%d", port), fmt.Sprintf("POSTBACK_CLICKHOUSE_HTTP_PORT=%d", httpPort))
	script := filepath.Join(root, "deploy", "local", "clickhouse.sh")
	s := &ClickHouseServer{t: t, Addr: fmt.Sprintf("127.0.0.1:%d", port), run: func(action string) error {
		cmd := exec.Command("bash", script, action)
		cmd.Env = env
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("clickhouse.sh %s: %v\n%s", action, err, out)
		}
		return nil
	}}
	if err := s.run("start"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.run("stop"); err != nil {
			t.Error(err)
		}
	})
	return s
}

// Stop stops the server (its data is kept).
func (s *ClickHouseServer) Stop() {
	s.t.Helper()
	if err := s.run("stop"); err != nil {
		s.t.Fatal(err)
	}
}

// Start starts the stopped server again.
func (s *ClickHouseServer) Start() {
	s.t.Helper()
	if err := s.run("start"); err != nil {
		s.t.Fatal(err)
	}
}
