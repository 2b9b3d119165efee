package forwarder

import (
	"context"
	"fmt"
	"strconv"

	"github.com/segmentio/encoding/json"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/adtrack/postback/pkg/forward"
)

// Done sets: the state of deliveries final at their first attempt (most of
// them) is written a batch at a time, one forward.DoneSet record per
// partition and batch, instead of one record (and later one tombstone)
// per delivery. A partition has its sets in flight or none; what becomes
// final meanwhile waits in doneQ and goes in the next set as soon as they
// are acknowledged (group commit: no added wait when idle, large sets
// under load). A delivery settles only once its set is acknowledged, so
// the committed offset still passes a record only after its deliveries
// are on the state topic.

// maxSetEntries bounds one done set record (about 80 bytes an entry), well
// under the broker's message size limit.
const maxSetEntries = 2000

// pendingSet is a done set being written.
type pendingSet struct {
	rec *kgo.Record
	ws  []*write
	ref doneRef
}

// addDone queues w's done state in its partition's next done set, and
// writes the set now unless one is in flight.
func (f *Forwarder) addDone(w *write) {
	pt := w.j.pt
	pt.setMu.Lock()
	pt.doneQ = append(pt.doneQ, w)
	var sets []*pendingSet
	if pt.setsWriting == 0 {
		sets = f.takeSets(pt)
	}
	pt.setMu.Unlock()
	f.writeSets(pt, sets)
}

// takeSets turns pt's queued done states into set records. pt.setMu is
// held.
func (f *Forwarder) takeSets(pt *part) []*pendingSet {
	var sets []*pendingSet
	for len(pt.doneQ) > 0 {
		ws := pt.doneQ[:min(len(pt.doneQ), maxSetEntries)]
		pt.doneQ = pt.doneQ[len(ws):]
		ds := forward.DoneSet{Topic: pt.topic, Partition: pt.partition, Last: -1, Done: make([]forward.DoneEntry, len(ws))}
		ref := doneRef{key: f.setKey(), ids: make([]string, len(ws))}
		for i, w := range ws {
			ds.Done[i] = forward.DoneEntry{DeliveryID: w.j.meta.DeliveryID, Offset: w.j.src.Offset}
			ds.Last = max(ds.Last, w.j.src.Offset)
			ref.ids[i] = w.j.meta.DeliveryID
		}
		ref.offset = ds.Last
		v, _ := json.Marshal(ds)
		sets = append(sets, &pendingSet{ws: ws, ref: ref,
			rec: &kgo.Record{Topic: f.cfg.Topics.ForwarderState, Partition: f.statePartition(pt.partition), Key: []byte(ref.key), Value: v}})
	}
	pt.doneQ = nil
	pt.setsWriting = len(sets)
	return sets
}

// setKey is a key no other set of any instance has: a set must never
// overwrite another in compaction.
func (f *Forwarder) setKey() string {
	return forward.DoneSetKeyPrefix + f.setPrefix + strconv.FormatUint(f.setSeq.Add(1), 36)
}

// writeSets produces sets; each settles its deliveries when acknowledged.
func (f *Forwarder) writeSets(pt *part, sets []*pendingSet) {
	for _, s := range sets {
		f.cl.Produce(context.Background(), s.rec, func(_ *kgo.Record, err error) { f.setWritten(pt, s, err) })
	}
}

// setWritten settles a set's deliveries (those whose attempt record is
// acknowledged too), and writes the next set if deliveries queued
// meanwhile.
func (f *Forwarder) setWritten(pt *part, s *pendingSet, err error) {
	if err != nil {
		f.writeFailed(fmt.Errorf("write done set of %s/%d to %s: %w", pt.topic, pt.partition, s.rec.Topic, err))
	}
	var settled []*write
	for _, w := range s.ws {
		if w.ack(err) {
			settled = append(settled, w)
		}
	}
	pt.setMu.Lock()
	pt.setsWriting--
	var next []*pendingSet
	if pt.setsWriting == 0 && len(pt.doneQ) > 0 {
		next = f.takeSets(pt)
	}
	pt.setMu.Unlock()
	f.mu.Lock()
	if err == nil && !pt.revoked.Load() {
		pt.done = append(pt.done, s.ref)
	}
	for _, w := range settled {
		f.settleLocked(w)
	}
	f.mu.Unlock()
	for _, w := range settled {
		f.m.outcome(w.j.meta.EndpointID, w.dec.Outcome)
	}
	if len(next) > 0 {
		// Not from this promise: Produce may wait for buffer room, which
		// only finishing promises make.
		go f.writeSets(pt, next)
	}
}
