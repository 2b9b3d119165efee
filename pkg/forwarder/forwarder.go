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
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/segmentio/encoding/json"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/adtrack/postback/pkg/event"
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
	revoked bool
	// known maps the delivery ids of this partition's records at or above
	// the committed offset to their status: skipped when read again.
	known map[string]string
	// pending counts unsettled deliveries per record offset; order lists
	// those offsets ascending.
	pending map[int64]int
	order   []int64
	next    int64 // the offset after the last record processed
	// done are final deliveries whose state record is tombstoned once the
	// committed offset passes their source offset.
	done     []doneRef
	inflight int
}

type doneRef struct {
	offset int64
	id     string
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
	statePartN int32      // partitions of the state topic
	logPartN   int32      // partitions of the delivery log
	failed     chan error // a produce failed: Run returns it

	mu       sync.Mutex
	idle     *sync.Cond // broadcast when a part's inflight drops to 0
	parts    map[tp]*part
	fresh    []tp // assigned, state not restored yet
	retries  retryHeap
	wake     chan struct{}
	backlogN int
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
		parts: map[tp]*part{}, wake: make(chan struct{}, 1), failed: make(chan error, 1)}
	f.idle = sync.NewCond(&f.mu)
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
		kgo.ProducerLinger(time.Millisecond),
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
	fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 15*time.Second)
	defer cancel()
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

// assigned notes partitions to restore (OnPartitionsAssigned).
func (f *Forwarder) assigned(m map[string][]int32) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for topic, ps := range m {
		for _, p := range ps {
			f.fresh = append(f.fresh, tp{topic, p})
		}
	}
}

// restoreAssigned restores the partitions assigned since the last poll,
// from the group's committed offsets.
func (f *Forwarder) restoreAssigned(ctx context.Context) {
	f.mu.Lock()
	fresh := f.fresh
	f.fresh = nil
	f.mu.Unlock()
	if len(fresh) == 0 {
		return
	}
	var committed kadm.OffsetResponses
	for backoff := 200 * time.Millisecond; ctx.Err() == nil; backoff = min(2*backoff, 5*time.Second) {
		var err error
		committed, err = kadm.NewClient(f.cl).FetchOffsets(ctx, f.cfg.Group)
		if err == nil {
			break
		}
		f.log.Warn("fetch committed offsets failed; retrying", "err", err)
		time.Sleep(backoff)
	}
	var starts kadm.ListedOffsets
	for _, key := range fresh {
		from := int64(-1)
		if o, ok := committed.Lookup(key.topic, key.partition); ok && o.Err == nil && o.At >= 0 {
			from = o.At
		} else {
			// No commit yet: start_at's offset, committed with the next
			// commit, so the partition's position is kept even if no
			// record arrives before a restart.
			if starts == nil {
				starts = f.startOffsets(ctx)
			}
			if o, ok := starts.Lookup(key.topic, key.partition); ok && o.Err == nil {
				from = o.Offset
			}
		}
		f.part(ctx, key, from)
	}
}

// startOffsets lists where start_at puts the inputs' partitions; nil
// entries (an error) leave a partition's position unknown (-1) until a
// record arrives.
func (f *Forwarder) startOffsets(ctx context.Context) kadm.ListedOffsets {
	lctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	adm := kadm.NewClient(f.cl)
	var offs kadm.ListedOffsets
	var err error
	if f.cfg.Settings.StartAt == "earliest" {
		offs, err = adm.ListStartOffsets(lctx, f.inputs()...)
	} else {
		offs, err = adm.ListEndOffsets(lctx, f.inputs()...)
	}
	if err != nil {
		f.log.Warn("list start_at offsets failed; positions known at the first record", "err", err)
		return kadm.ListedOffsets{}
	}
	return offs
}

// part returns the owned partition, restoring its state on first sight;
// from is the first offset fetched (the committed one).
func (f *Forwarder) part(ctx context.Context, key tp, from int64) *part {
	f.mu.Lock()
	pt := f.parts[key]
	f.mu.Unlock()
	if pt != nil {
		return pt
	}
	pt = &part{tp: key, known: map[string]string{}, pending: map[int64]int{}, next: from}
	retrying := f.restore(ctx, pt, from)
	f.mu.Lock()
	f.parts[key] = pt
	for _, st := range retrying {
		f.push(pt, st)
	}
	f.mu.Unlock()
	return pt
}

// decode reads an input record into a conversion.
func (f *Forwarder) decode(r *kgo.Record) (forward.Conversion, error) {
	if r.Topic == f.cfg.Topics.InstallsAttributed {
		var a event.AttributedInstall
		if err := json.Unmarshal(r.Value, &a); err != nil {
			return forward.Conversion{}, err
		}
		return forward.FromInstall(&a), nil
	}
	var a event.AttributedEvent
	if err := json.Unmarshal(r.Value, &a); err != nil {
		return forward.Conversion{}, err
	}
	return forward.FromEvent(&a), nil
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
	var jobs []*job
	f.mu.Lock()
	pt.next = r.Offset + 1
	for _, ep := range eps {
		id := forward.DeliveryID(conv.Kind, conv.EventID(), ep.ID)
		if _, seen := pt.known[id]; seen {
			continue
		}
		pt.known[id] = statusInProgress
		if pt.pending[r.Offset] == 0 {
			pt.order = append(pt.order, r.Offset)
		}
		pt.pending[r.Offset]++
		jobs = append(jobs, newJob(pt, ep, conv, src))
	}
	f.mu.Unlock()
	for _, j := range jobs {
		f.start(j)
	}
}

// committable is the offset to commit for pt: its first unsettled record,
// else the one after the last processed; -1 while its position is
// unknown. f.mu is held.
func (pt *part) committable() int64 {
	for len(pt.order) > 0 && pt.pending[pt.order[0]] == 0 {
		delete(pt.pending, pt.order[0])
		pt.order = pt.order[1:]
	}
	if len(pt.order) > 0 {
		return pt.order[0]
	}
	return pt.next
}

// commit commits every live partition's settled offset, then forgets (and
// tombstones on the state topic) the done deliveries below it.
func (f *Forwarder) commit(ctx context.Context) {
	f.mu.Lock()
	offsets := map[string]map[int32]kgo.EpochOffset{}
	owned := map[tp]*part{}
	for key, pt := range f.parts {
		if pt.revoked {
			continue
		}
		at := pt.committable()
		if at < 0 {
			continue // no position yet
		}
		if offsets[key.topic] == nil {
			offsets[key.topic] = map[int32]kgo.EpochOffset{}
		}
		offsets[key.topic][key.partition] = kgo.EpochOffset{Epoch: -1, Offset: at}
		owned[key] = pt
	}
	f.mu.Unlock()
	if len(offsets) == 0 {
		return
	}
	var commitErr error
	f.cl.CommitOffsetsSync(ctx, offsets, func(_ *kgo.Client, _ *kmsg.OffsetCommitRequest, resp *kmsg.OffsetCommitResponse, err error) {
		commitErr = err
		if err == nil {
			commitErr = commitResponseErr(resp)
		}
	})
	if commitErr != nil {
		if ctx.Err() == nil {
			f.log.Warn("offset commit failed (retried at the next interval)", "err", commitErr)
		}
		return
	}
	f.mu.Lock()
	var tombstones []*kgo.Record
	for key, pt := range owned {
		committed := offsets[key.topic][key.partition].Offset
		keep := pt.done[:0]
		for _, d := range pt.done {
			if d.offset < committed {
				delete(pt.known, d.id)
				tombstones = append(tombstones, &kgo.Record{Topic: f.cfg.Topics.ForwarderState, Partition: f.statePartition(pt.partition), Key: []byte(d.id)})
			} else {
				keep = append(keep, d)
			}
		}
		pt.done = keep
	}
	f.mu.Unlock()
	for _, r := range tombstones {
		f.cl.Produce(ctx, r, func(r *kgo.Record, err error) {
			if err != nil && ctx.Err() == nil {
				f.log.Warn("state tombstone not written (a restart keeps the entry a while longer)", "err", err)
			}
		})
	}
}

// statePartition is the state topic's partition of input partition p.
func (f *Forwarder) statePartition(p int32) int32 { return p % f.statePartN }

// revoke stops work on partitions leaving this instance: queued attempts
// and retries are dropped (the next owner re-reads or restores them),
// attempts in flight finish and are written, then the settled offsets are
// committed.
func (f *Forwarder) revoke(ctx context.Context, m map[string][]int32, commit bool) {
	f.mu.Lock()
	f.fresh = slices.DeleteFunc(f.fresh, func(k tp) bool { return slices.Contains(m[k.topic], k.partition) })
	var gone []*part
	for topic, ps := range m {
		for _, p := range ps {
			if pt := f.parts[tp{topic, p}]; pt != nil {
				pt.revoked = true
				gone = append(gone, pt)
			}
		}
	}
	deadline := time.AfterFunc(f.cfg.Settings.AttemptTimeout+10*time.Second, func() {
		f.mu.Lock()
		f.idle.Broadcast()
		f.mu.Unlock()
	})
	start := f.now()
	for busy(gone) && f.now().Sub(start) < f.cfg.Settings.AttemptTimeout+10*time.Second {
		f.idle.Wait()
	}
	deadline.Stop()
	offsets := map[string]map[int32]kgo.EpochOffset{}
	for _, pt := range gone {
		delete(f.parts, pt.tp)
		at := pt.committable()
		if at < 0 {
			continue
		}
		if offsets[pt.topic] == nil {
			offsets[pt.topic] = map[int32]kgo.EpochOffset{}
		}
		offsets[pt.topic][pt.partition] = kgo.EpochOffset{Epoch: -1, Offset: at}
	}
	f.mu.Unlock()
	if commit && len(offsets) > 0 {
		if err := f.cl.Flush(ctx); err != nil {
			f.log.Warn("flush on revoke", "err", err)
		}
		f.cl.CommitOffsetsSync(ctx, offsets, nil)
	}
	if len(gone) > 0 {
		f.log.Info("partitions revoked", "partitions", len(gone), "committed", commit)
	}
}

// commitResponseErr returns the first partition error of a commit.
func commitResponseErr(resp *kmsg.OffsetCommitResponse) error {
	if resp == nil {
		return nil
	}
	for _, t := range resp.Topics {
		for _, p := range t.Partitions {
			if err := kerr.ErrorForCode(p.ErrorCode); err != nil {
				return fmt.Errorf("commit %s/%d: %w", t.Topic, p.Partition, err)
			}
		}
	}
	return nil
}

func busy(ps []*part) bool {
	for _, pt := range ps {
		if pt.inflight > 0 {
			return true
		}
	}
	return false
}
