//go:build integration

package kafkaconn_test

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/adtrack/postback/pkg/kafkaconn"
	"github.com/adtrack/postback/pkg/testenv"
	"github.com/adtrack/postback/pkg/tlsconf"
)

// TestSecuredBroker connects to a real broker's SASL_SSL and mutual-TLS
// listeners with every supported mechanism, moves a record through each,
// and checks that each kind of wrong setting fails at once with an error
// naming its cause.
func TestSecuredBroker(t *testing.T) {
	b := testenv.StartSecureBroker(t)
	topic := testenv.Name("secure")
	testenv.NamedTopic(t, b.Brokers(), topic, 1, nil)
	sasl := func(mech, pw string) kafkaconn.Config {
		return kafkaconn.Config{Brokers: []string{b.SASLAddr}, ClientID: "test",
			TLS:  tlsconf.Config{Enabled: true, CAFile: b.CAFile},
			SASL: kafkaconn.SASL{Mechanism: mech, Username: b.User, Password: pw}}
	}
	mtls := kafkaconn.Config{Brokers: []string{b.TLSAddr}, ClientID: "test",
		TLS: tlsconf.Config{Enabled: true, CAFile: b.CAFile, CertFile: b.ClientCert, KeyFile: b.ClientKey}}

	for name, cfg := range map[string]kafkaconn.Config{
		"scram-sha-512": sasl(kafkaconn.MechanismScramSHA512, b.Password),
		"scram-sha-256": sasl(kafkaconn.MechanismScramSHA256, b.Password),
		"plain":         sasl(kafkaconn.MechanismPlain, b.Password),
		"mutual tls":    mtls,
	} {
		t.Run(name, func(t *testing.T) {
			conn, err := kafkaconn.Open(t.Context(), cfg, quiet())
			if err != nil {
				t.Fatal(err)
			}
			roundTrip(t, conn, topic, name)
		})
	}

	wrongCA := testenv.WriteCA(t)
	noCert := mtls
	noCert.TLS.CertFile, noCert.TLS.KeyFile = "", ""
	otherCA := sasl(kafkaconn.MechanismScramSHA512, b.Password)
	otherCA.TLS.CAFile = wrongCA
	wrongName := sasl(kafkaconn.MechanismScramSHA512, b.Password)
	wrongName.TLS.ServerName = "kafka.example.com"
	for name, tc := range map[string]struct {
		cfg  kafkaconn.Config
		want string
	}{
		"wrong password":   {sasl(kafkaconn.MechanismScramSHA512, "not-the-password"), "SASL authentication failed"},
		"wrong CA":         {otherCA, "not signed by a CA in kafka.tls.ca_file"},
		"wrong name":       {wrongName, "not valid for the host"},
		"plaintext to TLS": {kafkaconn.Config{Brokers: []string{b.TLSAddr}, ClientID: "test"}, "expects TLS"},
		"TLS to plaintext": {kafkaconn.Config{Brokers: b.Brokers(), ClientID: "test", TLS: tlsconf.Config{Enabled: true, CAFile: b.CAFile}}, "answered in plaintext"},
		"no client cert":   {noCert, "requires a client certificate"},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := kafkaconn.Open(t.Context(), tc.cfg, quiet())
			var me *kafkaconn.MisconfiguredError
			if !errors.As(err, &me) {
				t.Fatalf("err = %v, want a *MisconfiguredError", err)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %q does not say %q", err, tc.want)
			}
		})
	}

	t.Run("nothing listening", func(t *testing.T) {
		// Unreachable is not misconfigured: a broker restarting must not
		// stop a service at start.
		conn, err := kafkaconn.New(kafkaconn.Config{Brokers: []string{"127.0.0.1:1"}, ClientID: "test"})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(t.Context(), 2*time.Second)
		defer cancel()
		if err := conn.Check(ctx); err == nil || kafkaconn.IsMisconfigured(err) {
			t.Fatalf("err = %v, want a plain (retryable) error", err)
		}
	})
}

// roundTrip produces one record over conn and reads it back.
func roundTrip(t *testing.T, conn *kafkaconn.Conn, topic, value string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	p, err := kgo.NewClient(conn.Opts("", kgo.DefaultProduceTopic(topic))...)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	res := p.ProduceSync(ctx, &kgo.Record{Value: []byte(value)})
	if err := res.FirstErr(); err != nil {
		t.Fatalf("produce: %v", err)
	}
	off := res[0].Record.Offset
	c, err := kgo.NewClient(conn.Opts("", kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: {0: kgo.NewOffset().At(off)}}))...)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	fs := c.PollFetches(ctx)
	if err := fs.Err0(); err != nil {
		t.Fatalf("consume: %v", err)
	}
	if recs := fs.Records(); len(recs) == 0 || string(recs[0].Value) != value {
		t.Fatalf("read back %v, want %q", recs, value)
	}
}

func quiet() *slog.Logger { return slog.New(slog.DiscardHandler) }
