package stage

import (
	"testing"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func TestOutcome(t *testing.T) {
	at := func(txnID, state string, coordEpoch, epoch int16) hanging {
		return hanging{topic: "t", partition: 1, txnID: txnID, state: state, epoch: coordEpoch,
			d: kadm.DescribedProducer{ProducerID: 4, ProducerEpoch: epoch}}
	}
	const id = "g.clickid.i"
	type want struct{ commit, known bool }
	abandoned, committed := endedTxn{}, endedTxn{committed: true}
	for name, tc := range map[string]struct {
		h          hanging
		endedTxnID string // "" when the stage recorded nothing
		ended      endedTxn
		v2         bool
		want       want
	}{
		"committed: the broker accepted it (the last session's txn aborted, + 2)": {at(id, "CompleteAbort", 569, 567), id, committed, true, want{true, true}},
		"committed, coordinator already past":                                     {at(id, "CompleteCommit", 600, 567), id, committed, true, want{true, true}},
		"committed by another transactional id":                                   {at(id, "CompleteAbort", 569, 567), "g.device.i", committed, true, want{false, false}},
		"abandoned, aborted at a fence (v2)":                                      {at(id, "CompleteAbort", 311, 309), id, abandoned, true, want{false, true}},
		"abandoned, aborted on timeout (v1)":                                      {at(id, "CompleteAbort", 310, 309), id, abandoned, false, want{false, true}},
		"abandoned, coordinator still on it":                                      {at(id, "Ongoing", 309, 309), id, abandoned, true, want{false, false}},
		"abandoned by another transactional id":                                   {at(id, "CompleteAbort", 311, 309), "g.device.i", abandoned, true, want{false, false}},
		"v2, committed: commit at epoch + 1":                                      {at(id, "CompleteCommit", 140, 139), "", abandoned, true, want{true, true}},
		"v2, aborted: abort at epoch + 1":                                         {at(id, "CompleteAbort", 140, 139), "", abandoned, true, want{false, true}},
		"v2, epoch + 2 may be a later transaction":                                {at(id, "CompleteAbort", 141, 139), "", abandoned, true, want{false, false}},
		"v2, still deciding":                                                      {at(id, "PrepareCommit", 140, 139), "", abandoned, true, want{false, false}},
		"v1: epochs shared by transactions":                                       {at(id, "CompleteCommit", 140, 139), "", abandoned, false, want{false, false}},
		"coordinator unknown":                                                     {at("", "", 0, 139), id, abandoned, true, want{false, false}},
		"v2, commit at epoch + 1 of another txn id":                               {at(id, "CompleteCommit", 140, 139), "", abandoned, false, want{false, false}},
	} {
		commit, known := outcome(tc.h, tc.endedTxnID, tc.ended, tc.v2)
		if (want{commit, known}) != tc.want {
			t.Errorf("%s: outcome = commit %v, known %v; want %+v", name, commit, known, tc.want)
		}
	}
}

func TestProberRemembersEnded(t *testing.T) {
	p := &Prober{ended: map[string][]endedTxn{}}
	p.abandon(4, 309, "g.clickid.i")
	p.committed(5, 12, "g.device.i")
	if id, e, ok := p.endedAs(4, 309); !ok || id != "g.clickid.i" || e.committed {
		t.Fatalf("endedAs(4, 309) = %q, %+v, %v; want abandoned by g.clickid.i", id, e, ok)
	}
	if id, e, ok := p.endedAs(5, 12); !ok || id != "g.device.i" || !e.committed {
		t.Fatalf("endedAs(5, 12) = %q, %+v, %v; want committed by g.device.i", id, e, ok)
	}
	if _, _, ok := p.endedAs(4, 310); ok {
		t.Fatal("epoch 310 was never ended")
	}
	// Only the latest transactions are kept, and the latest is always there.
	for e := range int16(3 * endedPerTxnID) {
		p.committed(6, e, "g.ipua.i")
	}
	if n := len(p.ended["g.ipua.i"]); n > endedPerTxnID {
		t.Errorf("%d transactions kept for one transactional id, want at most %d", n, endedPerTxnID)
	}
	if _, _, ok := p.endedAs(6, 3*endedPerTxnID-1); !ok {
		t.Error("the latest transaction was dropped")
	}
	if _, _, ok := p.endedAs(6, 0); ok {
		t.Error("the oldest transaction was kept")
	}
}

// TestTxnEpochsAlone checks when a transaction's producer epoch names it
// alone: the first of a session, and later ones only while the epoch moves
// at every transaction (transactions v2), which sets bumped.
func TestTxnEpochsAlone(t *testing.T) {
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, "out"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...), kgo.TransactionalID("tx"), kgo.DefaultProduceTopic("out"))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	var e txnEpochs
	var ids []producerEpoch
	for i := range 3 {
		if err := cl.BeginTransaction(); err != nil {
			t.Fatal(err)
		}
		id, alone := e.next(t.Context(), cl)
		if i == 0 && !alone {
			t.Fatal("the first transaction of a session is alone on its epoch")
		}
		if err := cl.ProduceSync(t.Context(), &kgo.Record{Value: []byte("v")}).FirstErr(); err != nil {
			t.Fatal(err)
		}
		if err := cl.EndTransaction(t.Context(), kgo.TryCommit); err != nil {
			t.Fatal(err)
		}
		// Alone exactly when the epoch differs from the previous one's.
		if i > 0 && (alone != (id != ids[i-1]) || e.bumped != alone) {
			t.Fatalf("transaction %d: alone = %v, bumped = %v with epochs %v then %v", i, alone, e.bumped, ids[i-1], id)
		}
		ids = append(ids, id)
	}
	e.lost = true
	if _, alone := e.next(t.Context(), cl); alone {
		t.Fatal("after an unknown epoch no transaction of the session is alone")
	}
}

func TestTransactionsV2(t *testing.T) {
	f := func(name string, max int16) kmsg.ApiVersionsResponseFinalizedFeature {
		return kmsg.ApiVersionsResponseFinalizedFeature{Name: name, MaxVersionLevel: max}
	}
	for _, c := range []struct {
		name     string
		features []kmsg.ApiVersionsResponseFinalizedFeature
		want     bool
	}{
		{"none (Kafka 3, or features not reported)", nil, false},
		{"transaction.version 1", []kmsg.ApiVersionsResponseFinalizedFeature{f("metadata.version", 25), f("transaction.version", 1)}, false},
		{"transaction.version 2", []kmsg.ApiVersionsResponseFinalizedFeature{f("metadata.version", 25), f("transaction.version", 2)}, true},
		{"a later level", []kmsg.ApiVersionsResponseFinalizedFeature{f("transaction.version", 3)}, true},
		{"another feature at 2", []kmsg.ApiVersionsResponseFinalizedFeature{f("group.version", 2)}, false},
	} {
		if got := transactionsV2(c.features); got != c.want {
			t.Errorf("%s: %v, want %v", c.name, got, c.want)
		}
	}
}
