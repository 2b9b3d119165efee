// Package campaigntopic is the campaigns topic, the registry's source of
// truth: postbackctl publishes and deletes campaigns there (compacted,
// keyed by campaign id), and every ingest and attribution instance follows
// it into a campaign.Registry.
//
//	f := campaigntopic.NewFollower(reg, cfg.Kafka.Topics.Campaigns, log)
//	go f.Run(ctx, conn.Opts("campaigns"))
//	for !f.Synced() { ... } // the initial load is complete
package campaigntopic

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/segmentio/encoding/json"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/adtrack/postback/pkg/campaign"
	"github.com/adtrack/postback/pkg/event"
)

// Publish writes campaigns to the compacted topic, keyed by id, and waits
// for every acknowledgement.
func Publish(ctx context.Context, cl *kgo.Client, topic string, camps []event.Campaign) error {
	recs := make([]*kgo.Record, 0, len(camps))
	for _, c := range camps {
		if err := campaign.Validate(&c); err != nil {
			return err
		}
		v, err := json.Marshal(c)
		if err != nil {
			return fmt.Errorf("encode campaign %q: %w", c.ID, err)
		}
		recs = append(recs, &kgo.Record{Topic: topic, Key: []byte(c.ID), Value: v})
	}
	if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		return fmt.Errorf("publish campaigns to %s: %w", topic, err)
	}
	return nil
}

// Delete writes tombstones for ids, removing them from every registry.
func Delete(ctx context.Context, cl *kgo.Client, topic string, ids ...string) error {
	recs := make([]*kgo.Record, len(ids))
	for i, id := range ids {
		recs[i] = &kgo.Record{Topic: topic, Key: []byte(id)}
	}
	if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		return fmt.Errorf("delete campaigns from %s: %w", topic, err)
	}
	return nil
}

// Follower keeps a Registry equal to the campaigns topic.
type Follower struct {
	reg    *campaign.Registry
	topic  string
	log    *slog.Logger
	synced atomic.Bool
}

// NewFollower returns a Follower filling reg from topic.
func NewFollower(reg *campaign.Registry, topic string, log *slog.Logger) *Follower {
	return &Follower{reg: reg, topic: topic, log: log}
}

// Synced reports whether the registry has caught up with the topic's end as
// it was when Run started (the registry's Loaded says the same); ingest is
// not ready before that, and answers 503 to clicks and impressions.
func (f *Follower) Synced() bool { return f.synced.Load() }

// Ready is a telemetry readiness check.
func (f *Follower) Ready(context.Context) error {
	if !f.Synced() {
		return errors.New("campaign registry still loading")
	}
	return nil
}

// Run consumes the topic from the beginning with its own client (no consumer
// group: every instance needs every campaign) until ctx ends. conn is the
// connection of that client (kafkaconn.Conn.Opts).
func (f *Follower) Run(ctx context.Context, conn []kgo.Opt) error {
	opts := append(append([]kgo.Opt{}, conn...),
		kgo.ConsumeTopics(f.topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
	)
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return fmt.Errorf("campaigns consumer: %w", err)
	}
	defer cl.Close()

	// The end offsets at start say when the initial load is complete.
	var ends kadm.ListedOffsets
	for {
		lctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		ends, err = kadm.NewClient(cl).ListEndOffsets(lctx, f.topic)
		cancel()
		if err == nil {
			err = ends.Error()
		}
		if err == nil {
			break
		}
		f.log.Warn("campaigns: cannot list end offsets yet", "topic", f.topic, "err", err)
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(time.Second):
		}
	}
	pending := map[int32]int64{}
	ends.Each(func(o kadm.ListedOffset) {
		if o.Offset > 0 {
			pending[o.Partition] = o.Offset
		}
	})
	if len(pending) == 0 {
		f.markSynced()
	}
	for ctx.Err() == nil {
		fs := cl.PollFetches(ctx)
		fs.EachError(func(t string, p int32, err error) {
			if !errors.Is(err, context.Canceled) {
				f.log.Warn("campaigns: fetch error", "topic", t, "partition", p, "err", err)
			}
		})
		fs.EachRecord(func(r *kgo.Record) {
			f.apply(r)
			if end, ok := pending[r.Partition]; ok && r.Offset+1 >= end {
				delete(pending, r.Partition)
			}
		})
		if !f.synced.Load() && len(pending) == 0 {
			f.markSynced()
			f.log.Info("campaigns loaded", "topic", f.topic, "campaigns", f.reg.Len())
		}
	}
	return nil
}

// markSynced records the end of the initial load, in the registry too.
func (f *Follower) markSynced() {
	f.reg.SetLoaded()
	f.synced.Store(true)
}

func (f *Follower) apply(r *kgo.Record) {
	id := string(r.Key)
	if len(r.Value) == 0 {
		f.reg.Delete(id)
		return
	}
	var c event.Campaign
	if err := json.Unmarshal(r.Value, &c); err != nil {
		f.log.Error("campaigns: undecodable record skipped", "offset", r.Offset, "partition", r.Partition, "err", err)
		return
	}
	if err := campaign.Validate(&c); err != nil || c.ID != id {
		f.log.Error("campaigns: invalid record skipped", "offset", r.Offset, "key", id, "err", err)
		return
	}
	f.reg.Put(c)
}
