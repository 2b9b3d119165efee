package stage

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/adtrack/postback/pkg/statestore"
)

// txn is the open transaction: the state batches of the partitions it
// touched and the outputs it produced, from Begin to End.
type txn struct {
	r *runner
	// ctx bounds the whole transaction by the transaction timeout, and is
	// not cancelled by a stop: records already read are finished.
	ctx      context.Context
	cancel   context.CancelFunc
	deadline time.Time // when it commits at the latest (CommitInterval)
	evSeq    int       // rebalance callbacks seen before Begin

	batches map[int32]*statestore.Batch
	order   []int32 // partitions in first-touched order
	fetches []kgo.Fetches
	records int
	stamps  []int64 // timestamps (Unix ns) of the data records processed, for freshness
	// id is the producer id and epoch of the transaction's records, when
	// they name this transaction alone (see txnEpochs); ok is false when
	// unknown or shared.
	id producerEpoch
	ok bool

	wg         sync.WaitGroup
	mu         sync.Mutex
	produceErr error
}

func (r *runner) begin(ctx context.Context) (*txn, error) {
	evSeq := r.eventSeq()
	if err := r.sess.Begin(); err != nil {
		return nil, fmt.Errorf("stage %s: begin: %w", r.cfg.Name, err)
	}
	tctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), r.cfg.TransactionTimeout)
	t := &txn{r: r, ctx: tctx, cancel: cancel, deadline: time.Now().Add(r.cfg.CommitInterval), evSeq: evSeq,
		batches: map[int32]*statestore.Batch{}, stamps: r.stamps[:0]}
	t.id, t.ok = r.txnEpochs.next(tctx, r.sess.Client())
	if r.txnEpochs.bumped {
		if p, err := r.probe(); err == nil {
			p.bumpsEpochs(r.cfg.TransactionalID)
		}
	}
	return t, nil
}

// txnEpochs tells whether a transaction's producer id and epoch name it
// alone. The first transaction of a session has the epoch its producer
// was just given; later ones have an epoch of their own only where the
// broker bumps it at every transaction's end (Kafka 4's transactions v2).
// With transactions v1 they share the session's epoch, and a hanging one
// could not be told from an earlier, committed one.
type txnEpochs struct {
	seen bool
	last producerEpoch
	// lost is set once a transaction's epoch could not be read: a later
	// one may share it, so none is called alone for the rest of the session.
	lost bool
	// bumped is set once two transactions in a row had different epochs:
	// the broker ends every transaction with a new epoch (v2).
	bumped bool
}

func (e *txnEpochs) next(ctx context.Context, cl *kgo.Client) (producerEpoch, bool) {
	// Cached once loaded; the bound is for a producer id being loaded
	// from a broker that is away (the transaction then stays unknown).
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	id, epoch, err := cl.ProducerID(ctx)
	if err != nil {
		e.lost = true
		return producerEpoch{}, false
	}
	cur := producerEpoch{id, epoch}
	alone := !e.lost && (!e.seen || cur != e.last)
	e.bumped = e.bumped || (e.seen && cur.id == e.last.id && cur.epoch != e.last.epoch)
	e.seen, e.last = true, cur
	return cur, alone
}

func (t *txn) produce(rec *kgo.Record) {
	t.wg.Add(1)
	t.r.sess.Produce(t.ctx, rec, func(_ *kgo.Record, err error) {
		defer t.wg.Done()
		if err != nil {
			t.fail(err)
		}
	})
}

func (t *txn) fail(err error) {
	t.mu.Lock()
	t.produceErr = errors.Join(t.produceErr, err)
	t.mu.Unlock()
}

func (t *txn) err() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.produceErr
}

func (t *txn) emit(rec *kgo.Record) {
	if rec.Topic == t.r.cfg.Changelog {
		// Only the batch writes the changelog.
		t.fail(fatal(fmt.Errorf("stage %s: processor emitted to the changelog", t.r.cfg.Name)))
		return
	}
	t.produce(rec)
}

// process runs the processor over one poll's records, merged by time.
func (t *txn) process(ctx context.Context, fetches kgo.Fetches, queues [][]*kgo.Record) error {
	for _, q := range queues {
		p := q[0].Partition
		if t.batches[p] == nil {
			t.batches[p] = t.r.stores[p].NewBatch()
			t.order = append(t.order, p)
		}
	}
	for _, rec := range mergeByTime(queues) {
		b := t.batches[rec.Partition]
		var err error
		switch {
		case rec.Topic != t.r.cfg.Ticks:
			err = t.r.p.Process(ctx, rec, b, t.emit)
			t.stamps = append(t.stamps, rec.Timestamp.UnixNano())
		case t.r.ticker != nil:
			err = t.r.ticker.Tick(ctx, rec.Partition, rec.Timestamp, b, t.emit)
		}
		if err != nil {
			return fatal(fmt.Errorf("stage %s: process %s/%d@%d: %w", t.r.cfg.Name, rec.Topic, rec.Partition, rec.Offset, err))
		}
		t.records++
	}
	t.fetches = append(t.fetches, fetches)
	return nil
}

// close releases the batches (a no-op for committed ones) and the context.
func (t *txn) close() {
	for _, b := range t.batches {
		b.Close()
	}
	t.cancel()
	t.r.stamps = t.stamps // the next transaction reuses the array
}

// commit ends the open transaction with a commit and, once the broker
// confirmed it, applies its state. An error means the outcome is unknown
// or the abort could not be told: the session must end (its successor
// restores every store from the changelogs).
func (r *runner) commit(ctx context.Context) error {
	t := r.tx
	r.tx = nil
	defer t.close()
	r.setPhase("committing a transaction")
	defer r.setPhase("")

	for _, p := range t.order {
		if err := t.batches[p].Err(); err != nil {
			err = fatal(fmt.Errorf("stage %s: state of partition %d: %w", r.cfg.Name, p, err))
			return errors.Join(err, r.endAborting(t, err))
		}
	}
	changelogs := make(map[int32][]*kgo.Record, len(t.order))
	for _, p := range t.order {
		changelogs[p] = t.batches[p].Records(r.cfg.Changelog, p)
		for _, rec := range changelogs[p] {
			t.produce(rec)
		}
	}
	if err := r.sess.Client().Flush(t.ctx); err != nil {
		err = fmt.Errorf("stage %s: flush: %w", r.cfg.Name, err)
		r.abandon(t)
		return errors.Join(err, r.endAborting(t, err))
	}
	t.wg.Wait()
	if err := t.err(); err != nil {
		err = fmt.Errorf("stage %s: produce: %w", r.cfg.Name, err)
		r.abandon(t)
		return errors.Join(err, r.endAborting(t, err))
	}

	committed, err := r.sess.End(t.ctx, kgo.TryCommit)
	if err != nil {
		r.count("failed", err)
		return fmt.Errorf("stage %s: end transaction (outcome unknown; state not applied): %w", r.cfg.Name, err)
	}
	if !committed {
		clear(r.next) // End rewound to the committed offsets
		why := errCommitRefused
		if r.eventSeq() != t.evSeq {
			why = errRebalance
		}
		r.count("aborted", why)
		r.cfg.Logger.Info("transaction aborted; state not applied, records are read again", "stage", r.cfg.Name, "reason", reason(why), "records", t.records)
		return nil
	}
	r.count("committed", nil)
	r.recordCommitted(t)
	r.cfg.Metrics.records.WithLabelValues(r.cfg.Name).Add(float64(t.records))
	r.observeFreshness(t)
	for _, p := range t.order {
		b := t.batches[p]
		b.SetChangelogOffset(statestore.LastOffset(changelogs[p]))
		if err := b.Commit(); err != nil {
			// The changelog has it, Pebble does not: restore now,
			// before the partition's next transaction.
			r.cfg.Logger.Warn("state commit failed; restoring from the changelog", "stage", r.cfg.Name, "partition", p, "err", err)
			r.closeStore(p)
			if _, err := r.store(ctx, p); err != nil {
				return err
			}
		}
	}
	r.committed()
	if r.align != nil {
		for _, f := range t.fetches {
			r.align.processed(r.sess.Client(), f)
		}
	}
	return nil
}

// abort ends the open transaction, if any, with an abort, and rewinds the
// consumer to the committed offsets (also when no transaction is open:
// polled records that were not processed are read again).
func (r *runner) abort(ctx context.Context, why error) error {
	t := r.tx
	r.tx = nil
	if t == nil {
		clear(r.next) // the position goes back to the committed offsets
		actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), r.cfg.TransactionTimeout)
		defer cancel()
		if _, err := r.sess.End(actx, kgo.TryAbort); err != nil {
			return fmt.Errorf("stage %s: rewind: %w", r.cfg.Name, err)
		}
		return nil
	}
	defer t.close()
	return r.endAborting(t, why)
}

// endAborting aborts t (already taken off r.tx) for why.
func (r *runner) endAborting(t *txn, why error) error {
	clear(r.next) // aborting rewinds to the committed offsets
	// A fresh bound: t.ctx may be what expired.
	actx, cancel := context.WithTimeout(context.WithoutCancel(t.ctx), r.cfg.TransactionTimeout)
	defer cancel()
	_, err := r.sess.End(actx, kgo.TryAbort)
	// End(TryAbort) fails what is still buffered; records in flight to a
	// broker that is away finish when the session's client closes.
	waitAtMost(&t.wg, 5*time.Second)
	if err != nil {
		r.count("failed", err)
		return fmt.Errorf("stage %s: abort: %w", r.cfg.Name, err)
	}
	r.count("aborted", why)
	return nil
}

func (r *runner) count(outcome string, err error) {
	r.cfg.Metrics.transactions.WithLabelValues(r.cfg.Name, outcome, reason(err)).Inc()
}

// waitAtMost waits for wg, but no longer than d.
func waitAtMost(wg *sync.WaitGroup, d time.Duration) {
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(d):
	}
}

// recordCommitted records t with the prober as committed when its epoch
// names it alone for good: the broker gave the producer a new epoch at its
// end (transactions v2), so no later transaction shares it. If Kafka then
// leaves it open on a partition, a stage writes its commit marker.
func (r *runner) recordCommitted(t *txn) {
	if !t.ok {
		return
	}
	ctx, cancel := context.WithTimeout(t.ctx, time.Second)
	defer cancel()
	id, epoch, err := r.sess.Client().ProducerID(ctx)
	if err != nil || id != t.id.id || epoch == t.id.epoch {
		return
	}
	if p, err := r.probe(); err == nil {
		p.committed(t.id.id, t.id.epoch, r.cfg.TransactionalID)
	}
}

// abandon records t with the prober as ended without a commit request, on
// the way out of a session (its client is closed next, so no later
// transaction shares its epoch): if Kafka leaves it open on a partition,
// a stage may write its abort marker (hanging.go).
func (r *runner) abandon(t *txn) {
	if !t.ok {
		return
	}
	if p, err := r.probe(); err == nil {
		p.abandon(t.id.id, t.id.epoch, r.cfg.TransactionalID)
	}
}
