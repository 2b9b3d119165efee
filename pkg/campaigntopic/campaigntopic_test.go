package campaigntopic

import (
	"context"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/adtrack/postback/pkg/campaign"
	"github.com/adtrack/postback/pkg/event"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
)

func TestPublishFollow(t *testing.T) {
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, "campaigns"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	camps, _ := campaign.ParseYAML([]byte(`
campaigns:
  - {campaign_id: c1, app_id: id123456789, platform: iOS, media_source: acme_int, cost_model: cpi, bid: "1.50", currency: usd}
  - {campaign_id: c2, app_id: com.example.game, media_source: acme_int, cost_model: CPM, bid: "2.5", currency: EUR}
`))
	if err := Publish(ctx, cl, "campaigns", camps); err != nil {
		t.Fatal(err)
	}
	// A record that is not a campaign must be skipped, not crash the follower.
	if err := cl.ProduceSync(ctx, &kgo.Record{Topic: "campaigns", Key: []byte("junk"), Value: []byte("{")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	reg := campaign.NewRegistry()
	f := NewFollower(reg, "campaigns", slog.New(slog.NewTextHandler(io.Discard, nil)))
	if f.Ready(ctx) == nil || reg.Loaded() {
		t.Fatal("ready (or the registry loaded) before loading")
	}
	go f.Run(ctx, []kgo.Opt{kgo.SeedBrokers(c.ListenAddrs()...)})
	waitFor(t, func() bool { return f.Synced() })
	if !reg.Loaded() {
		t.Fatal("synced, but the registry does not say it is loaded")
	}
	if reg.Len() != 2 {
		t.Fatalf("registry has %d campaigns after sync, want 2", reg.Len())
	}
	if got, ok := reg.Get("c1"); !ok || got.Bid.String() != "1.5" {
		t.Fatalf("c1 = %+v, %v", got, ok)
	}
	// Live update and tombstone.
	camps[0].Bid = 2_000_000
	if err := Publish(ctx, cl, "campaigns", camps[:1]); err != nil {
		t.Fatal(err)
	}
	if err := Delete(ctx, cl, "campaigns", "c2"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool {
		c1, _ := reg.Get("c1")
		_, has2 := reg.Get("c2")
		return c1.Bid.String() == "2" && !has2
	})
	if err := Publish(ctx, cl, "campaigns", []event.Campaign{{ID: "bad"}}); err == nil || !strings.Contains(err.Error(), "app_id") {
		t.Fatalf("Publish of invalid campaign: err = %v", err)
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met in 20s")
		}
		time.Sleep(20 * time.Millisecond)
	}
}
