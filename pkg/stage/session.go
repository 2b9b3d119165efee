package stage

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/adtrack/postback/pkg/statestore"
)

// metadataMinAge bounds how soon franz-go may refresh metadata, hence
// retry a produce refused while the previous transaction completes.
const metadataMinAge = 20 * time.Millisecond

// commitLinger is how long a poll inside an open transaction waits for
// more records before the transaction commits: records arriving closer
// together than this share a transaction (up to CommitInterval), a lone
// record is committed at once.
const commitLinger = 10 * time.Millisecond

// Reasons a transaction did not commit or a session ended, for metrics
// and logs (see reason).
var (
	errRebalance     = errors.New("the group rebalanced")
	errCommitRefused = errors.New("the broker refused the offset commit (coordinator busy or moving); records are read again")
	errStale         = errors.New("records of partitions no longer assigned were polled")
	errStopping      = errors.New("stopping")
	errRewound       = errors.New("the consumer's position went back without a rebalance (a leader change or an offset reset); the open transaction is aborted so nothing is processed twice")
)

type evKind int

const (
	evAssigned evKind = iota
	evRevoked
)

type event struct {
	kind   evKind
	parts  []int32
	topics map[string][]int32 // as the callback gave them
}

// runner is one stage: the settings, the processor, and the Kafka session
// of the moment (rebuilt by Run after a failure).
type runner struct {
	cfg    Config
	conn   []kgo.Opt
	p      Processor
	ticker Ticker  // p as a Ticker, nil if it is not one
	prober *Prober // cfg.Prober, or the runner's own once made (closed by close)

	// The session's state, owned by the loop goroutine.
	sess   *kgo.GroupTransactSession
	stores map[int32]*statestore.Store
	owned  map[int32]bool
	align  *aligner // nil without AlignSlack
	tx     *txn     // the open transaction
	// next is, per input partition, the offset after the last record
	// processed since the last commit or rewind: a poll that returns an
	// earlier record means the client's position moved back.
	next map[topicPartition]int64

	mu     sync.Mutex
	events []event // appended by the group callbacks, drained by the loop
	evSeq  int     // callbacks seen, to tell whether one came during a transaction

	prog loopState // what the watchdog reads

	txnEpochs txnEpochs // producer epochs of the session's transactions

	statsAt time.Time // when the state gauges were last collected
	stamps  []int64   // record timestamps of the open transaction, reused
}

func newRunner(cfg Config, p Processor) *runner {
	r := &runner{cfg: cfg, p: p, conn: cfg.Kafka.Opts(""),
		stores: map[int32]*statestore.Store{}, owned: map[int32]bool{}, next: map[topicPartition]int64{}}
	r.ticker, _ = p.(Ticker)
	r.prober = cfg.Prober
	r.prog.phase, r.prog.since = "starting", time.Now()
	return r
}

func (r *runner) close() {
	r.closeStores()
	if r.prober != nil && r.prober != r.cfg.Prober {
		r.prober.Close()
	}
}

// session runs one Kafka session until it fails or ctx is done. progressed
// reports whether it committed anything (Run then retries quickly).
func (r *runner) session(ctx context.Context) (progressed bool, err error) {
	r.setPhase("checking topics")
	if err := checkTopics(ctx, r.cfg, r.conn); err != nil {
		return false, err
	}
	changelog := r.cfg.Changelog
	// The session's client is the stage's long-lived one: it has the
	// connection's metrics under the stage's name.
	opts := append(r.cfg.Kafka.Opts("stage-"+r.cfg.Name),
		kgo.WithLogger(kgoLogger{r.cfg.Logger, r.cfg.Name}),
		// Under KIP-890 the first produce of a transaction to a
		// partition is refused with CONCURRENT_TRANSACTIONS while the
		// coordinator still writes the previous one's markers, and kgo
		// retries it after a metadata refresh, which by default may not
		// come sooner than 5 s: that wait was most of an install's
		// latency. A short minimum age retries within milliseconds.
		kgo.MetadataMinAge(metadataMinAge),
		kgo.TransactionalID(r.cfg.TransactionalID),
		kgo.TransactionTimeout(r.cfg.TransactionTimeout),
		kgo.ConsumerGroup(r.cfg.GroupID()),
		kgo.ConsumeTopics(r.cfg.Inputs...),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.RequireStableFetchOffsets(),
		kgo.Balancers(kgo.RangeBalancer()),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.RecordPartitioner(statestore.Partitioner(func(t string) bool { return t == changelog }, kgo.StickyKeyPartitioner(nil))),
		kgo.OnPartitionsAssigned(func(_ context.Context, cl *kgo.Client, m map[string][]int32) {
			if r.align != nil {
				// Nothing is fetched until the loop knows where each
				// partition stands (aligner.reset).
				r.align.hold(cl, m)
			}
			r.event(evAssigned, m)
		}),
		kgo.OnPartitionsRevoked(func(_ context.Context, _ *kgo.Client, m map[string][]int32) { r.event(evRevoked, m) }),
		kgo.OnPartitionsLost(func(_ context.Context, _ *kgo.Client, m map[string][]int32) { r.event(evRevoked, m) }),
	)
	if r.cfg.SessionTimeout > 0 {
		opts = append(opts, kgo.SessionTimeout(r.cfg.SessionTimeout))
	}
	if r.cfg.GroupInstanceID != "" {
		opts = append(opts, kgo.InstanceID(r.cfg.GroupInstanceID))
	}
	if r.cfg.AlignSlack > 0 {
		// A resumed partition joins the next fetch request only when the
		// broker answers the current one; keep that wait well below the
		// aligner's silence.
		opts = append(opts, kgo.FetchMaxWait(alignFetchWait))
	}
	// The aligner exists before the session: the session's group may be
	// assigned, and OnPartitionsAssigned read r.align, before
	// NewGroupTransactSession returns.
	if r.cfg.AlignSlack > 0 {
		r.align = newAligner(r.cfg, r.probe)
	}
	sess, err := kgo.NewGroupTransactSession(opts...)
	if err != nil {
		r.align = nil
		return false, fatal(fmt.Errorf("stage %s: %w", r.cfg.Name, err))
	}
	r.sess = sess
	r.txnEpochs = txnEpochs{}
	defer func() { r.endSession(ctx.Err() != nil) }()
	r.setPhase("joining the group")
	return r.loop(ctx)
}

// loop polls and processes until the session fails or ctx is done.
func (r *runner) loop(ctx context.Context) (progressed bool, err error) {
	for {
		r.collectStats(false)
		if ctx.Err() != nil {
			// Polled records are processed: commit them, so the next
			// owner finds no backlog this session had read.
			if r.tx != nil {
				return progressed, r.commit(ctx)
			}
			return progressed, ctx.Err()
		}
		if evs := r.takeEvents(); len(evs) > 0 {
			if err := r.rebalance(ctx, evs); err != nil {
				return progressed, err
			}
		}
		if r.tx != nil && time.Now().After(r.tx.deadline) {
			if err := r.commit(ctx); err != nil {
				return progressed, err
			}
			progressed = true
		}

		// Without a transaction, come back every second for the aligner.
		wait := time.Second
		if r.tx != nil {
			wait = max(0, min(time.Until(r.tx.deadline), commitLinger))
		}
		fetches, err := r.poll(ctx, wait)
		if err != nil {
			return progressed, err
		}
		if fetches.NumRecords() == 0 {
			if r.tx != nil && ctx.Err() == nil {
				// Nothing more to read right now: commit what we have.
				if err := r.commit(ctx); err != nil {
					return progressed, err
				}
				progressed = true
			}
			if r.align != nil {
				r.align.idle(r.sess.Client())
			}
			continue
		}
		queues, stale, rewound := r.queues(fetches)
		if stale || r.pendingEvents() {
			// A rebalance since these records were fetched: they may
			// be another member's now. Abort (rewinding to the
			// committed offsets) and apply the rebalance first.
			if err := r.abort(ctx, errStale); err != nil {
				return progressed, err
			}
			continue
		}
		if rewound != "" {
			// Records processed in the open transaction would be
			// processed again on top of its state: abort it, which
			// rewinds to the committed offsets its state matches.
			r.cfg.Logger.Warn("consumer position went back; aborting the open transaction", "stage", r.cfg.Name, "at", rewound)
			if err := r.abort(ctx, errRewound); err != nil {
				return progressed, err
			}
			continue
		}
		if r.tx == nil {
			if r.tx, err = r.begin(ctx); err != nil {
				return progressed, err
			}
		}
		if err := r.tx.process(ctx, fetches, queues); err != nil {
			return progressed, errors.Join(err, r.abort(ctx, err))
		}
	}
}

// poll polls for up to wait, logging fetch errors (kgo retries them).
func (r *runner) poll(ctx context.Context, wait time.Duration) (kgo.Fetches, error) {
	pctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	var fetches kgo.Fetches
	if r.cfg.MaxPollRecords > 0 {
		fetches = r.sess.PollRecords(pctx, r.cfg.MaxPollRecords)
	} else {
		fetches = r.sess.PollFetches(pctx)
	}
	if fetches.IsClientClosed() {
		return nil, fmt.Errorf("stage %s: %w", r.cfg.Name, kgo.ErrClientClosed)
	}
	fetches.EachError(func(t string, p int32, err error) {
		if !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, context.Canceled) {
			// kgo retries these; while they last the watchdog reports
			// the stage with the latest one, so the log keeps quiet.
			r.cfg.Logger.Debug("fetch error", "stage", r.cfg.Name, "topic", t, "partition", p, "err", err)
			r.fetchFailed(fmt.Errorf("%s/%d: %w", t, p, err))
		}
	})
	return fetches, nil
}

// queues groups a poll's records by input partition, in fetch order;
// stale reports records of partitions this session does not own, rewound
// a partition whose records start before what was already processed.
func (r *runner) queues(fetches kgo.Fetches) (queues [][]*kgo.Record, stale bool, rewound string) {
	fetches.EachPartition(func(ftp kgo.FetchTopicPartition) {
		if len(ftp.Records) == 0 {
			return
		}
		if !r.owned[ftp.Partition] || r.stores[ftp.Partition] == nil {
			stale = true
			return
		}
		k := topicPartition{ftp.Topic, ftp.Partition}
		if next, ok := r.next[k]; ok && ftp.Records[0].Offset < next {
			rewound = fmt.Sprintf("%s/%d@%d, after %d", ftp.Topic, ftp.Partition, ftp.Records[0].Offset, next-1)
		}
		queues = append(queues, ftp.Records)
		r.setLag(ftp)
	})
	if rewound == "" {
		for _, q := range queues {
			last := q[len(q)-1]
			r.next[topicPartition{last.Topic, last.Partition}] = last.Offset + 1
		}
	}
	return queues, stale, rewound
}

// endSession aborts what is open, closes the stores (the next session
// restores them) and the client. A dynamic member leaves the group; a
// static one leaves only when the stage stops (stopping), since after a
// failure its next session rejoins under the same instance id.
func (r *runner) endSession(stopping bool) {
	if r.tx != nil {
		if err := r.abort(context.Background(), errStopping); err != nil {
			r.cfg.Logger.Info("abort at the end of the session failed; the next session's producer fences it", "stage", r.cfg.Name, "err", err)
		}
	}
	r.closeStores()
	for p := range r.owned {
		r.forgetLag(p)
	}
	clear(r.owned)
	clear(r.next)
	r.collectStats(true) // no stores: the state gauges drop to zero
	r.mu.Lock()
	r.events = nil
	r.mu.Unlock()
	// Leaving lets the group rebalance at once; do not wait long for a
	// broker that is away (the session timeout then does it).
	lctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = r.sess.Client().LeaveGroupContext(lctx) // a no-op for a static member
	r.sess.Close()
	if stopping && r.cfg.GroupInstanceID != "" {
		if p, err := r.probe(); err == nil {
			_, err = p.adm.LeaveGroup(lctx, kadm.LeaveGroup(r.cfg.GroupID()).InstanceIDs(r.cfg.GroupInstanceID).Reason("stopping"))
			if err != nil {
				r.cfg.Logger.Info("could not leave the group; its partitions move after the session timeout", "stage", r.cfg.Name, "err", err)
			}
		}
	}
	r.sess, r.align = nil, nil
	r.setUnassigned()
}

// probe returns Config.Prober, else the runner's own, created on first use.
func (r *runner) probe() (*Prober, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.prober == nil {
		p, err := NewProber(r.conn...)
		if err != nil {
			return nil, err
		}
		r.prober = p
	}
	return r.prober, nil
}

// checkTopics verifies that the inputs and the changelog exist and are
// co-partitioned. A partition mismatch is fatal (the joins would silently
// miss matches); a missing topic is not (it may be being created).
func checkTopics(ctx context.Context, cfg Config, conn []kgo.Opt) error {
	cl, err := kgo.NewClient(conn...)
	if err != nil {
		return fatal(err)
	}
	defer cl.Close()
	names := append(slices.Clone(cfg.Inputs), cfg.Changelog)
	td, err := kadm.NewClient(cl).ListTopics(ctx, names...)
	if err != nil {
		return fmt.Errorf("stage %s: list topics: %w", cfg.Name, err)
	}
	var n int32 = -1
	first := ""
	for _, t := range names {
		d, ok := td[t]
		if !ok || d.Err != nil {
			err := errors.New("not found")
			if ok {
				err = d.Err
			}
			return fmt.Errorf("stage %s: topic %s: %w", cfg.Name, t, err)
		}
		c := int32(len(d.Partitions))
		if n < 0 {
			n, first = c, t
		} else if c != n {
			return fatal(fmt.Errorf("stage %s: topics are not co-partitioned: %s has %d partitions, %s has %d", cfg.Name, first, n, t, c))
		}
	}
	return nil
}
