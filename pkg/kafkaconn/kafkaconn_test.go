package kafkaconn

import (
	"context"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl/oauth"

	"github.com/adtrack/postback/pkg/config"
)

func TestValidateNamesTheKey(t *testing.T) {
	ok := Defaults("svc")
	for name, tc := range map[string]struct {
		mutate func(*Config)
		key    string
	}{
		"no brokers":       {func(c *Config) { c.Brokers = nil }, "brokers"},
		"no port":          {func(c *Config) { c.Brokers = []string{"kafka"} }, "brokers"},
		"no client id":     {func(c *Config) { c.ClientID = "" }, "client_id"},
		"unknown mech":     {func(c *Config) { c.SASL.Mechanism = "GSSAPI" }, "sasl.mechanism"},
		"user, no mech":    {func(c *Config) { c.SASL.Username = "u" }, "sasl.mechanism"},
		"scram, no pass":   {func(c *Config) { c.SASL = SASL{Mechanism: MechanismScramSHA256, Username: "u"} }, "sasl"},
		"tls keys, off":    {func(c *Config) { c.TLS.CAFile = "ca.pem" }, "tls"},
		"cert without key": {func(c *Config) { c.TLS.Enabled, c.TLS.CertFile = true, "c.pem" }, "tls"},
	} {
		t.Run(name, func(t *testing.T) {
			c := ok
			tc.mutate(&c)
			_, err := New(c)
			ke, isKey := err.(*config.KeyError)
			if !isKey || ke.Key != "kafka."+tc.key {
				t.Fatalf("err = %v, want a *config.KeyError for kafka.%s", err, tc.key)
			}
		})
	}
	if _, err := New(ok); err != nil {
		t.Fatalf("defaults: %v", err)
	}
}

func TestOAuthNeedsATokenSource(t *testing.T) {
	c := Defaults("svc")
	c.SASL.Mechanism = MechanismOAuthBearer
	if _, err := New(c); err == nil || !strings.Contains(err.Error(), "WithOAuthToken") {
		t.Fatalf("err = %v, want one naming WithOAuthToken", err)
	}
	tok := WithOAuthToken(func(context.Context) (oauth.Auth, error) { return oauth.Auth{Token: "t"}, nil })
	if _, err := New(c, tok); err != nil {
		t.Fatal(err)
	}
}

// TestMetricsPerClient checks that named clients get franz-go's metrics
// labelled with their name, and that recreating a client under the same
// name (a stage's session after a failure) does not panic.
func TestMetricsPerClient(t *testing.T) {
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, "t"))
	if err != nil {
		t.Fatal(err)
	}
	defer cluster.Close()
	reg := prometheus.NewRegistry()
	c, err := New(Config{Brokers: cluster.ListenAddrs(), ClientID: "svc"}, WithMetrics(reg, "svc"))
	if err != nil {
		t.Fatal(err)
	}
	for range 2 {
		cl, err := kgo.NewClient(c.Opts("producer", kgo.DefaultProduceTopic("t"))...)
		if err != nil {
			t.Fatal(err)
		}
		if err := cl.ProduceSync(t.Context(), &kgo.Record{Value: []byte("v")}).FirstErr(); err != nil {
			t.Fatal(err)
		}
		if n, err := testutil.GatherAndCount(reg, "svc_connects_total"); err != nil || n == 0 {
			t.Fatalf("svc_connects_total series: %d, %v", n, err)
		}
		cl.Close()
	}
	// An unnamed client adds no series.
	cl, err := kgo.NewClient(c.Opts("")...)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "client" && l.GetValue() != "producer" {
					t.Errorf("%s has client=%q", mf.GetName(), l.GetValue())
				}
			}
		}
	}
}
