package stage

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/adtrack/postback/pkg/kafkaconn"
	"github.com/adtrack/postback/pkg/statestore"
)

// inspectedCounter is the counter stage exporting how many keys its owned
// stores hold, as an Inspector.
type inspectedCounter struct {
	counter
	keys  atomic.Int64
	calls atomic.Int64
}

func (c *inspectedCounter) InspectState(stores map[int32]*statestore.Store) error {
	total := 0
	for _, s := range stores {
		n, err := s.Count(nil)
		if err != nil {
			return err
		}
		total += n
	}
	c.keys.Store(int64(total))
	c.calls.Add(1)
	return nil
}

// TestMetricsMoveKfake runs the counter stage over 300 records and checks
// that throughput, freshness, lag and the state gauges moved, and that the
// per-partition and state series are dropped when the stage stops.
func TestMetricsMoveKfake(t *testing.T) {
	const in, out, keys, n = "in", "out", 7, 300
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(3, in, out, "test.count-changelog"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	reg := prometheus.NewRegistry()
	m := NewMetrics(reg, "test")
	cfg := Config{
		Name: "count", Kafka: kafkaconn.Plain(c.ListenAddrs()), Group: "test", Inputs: []string{in},
		StateDir: t.TempDir(), TransactionTimeout: 10 * time.Second, MaxPollRecords: 20,
		StatsInterval: 20 * time.Millisecond, Metrics: m, Logger: testLogger(t),
	}
	produceInputs(t, cfg.Kafka.Brokers(), in, n, keys, map[string]int{})
	p := &inspectedCounter{counter: counter{out: out}}
	stop := runStage(t, cfg, p)
	waitOutputs(t, cfg.Kafka.Brokers(), out, n, time.Minute)
	waitFor(t, "the inspector to see every key", func() bool { return p.keys.Load() == keys })

	if got := value(t, m.records.WithLabelValues("count")); got != n {
		t.Errorf("records_total = %v, want %d", got, n)
	}
	// Only committed transactions are observed: exactly one sample per
	// input record, however many transactions aborted on the way.
	count, sum := histogram(t, m.freshness.WithLabelValues("count"))
	if count != n || sum <= 0 || sum > n*60 {
		t.Errorf("freshness: %d samples summing to %vs, want %d samples of under a minute", count, sum, n)
	}
	if got := series(m.lag); got != 3 {
		t.Errorf("%d consumer_lag series, want one per input partition (3)", got)
	}
	for _, part := range []string{"0", "1", "2"} {
		if got := value(t, m.lag.WithLabelValues("count", in, part)); got != 0 {
			t.Errorf("consumer_lag of %s/%s = %v after everything was read, want 0", in, part, got)
		}
	}
	if got := value(t, m.stateDisk.WithLabelValues("count")); got <= 0 {
		t.Errorf("state_disk_bytes = %v while the stage owns 3 stores", got)
	}

	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if got := series(m.lag); got != 0 {
		t.Errorf("%d consumer_lag series left after the stage stopped, want 0", got)
	}
	if got := value(t, m.stateDisk.WithLabelValues("count")); got != 0 {
		t.Errorf("state_disk_bytes = %v after the stage stopped, want 0", got)
	}
	if got := p.keys.Load(); got != 0 {
		t.Errorf("the inspector's last call saw %d keys after the stage stopped, want 0 (no stores)", got)
	}
}

func TestLagIsHighWatermarkMinusNextOffset(t *testing.T) {
	m := NewMetrics(nil, "test")
	r := newRunner(Config{Name: "s", Kafka: kafkaconn.Plain(nil), Metrics: m, Inputs: []string{"t"}}, counter{})
	r.setLag(kgo.FetchTopicPartition{Topic: "t", FetchPartition: kgo.FetchPartition{Partition: 2, HighWatermark: 10,
		Records: []*kgo.Record{{Offset: 3}, {Offset: 4}}}})
	if got := value(t, m.lag.WithLabelValues("s", "t", "2")); got != 5 {
		t.Errorf("lag = %v, want 10 - 5 = 5", got)
	}
	r.forgetLag(2)
	if got := series(m.lag); got != 0 {
		t.Errorf("%d lag series after forgetLag, want 0", got)
	}
}

// histogram returns the sample count and sum of one histogram series.
func histogram(t *testing.T, o prometheus.Observer) (uint64, float64) {
	t.Helper()
	h := write(t, o.(prometheus.Collector)).GetHistogram()
	return h.GetSampleCount(), h.GetSampleSum()
}

// value returns the value of one counter or gauge series.
func value(t *testing.T, c prometheus.Collector) float64 {
	t.Helper()
	d := write(t, c)
	if d.GetCounter() != nil {
		return d.GetCounter().GetValue()
	}
	return d.GetGauge().GetValue()
}

// write collects the one series of c.
func write(t *testing.T, c prometheus.Collector) *dto.Metric {
	t.Helper()
	ch := make(chan prometheus.Metric, 1)
	c.Collect(ch)
	d := new(dto.Metric)
	if err := (<-ch).Write(d); err != nil {
		t.Fatal(err)
	}
	return d
}

// series counts the series a collector holds.
func series(c prometheus.Collector) int {
	ch := make(chan prometheus.Metric)
	go func() { c.Collect(ch); close(ch) }()
	n := 0
	for range ch {
		n++
	}
	return n
}

// waitFor polls cond for up to 10 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	for !cond() {
		select {
		case <-ctx.Done():
			t.Fatalf("timed out waiting for %s", what)
		case <-time.After(10 * time.Millisecond):
		}
	}
}
