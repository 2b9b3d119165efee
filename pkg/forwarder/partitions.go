package forwarder

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// The partitions this instance owns: restored on assignment, committed up
// to their first unsettled record, handed over on revocation.

// assigned notes partitions to restore (OnPartitionsAssigned).
func (f *Forwarder) assigned(m map[string][]int32) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for topic, ps := range m {
		for _, p := range ps {
			f.fresh = append(f.fresh, tp{topic, p})
		}
	}
}

// restoreAssigned restores the partitions assigned since the last poll,
// from the group's committed offsets.
func (f *Forwarder) restoreAssigned(ctx context.Context) {
	f.mu.Lock()
	fresh := f.fresh
	f.fresh = nil
	f.mu.Unlock()
	if len(fresh) == 0 {
		return
	}
	var committed kadm.OffsetResponses
	for backoff := 200 * time.Millisecond; ctx.Err() == nil; backoff = min(2*backoff, 5*time.Second) {
		var err error
		committed, err = kadm.NewClient(f.cl).FetchOffsets(ctx, f.cfg.Group)
		if err == nil {
			break
		}
		f.log.Warn("fetch committed offsets failed; retrying", "err", err)
		time.Sleep(backoff)
	}
	var starts kadm.ListedOffsets
	for _, key := range fresh {
		from := int64(-1)
		if o, ok := committed.Lookup(key.topic, key.partition); ok && o.Err == nil && o.At >= 0 {
			from = o.At
		} else {
			// No commit yet: start_at's offset, committed with the next
			// commit, so the partition's position is kept even if no
			// record arrives before a restart.
			if starts == nil {
				starts = f.startOffsets(ctx)
			}
			if o, ok := starts.Lookup(key.topic, key.partition); ok && o.Err == nil {
				from = o.Offset
			}
		}
		f.part(ctx, key, from)
	}
}

// startOffsets lists where start_at puts the inputs' partitions; nil
// entries (an error) leave a partition's position unknown (-1) until a
// record arrives.
func (f *Forwarder) startOffsets(ctx context.Context) kadm.ListedOffsets {
	lctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	adm := kadm.NewClient(f.cl)
	var offs kadm.ListedOffsets
	var err error
	if f.cfg.Settings.StartAt == "earliest" {
		offs, err = adm.ListStartOffsets(lctx, f.inputs()...)
	} else {
		offs, err = adm.ListEndOffsets(lctx, f.inputs()...)
	}
	if err != nil {
		f.log.Warn("list start_at offsets failed; positions known at the first record", "err", err)
		return kadm.ListedOffsets{}
	}
	return offs
}

// part returns the owned partition, restoring its state on first sight;
// from is the first offset fetched (the committed one).
func (f *Forwarder) part(ctx context.Context, key tp, from int64) *part {
	f.mu.Lock()
	pt := f.parts[key]
	f.mu.Unlock()
	if pt != nil {
		return pt
	}
	pt = &part{tp: key, known: map[string]string{}, pending: map[int64]int{}, next: from}
	retrying := f.restore(ctx, pt, from)
	f.mu.Lock()
	f.parts[key] = pt
	for _, st := range retrying {
		f.push(pt, st)
	}
	f.mu.Unlock()
	return pt
}

// committable is the offset to commit for pt: its first unsettled record,
// else the one after the last processed; -1 while its position is
// unknown. f.mu is held.
func (pt *part) committable() int64 {
	for len(pt.order) > 0 && pt.pending[pt.order[0]] == 0 {
		delete(pt.pending, pt.order[0])
		pt.order = pt.order[1:]
	}
	if len(pt.order) > 0 {
		return pt.order[0]
	}
	return pt.next
}

// commit commits every live partition's settled offset, then forgets (and
// tombstones on the state topic) the done deliveries below it.
func (f *Forwarder) commit(ctx context.Context) {
	f.mu.Lock()
	offsets := map[string]map[int32]kgo.EpochOffset{}
	owned := map[tp]*part{}
	for key, pt := range f.parts {
		if pt.revoked.Load() {
			continue
		}
		at := pt.committable()
		if at < 0 {
			continue // no position yet
		}
		if offsets[key.topic] == nil {
			offsets[key.topic] = map[int32]kgo.EpochOffset{}
		}
		offsets[key.topic][key.partition] = kgo.EpochOffset{Epoch: -1, Offset: at}
		owned[key] = pt
	}
	f.mu.Unlock()
	if len(offsets) == 0 {
		return
	}
	var commitErr error
	f.cl.CommitOffsetsSync(ctx, offsets, func(_ *kgo.Client, _ *kmsg.OffsetCommitRequest, resp *kmsg.OffsetCommitResponse, err error) {
		commitErr = err
		if err == nil {
			commitErr = commitResponseErr(resp)
		}
	})
	if commitErr != nil {
		if ctx.Err() == nil {
			f.log.Warn("offset commit failed (retried at the next interval)", "err", commitErr)
		}
		return
	}
	f.mu.Lock()
	var tombstones []*kgo.Record
	for key, pt := range owned {
		committed := offsets[key.topic][key.partition].Offset
		keep := pt.done[:0]
		for _, d := range pt.done {
			if d.offset < committed {
				if d.ids == nil {
					delete(pt.known, d.key)
				}
				for _, id := range d.ids {
					delete(pt.known, id)
				}
				tombstones = append(tombstones, &kgo.Record{Topic: f.cfg.Topics.ForwarderState, Partition: f.statePartition(pt.partition), Key: []byte(d.key)})
			} else {
				keep = append(keep, d)
			}
		}
		pt.done = keep
	}
	f.mu.Unlock()
	for _, r := range tombstones {
		f.cl.Produce(ctx, r, func(r *kgo.Record, err error) {
			if err != nil && ctx.Err() == nil {
				f.log.Warn("state tombstone not written (a restart keeps the entry a while longer)", "err", err)
			}
		})
	}
}

// statePartition is the state topic's partition of input partition p.
func (f *Forwarder) statePartition(p int32) int32 { return p % f.statePartN }

// revoke stops work on partitions leaving this instance: queued attempts
// and retries are dropped (the next owner re-reads or restores them),
// attempts in flight finish and are written, then the settled offsets are
// committed.
func (f *Forwarder) revoke(ctx context.Context, m map[string][]int32, commit bool) {
	f.mu.Lock()
	f.fresh = slices.DeleteFunc(f.fresh, func(k tp) bool { return slices.Contains(m[k.topic], k.partition) })
	var gone []*part
	for topic, ps := range m {
		for _, p := range ps {
			if pt := f.parts[tp{topic, p}]; pt != nil {
				pt.revoked.Store(true)
				gone = append(gone, pt)
			}
		}
	}
	f.waitIdle(gone, f.cfg.Settings.AttemptTimeout+10*time.Second)
	offsets := map[string]map[int32]kgo.EpochOffset{}
	for _, pt := range gone {
		delete(f.parts, pt.tp)
		at := pt.committable()
		if at < 0 {
			continue
		}
		if offsets[pt.topic] == nil {
			offsets[pt.topic] = map[int32]kgo.EpochOffset{}
		}
		offsets[pt.topic][pt.partition] = kgo.EpochOffset{Epoch: -1, Offset: at}
	}
	f.mu.Unlock()
	if commit && len(offsets) > 0 {
		if err := f.cl.Flush(ctx); err != nil {
			f.log.Warn("flush on revoke", "err", err)
		}
		f.cl.CommitOffsetsSync(ctx, offsets, nil)
	}
	if len(gone) > 0 {
		f.log.Info("partitions revoked", "partitions", len(gone), "committed", commit)
	}
}

// commitResponseErr returns the first partition error of a commit.
func commitResponseErr(resp *kmsg.OffsetCommitResponse) error {
	if resp == nil {
		return nil
	}
	for _, t := range resp.Topics {
		for _, p := range t.Partitions {
			if err := kerr.ErrorForCode(p.ErrorCode); err != nil {
				return fmt.Errorf("commit %s/%d: %w", t.Topic, p.Partition, err)
			}
		}
	}
	return nil
}

// waitIdle waits up to limit for ps to have no delivery in flight (its
// attempt made or its records unacknowledged). f.mu is held.
func (f *Forwarder) waitIdle(ps []*part, limit time.Duration) {
	deadline := time.AfterFunc(limit, func() {
		f.mu.Lock()
		f.idle.Broadcast()
		f.mu.Unlock()
	})
	defer deadline.Stop()
	start := f.now()
	for busy(ps) && f.now().Sub(start) < limit {
		f.idle.Wait()
	}
}

func busy(ps []*part) bool {
	for _, pt := range ps {
		if pt.inflight.Load() > 0 {
			return true
		}
	}
	return false
}
