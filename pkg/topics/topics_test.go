package topics

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
)

// EnsureSuite runs against any broker: kfake here, the real one in the
// integration test.
func ensureSuite(t *testing.T, adm *kadm.Client, prefix string) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	names := Defaults()
	names.Clicks, names.Impressions, names.InstallsRaw, names.EventsRaw = prefix+"clicks", prefix+"impressions", prefix+"installs", prefix+"events"
	names.InstallsAttributed, names.EventsAttributed = prefix+"installs_attr", prefix+"events_attr"
	names.Campaigns, names.Rejected, names.SKAN = prefix+"campaigns", prefix+"rejected", prefix+"skan"
	names.Campaigns, names.Rejected = prefix+"campaigns", prefix+"rejected"
	names.Endpoints, names.Deliveries, names.ForwarderState = prefix+"endpoints", prefix+"deliveries", prefix+"forwarder_state"
	names.Partitions = 3
	specs := Specs(names)
	t.Cleanup(func() {
		all := make([]string, len(specs))
		for i, s := range specs {
			all[i] = s.Name
		}
		_, _ = adm.DeleteTopics(context.Background(), all...)
	})

	res, err := Ensure(ctx, adm, specs)
	if err != nil {
		t.Fatalf("first Ensure: %v", err)
	}
	if len(res.Created) != len(specs) || len(res.Existed) != 0 {
		t.Fatalf("first Ensure: created %v, existed %v", res.Created, res.Existed)
	}
	res, err = Ensure(ctx, adm, specs)
	if err != nil {
		t.Fatalf("second Ensure: %v", err)
	}
	if len(res.Created) != 0 || len(res.Existed) != len(specs) {
		t.Fatalf("second Ensure is not a no-op: created %v, existed %v", res.Created, res.Existed)
	}
	td, err := adm.ListTopics(ctx, names.Clicks)
	if err != nil || len(td[names.Clicks].Partitions) != 3 {
		t.Fatalf("clicks partitions = %d, %v", len(td[names.Clicks].Partitions), err)
	}
	rc, err := adm.DescribeTopicConfigs(ctx, names.Campaigns)
	if err != nil {
		t.Fatal(err)
	}
	c, err := rc.On(names.Campaigns, nil)
	if err != nil {
		t.Fatal(err)
	}
	var policy string
	for _, kv := range c.Configs {
		if kv.Key == "cleanup.policy" {
			policy = kv.MaybeValue()
		}
	}
	if policy != "compact" {
		t.Fatalf("campaigns cleanup.policy = %q, want compact", policy)
	}

	// A joined topic with the wrong partition count must be refused.
	names.Partitions = 4
	_, err = Ensure(ctx, adm, Specs(names))
	if err == nil || !strings.Contains(err.Error(), "co-partitioned") {
		t.Fatalf("Ensure with mismatched partitions: err = %v, want co-partitioned error", err)
	}
}

func TestEnsureKfake(t *testing.T) {
	c, err := kfake.NewCluster(kfake.NumBrokers(1))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ensureSuite(t, kadm.NewClient(cl), "")
}

func TestSpecs(t *testing.T) {
	cfg := Defaults()
	specs := Specs(cfg)
	if len(specs) != 12 {
		t.Fatalf("%d specs, want the 9 topics of DESIGN.md (skan.v1 included) and the forwarder's 3", len(specs))
	}
	joined := 0
	for _, s := range specs {
		if s.CoPartitioned {
			joined++
		}
		if s.Name == cfg.Campaigns || s.Name == cfg.Endpoints || s.Name == cfg.ForwarderState {
			if s.Configs["cleanup.policy"] != "compact" {
				t.Errorf("%s not compacted: %v", s.Name, s.Configs)
			}
			if _, ok := s.Configs["retention.ms"]; ok {
				t.Errorf("compacted %s must not expire: %v", s.Name, s.Configs)
			}
		} else if s.Configs["retention.ms"] != "1209600000" {
			t.Errorf("%s retention.ms = %s, want 14 days", s.Name, s.Configs["retention.ms"])
		}
	}
	if joined != 4 {
		t.Errorf("%d co-partitioned topics, want 4 (clicks, impressions, installs raw, events raw)", joined)
	}
}

func TestSpecsMinInsyncReplicas(t *testing.T) {
	for _, tt := range []struct {
		rf, min int
		want    string
	}{
		{1, 0, "1"}, {2, 0, "1"}, {3, 0, "2"}, {5, 0, "2"}, {3, 3, "3"}, {3, 1, "1"},
	} {
		cfg := Defaults()
		cfg.ReplicationFactor, cfg.MinInsyncReplicas = tt.rf, tt.min
		for _, s := range Specs(cfg) {
			if got := s.Configs["min.insync.replicas"]; got != tt.want {
				t.Errorf("rf %d, min_insync_replicas %d: %s has min.insync.replicas %q, want %q", tt.rf, tt.min, s.Name, got, tt.want)
			}
		}
	}
}
