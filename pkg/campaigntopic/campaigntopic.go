// Package campaigntopic is the campaigns topic, the registry's source of
// truth: postbackctl publishes and deletes campaigns there (compacted,
// keyed by campaign id), and every ingest and attribution instance follows
// it into a campaign.Registry. The same publish-and-follow path carries
// every other operator-managed registry on a compacted topic (the
// forwarder's publisher endpoints): PublishJSON, Delete and
// NewTableFollower work for any Table.
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
	ids := make([]string, len(camps))
	values := make([]any, len(camps))
	for i, c := range camps {
		if err := campaign.Validate(&c); err != nil {
			return err
		}
		ids[i], values[i] = c.ID, c
	}
	return PublishJSON(ctx, cl, topic, "campaigns", ids, values)
}

// PublishJSON writes values, JSON-encoded, to a compacted topic keyed by
// ids (what names the kind in errors), and waits for every
// acknowledgement. The caller has validated them.
func PublishJSON(ctx context.Context, cl *kgo.Client, topic, what string, ids []string, values []any) error {
	recs := make([]*kgo.Record, 0, len(ids))
	for i, id := range ids {
		v, err := json.Marshal(values[i])
		if err != nil {
			return fmt.Errorf("encode %s %q: %w", what, id, err)
		}
		recs = append(recs, &kgo.Record{Topic: topic, Key: []byte(id), Value: v})
	}
	if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		return fmt.Errorf("publish %s to %s: %w", what, topic, err)
	}
	return nil
}

// Delete writes tombstones for ids, removing them from every registry
// that follows topic.
func Delete(ctx context.Context, cl *kgo.Client, topic string, ids ...string) error {
	recs := make([]*kgo.Record, len(ids))
	for i, id := range ids {
		recs[i] = &kgo.Record{Topic: topic, Key: []byte(id)}
	}
	if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		return fmt.Errorf("delete from %s: %w", topic, err)
	}
	return nil
}

// Table is a registry a Follower keeps equal to a compacted topic.
type Table interface {
	// Apply puts the entry of key decoded from value, or deletes it when
	// value is empty (a tombstone). An error skips the record (logged).
	Apply(key string, value []byte) error
	Len() int
}

// Follower keeps a Table equal to its compacted topic.
type Follower struct {
	table  Table
	topic  string
	what   string
	log    *slog.Logger
	synced atomic.Bool
}

// NewFollower returns a Follower filling the campaign registry reg from topic.
func NewFollower(reg *campaign.Registry, topic string, log *slog.Logger) *Follower {
	return NewTableFollower(campaignTable{reg}, topic, "campaigns", log)
}

// NewTableFollower returns a Follower filling t from topic; what names the
// entries in logs and readiness.
func NewTableFollower(t Table, topic, what string, log *slog.Logger) *Follower {
	return &Follower{table: t, topic: topic, what: what, log: log}
}

// campaignTable applies campaign records to a campaign.Registry.
type campaignTable struct{ reg *campaign.Registry }

func (c campaignTable) Len() int { return c.reg.Len() }

// SetLoaded marks the registry's initial load complete.
func (c campaignTable) SetLoaded() { c.reg.SetLoaded() }

func (c campaignTable) Apply(id string, value []byte) error {
	if len(value) == 0 {
		c.reg.Delete(id)
		return nil
	}
	var camp event.Campaign
	if err := json.Unmarshal(value, &camp); err != nil {
		return fmt.Errorf("undecodable: %w", err)
	}
	if err := campaign.Validate(&camp); err != nil {
		return err
	}
	if camp.ID != id {
		return fmt.Errorf("campaign_id %q differs from the key", camp.ID)
	}
	c.reg.Put(camp)
	return nil
}

// Synced reports whether the registry has caught up with the topic's end as
// it was when Run started (the registry's Loaded says the same); ingest is
// not ready before that, and answers 503 to clicks and impressions.
func (f *Follower) Synced() bool { return f.synced.Load() }

// Ready is a telemetry readiness check.
func (f *Follower) Ready(context.Context) error {
	if !f.Synced() {
		return fmt.Errorf("%s registry still loading", f.what)
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
		return fmt.Errorf("%s consumer: %w", f.what, err)
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
		f.log.Warn(f.what+": cannot list end offsets yet", "topic", f.topic, "err", err)
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
				f.log.Warn(f.what+": fetch error", "topic", t, "partition", p, "err", err)
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
			f.log.Info(f.what+" loaded", "topic", f.topic, "entries", f.table.Len())
		}
	}
	return nil
}

// markSynced records the end of the initial load, in the table too when it
// keeps that itself (the campaign registry does: ingest answers 503 to
// touches until then).
func (f *Follower) markSynced() {
	if l, ok := f.table.(interface{ SetLoaded() }); ok {
		l.SetLoaded()
	}
	f.synced.Store(true)
}

func (f *Follower) apply(r *kgo.Record) {
	if err := f.table.Apply(string(r.Key), r.Value); err != nil {
		f.log.Error(f.what+": invalid record skipped", "offset", r.Offset, "partition", r.Partition, "key", string(r.Key), "err", err)
	}
}
