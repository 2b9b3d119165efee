//go:build integration

package topics_test

import (
	"testing"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/adtrack/postback/pkg/testenv"
	"github.com/adtrack/postback/pkg/topics"
)

func TestEnsureRealBroker(t *testing.T) {
	brokers := testenv.Kafka(t)
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	topics.EnsureSuite(t, kadm.NewClient(cl), testenv.Name("topics")+".")
}
