package stage

import (
	"testing"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
)

func TestOutcome(t *testing.T) {
	at := func(txnID, state string, coordEpoch, epoch int16) hanging {
		return hanging{topic: "t", partition: 1, txnID: txnID, state: state, epoch: coordEpoch,
			d: kadm.DescribedProducer{ProducerID: 4, ProducerEpoch: epoch}}
	}
	const id = "g.clickid.i"
	type want struct{ commit, known bool }
	for name, tc := range map[string]struct {
		h         hanging
		abandoned string
		v2        bool
		want      want
	}{
		"abandoned, aborted at a fence (v2)":        {at(id, "CompleteAbort", 311, 309), id, true, want{false, true}},
		"abandoned, aborted on timeout (v1)":        {at(id, "CompleteAbort", 310, 309), id, false, want{false, true}},
		"abandoned, coordinator still on it":        {at(id, "Ongoing", 309, 309), id, true, want{false, false}},
		"abandoned by another transactional id":     {at(id, "CompleteAbort", 311, 309), "g.device.i", true, want{false, false}},
		"v2, committed: commit at epoch + 1":        {at(id, "CompleteCommit", 140, 139), "", true, want{true, true}},
		"v2, aborted: abort at epoch + 1":           {at(id, "CompleteAbort", 140, 139), "", true, want{false, true}},
		"v2, epoch + 2 may be a later transaction":  {at(id, "CompleteAbort", 141, 139), "", true, want{false, false}},
		"v2, still deciding":                        {at(id, "PrepareCommit", 140, 139), "", true, want{false, false}},
		"v1: epochs shared by transactions":         {at(id, "CompleteCommit", 140, 139), "", false, want{false, false}},
		"coordinator unknown":                       {at("", "", 0, 139), id, true, want{false, false}},
		"v2, commit at epoch + 1 of another txn id": {at(id, "CompleteCommit", 140, 139), "", false, want{false, false}},
	} {
		commit, known := outcome(tc.h, tc.abandoned, tc.v2)
		if (want{commit, known}) != tc.want {
			t.Errorf("%s: outcome = commit %v, known %v; want %+v", name, commit, known, tc.want)
		}
	}
}

func TestProberRemembersAbandoned(t *testing.T) {
	p := &Prober{abandoned: map[producerEpoch]string{}}
	p.abandon(4, 309, "g.clickid.i")
	if id, ok := p.wasAbandoned(4, 309); !ok || id != "g.clickid.i" {
		t.Fatalf("wasAbandoned(4, 309) = %q, %v", id, ok)
	}
	if _, ok := p.wasAbandoned(4, 310); ok {
		t.Fatal("epoch 310 was never abandoned")
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
