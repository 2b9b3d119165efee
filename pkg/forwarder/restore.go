package forwarder

import (
	"context"
	"time"

	"github.com/segmentio/encoding/json"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/adtrack/postback/pkg/forward"
)

// restore reads pt's delivery state back from the state topic: done
// deliveries of records at or after from (the committed offset) go to
// pt.known, so they are skipped when read again; retrying ones are
// returned for the retry queue. Done entries below from are tombstoned:
// their records will not be read again. It retries until ctx ends.
func (f *Forwarder) restore(ctx context.Context, pt *part, from int64) []*forward.State {
	for backoff := 200 * time.Millisecond; ; backoff = min(2*backoff, 5*time.Second) {
		states, err := f.readState(ctx, pt.partition)
		if err == nil {
			return f.applyState(ctx, pt, from, states)
		}
		if ctx.Err() != nil {
			return nil
		}
		f.log.Warn("restore of delivery state failed; retrying", "topic", pt.topic, "partition", pt.partition, "err", err)
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(backoff):
		}
	}
}

// readState returns the live entries of the state partition of input
// partition p, by delivery id.
func (f *Forwarder) readState(ctx context.Context, p int32) (map[string]*forward.State, error) {
	sp := f.statePartition(p)
	topic := f.cfg.Topics.ForwarderState
	lctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	ends, err := kadm.NewClient(f.cl).ListEndOffsets(lctx, topic)
	cancel()
	if err == nil {
		err = ends.Error()
	}
	if err != nil {
		return nil, err
	}
	end, _ := ends.Lookup(topic, sp)
	out := map[string]*forward.State{}
	if end.Offset <= 0 {
		return out, nil
	}
	cl, err := kgo.NewClient(f.cfg.Kafka.Opts("",
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: {sp: kgo.NewOffset().AtStart()}}),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()))...)
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	rctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	for {
		fs := cl.PollFetches(rctx)
		if err := rctx.Err(); err != nil {
			return nil, err
		}
		var fetchErr error
		fs.EachError(func(_ string, _ int32, err error) { fetchErr = err })
		if fetchErr != nil {
			return nil, fetchErr
		}
		last := int64(-1)
		fs.EachRecord(func(r *kgo.Record) {
			last = r.Offset
			id := string(r.Key)
			if len(r.Value) == 0 {
				delete(out, id)
				return
			}
			var st forward.State
			if json.Unmarshal(r.Value, &st) != nil {
				f.log.Error("undecodable delivery state skipped", "partition", sp, "offset", r.Offset)
				return
			}
			out[id] = &st
		})
		if last+1 >= end.Offset {
			return out, nil
		}
	}
}

// applyState fills pt from the state entries of its input partition.
func (f *Forwarder) applyState(ctx context.Context, pt *part, from int64, states map[string]*forward.State) []*forward.State {
	var retrying []*forward.State
	var stale []*kgo.Record
	for id, st := range states {
		if st.Source.Topic != pt.topic || st.Source.Partition != pt.partition {
			continue
		}
		switch {
		case st.Status == forward.StateRetrying && st.Request != nil:
			pt.known[id] = forward.StateRetrying
			retrying = append(retrying, st)
		case st.Source.Offset >= from:
			pt.known[id] = forward.StateDone
			pt.done = append(pt.done, doneRef{offset: st.Source.Offset, id: id})
		default:
			stale = append(stale, &kgo.Record{Topic: f.cfg.Topics.ForwarderState, Partition: f.statePartition(pt.partition), Key: []byte(id)})
		}
	}
	for _, r := range stale {
		f.cl.Produce(ctx, r, func(*kgo.Record, error) {})
	}
	f.log.Info("delivery state restored", "topic", pt.topic, "partition", pt.partition, "from", from,
		"done", len(pt.known)-len(retrying), "retrying", len(retrying))
	return retrying
}
