//go:build integration

package stage

import (
	"context"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/adtrack/postback/pkg/testenv"
)

// TestGroupOffsetsBlockedIntegration leaves a transactional offset commit
// pending on the real broker, as a transaction Kafka left open on
// __consumer_offsets does: the watchdog must see the group's offsets
// blocked and find the transaction there (the stalls after broker
// restarts), and see them free once it ends.
func TestGroupOffsetsBlockedIntegration(t *testing.T) {
	brokers := testenv.Kafka(t)
	in := testenv.Topic(t, brokers, 3)
	group := testenv.Name("stage")
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()

	txn, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.TransactionalID(testenv.Name("txn")),
		kgo.TransactionTimeout(time.Minute), kgo.DefaultProduceTopic(in))
	if err != nil {
		t.Fatal(err)
	}
	defer txn.Close()
	if err := txn.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	if err := txn.ProduceSync(ctx, &kgo.Record{Value: []byte("x")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	commitPending(ctx, t, txn, group, in)

	p, err := NewProber(kgo.SeedBrokers(brokers...))
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if blocked, err := groupOffsetsBlocked(ctx, p, group, []string{in}); err != nil || !blocked {
		t.Fatalf("groupOffsetsBlocked = %v, %v with an offset commit pending; want true", blocked, err)
	}
	hs, err := findHanging(ctx, p, kadm.TopicsSet{"__consumer_offsets": {}}, 0)
	if err != nil {
		t.Fatal(err)
	}
	id, _, _ := txn.ProducerID(ctx)
	if !containsProducer(hs, "__consumer_offsets", id) {
		t.Errorf("findHanging on __consumer_offsets = %v; want producer %d's open transaction", hs, id)
	}

	if err := txn.EndTransaction(ctx, kgo.TryAbort); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		blocked, err := groupOffsetsBlocked(ctx, p, group, []string{in})
		if err == nil && !blocked {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("groupOffsetsBlocked = %v, %v 30s after the transaction ended; want false", blocked, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// commitPending adds an offset commit for group on topic/0 to txn's open
// transaction, leaving it pending until the transaction ends.
func commitPending(ctx context.Context, t *testing.T, txn *kgo.Client, group, topic string) {
	t.Helper()
	id, epoch, err := txn.ProducerID(ctx)
	if err != nil {
		t.Fatal(err)
	}
	txnID, _ := txn.OptValue(kgo.TransactionalID).(string)
	add := kmsg.NewPtrAddOffsetsToTxnRequest()
	add.TransactionalID, add.ProducerID, add.ProducerEpoch, add.Group = txnID, id, epoch, group
	addResp, err := add.RequestWith(ctx, txn)
	if err == nil {
		err = kerr.ErrorForCode(addResp.ErrorCode)
	}
	if err != nil {
		t.Fatalf("add offsets to transaction: %v", err)
	}
	req := kmsg.NewPtrTxnOffsetCommitRequest()
	req.TransactionalID, req.Group, req.ProducerID, req.ProducerEpoch, req.Generation = txnID, group, id, epoch, -1
	listed, err := kadm.NewClient(txn).ListTopics(ctx, topic)
	if err != nil {
		t.Fatal(err)
	}
	rt := kmsg.NewTxnOffsetCommitRequestTopic()
	rt.Topic, rt.TopicID = topic, listed[topic].ID // v6+ name topics by id
	rp := kmsg.NewTxnOffsetCommitRequestTopicPartition()
	rp.Partition, rp.Offset = 0, 1
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(ctx, txn)
	if err != nil {
		t.Fatalf("transactional offset commit: %v", err)
	}
	for _, rt := range resp.Topics {
		for _, rp := range rt.Partitions {
			if err := kerr.ErrorForCode(rp.ErrorCode); err != nil {
				t.Fatalf("transactional offset commit of %s/%d: %v", rt.Topic, rp.Partition, err)
			}
		}
	}
}

func containsProducer(hs []hanging, topic string, id int64) bool {
	for _, h := range hs {
		if h.topic == topic && h.d.ProducerID == id {
			return true
		}
	}
	return false
}

// TestRecordsCommittedIntegration: on the real broker (transactions v2,
// a new epoch at every transaction's end) a stage records each transaction
// the broker committed, by its own producer epoch, so a hanging one can be
// given its commit marker.
func TestRecordsCommittedIntegration(t *testing.T) {
	cfg, out := integrationConfig(t)
	p, err := NewProber(cfg.Kafka.Opts("")...)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	cfg.Prober = p
	counts := map[string]int{}
	stop := runStage(t, cfg, counter{out: out})
	for range 5 {
		produceInputs(t, cfg.Kafka.Brokers(), cfg.Inputs[0], 20, 3, counts)
		time.Sleep(100 * time.Millisecond)
	}
	waitOutputs(t, cfg.Kafka.Brokers(), out, 100, time.Minute)
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	p.mu.Lock()
	var ended []endedTxn
	for _, l := range p.ended { // one stage: one transactional id
		ended = append(ended, l...)
	}
	p.mu.Unlock()
	seen := map[producerEpoch]bool{}
	for _, e := range ended {
		if !e.committed || seen[e.pe] {
			t.Fatalf("recorded %+v: want each committed transaction once, by its own epoch (all: %+v)", e, ended)
		}
		seen[e.pe] = true
	}
	// The first transaction's epoch is read before its commit and each
	// later one's differs: all but possibly the last are recorded.
	if len(ended) < 2 {
		t.Errorf("%d committed transactions recorded over 5 input batches, want several", len(ended))
	}
}

// TestClusterRunsV2Integration: the project's broker (Kafka 4) finalizes
// transactions v2, and a prober that has seen no stage's transaction
// knows it from the cluster alone, as one does in a process restarted
// just before a broker restart.
func TestClusterRunsV2Integration(t *testing.T) {
	brokers := testenv.Kafka(t)
	p, err := NewProber(kgo.SeedBrokers(brokers...))
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if p.isV2("any.clickid.i") {
		t.Fatal("a fresh prober says v2 from its own records")
	}
	if !p.clusterRunsV2(ctx) {
		t.Fatal("clusterRunsV2 = false on the local Kafka 4 broker, which finalizes transaction.version 2")
	}
}
