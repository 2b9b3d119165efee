//go:build integration

package chconn_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/adtrack/postback/pkg/chconn"
	"github.com/adtrack/postback/pkg/testenv"
	"github.com/adtrack/postback/pkg/tlsconf"
)

// TestSecuredServer connects over the native TLS port as a password user,
// and checks that each kind of wrong setting fails with chconn.ErrMisconfigured
// and an error naming its cause.
func TestSecuredServer(t *testing.T) {
	s := testenv.StartSecureClickHouse(t)
	good := chconn.Defaults()
	good.Addr = []string{"127.0.0.1:1", s.SecureAddr} // the first is down: the next one serves
	good.Username, good.Password = s.User, s.Password
	good.TLS = tlsconf.Config{Enabled: true, CAFile: s.CAFile}
	conn, err := chconn.OpenServer(t.Context(), good)
	if err != nil {
		t.Fatal(err)
	}
	var user string
	// currentUser() is newer than 18.16: find this very query's user.
	if err := conn.QueryRow(t.Context(), "SELECT user FROM system.processes WHERE query LIKE '%secured-server-marker%' LIMIT 1").Scan(&user); err != nil || user != s.User {
		t.Fatalf("user = %q, %v; want %q", user, err, s.User)
	}
	conn.Close()

	wrongPW, otherCA, plainToTLS, tlsToPlain := good, good, good, good
	wrongPW.Password = "not-the-password"
	otherCA.TLS.CAFile = testenv.WriteCA(t)
	plainToTLS.TLS = tlsconf.Config{}
	tlsToPlain.Addr = []string{s.Addr}
	for name, tc := range map[string]struct {
		cfg  chconn.Config
		want string
	}{
		"wrong password":   {wrongPW, "authentication failed"},
		"wrong CA":         {otherCA, "not signed by a CA"},
		"plaintext to TLS": {plainToTLS, "expects TLS"},
		"TLS to plaintext": {tlsToPlain, "answered in plaintext"},
	} {
		t.Run(name, func(t *testing.T) {
			cfg := tc.cfg
			cfg.DialTimeout = 3 * time.Second
			_, err := chconn.OpenServer(t.Context(), cfg)
			if !errors.Is(err, chconn.ErrMisconfigured) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want chconn.ErrMisconfigured saying %q", err, tc.want)
			}
		})
	}
}
