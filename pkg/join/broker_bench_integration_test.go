//go:build integration

package join

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/adtrack/postback/pkg/kafkaconn"
	"github.com/adtrack/postback/pkg/stage"
	"github.com/adtrack/postback/pkg/statestore"
	"github.com/adtrack/postback/pkg/testenv"
)

// BenchmarkThroughBroker measures sustained throughput through the real
// broker (`make infra`'s, 4 partitions) in two phases: a backlog of
// BENCH_BROKER_CLICKS clicks (default 200k), then BENCH_BROKER_INSTALLS
// installs of the same users (default 100k, half by click id, half by device
// id), each produced while nothing runs. A phase is timed by its progress
// (the least advanced stage's share of the records it owes the phase,
// from the stages' records_total) from the first commit observed to the
// last, so start-up is not in the figure.
//
//   - passthrough: the ceiling Kafka transactions allow here: one stateless
//     stage (same pkg/stage loop, commit interval and poll size) copying
//     each record to an output topic;
//   - joins-1: the four stages, one instance; its clicks/s and installs/s
//     are also reported as a ratio to passthrough's, measured in the same run;
//   - joins-2: two instances in this process, each with its own state, on
//     the same input; reported as a ratio to joins-1.
//
// Sub-benchmarks run in that order and share their figures, so run them
// together (-bench ThroughBroker). The broker, the stages and the producer
// share this machine's cores.
func BenchmarkThroughBroker(b *testing.B) {
	brokers := testenv.Kafka(b)
	nClicks, nInstalls := envInt("BENCH_BROKER_CLICKS", 200_000), envInt("BENCH_BROKER_INSTALLS", 100_000)
	clicks, installs := benchUsers(0, nClicks, time.Now().Add(-3*time.Hour))
	installs = installs[:nInstalls]
	figures := map[string]phaseRates{}
	run := func(name string, f func(b *testing.B) phaseRates) {
		b.Run(name, func(b *testing.B) {
			for range b.N {
				r := f(b)
				figures[name] = r
				b.ReportMetric(r.clicks, "clicks/s")
				b.ReportMetric(r.installs, "installs/s")
				if base, ok := figures[r.versus]; ok {
					b.ReportMetric(r.clicks/base.clicks, "clicks-x-"+r.versus)
					b.ReportMetric(r.installs/base.installs, "installs-x-"+r.versus)
				}
			}
		})
	}
	run("passthrough", func(b *testing.B) phaseRates {
		return passThrough(b, brokers, clicks, installs)
	})
	run("joins-1", func(b *testing.B) phaseRates {
		r := brokerJoins(b, brokers, 1, clicks, installs)
		r.versus = "passthrough"
		return r
	})
	run("joins-2", func(b *testing.B) phaseRates {
		r := brokerJoins(b, brokers, 2, clicks, installs)
		r.versus = "joins-1"
		return r
	})
}

// phaseRates are the clicks/s and installs/s of one configuration, and the
// configuration they are compared with.
type phaseRates struct {
	clicks, installs float64
	versus           string
}

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

// counters sums a counter over registries (one per instance and start:
// a stopped instance's counts stay in its registry), by the value of one
// label.
type counters struct {
	regs        *[]*prometheus.Registry
	name, label string
}

func (c counters) get(b *testing.B, value string) float64 {
	sum := 0.0
	for _, reg := range *c.regs {
		mfs, err := reg.Gather()
		if err != nil {
			b.Fatal(err)
		}
		for _, mf := range mfs {
			if mf.GetName() != c.name {
				continue
			}
			for _, m := range mf.GetMetric() {
				for _, l := range m.GetLabel() {
					if l.GetName() == c.label && l.GetValue() == value {
						sum += m.GetCounter().GetValue()
					}
				}
			}
		}
	}
	return sum
}

// waitStable waits until each consumer group has members members and is
// Stable: a phase is timed from then, without the joins and rebalances of
// start-up.
func waitStable(b *testing.B, brokers []string, members int, groups ...string) {
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		b.Fatal(err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	deadline := time.Now().Add(2 * time.Minute)
	for time.Now().Before(deadline) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		described, err := adm.DescribeGroups(ctx, groups...)
		cancel()
		stable := err == nil
		for _, g := range groups {
			d, ok := described[g]
			if !ok || d.Err != nil || d.State != "Stable" || len(d.Members) != members {
				stable = false
			}
		}
		if stable {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	b.Fatalf("groups %v not stable with %d members in 2 min", groups, members)
}

// span is what a stage owes a phase: its count before the phase and the
// count once the phase is done.
type span struct{ from, to float64 }

// timePhase waits until every stage of want has committed its span and
// returns records per second: the phase's progress (the least advanced
// stage's share of its span) from the first commit observed to the end,
// times records, over the time between. What the first commits carried
// is left out: their processing began before anything was observed.
func timePhase(b *testing.B, c counters, want map[string]span, records float64) float64 {
	progress := func() float64 {
		p := 1.0
		for st, sp := range want {
			p = min(p, (c.get(b, st)-sp.from)/(sp.to-sp.from))
		}
		return p
	}
	deadline := time.Now().Add(10 * time.Minute)
	var start time.Time
	var from float64
	for time.Now().Before(deadline) {
		now := time.Now()
		p := progress()
		if start.IsZero() && p > 0 {
			start, from = now, p
		}
		if p >= 1 {
			if from > 0.75 {
				b.Fatalf("%.0f%% of the phase committed before it was observed: make the backlog larger", 100*from)
			}
			b.Logf("%.0f records: %.0f%% committed when first observed, the rest in %v", records, 100*from, now.Sub(start).Round(time.Millisecond))
			return records * (1 - from) / now.Sub(start).Seconds()
		}
		time.Sleep(10 * time.Millisecond)
	}
	got := map[string]float64{}
	for st := range want {
		got[st] = c.get(b, st)
	}
	b.Fatalf("phase did not drain in 10 min: committed %v, want %v", got, want)
	return 0
}

// phases produces the clicks backlog, starts the configuration (start
// returns its stop) and times the clicks; then stops it, produces the
// installs backlog, starts it again and times the installs. Producing never
// overlaps a timed phase. Several instances are timed once their groups
// are stable with all of them.
func phases(b *testing.B, brokers []string, instances int, groups []string, start func() (stop func()),
	produceClicks, produceInstalls func(), clicksPhase, installsPhase func() float64) phaseRates {
	produceClicks()
	stop := start()
	if instances > 1 {
		// Time the instances sharing the work, not the first one
		// alone before the others joined.
		waitStable(b, brokers, instances, groups...)
	}
	clicks := clicksPhase()
	stop()
	produceInstalls()
	stop = start()
	defer stop()
	if instances > 1 {
		waitStable(b, brokers, instances, groups...)
	}
	return phaseRates{clicks: clicks, installs: installsPhase()}
}

// passThrough copies the clicks, then the installs, from fresh topics to an
// output topic through one stateless stage.
func passThrough(b *testing.B, brokers []string, clicks, installs []*kgo.Record) phaseRates {
	tc := testenv.Topics(b, brokers, 4)
	cfg := testConfig(b)
	changelog, output := testenv.Name("pt-changelog"), testenv.Name("pt-out")
	testenv.NamedTopic(b, brokers, changelog, 4, map[string]string{"cleanup.policy": "compact"})
	testenv.NamedTopic(b, brokers, output, 4, nil)
	reg := prometheus.NewRegistry()
	cache := statestore.NewCache(64 << 20)
	defer cache.Close()
	sc := stage.Config{Name: "passthrough", Kafka: kafkaconn.Plain(brokers), Group: testenv.Name("pt"), Inputs: []string{tc.Clicks, tc.InstallsRaw},
		Changelog: changelog, StateDir: b.TempDir(), Cache: cache, TransactionTimeout: cfg.TransactionTimeout,
		CommitInterval: cfg.CommitInterval, SessionTimeout: cfg.SessionTimeout, StallTimeout: cfg.StallTimeout,
		MaxPollRecords: cfg.MaxPollRecords, Metrics: stage.NewMetrics(reg, "bench"),
		TransactionalID: "passthrough-bench", GroupInstanceID: "passthrough-bench"}
	copyRec := stage.ProcessorFunc(func(_ context.Context, rec *kgo.Record, _ *statestore.Batch, emit func(*kgo.Record)) error {
		emit(&kgo.Record{Topic: output, Key: rec.Key, Value: rec.Value, Timestamp: rec.Timestamp})
		return nil
	})
	start := func() func() {
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- stage.Run(ctx, sc, copyRec) }()
		return func() {
			cancel()
			if err := <-done; err != nil && !errors.Is(err, context.Canceled) {
				b.Errorf("pass-through stage: %v", err)
			}
		}
	}
	c := counters{regs: &[]*prometheus.Registry{reg}, name: "bench_records_total", label: "stage"}
	// The stage copies so fast that the joins' backlogs would fit in a
	// few transactions, and the first one is not timed: repeat them (a
	// rate per record is what is compared).
	clicks = repeat(clicks, 10)
	installs = repeat(installs, 50)
	n, m := float64(len(clicks)), float64(len(installs))
	return phases(b, brokers, 1, []string{sc.GroupID()}, start,
		func() { produce(b, brokers, retopic(clicks, tc.Clicks)) },
		func() { produce(b, brokers, retopic(installs, tc.InstallsRaw)) },
		func() float64 { return timePhase(b, c, map[string]span{"passthrough": {0, n}}, n) },
		func() float64 { return timePhase(b, c, map[string]span{"passthrough": {n, n + m}}, m) })
}

// brokerJoins runs the four stages as instances of one group on fresh
// topics: the clicks phase, then the installs phase.
func brokerJoins(b *testing.B, brokers []string, instances int, clicks, installs []*kgo.Record) phaseRates {
	cfg, tc := brokerConfig(b, brokers, "attr-bench")
	cfg.TickInterval = 0 // records_total then counts data records only
	cache := statestore.NewCache(64 << 20)
	defer cache.Close()
	cfg.Cache = cache
	b.Cleanup(func() { deleteTopicsWithPrefix(b, brokers, cfg.Group+".") })

	var regs []*prometheus.Registry
	stateDir := b.TempDir()
	start := func() func() {
		var stops []func() error
		for i := range instances {
			c := cfg
			c.StateDir = filepath.Join(stateDir, fmt.Sprint("instance-", i))
			c.InstanceID = fmt.Sprint("bench-", i)
			// A Joiner registers its metrics: a fresh registry per start.
			reg := prometheus.NewRegistry()
			c.Registerer = reg
			regs = append(regs, reg)
			stops = append(stops, runJoiner(b, c))
		}
		return func() {
			var wg sync.WaitGroup
			for _, stop := range stops {
				wg.Add(1)
				go func() {
					defer wg.Done()
					if err := stop(); err != nil {
						b.Errorf("joins: %v", err)
					}
				}()
			}
			wg.Wait()
		}
	}
	var groups []string
	for _, st := range Stages {
		groups = append(groups, cfg.Group+"."+st)
	}
	c := counters{regs: &regs, name: "attribution_records_total", label: "stage"}
	n, m := float64(len(clicks)), float64(len(installs))
	// Every bench click has an advertising id and an IP + UA: stored by
	// all three stages. Every install is won by its click id or its IDFA,
	// so the device stage decides it (the IP + UA stage never sees it) and
	// it reaches the events stage under its click id, if any, and its IDFA.
	byJoinKey := 0.0
	for _, r := range installs {
		byJoinKey++
		if strings.Contains(string(r.Value), `"click_id":"`) {
			byJoinKey++
		}
	}
	return phases(b, brokers, instances, groups, start,
		func() { produce(b, brokers, retopic(clicks, tc.Clicks)) },
		func() { produce(b, brokers, retopic(installs, tc.InstallsRaw)) },
		func() float64 {
			return timePhase(b, c, map[string]span{StageClickID: {0, n}, StageDevice: {0, n}, StageIPUA: {0, n}}, n)
		},
		func() float64 {
			return timePhase(b, c, map[string]span{StageClickID: {n, n + m}, StageDevice: {n, n + m}, StageEvents: {0, byJoinKey}}, m)
		})
}

func repeat(recs []*kgo.Record, n int) []*kgo.Record {
	out := make([]*kgo.Record, 0, n*len(recs))
	for range n {
		out = append(out, recs...)
	}
	return out
}

// retopic returns copies of recs bound for topic.
func retopic(recs []*kgo.Record, topic string) []*kgo.Record {
	out := make([]*kgo.Record, len(recs))
	for i, r := range recs {
		out[i] = &kgo.Record{Topic: topic, Key: r.Key, Value: r.Value, Timestamp: r.Timestamp}
	}
	return out
}

// deleteTopicsWithPrefix removes the topics a Joiner created for its group
// (repartition, changelog, ticks), so benchmark runs do not pile up on the
// development broker.
func deleteTopicsWithPrefix(b *testing.B, brokers []string, prefix string) {
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		b.Log(err)
		return
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	list, err := adm.ListTopics(ctx)
	if err != nil {
		b.Log(err)
		return
	}
	var names []string
	for _, t := range list.Sorted() {
		if strings.HasPrefix(t.Topic, prefix) {
			names = append(names, t.Topic)
		}
	}
	if len(names) > 0 {
		_, _ = adm.DeleteTopics(ctx, names...)
	}
}
