package stage

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// A hanging transaction is one Kafka left open on a partition after its
// coordinator finished it: the commit or abort marker was never written.
// Read_committed consumers stop at it, and a transactional offset commit
// left pending on __consumer_offsets makes every offset fetch of the group
// answer UNSTABLE_OFFSET_COMMIT, so the group's members never start. Kafka
// skips the markers of partitions without a leader (it takes them for
// deleted); a single-node broker's controlled shutdown makes every
// partition leaderless for its last moments (deploy/local turns it off).
// Kafka cannot tell a client whether such a transaction committed, so the
// stage does not guess: it names the transaction and the partitions, and
// the operator resolves it (docs/attribution.md, "Hanging transactions"),
// except where the outcome is known (a transaction of this process's stages
// abandoned without a commit request or seen committed, or one decided by
// its coordinator in a way that can only concern it): the stage writes that
// marker itself (markKnown).

// groupOffsetsBlocked reports whether the group's committed offsets are
// blocked by an open transaction: OffsetFetch with require_stable answers
// UNSTABLE_OFFSET_COMMIT for a partition of topics. The partitions are
// named (a topic without them asks for none).
func groupOffsetsBlocked(ctx context.Context, p *Prober, group string, topics []string) (bool, error) {
	listed, err := p.adm.ListTopics(ctx, topics...)
	if err != nil {
		return false, fmt.Errorf("list topics %v: %w", topics, err)
	}
	req := kmsg.NewPtrOffsetFetchRequest()
	req.Group = group
	req.RequireStable = true
	for t, ps := range listed.TopicsSet() {
		rt := kmsg.NewOffsetFetchRequestTopic()
		rt.Topic = t
		for p := range ps {
			rt.Partitions = append(rt.Partitions, p)
		}
		req.Topics = append(req.Topics, rt)
	}
	resp, err := req.RequestWith(ctx, p.cl)
	if err != nil {
		return false, err
	}
	unstable := func(code int16) bool { return errors.Is(kerr.ErrorForCode(code), kerr.UnstableOffsetCommit) }
	blocked := unstable(resp.ErrorCode)
	// franz-go answers in the shape of the version it sent: topics (v0-7)
	// or groups (v8+).
	for _, t := range resp.Topics {
		for _, pt := range t.Partitions {
			blocked = blocked || unstable(pt.ErrorCode)
		}
	}
	for _, g := range resp.Groups {
		blocked = blocked || unstable(g.ErrorCode)
		for _, t := range g.Topics {
			for _, pt := range t.Partitions {
				blocked = blocked || unstable(pt.ErrorCode)
			}
		}
	}
	return blocked, nil
}

// hanging is a transaction open on a partition for longer than the stall
// timeout, with what its coordinator says of it.
type hanging struct {
	topic     string
	partition int32
	d         kadm.DescribedProducer
	txnID     string // "" when the coordinator did not say
	state     string // the coordinator's state of txnID
	epoch     int16  // the coordinator's producer epoch of txnID
}

func (h hanging) String() string {
	txn := orUnknown(h.txnID)
	if h.state != "" {
		txn = fmt.Sprintf("%s (coordinator: %s at epoch %d)", h.txnID, h.state, h.epoch)
	}
	return fmt.Sprintf("producer %d epoch %d of transactional id %s on %s/%d from offset %d since %s",
		h.d.ProducerID, h.d.ProducerEpoch, txn, h.topic, h.partition,
		h.d.CurrentTxnStartOffset, time.UnixMilli(h.d.LastTimestamp).UTC().Format(time.RFC3339))
}

// findHanging returns the transactions open for longer than minAge on the
// given partitions (nil: every partition of the topics), with their
// transactional id and what the coordinator says of them.
func findHanging(ctx context.Context, p *Prober, partitions kadm.TopicsSet, minAge time.Duration) ([]hanging, error) {
	producers, err := p.adm.DescribeProducers(ctx, partitions)
	if err != nil {
		return nil, fmt.Errorf("describe producers: %w", err)
	}
	var opens []hanging
	ids := map[int64]bool{}
	producers.EachPartition(func(dp kadm.DescribedProducersPartition) {
		for _, d := range dp.ActiveProducers {
			if d.CurrentTxnStartOffset < 0 || time.Since(time.UnixMilli(d.LastTimestamp)) < minAge {
				continue
			}
			opens = append(opens, hanging{topic: dp.Topic, partition: dp.Partition, d: d})
			ids[d.ProducerID] = true
		}
	})
	if len(opens) == 0 {
		return nil, nil
	}
	pids := make([]int64, 0, len(ids))
	for id := range ids {
		pids = append(pids, id)
	}
	type coord struct {
		txnID, state string
		epoch        int16
	}
	coords := map[int64]coord{}
	if lt, err := p.adm.ListTransactions(ctx, pids, nil); err == nil {
		var names []string
		for _, t := range lt {
			coords[t.ProducerID] = coord{txnID: t.TxnID}
			names = append(names, t.TxnID)
		}
		if dt, err := p.adm.DescribeTransactions(ctx, names...); err == nil {
			for _, t := range dt {
				coords[t.ProducerID] = coord{t.TxnID, t.State, t.ProducerEpoch}
			}
		}
	}
	for i, o := range opens {
		c := coords[o.d.ProducerID]
		opens[i].txnID, opens[i].state, opens[i].epoch = c.txnID, c.state, c.epoch
	}
	sort.Slice(opens, func(i, j int) bool { return opens[i].String() < opens[j].String() })
	return opens, nil
}

// describeHanging names the transactions findHanging found, for an operator.
func describeHanging(hs []hanging) string {
	if len(hs) == 0 {
		return ""
	}
	found := make([]string, len(hs))
	for i, h := range hs {
		found[i] = h.String()
	}
	return "transaction left open by Kafka (hanging; see docs/attribution.md, Hanging transactions): " + strings.Join(found, "; ")
}

// outcome returns the marker a hanging transaction h must get, and whether
// it is known. ended is how the
// stage ended it, if it recorded that (endedTxnID names its transactional
// id, "" if not recorded):
//
//   - commit, for a transaction whose commit the broker accepted (the
//     stage saw the answer; Kafka then lost the markers, as when the
//     broker stopped right after answering);
//   - abort, for a transaction a stage abandoned without asking to commit
//     it, once the coordinator has moved past its epoch;
//   - the coordinator's own verdict, where it can only be about h: with
//     transactions v2 (v2: every transaction ends with a new epoch) a
//     CompleteCommit or CompleteAbort at h's epoch + 1 is how h ended.
//
// Anything else (a coordinator still deciding, a later transaction's
// outcome, v1 epochs shared by a session's transactions) is unknown.
func outcome(h hanging, endedTxnID string, ended endedTxn, v2 bool) (commit, known bool) {
	if h.txnID == "" || h.state == "" {
		return false, false
	}
	if endedTxnID == h.txnID && ended.committed {
		return true, true
	}
	if endedTxnID == h.txnID && !ended.committed && h.epoch > h.d.ProducerEpoch {
		return false, true
	}
	if v2 && int(h.epoch) == int(h.d.ProducerEpoch)+1 {
		switch h.state {
		case "CompleteCommit":
			return true, true
		case "CompleteAbort":
			return false, true
		}
	}
	return false, false
}

// markKnown writes, on each hanging transaction whose outcome is known (see
// outcome; the coordinator's verdict holds whichever process wrote it,
// the other rules need this process's record), the marker Kafka left out: the
// transaction's coordinator decided it, the partition never heard. It
// returns the ones it resolved; the others are left to the operator.
func markKnown(ctx context.Context, p *Prober, hs []hanging) (resolved, left []hanging, err error) {
	// The cluster is asked at most once a call, not once a transaction (a
	// Kafka 3 cluster's no is not kept).
	clusterV2 := sync.OnceValue(func() bool { return p.clusterRunsV2(ctx) })
	for _, h := range hs {
		txnID, ended, _ := p.endedAs(h.d.ProducerID, h.d.ProducerEpoch)
		v2 := h.txnID != "" && (p.isV2(h.txnID) || clusterV2())
		commit, known := outcome(h, txnID, ended, v2)
		if !known {
			left = append(left, h)
			continue
		}
		resp, werr := p.adm.WriteTxnMarkers(ctx, kadm.TxnMarkers{ProducerID: h.d.ProducerID, ProducerEpoch: h.d.ProducerEpoch,
			Commit: commit, CoordinatorEpoch: h.d.CoordinatorEpoch, Topics: kadm.TopicsSet{h.topic: {h.partition: struct{}{}}}})
		if werr == nil {
			resp.EachPartition(func(pr kadm.TxnMarkersPartitionResponse) { werr = errors.Join(werr, pr.Err) })
		}
		if werr != nil {
			err = errors.Join(err, fmt.Errorf("marker on %s/%d: %w", h.topic, h.partition, werr))
			left = append(left, h)
			continue
		}
		resolved = append(resolved, h)
	}
	return resolved, left, err
}

func orUnknown(s string) string {
	if s == "" {
		return "unknown"
	}
	return s
}
