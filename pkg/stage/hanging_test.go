package stage

import (
	"testing"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
)

func TestAbortable(t *testing.T) {
	at := func(txnID, state string, coordEpoch, epoch int16) hanging {
		return hanging{topic: "t", partition: 1, txnID: txnID, state: state, epoch: coordEpoch,
			d: kadm.DescribedProducer{ProducerID: 4, ProducerEpoch: epoch}}
	}
	for name, tc := range map[string]struct {
		h     hanging
		txnID string
		abort bool
	}{
		"coordinator aborted it and moved on": {at("g.clickid.i", "CompleteAbort", 311, 309), "g.clickid.i", true},
		"coordinator moved on by a fence":     {at("g.clickid.i", "Ongoing", 310, 309), "g.clickid.i", true},
		"coordinator still on its epoch":      {at("g.clickid.i", "Ongoing", 309, 309), "g.clickid.i", false},
		"coordinator unknown":                 {at("", "", 0, 309), "g.clickid.i", false},
		"another transactional id":            {at("g.device.i", "CompleteAbort", 311, 309), "g.clickid.i", false},
		"not abandoned here":                  {at("g.clickid.i", "CompleteAbort", 311, 309), "", false},
	} {
		if got := abortable(tc.h, tc.txnID); got != tc.abort {
			t.Errorf("%s: abortable = %v, want %v", name, got, tc.abort)
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
// at every transaction (transactions v2).
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
		if i > 0 && alone != (id != ids[i-1]) {
			t.Fatalf("transaction %d: alone = %v with epochs %v then %v", i, alone, ids[i-1], id)
		}
		ids = append(ids, id)
	}
	e.lost = true
	if _, alone := e.next(t.Context(), cl); alone {
		t.Fatal("after an unknown epoch no transaction of the session is alone")
	}
}
