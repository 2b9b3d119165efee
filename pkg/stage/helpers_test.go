package stage

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/adtrack/postback/pkg/statestore"
	"github.com/adtrack/postback/pkg/testenv"
)

// counter counts records per key in state and emits "key=count" to out.
type counter struct {
	out   string
	delay time.Duration // per record, to make a crash land mid-stream
}

func (c counter) Process(ctx context.Context, rec *kgo.Record, st *statestore.Batch, emit func(*kgo.Record)) error {
	v, ok, err := st.Get(rec.Key)
	if err != nil {
		return err
	}
	n := 0
	if ok {
		if n, err = strconv.Atoi(string(v)); err != nil {
			return fmt.Errorf("stored count %q: %w", v, err)
		}
	}
	n++
	st.Set(rec.Key, []byte(strconv.Itoa(n)))
	emit(&kgo.Record{Topic: c.out, Key: rec.Key, Value: fmt.Appendf(nil, "%s=%d", rec.Key, n)})
	if c.delay > 0 {
		time.Sleep(c.delay)
	}
	return nil
}

// produceInputs writes n records with keys k0..k(keys-1), round robin, and
// returns how many each key got (added to counts).
func produceInputs(t testing.TB, brokers []string, topic string, n, keys int, counts map[string]int) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.DefaultProduceTopic(topic))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	recs := make([]*kgo.Record, n)
	for i := range recs {
		k := fmt.Sprintf("k%d", i%keys)
		counts[k]++
		recs[i] = &kgo.Record{Key: []byte(k), Value: []byte(strconv.Itoa(i))}
	}
	if err := cl.ProduceSync(t.Context(), recs...).FirstErr(); err != nil {
		t.Fatalf("produce inputs: %v", err)
	}
}

// waitOutputs consumes topic read_committed until it has seen want records
// (or more), and returns them.
func waitOutputs(t testing.TB, brokers []string, topic string, want int, timeout time.Duration) []*kgo.Record {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchIsolationLevel(kgo.ReadCommitted()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(t.Context(), timeout)
	defer cancel()
	var out []*kgo.Record
	for len(out) < want {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("saw %d of %d outputs in %v", len(out), want, timeout)
		}
		fs.EachRecord(func(r *kgo.Record) { out = append(out, r) })
	}
	return out
}

// checkCounts asserts that for every key the outputs, in offset order,
// are key=1 .. key=counts[key] exactly once, and nothing else.
func checkCounts(t testing.TB, outs []*kgo.Record, counts map[string]int) {
	t.Helper()
	seq := map[string][]int{}
	for _, r := range outs {
		k, v, ok := strings.Cut(string(r.Value), "=")
		n, err := strconv.Atoi(v)
		if !ok || err != nil || k != string(r.Key) {
			t.Fatalf("bad output %q (key %q)", r.Value, r.Key)
		}
		seq[k] = append(seq[k], n)
	}
	total := 0
	for k, want := range counts {
		total += want
		got := seq[k]
		bad := len(got) != want
		for i := 0; !bad && i < want; i++ {
			bad = got[i] != i+1
		}
		if bad {
			if len(got) > 20 {
				got = got[:20]
			}
			t.Errorf("key %s: %d outputs, want 1..%d; first: %v", k, len(seq[k]), want, got)
		}
	}
	if len(outs) != total || len(seq) != len(counts) {
		t.Errorf("%d outputs over %d keys, want %d over %d", len(outs), len(seq), total, len(counts))
	}
}

// runStage starts Run in the background; the returned stop cancels it and
// returns Run's error (nil for a clean cancel).
func runStage(t testing.TB, cfg Config, p Processor) (stop func() error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Run(ctx, cfg, p) }()
	stopped := false
	var res error
	stop = func() error {
		if stopped {
			return res
		}
		stopped = true
		cancel()
		select {
		case err := <-done:
			if !errors.Is(err, context.Canceled) {
				res = err
			}
		case <-time.After(60 * time.Second):
			res = fmt.Errorf("Run did not return within 60s of cancel")
		}
		return res
	}
	t.Cleanup(func() { _ = stop() })
	return stop
}

// createChangelog creates cfg's compacted changelog with n partitions
// (Run expects it; join.EnsureTopics creates the attribution stages') and
// deletes it at cleanup.
func createChangelog(t testing.TB, cfg Config, n int32) {
	t.Helper()
	testenv.NamedTopic(t, cfg.Kafka.Brokers(), cfg.Group+"."+cfg.Name+"-changelog", n, map[string]string{"cleanup.policy": "compact"})
}
