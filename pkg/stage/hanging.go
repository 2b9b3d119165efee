package stage

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
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
// the operator resolves it (docs/attribution.md, "Hanging transactions").

// groupOffsetsBlocked reports whether the group's committed offsets are
// blocked by an open transaction (OffsetFetch with require_stable answers
// UNSTABLE_OFFSET_COMMIT for a partition of topics).
func groupOffsetsBlocked(ctx context.Context, p *Prober, group string, topics []string) (bool, error) {
	req := kmsg.NewPtrOffsetFetchRequest()
	req.Group = group
	req.RequireStable = true
	for _, t := range topics {
		rt := kmsg.NewOffsetFetchRequestTopic()
		rt.Topic = t
		req.Topics = append(req.Topics, rt)
	}
	resp, err := req.RequestWith(ctx, p.cl)
	if err != nil {
		return false, err
	}
	if err := kerr.ErrorForCode(resp.ErrorCode); err != nil {
		return errors.Is(err, kerr.UnstableOffsetCommit), nil
	}
	for _, t := range resp.Topics {
		for _, pt := range t.Partitions {
			if errors.Is(kerr.ErrorForCode(pt.ErrorCode), kerr.UnstableOffsetCommit) {
				return true, nil
			}
		}
	}
	return false, nil
}

// describeHanging names the transactions open for longer than minAge on
// the given partitions (nil: every partition of the topics), with their
// transactional id and what the coordinator says of them, for an operator.
func describeHanging(ctx context.Context, p *Prober, partitions kadm.TopicsSet, minAge time.Duration) (string, error) {
	producers, err := p.adm.DescribeProducers(ctx, partitions)
	if err != nil {
		return "", fmt.Errorf("describe producers: %w", err)
	}
	var found []string
	ids := map[int64]bool{}
	type open struct {
		topic     string
		partition int32
		d         kadm.DescribedProducer
	}
	var opens []open
	producers.EachPartition(func(dp kadm.DescribedProducersPartition) {
		for _, d := range dp.ActiveProducers {
			if d.CurrentTxnStartOffset < 0 || time.Since(time.UnixMilli(d.LastTimestamp)) < minAge {
				continue
			}
			opens = append(opens, open{dp.Topic, dp.Partition, d})
			ids[d.ProducerID] = true
		}
	})
	if len(opens) == 0 {
		return "", nil
	}
	pids := make([]int64, 0, len(ids))
	for id := range ids {
		pids = append(pids, id)
	}
	txnOf := map[int64]string{}
	if lt, err := p.adm.ListTransactions(ctx, pids, nil); err == nil {
		var names []string
		for _, t := range lt {
			txnOf[t.ProducerID] = t.TxnID
			names = append(names, t.TxnID)
		}
		if dt, err := p.adm.DescribeTransactions(ctx, names...); err == nil {
			for _, t := range dt {
				txnOf[t.ProducerID] = fmt.Sprintf("%s (coordinator: %s at epoch %d)", t.TxnID, t.State, t.ProducerEpoch)
			}
		}
	}
	for _, o := range opens {
		found = append(found, fmt.Sprintf("producer %d epoch %d of transactional id %s on %s/%d from offset %d since %s",
			o.d.ProducerID, o.d.ProducerEpoch, orUnknown(txnOf[o.d.ProducerID]), o.topic, o.partition,
			o.d.CurrentTxnStartOffset, time.UnixMilli(o.d.LastTimestamp).UTC().Format(time.RFC3339)))
	}
	sort.Strings(found)
	return "transaction left open by Kafka (hanging; see docs/attribution.md, Hanging transactions): " + strings.Join(found, "; "), nil
}

func orUnknown(s string) string {
	if s == "" {
		return "unknown"
	}
	return s
}
