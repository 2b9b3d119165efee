package testenv

import (
	"fmt"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestReadAllWaitsForLatePartitions: a partition whose broker answers
// fetches seconds after the others still gets read to its stable offset
// (an earlier ReadAll returned after 2 s of quiet with one partition read,
// which failed TestTwoInstancesKfake in CI); markers count as progress,
// aborted records and records of an open transaction are not returned.
func TestReadAllWaitsForLatePartitions(t *testing.T) {
	const topic = "t"
	c, err := kfake.NewCluster(kfake.NumBrokers(3), kfake.SeedTopics(3, topic))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	brokers := c.ListenAddrs()
	for p := range int32(3) {
		if err := c.MoveTopicPartition(topic, p, p); err != nil {
			t.Fatal(err)
		}
	}

	produce := func(cl *kgo.Client, p int32, vals ...string) {
		t.Helper()
		for _, v := range vals {
			r := &kgo.Record{Topic: topic, Partition: p, Value: []byte(v)}
			if err := cl.ProduceSync(t.Context(), r).FirstErr(); err != nil {
				t.Fatal(err)
			}
		}
	}
	// txn leaves its transaction open unless end is given.
	txn := func(id string, p int32, end []kgo.TransactionEndTry, vals ...string) *kgo.Client {
		t.Helper()
		cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.TransactionalID(id),
			kgo.RecordPartitioner(kgo.ManualPartitioner()))
		if err != nil {
			t.Fatal(err)
		}
		if err := cl.BeginTransaction(); err != nil {
			t.Fatal(err)
		}
		produce(cl, p, vals...)
		for _, e := range end {
			if err := cl.EndTransaction(t.Context(), e); err != nil {
				t.Fatal(err)
			}
		}
		return cl
	}
	plain, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	defer plain.Close()
	produce(plain, 0, "p0-a", "p0-b", "p0-c")
	txn("x", 1, []kgo.TransactionEndTry{kgo.TryCommit}, "p1-a", "p1-b").Close()
	txn("y", 1, []kgo.TransactionEndTry{kgo.TryAbort}, "p1-aborted").Close() // the partition ends in an abort marker
	produce(plain, 2, "p2-a")
	open := txn("z", 2, nil, "p2-open") // holds partition 2's stable offset
	defer open.Close()

	// The broker leading partition 1 answers fetches 4 s late at first.
	var once sync.Once
	var start time.Time
	c.ControlKey(int16(kmsg.Fetch), func(kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		once.Do(func() { start = time.Now() })
		if c.CurrentNode() == 1 && time.Since(start) < 4*time.Second {
			c.SleepControl(func() { time.Sleep(4*time.Second - time.Since(start)) })
		}
		return nil, nil, false
	})

	var got []string
	for _, r := range ReadAll(t, brokers, topic) {
		got = append(got, fmt.Sprintf("%d:%s", r.Partition, r.Value))
	}
	sort.Strings(got)
	if want := "[0:p0-a 0:p0-b 0:p0-c 1:p1-a 1:p1-b 2:p2-a]"; fmt.Sprint(got) != want {
		t.Fatalf("read %v, want %s", got, want)
	}

}
