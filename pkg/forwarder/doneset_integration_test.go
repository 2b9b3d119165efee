//go:build integration

package forwarder_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/encoding/json"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/adtrack/postback/pkg/forward"
	"github.com/adtrack/postback/pkg/forwarder"
	"github.com/adtrack/postback/pkg/testenv"
)

// TestDoneSetsRestored starts a forwarder on records whose offsets were
// never committed but whose state a previous instance wrote: done sets,
// a delivery's own done record (the format before done sets), and a
// retrying record of a delivery a later done set holds. Only the
// deliveries without state are sent; once the committed offset passes
// them, every state record is tombstoned.
func TestDoneSetsRestored(t *testing.T) {
	e := newEnv(t, 1)
	egress := localEgress(t)
	rc := newReceiver(t, func(w http.ResponseWriter, _ int) { w.WriteHeader(http.StatusOK) })
	reg := registry(t, egress, endpoint("p", rc.srv.URL+"/cb?click={click_id}"))
	cfg := e.config(reg, egress)
	cfg.Retry.Initial = 50 * time.Millisecond
	e.produceInstalls(0, 10) // offsets 0..9 of the one partition
	id := func(i int) string {
		return forward.DeliveryID(forward.KindInstall, forwarder.AttributedInstall(i).EventID, "p")
	}
	src := func(i int) forward.Source {
		return forward.Source{Topic: e.topics.InstallsAttributed, Partition: 0, Offset: int64(i)}
	}
	set := func(from, to int) []byte {
		ds := forward.DoneSet{Topic: e.topics.InstallsAttributed, Partition: 0, Last: int64(to)}
		for i := from; i <= to; i++ {
			ds.Done = append(ds.Done, forward.DoneEntry{DeliveryID: id(i), Offset: int64(i)})
		}
		v, _ := json.Marshal(ds)
		return v
	}
	state := func(i int, status string) []byte {
		st := forward.State{Meta: forward.Meta{DeliveryID: id(i), EndpointID: "p"}, Status: status, Attempts: 1, Source: src(i)}
		if status == forward.StateRetrying {
			st.Due = time.Now()
			st.Request = &forward.Request{DeliveryID: id(i), EndpointID: "p", Method: "GET", URL: rc.srv.URL + "/cb?stale", KeyID: "k1"}
		}
		v, _ := json.Marshal(st)
		return v
	}
	recs := []*kgo.Record{
		{Key: []byte(forward.DoneSetKeyPrefix + "old/1"), Value: set(0, 4)},
		{Key: []byte(id(5)), Value: state(5, forward.StateDone)},
		{Key: []byte(id(6)), Value: state(6, forward.StateRetrying)},
		{Key: []byte(forward.DoneSetKeyPrefix + "old/2"), Value: set(6, 7)}, // 6 was delivered after all
	}
	for _, r := range recs {
		r.Topic = e.topics.ForwarderState
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := e.prod.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}

	stop := e.run(cfg)
	waitFor(t, 30*time.Second, "the deliveries without state", func() bool { return rc.distinct() >= 2 })
	time.Sleep(time.Second) // a retry of 6, or a repeat, would come now
	stop()
	want := map[string]bool{id(8): true, id(9): true}
	for _, h := range rc.hits() {
		if !want[h.id] {
			t.Errorf("sent %s (%s), whose state says done", h.id, h.target)
		}
	}
	if len(rc.hits()) != 2 {
		t.Errorf("%d requests, want 2 (installs 8 and 9 once each)", len(rc.hits()))
	}

	// Every record of the state is below the committed offset now: the
	// last value of each key is a tombstone.
	waitFor(t, 10*time.Second, "the state tombstoned", func() bool {
		live := map[string]bool{}
		for _, r := range testenv.ReadAll(t, e.brokers, e.topics.ForwarderState) {
			live[string(r.Key)] = len(r.Value) > 0
		}
		for k, v := range live {
			if v {
				t.Logf("live state %s (set: %v)", k, strings.HasPrefix(k, forward.DoneSetKeyPrefix))
				return false
			}
		}
		return len(live) >= len(recs)+1 // ours, and at least one set of the new deliveries
	})
}
