// Package stage runs one exactly-once, stateful read-process-write stage of
// the attribution service (docs/attribution-design.md, "Exactly once" and
// "State"): a [kgo.GroupTransactSession] consuming co-partitioned input
// topics, a [statestore.Store] per partition whose writes are mirrored to a
// compacted changelog, and a [Processor] that turns each input record into
// output records.
//
// # One transaction per poll
//
// Each loop iteration polls, begins a transaction, opens one
// [statestore.Batch] per partition number present in the poll (partition i of
// every input shares the state of partition i), calls the Processor for every
// record, produces the emitted records and the batches' changelog records,
// and ends the transaction with the input offsets. Only when the transaction
// committed are the batches applied to Pebble, each with the real offset of
// its last changelog record; when it aborted (a rebalance happened since
// Begin) they are discarded, Pebble stays as it was, and the records are read
// again from the committed offsets.
//
// # Assignment and restore
//
// The group uses the range balancer (eager protocol), so partition i of
// every input goes to the same member. The OnPartitionsAssigned, Revoked and
// Lost callbacks only record what happened; the processing loop applies it
// before it begins the next transaction: stores of revoked or lost
// partitions are closed, and an assigned partition's store is opened and
// restored from its changelog ([statestore.Restore]) before the first record of that
// partition is processed. Restore therefore runs in the loop, not in the
// callback: it can wait for the previous owner's open transaction (up to the
// transaction timeout after a crash), and doing that in the callback would
// hold up the group's join. Restore runs on every assignment, as the
// statestore package requires, and again after a failed Batch.Commit.
//
// Records of a partition that the loop has already seen revoked are not
// processed; the transaction is aborted instead (the session would abort it
// anyway, since a rebalance happened).
//
// # Errors
//
// An error from Process, a failed produce, or an error from End is fatal:
// the open transaction is aborted (nothing it wrote becomes visible, no
// offsets move, no state is applied) and Run returns the error, so that the
// service restarts and re-reads the same records. Processors should handle
// bad content themselves (drop it, route it to a rejected topic) and return
// errors only for conditions where retrying from the last commit is right.
//
// # Ordering
//
// Within one input partition records are processed in offset order. Across
// the partitions of one poll they are merged by record timestamp, so a
// click and the install it caused are processed in that order whichever
// partitions they came from. Across polls, Config.AlignSlack keeps any
// partition from being read more than the slack ahead, in record time, of
// the least advanced one that still has a backlog (see align.go).
package stage

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/adtrack/postback/pkg/statestore"
)

// Processor handles one record with the partition's state batch and returns
// output records through emit. Emitted records need a Topic; they are
// partitioned by key (kgo's default sticky key partitioner) unless they go to
// the changelog topic. state is the batch of the record's partition for the
// current transaction: reads see earlier writes of the same transaction.
type Processor interface {
	Process(ctx context.Context, rec *kgo.Record, state *statestore.Batch, emit func(*kgo.Record)) error
}

// ProcessorFunc adapts a function to [Processor].
type ProcessorFunc func(ctx context.Context, rec *kgo.Record, state *statestore.Batch, emit func(*kgo.Record)) error

// Process calls f.
func (f ProcessorFunc) Process(ctx context.Context, rec *kgo.Record, state *statestore.Batch, emit func(*kgo.Record)) error {
	return f(ctx, rec, state, emit)
}

// Config configures a stage.
type Config struct {
	// Name is the stage name: the consumer group is Group+"."+Name, the
	// transactional id starts with it, the default changelog is
	// Group+"."+Name+"-changelog", and the state lives under StateDir/Name.
	Name    string
	Brokers []string
	// Group is the consumer group prefix (the service's group).
	Group string
	// Inputs are co-partitioned input topics: Run refuses to start unless
	// all of them (and the changelog, if it exists) have the same number of
	// partitions.
	Inputs []string
	// Changelog is the compacted changelog topic. Run creates it, with
	// cleanup.policy=compact and the inputs' partition count, when missing.
	// Empty means Group+"."+Name+"-changelog".
	Changelog string
	// ChangelogReplication is the replication factor Run creates the
	// changelog with; 0 means the broker default.
	ChangelogReplication int16
	// StateDir holds one Pebble store per partition: StateDir/Name/<partition>.
	StateDir string
	// Cache is the process-wide block cache shared by the stores (nil: one
	// small cache per store).
	Cache *statestore.Cache
	// TransactionalID is this instance's transactional id. Empty means
	// Name + "-" + a random suffix: unique per instance, which is safe with
	// the group-based fencing (KIP-447) GroupTransactSession relies on. A
	// stable id per instance lets a restarted instance fence its
	// predecessor's open transaction at once instead of after
	// TransactionTimeout.
	TransactionalID string
	// TransactionTimeout bounds how long a crashed instance's open
	// transaction blocks the partitions' next owner. Keep it well below
	// 90 s (statestore.Restore gives up after 90 s without progress).
	// Zero means 30 s.
	TransactionTimeout time.Duration
	// SessionTimeout is the group session timeout; zero means kgo's default.
	SessionTimeout time.Duration
	// ClientOpts are extra connection options (TLS, SASL, ...) applied to
	// every client the stage makes, including Restore's.
	ClientOpts []kgo.Opt
	// MaxPollRecords bounds the records of one poll, hence of one
	// transaction; zero means no bound (whatever one fetch returns).
	MaxPollRecords int
	// AlignSlack, when positive, aligns the input partitions by record
	// time: while some assigned partition still has a backlog, partitions
	// whose last processed record is more than AlignSlack newer than that
	// backlog's are paused (their fetched, unprocessed records are dropped
	// and fetched again later; no offset moves past them). Joins need it
	// when a backlog is read: without it a fast partition's installs can
	// overtake the clicks of a slow one by hours. With every partition
	// caught up nothing is paused. Zero disables alignment.
	AlignSlack time.Duration
	// Logger receives the stage's log lines; nil discards them.
	Logger *slog.Logger
}

func (c *Config) fill() error {
	if c.Name == "" || len(c.Brokers) == 0 || c.Group == "" || len(c.Inputs) == 0 || c.StateDir == "" {
		return errors.New("stage: Name, Brokers, Group, Inputs and StateDir are required")
	}
	if c.Changelog == "" {
		c.Changelog = c.Group + "." + c.Name + "-changelog"
	}
	if slices.Contains(c.Inputs, c.Changelog) {
		return fmt.Errorf("stage %s: the changelog %s is also an input", c.Name, c.Changelog)
	}
	if c.TransactionalID == "" {
		b := make([]byte, 8)
		_, _ = rand.Read(b)
		c.TransactionalID = c.Name + "-" + hex.EncodeToString(b)
	}
	if c.TransactionTimeout == 0 {
		c.TransactionTimeout = 30 * time.Second
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return nil
}

// GroupID is the consumer group the stage joins.
func (c Config) GroupID() string { return c.Group + "." + c.Name }

// Run runs the stage until ctx is done (it then returns ctx.Err()) or a
// fatal error occurs (see the package documentation). An open transaction
// is aborted before Run returns.
func Run(ctx context.Context, cfg Config, p Processor) error {
	if err := cfg.fill(); err != nil {
		return err
	}
	conn := append([]kgo.Opt{kgo.SeedBrokers(cfg.Brokers...)}, cfg.ClientOpts...)
	partitions, err := checkTopics(ctx, cfg, conn)
	if err != nil {
		return err
	}
	r := &runner{cfg: cfg, conn: conn, p: p, nparts: partitions,
		stores: map[int32]*statestore.Store{}, needRestore: map[int32]bool{}, owned: map[int32]bool{}}
	if cfg.AlignSlack > 0 {
		r.align = newAligner(cfg, conn)
	}
	defer r.closeAll()

	changelog := cfg.Changelog
	opts := append(slices.Clone(conn),
		kgo.TransactionalID(cfg.TransactionalID),
		kgo.TransactionTimeout(cfg.TransactionTimeout),
		kgo.ConsumerGroup(cfg.GroupID()),
		kgo.ConsumeTopics(cfg.Inputs...),
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
	if cfg.SessionTimeout > 0 {
		opts = append(opts, kgo.SessionTimeout(cfg.SessionTimeout))
	}
	if cfg.AlignSlack > 0 {
		// A resumed partition joins the next fetch request only when the
		// broker answers the current one; keep that wait well below the
		// aligner's silence.
		opts = append(opts, kgo.FetchMaxWait(alignFetchWait))
	}
	sess, err := kgo.NewGroupTransactSession(opts...)
	if err != nil {
		return fmt.Errorf("stage %s: %w", cfg.Name, err)
	}
	defer sess.Close()
	r.sess = sess
	return r.loop(ctx)
}

// checkTopics verifies the inputs are co-partitioned and creates the
// changelog when missing; it returns the partition count.
func checkTopics(ctx context.Context, cfg Config, conn []kgo.Opt) (int32, error) {
	cl, err := kgo.NewClient(conn...)
	if err != nil {
		return 0, err
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	td, err := adm.ListTopics(ctx, append(slices.Clone(cfg.Inputs), cfg.Changelog)...)
	if err != nil {
		return 0, fmt.Errorf("stage %s: list topics: %w", cfg.Name, err)
	}
	var n int32 = -1
	first := ""
	for _, t := range cfg.Inputs {
		d, ok := td[t]
		if !ok || d.Err != nil {
			err := errors.New("not found")
			if ok {
				err = d.Err
			}
			return 0, fmt.Errorf("stage %s: input topic %s: %w", cfg.Name, t, err)
		}
		c := int32(len(d.Partitions))
		if n < 0 {
			n, first = c, t
		} else if c != n {
			return 0, fmt.Errorf("stage %s: inputs are not co-partitioned: %s has %d partitions, %s has %d", cfg.Name, first, n, t, c)
		}
	}
	if d, ok := td[cfg.Changelog]; ok && d.Err == nil {
		if c := int32(len(d.Partitions)); c != n {
			return 0, fmt.Errorf("stage %s: changelog %s has %d partitions, input %s has %d", cfg.Name, cfg.Changelog, c, first, n)
		}
		return n, nil
	}
	rf := cfg.ChangelogReplication
	if rf == 0 {
		rf = -1
	}
	policy := "compact"
	resp, err := adm.CreateTopic(ctx, n, rf, map[string]*string{"cleanup.policy": &policy}, cfg.Changelog)
	if err == nil {
		err = resp.Err
	}
	if errors.Is(err, kerr.TopicAlreadyExists) {
		return n, nil // another instance created it meanwhile
	}
	if err != nil {
		return 0, fmt.Errorf("stage %s: create changelog %s: %w", cfg.Name, cfg.Changelog, err)
	}
	cfg.Logger.Info("created changelog", "stage", cfg.Name, "topic", cfg.Changelog, "partitions", n)
	// Restore lists the changelog's offsets as soon as a partition is
	// assigned: wait until the new topic is in the metadata everywhere.
	for {
		td, err := adm.ListTopics(ctx, cfg.Changelog)
		if err == nil {
			if d, ok := td[cfg.Changelog]; ok && d.Err == nil && int32(len(d.Partitions)) == n {
				o, lerr := adm.ListEndOffsets(ctx, cfg.Changelog)
				if lerr == nil && o.Error() == nil {
					return n, nil
				}
			}
		}
		select {
		case <-ctx.Done():
			return 0, fmt.Errorf("stage %s: waiting for changelog %s: %w", cfg.Name, cfg.Changelog, ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
}

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

type runner struct {
	cfg    Config
	conn   []kgo.Opt
	p      Processor
	sess   *kgo.GroupTransactSession
	nparts int32

	mu     sync.Mutex
	events []event // appended by the group callbacks, drained by the loop

	// Owned by the loop goroutine.
	stores      map[int32]*statestore.Store
	needRestore map[int32]bool
	owned       map[int32]bool
	align       *aligner // nil without AlignSlack
}

// event records a callback; partition numbers are merged across inputs.
func (r *runner) event(kind evKind, m map[string][]int32) {
	set := map[int32]bool{}
	for _, ps := range m {
		for _, p := range ps {
			set[p] = true
		}
	}
	parts := make([]int32, 0, len(set))
	for p := range set {
		parts = append(parts, p)
	}
	slices.Sort(parts)
	r.cfg.Logger.Info("partitions "+map[evKind]string{evAssigned: "assigned", evRevoked: "revoked"}[kind], "stage", r.cfg.Name, "partitions", parts)
	r.mu.Lock()
	r.events = append(r.events, event{kind, parts, m})
	r.mu.Unlock()
}

// applyEvents replays the callbacks seen since the last call, in order, and
// returns the latest assignment among them (nil if none).
func (r *runner) applyEvents() (assigned map[string][]int32) {
	r.mu.Lock()
	evs := r.events
	r.events = nil
	r.mu.Unlock()
	for _, ev := range evs {
		switch ev.kind {
		case evRevoked:
			for _, p := range ev.parts {
				delete(r.owned, p)
				r.closeStore(p)
			}
		case evAssigned:
			// The range balancer is eager: every assignment follows a
			// revocation of everything, so it is the full assignment.
			// (The session forwards only the first revoke per
			// transaction, so one can be missing here.)
			for p := range r.owned {
				if !slices.Contains(ev.parts, p) {
					delete(r.owned, p)
					r.closeStore(p)
				}
			}
			for _, p := range ev.parts {
				r.owned[p] = true
				r.needRestore[p] = true
			}
			assigned = ev.topics
		}
	}
	return assigned
}

func (r *runner) closeStore(p int32) {
	if s := r.stores[p]; s != nil {
		if err := s.Close(); err != nil {
			r.cfg.Logger.Warn("close store", "stage", r.cfg.Name, "partition", p, "err", err)
		}
		delete(r.stores, p)
	}
	delete(r.needRestore, p)
}

func (r *runner) closeAll() {
	for p := range r.stores {
		r.closeStore(p)
	}
}

// store returns partition p's store, opened and restored.
func (r *runner) store(ctx context.Context, p int32) (*statestore.Store, error) {
	s := r.stores[p]
	if s == nil {
		dir := filepath.Join(r.cfg.StateDir, r.cfg.Name, strconv.Itoa(int(p)))
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, err
		}
		var err error
		s, err = statestore.Open(dir, statestore.Options{Cache: r.cfg.Cache, Logger: r.cfg.Logger})
		if err != nil {
			return nil, fmt.Errorf("stage %s: open store %d: %w", r.cfg.Name, p, err)
		}
		r.stores[p] = s
		r.needRestore[p] = true
	}
	if r.needRestore[p] {
		start := time.Now()
		n, err := statestore.Restore(ctx, s, r.cfg.Changelog, p, r.conn...)
		if err != nil {
			return nil, fmt.Errorf("stage %s: restore partition %d from %s: %w", r.cfg.Name, p, r.cfg.Changelog, err)
		}
		r.cfg.Logger.Info("restored", "stage", r.cfg.Name, "partition", p, "records", n, "took", time.Since(start))
		delete(r.needRestore, p)
	}
	return s, nil
}

func (r *runner) loop(ctx context.Context) error {
	for {
		pctx, cancel := ctx, context.CancelFunc(func() {})
		if r.align != nil {
			// Paused partitions can leave nothing to fetch: come back to
			// re-plan rather than block.
			pctx, cancel = context.WithTimeout(ctx, time.Second)
		}
		var fetches kgo.Fetches
		if r.cfg.MaxPollRecords > 0 {
			fetches = r.sess.PollRecords(pctx, r.cfg.MaxPollRecords)
		} else {
			fetches = r.sess.PollFetches(pctx)
		}
		cancel()
		stopping := ctx.Err() != nil
		if stopping && fetches.NumRecords() == 0 {
			return ctx.Err()
		}
		if fetches.IsClientClosed() {
			return fmt.Errorf("stage %s: client closed", r.cfg.Name)
		}
		fetches.EachError(func(t string, p int32, err error) {
			if !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, context.Canceled) {
				r.cfg.Logger.Warn("fetch error", "stage", r.cfg.Name, "topic", t, "partition", p, "err", err)
			}
		})
		assigned := r.applyEvents()
		if r.align != nil && !stopping {
			if assigned != nil {
				r.align.reset(ctx, r.sess.Client(), assigned)
			}
			if fetches.NumRecords() == 0 {
				r.align.idle(r.sess.Client())
			}
		}
		if fetches.NumRecords() == 0 {
			continue
		}
		err := r.transact(ctx, fetches)
		if stopping {
			if err != nil {
				r.cfg.Logger.Info("stopped; last transaction failed", "stage", r.cfg.Name, "err", err)
			}
			return ctx.Err()
		}
		if err != nil {
			return err
		}
	}
}

// mergeByTime orders the records of several partitions by timestamp,
// keeping each partition's offset order: a k-way merge on the queues'
// heads (ties go to the earlier queue). Joins need a click fetched in the
// same poll as the install it caused to be processed first, whichever
// partitions they came from.
func mergeByTime(queues [][]*kgo.Record) []*kgo.Record {
	n := 0
	for _, q := range queues {
		n += len(q)
	}
	out := make([]*kgo.Record, 0, n)
	heads := make([]int, len(queues))
	for len(out) < n {
		best := -1
		for i, q := range queues {
			if heads[i] == len(q) {
				continue
			}
			if best < 0 || q[heads[i]].Timestamp.Before(queues[best][heads[best]].Timestamp) {
				best = i
			}
		}
		out = append(out, queues[best][heads[best]])
		heads[best]++
	}
	return out
}

// transact runs one transaction over the polled records.
func (r *runner) transact(ctx context.Context, fetches kgo.Fetches) (err error) {
	// Group the records by partition number, keeping the fetch order.
	var order []int32
	var queues [][]*kgo.Record // per input partition, in offset order
	seen := map[int32]bool{}
	stale := false
	fetches.EachPartition(func(ftp kgo.FetchTopicPartition) {
		if len(ftp.Records) == 0 {
			return
		}
		if !r.owned[ftp.Partition] {
			stale = true
			return
		}
		if !seen[ftp.Partition] {
			seen[ftp.Partition] = true
			order = append(order, ftp.Partition)
		}
		queues = append(queues, ftp.Records)
	})

	// Restore before Begin: no transaction is open while we wait.
	stores := map[int32]*statestore.Store{}
	for _, p := range order {
		s, err := r.store(ctx, p)
		if err != nil {
			return err
		}
		stores[p] = s
	}

	// From Begin on, a stop does not interrupt: the transaction of the
	// records already polled finishes (bounded by the transaction
	// timeout), so the next owner finds no backlog this instance had read.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), r.cfg.TransactionTimeout)
	defer cancel()
	if err := r.sess.Begin(); err != nil {
		return fmt.Errorf("stage %s: begin: %w", r.cfg.Name, err)
	}
	batches := map[int32]*statestore.Batch{}
	defer func() {
		for _, b := range batches {
			b.Close() // no-op after Commit
		}
	}()
	abort := func(cause error) error {
		actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), r.cfg.TransactionTimeout)
		defer cancel()
		if _, err := r.sess.End(actx, kgo.TryAbort); err != nil {
			return errors.Join(cause, fmt.Errorf("stage %s: abort: %w", r.cfg.Name, err))
		}
		return cause
	}
	if stale {
		r.cfg.Logger.Info("records of a revoked partition polled; aborting", "stage", r.cfg.Name)
		if err := abort(nil); err != nil {
			return err
		}
		return nil
	}

	var (
		produceMu  sync.Mutex
		produceErr error
		changelogs = map[int32][]*kgo.Record{}
		wg         sync.WaitGroup
	)
	produce := func(rec *kgo.Record) {
		wg.Add(1)
		r.sess.Produce(ctx, rec, func(_ *kgo.Record, err error) {
			defer wg.Done()
			if err != nil {
				produceMu.Lock()
				produceErr = errors.Join(produceErr, err)
				produceMu.Unlock()
			}
		})
	}
	emit := func(rec *kgo.Record) {
		if rec.Topic == r.cfg.Changelog {
			// Only the batch writes the changelog.
			produceMu.Lock()
			produceErr = errors.Join(produceErr, fmt.Errorf("stage %s: processor emitted to the changelog", r.cfg.Name))
			produceMu.Unlock()
			return
		}
		produce(rec)
	}
	for _, p := range order {
		batches[p] = stores[p].NewBatch()
	}
	for _, rec := range mergeByTime(queues) {
		if err := r.p.Process(ctx, rec, batches[rec.Partition], emit); err != nil {
			err := abort(fmt.Errorf("stage %s: process %s/%d@%d: %w", r.cfg.Name, rec.Topic, rec.Partition, rec.Offset, err))
			wg.Wait() // End(TryAbort) fails what is still buffered
			return err
		}
	}
	for _, p := range order {
		b := batches[p]
		if err := b.Err(); err != nil {
			err := abort(fmt.Errorf("stage %s: state of partition %d: %w", r.cfg.Name, p, err))
			wg.Wait() // End(TryAbort) fails what is still buffered
			return err
		}
		cl := b.Records(r.cfg.Changelog, p)
		changelogs[p] = cl
		for _, rec := range cl {
			produce(rec)
		}
	}
	if err := r.sess.Client().Flush(ctx); err != nil {
		err := abort(fmt.Errorf("stage %s: flush: %w", r.cfg.Name, err))
		wg.Wait() // End(TryAbort) fails what is still buffered
		return err
	}
	wg.Wait()
	produceMu.Lock()
	perr := produceErr
	produceMu.Unlock()
	if perr != nil {
		return abort(fmt.Errorf("stage %s: produce: %w", r.cfg.Name, perr))
	}

	committed, err := r.sess.End(ctx, kgo.TryCommit)
	if err != nil {
		return fmt.Errorf("stage %s: end transaction: %w", r.cfg.Name, err)
	}
	if !committed {
		r.cfg.Logger.Info("transaction aborted (rebalance); state not applied", "stage", r.cfg.Name)
		return nil // deferred Close discards the batches
	}
	for _, p := range order {
		b := batches[p]
		b.SetChangelogOffset(statestore.LastOffset(changelogs[p]))
		if err := b.Commit(); err != nil {
			// The changelog has it; Pebble is behind. Restore before
			// the partition's next transaction.
			r.cfg.Logger.Warn("state commit failed; will restore", "stage", r.cfg.Name, "partition", p, "err", err)
			r.needRestore[p] = true
		}
	}
	if r.align != nil {
		r.align.processed(r.sess.Client(), fetches)
	}
	return nil
}
