// Package forwarder is the I/O of services/forwarder: it consumes the
// attributed installs and events (read_committed, one consumer group),
// sends each due callback (package forward decides which and what), logs
// every attempt on the delivery-log topic and keeps the delivery state on
// a compacted topic, so a restart or a rebalance re-sends only what was in
// flight and the retry queue survives both.
//
//	f, err := forwarder.New(cfg, tel, log)
//	err = f.Run(ctx) // until ctx ends; finishes the attempts in flight
//
// An input offset is committed once every delivery of the records below it
// is settled: its final outcome, or its place in the retry queue, is
// acknowledged on the state topic. On assignment a partition's state is
// read back from the state topic (the same partition number): done
// deliveries are skipped when their records are read again, retrying ones
// go back into the retry queue at their due time.
package forwarder

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/adtrack/postback/pkg/forward"
	"github.com/adtrack/postback/pkg/telemetry"
)

type tp struct {
	topic     string
	partition int32
}

// part is one owned input partition.
type part struct {
	tp
	// revoked and inflight are atomic: every attempt checks and counts
	// them (begin), the lock is taken only to wait for them (revoke).
	revoked atomic.Bool
	// known maps the delivery ids of this partition's records at or above
	// the committed offset to their status: skipped when read again.
	known map[string]string
	// pending counts unsettled deliveries per record offset; order lists
	// those offsets ascending.
	pending map[int64]int
	order   []int64
	next    int64 // the offset after the last record processed
	// done are state records of final deliveries, tombstoned once the
	// committed offset passes their source offsets.
	done     []doneRef
	inflight atomic.Int32
	// doneQ are deliveries final at their first attempt waiting for the
	// next done set; while sets are in flight (setsWriting) the next one
	// gathers, so one state write settles a whole batch. setMu guards
	// both, apart from f.mu, which every delivery takes enough already.
	setMu       sync.Mutex
	doneQ       []*write
	setsWriting int
}

// doneRef is a state record holding final deliveries: a delivery's own
// (key its id, ids nil) or a done set (ids its deliveries).
type doneRef struct {
	offset int64 // the highest source offset it covers
	key    string
	ids    []string
}

const statusInProgress = "in_progress"

// Forwarder consumes attributed conversions and delivers their callbacks.
type Forwarder struct {
	cfg  Config
	log  *slog.Logger
	m    *metrics
	send *sender
	now  func() time.Time

	cl         *kgo.Client
	hosts      *hosts
	statePartN int32        // partitions of the state topic
	logPartN   int32        // partitions of the delivery log
	failed     chan error   // a produce failed: Run returns it
	outcomes   chan outcome // attempts made, to record (recordLoop)
	// setPrefix (random per instance) and setSeq make done set keys unique.
	setPrefix string
	setSeq    atomic.Uint64

	mu       sync.Mutex
	idle     *sync.Cond // broadcast when a part's inflight drops to 0
	parts    map[tp]*part
	fresh    []tp // assigned, state not restored yet
	retries  retryHeap
	wake     chan struct{}
	backlogN int
	hostOf   map[string]string // endpoint URL template -> host
}

// New returns a Forwarder for cfg.
func New(cfg Config, tel *telemetry.Telemetry, log *slog.Logger) (*Forwarder, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Kafka == nil || cfg.Endpoints == nil {
		return nil, errors.New("forwarder: Config.Kafka and Config.Endpoints are required")
	}
	f := &Forwarder{cfg: cfg, log: log, m: newMetrics(tel.Registry), now: time.Now,
		send:  newSender(cfg.Settings, cfg.Egress, newKeyring(cfg.Settings.KeysDir)),
		parts: map[tp]*part{}, wake: make(chan struct{}, 1), failed: make(chan error, 1), hostOf: map[string]string{}}
	f.idle = sync.NewCond(&f.mu)
	var nonce [8]byte
	if _, err := rand.Read(nonce[:]); err != nil {
		return nil, fmt.Errorf("forwarder: done set key prefix: %w", err)
	}
	f.setPrefix = hex.EncodeToString(nonce[:]) + "/"
	return f, nil
}

func (f *Forwarder) inputs() []string {
	return []string{f.cfg.Topics.InstallsAttributed, f.cfg.Topics.EventsAttributed}
}

// Run consumes until ctx ends or a Kafka write fails for good, then lets
// the attempts in flight finish, writes their outcomes and commits.
func (f *Forwarder) Run(ctx context.Context) error {
	cl, err := kgo.NewClient(f.cfg.Kafka.Opts("forwarder",
		kgo.ConsumerGroup(f.cfg.Group),
		kgo.SessionTimeout(f.cfg.SessionTimeout),
		kgo.ConsumeTopics(f.inputs()...),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.DisableAutoCommit(),
		kgo.ConsumeResetOffset(f.resetOffset()),
		kgo.BlockRebalanceOnPoll(),
		kgo.OnPartitionsAssigned(func(_ context.Context, _ *kgo.Client, m map[string][]int32) { f.assigned(m) }),
		kgo.OnPartitionsRevoked(func(ctx context.Context, c *kgo.Client, m map[string][]int32) { f.revoke(ctx, m, true) }),
		kgo.OnPartitionsLost(func(ctx context.Context, c *kgo.Client, m map[string][]int32) { f.revoke(ctx, m, false) }),
		kgo.RecordPartitioner(kgo.ManualPartitioner()),
		kgo.RequiredAcks(kgo.AllISRAcks()),
		// Linger gathers a produce request's worth of attempts: the broker's cost is
		// per request far more than per record, and no callback waits on it.
		kgo.ProducerLinger(10*time.Millisecond),
		kgo.MaxBufferedRecords(200_000),
	)...)
	if err != nil {
		return fmt.Errorf("forwarder client: %w", err)
	}
	f.cl = cl
	defer cl.Close()
	if f.statePartN, err = f.partitions(ctx, f.cfg.Topics.ForwarderState); err != nil {
		return err
	}
	if f.logPartN, err = f.partitions(ctx, f.cfg.Topics.Deliveries); err != nil {
		return err
	}
	f.outcomes = make(chan outcome, 1024)
	recorded := make(chan struct{})
	go func() { defer close(recorded); f.recordLoop() }()
	sendCtx, stopSending := context.WithCancel(context.WithoutCancel(ctx))
	f.hosts = newHosts(sendCtx, f.cfg.Settings, f.attempt)
	retryDone := make(chan struct{})
	go func() { defer close(retryDone); f.retryLoop(sendCtx) }()
	f.log.Info("forwarder consuming", "topics", f.inputs(), "group", f.cfg.Group, "endpoints", f.cfg.Endpoints.Len())

	runErr := f.poll(ctx)
	// Stop: no new attempt starts; those in flight finish and their
	// outcomes are written before the last commit.
	stopSending()
	<-retryDone
	f.hosts.wait()
	f.send.client.CloseIdle()
	close(f.outcomes) // no attempt starts any more
	<-recorded
	fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 15*time.Second)
	defer cancel()
	f.mu.Lock()
	f.waitIdle(slices.Collect(maps.Values(f.parts)), 15*time.Second) // done sets still gathering
	f.mu.Unlock()
	if err := cl.Flush(fctx); err != nil {
		f.log.Warn("flush on stop", "err", err)
	}
	f.commit(fctx)
	return runErr
}

// resetOffset is where a partition without a committed offset starts.
func (f *Forwarder) resetOffset() kgo.Offset {
	if f.cfg.Settings.StartAt == "earliest" {
		return kgo.NewOffset().AtStart()
	}
	return kgo.NewOffset().AtEnd()
}

// partitions returns a topic's partition count, waiting for the topic.
func (f *Forwarder) partitions(ctx context.Context, topic string) (int32, error) {
	adm := kadm.NewClient(f.cl)
	for {
		td, err := adm.ListTopics(ctx, topic)
		if err == nil {
			if d, ok := td[topic]; ok && d.Err == nil && len(d.Partitions) > 0 {
				return int32(len(d.Partitions)), nil
			}
			err = fmt.Errorf("topic %s not found (run postbackctl bootstrap)", topic)
		}
		f.log.Warn("forwarder: waiting for a topic", "topic", topic, "err", err)
		select {
		case <-ctx.Done():
			return 0, ctx.Err()
		case <-time.After(time.Second):
		}
	}
}

func (f *Forwarder) poll(ctx context.Context) error {
	lastCommit := f.now()
	for {
		pctx, cancel := context.WithTimeout(ctx, f.cfg.Settings.CommitInterval)
		fs := f.cl.PollRecords(pctx, 2000)
		cancel()
		if ctx.Err() != nil {
			f.cl.AllowRebalance()
			return nil
		}
		select {
		case err := <-f.failed:
			f.cl.AllowRebalance()
			return err
		default:
		}
		fs.EachError(func(topic string, p int32, err error) {
			if !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, context.Canceled) {
				f.log.Warn("fetch error", "topic", topic, "partition", p, "err", err)
			}
		})
		// Restore every newly assigned partition, even one with no new
		// record: its retry queue must resume.
		f.restoreAssigned(ctx)
		fs.EachPartition(func(p kgo.FetchTopicPartition) {
			if len(p.Records) == 0 {
				return
			}
			pt := f.part(ctx, tp{p.Topic, p.Partition}, p.Records[0].Offset)
			for _, r := range p.Records {
				f.process(pt, r)
			}
		})
		f.cl.AllowRebalance()
		if f.now().Sub(lastCommit) >= f.cfg.Settings.CommitInterval {
			f.commit(ctx)
			lastCommit = f.now()
		}
	}
}

// decode reads an input record into a conversion.
func (f *Forwarder) decode(r *kgo.Record) (forward.Conversion, error) {
	return decodeConversion(r.Topic == f.cfg.Topics.InstallsAttributed, r.Value)
}

// process turns one input record into its due deliveries.
func (f *Forwarder) process(pt *part, r *kgo.Record) {
	conv, err := f.decode(r)
	if err != nil {
		f.m.undecodable.WithLabelValues(r.Topic).Inc()
		f.log.Error("undecodable record skipped", "topic", r.Topic, "partition", r.Partition, "offset", r.Offset, "err", err)
		f.mu.Lock()
		pt.next = r.Offset + 1
		f.mu.Unlock()
		return
	}
	eps := f.cfg.Endpoints.Match(conv)
	src := forward.Source{Topic: r.Topic, Partition: r.Partition, Offset: r.Offset}
	ids := make([]string, len(eps))
	for i, ep := range eps {
		ids[i] = forward.DeliveryID(conv.Kind, conv.EventID(), ep.ID)
	}
	var jobs []*job
	f.mu.Lock()
	pt.next = r.Offset + 1
	for i, ep := range eps {
		id := ids[i]
		if _, seen := pt.known[id]; seen {
			continue
		}
		pt.known[id] = statusInProgress
		if pt.pending[r.Offset] == 0 {
			pt.order = append(pt.order, r.Offset)
		}
		pt.pending[r.Offset]++
		jobs = append(jobs, newJob(pt, ep, conv, src, id, f.templateHost(ep.URL)))
	}
	f.mu.Unlock()
	for _, j := range jobs {
		f.start(j)
	}
}
