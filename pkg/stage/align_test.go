package stage

import (
	"log/slog"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// TestAlignLiveTraffic: partitions whose next record is recent are live
// and never paused; one truly behind holds the others.
func TestAlignLiveTraffic(t *testing.T) {
	cl, err := kgo.NewClient(kgo.SeedBrokers("127.0.0.1:1"))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	now := time.Now()
	a := newAligner(Config{AlignSlack: 100 * time.Millisecond, Name: "x", Group: "g", Logger: slog.New(slog.DiscardHandler)}, nil)
	a.parts[topicPartition{"clicks", 0}] = &progress{backlog: true, next: now.Add(-300 * time.Millisecond)}
	a.parts[topicPartition{"installs", 0}] = &progress{backlog: true, next: now.Add(-50 * time.Millisecond)}
	a.parts[topicPartition{"impressions", 0}] = &progress{caughtAt: now}
	a.plan(cl)
	if len(a.paused) != 0 {
		t.Fatalf("live partitions paused: %v", a.paused)
	}
	a.parts[topicPartition{"clicks", 0}].next = now.Add(-time.Hour) // an outage's backlog
	a.plan(cl)
	for _, k := range []topicPartition{{"installs", 0}, {"impressions", 0}} {
		if !a.paused[k] {
			t.Errorf("%v not held behind an hour-old backlog", k)
		}
	}
	if a.paused[topicPartition{"clicks", 0}] {
		t.Error("the backlog itself is paused")
	}
}
