package forwarder

import (
	"context"
	"fmt"
	"strings"
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

// stateEntries are the live records of a state partition by key: the
// deliveries' own and the done sets.
type stateEntries struct {
	keyed map[string]*forward.State
	sets  map[string]*forward.DoneSet
}

// readState returns the live entries of the state partition of input
// partition p.
func (f *Forwarder) readState(ctx context.Context, p int32) (stateEntries, error) {
	sp := f.statePartition(p)
	topic := f.cfg.Topics.ForwarderState
	lctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	ends, err := kadm.NewClient(f.cl).ListEndOffsets(lctx, topic)
	cancel()
	if err == nil {
		err = ends.Error()
	}
	if err != nil {
		return stateEntries{}, err
	}
	end, _ := ends.Lookup(topic, sp)
	out := stateEntries{keyed: map[string]*forward.State{}, sets: map[string]*forward.DoneSet{}}
	if end.Offset <= 0 {
		return out, nil
	}
	cl, err := kgo.NewClient(f.cfg.Kafka.Opts("",
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: {sp: kgo.NewOffset().AtStart()}}),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()))...)
	if err != nil {
		return stateEntries{}, err
	}
	defer cl.Close()
	rctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	for {
		fs := cl.PollFetches(rctx)
		if err := rctx.Err(); err != nil {
			return stateEntries{}, err
		}
		var fetchErr error
		fs.EachError(func(_ string, _ int32, err error) { fetchErr = err })
		if fetchErr != nil {
			return stateEntries{}, fetchErr
		}
		last := int64(-1)
		fs.EachRecord(func(r *kgo.Record) {
			last = r.Offset
			if err := out.add(r); err != nil {
				f.log.Error("undecodable delivery state skipped", "partition", sp, "offset", r.Offset, "err", err)
			}
		})
		if last+1 >= end.Offset {
			return out, nil
		}
	}
}

// add applies one record of the state topic (a tombstone deletes).
func (e stateEntries) add(r *kgo.Record) error {
	key := string(r.Key)
	set := strings.HasPrefix(key, forward.DoneSetKeyPrefix)
	switch {
	case len(r.Value) == 0 && set:
		delete(e.sets, key)
	case len(r.Value) == 0:
		delete(e.keyed, key)
	case set:
		var ds forward.DoneSet
		if err := json.Unmarshal(r.Value, &ds); err != nil {
			return fmt.Errorf("done set %s: %w", key, err)
		}
		e.sets[key] = &ds
	default:
		var st forward.State
		if err := json.Unmarshal(r.Value, &st); err != nil {
			return fmt.Errorf("delivery %s: %w", key, err)
		}
		e.keyed[key] = &st
	}
	return nil
}

// applyState fills pt from the state entries of its input partition.
func (f *Forwarder) applyState(ctx context.Context, pt *part, from int64, states stateEntries) []*forward.State {
	var retrying []*forward.State
	var stale []string
	inSet := f.applySets(pt, from, states.sets, &stale)
	for id, st := range states.keyed {
		if st.Source.Topic != pt.topic || st.Source.Partition != pt.partition {
			continue
		}
		switch {
		case st.Status == forward.StateRetrying && st.Request != nil && !inSet[id]:
			pt.known[id] = forward.StateRetrying
			retrying = append(retrying, st)
		case st.Source.Offset >= from && !inSet[id]:
			pt.known[id] = forward.StateDone
			pt.done = append(pt.done, doneRef{offset: st.Source.Offset, key: id})
		default: // below the committed offset, or done in a set after all
			stale = append(stale, id)
		}
	}
	for _, key := range stale {
		r := &kgo.Record{Topic: f.cfg.Topics.ForwarderState, Partition: f.statePartition(pt.partition), Key: []byte(key)}
		f.cl.Produce(ctx, r, func(*kgo.Record, error) {})
	}
	f.log.Info("delivery state restored", "topic", pt.topic, "partition", pt.partition, "from", from,
		"done", len(pt.known)-len(retrying), "retrying", len(retrying))
	return retrying
}

// applySets adds pt's done sets to pt: their deliveries at or after from
// are known done, sets wholly below from are stale. It returns every
// delivery id the sets hold: a delivery done in a set is done, whatever
// older record of its own says.
func (f *Forwarder) applySets(pt *part, from int64, sets map[string]*forward.DoneSet, stale *[]string) map[string]bool {
	inSet := map[string]bool{}
	for key, ds := range sets {
		if ds.Topic != pt.topic || ds.Partition != pt.partition {
			continue
		}
		for _, d := range ds.Done {
			inSet[d.DeliveryID] = true
		}
		if ds.Last < from {
			*stale = append(*stale, key)
			continue
		}
		ref := doneRef{offset: ds.Last, key: key, ids: []string{}}
		for _, d := range ds.Done {
			if d.Offset >= from {
				pt.known[d.DeliveryID] = forward.StateDone
				ref.ids = append(ref.ids, d.DeliveryID)
			}
		}
		pt.done = append(pt.done, ref)
	}
	return inSet
}
