// Package stage runs one exactly-once, stateful read-process-write stage of
// the attribution service (docs/attribution-design.md, "Exactly once" and
// "State"): a [kgo.GroupTransactSession] consuming co-partitioned input
// topics, a [statestore.Store] per partition whose writes are mirrored to a
// compacted changelog, and a [Processor] that turns each input record into
// output records.
//
// # Transactions
//
// The loop polls, processes each poll's records into one open transaction
// (one [statestore.Batch] per partition number: partition i of every input
// shares the state of partition i), and ends the transaction when it has
// been open for Config.CommitInterval, or sooner when a poll finds nothing
// more to read: under light load a record is committed within milliseconds,
// under heavy load each transaction carries up to a commit interval of
// records, so the broker's per-transaction work does not grow with the rate.
// Ending produces the batches' changelog records, flushes, and commits the
// input offsets with the outputs. Only when the commit is confirmed are the
// batches applied to Pebble, each with the real offset of its last changelog
// record; an abort discards them and the records are read again from the
// committed offsets.
//
// # Faults
//
// Run returns only when ctx is done or on an error no retry can fix (the
// inputs are not co-partitioned, or the Processor failed). Everything Kafka
// does wrong, a broker restart or a minute away, a coordinator move, a
// fenced producer, a failed or timed-out produce, offset commit or
// EndTransaction, is handled the same way: the open transaction is aborted
// if the broker can be told, the session (client, group membership, stores)
// is closed, and a new session starts after a backoff. Its producer uses
// the same transactional id (Config.TransactionalID), so initialising it
// fences the previous session and aborts whatever transaction it left
// open, at once rather than after the transaction timeout. A transaction
// whose end was not confirmed is never applied to Pebble, and every store
// is restored from its changelog when the new session is assigned its
// partitions, so local state is never ahead of what Kafka committed.
//
// While a stage cannot make progress its [Health] says which partition or
// step is stuck and why, and the metrics count every transaction by
// outcome and reason ([Metrics]).
//
// # Assignment and restore
//
// The group uses the range balancer (eager protocol), so partition i of
// every input goes to the same member and every rebalance revokes
// everything first. The OnPartitionsAssigned, Revoked and Lost callbacks
// only record what happened; the loop applies it: it aborts the open
// transaction (the rebalance dooms it), closes the stores of revoked
// partitions, and opens and restores ([statestore.Restore]) every assigned
// partition before it processes any record. Restore runs in the loop, not in
// the callback, because it can wait for the previous owner's open
// transaction, and doing that in the callback would hold up the group.
//
// # Ordering
//
// Within one input partition records are processed in offset order. Across
// the partitions of one poll they are merged by record timestamp, so a
// click and the install it caused are processed in that order whichever
// partitions they came from. Across polls, Config.AlignSlack keeps any
// partition from being read more than the slack ahead, in record time, of
// the least advanced one that still has a backlog (see align.go).
//
// # Ticks
//
// Records of the Config.Ticks topic carry no data: each tells the stage
// that stream time on its partition has reached the record's timestamp
// (see pkg/join, which writes them while the pipeline is idle). They go to
// the Processor's Tick method when it has one ([Ticker]), in the same
// transactions as data records, so their effects are exactly once too.
package stage

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/adtrack/postback/pkg/kafkaconn"
	"github.com/adtrack/postback/pkg/statestore"
)

// Processor handles one record with the partition's state batch and returns
// output records through emit. Emitted records need a Topic; they are
// partitioned by key (kgo's default sticky key partitioner) unless they go to
// the changelog topic. state is the batch of the record's partition for the
// current transaction: reads see earlier writes of the same transaction.
//
// An error from Process aborts the transaction and ends Run with it: return
// errors only for conditions a retry cannot fix (bad content belongs on a
// rejected topic, not in an error).
type Processor interface {
	Process(ctx context.Context, rec *kgo.Record, state *statestore.Batch, emit func(*kgo.Record)) error
}

// Ticker is implemented by processors with timers (grace periods, expiry):
// Tick is called for each record of the Config.Ticks topic, with its
// partition and timestamp, in the transaction of the poll that read it.
type Ticker interface {
	Tick(ctx context.Context, partition int32, now time.Time, state *statestore.Batch, emit func(*kgo.Record)) error
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
	// default changelog is Group+"."+Name+"-changelog", and the state
	// lives under StateDir/Name.
	Name string
	// Kafka is the connection every client of the stage starts from
	// (the session's, its restores' and probes').
	Kafka *kafkaconn.Conn
	// Group is the consumer group prefix (the service's group).
	Group string
	// Inputs are co-partitioned input topics: Run refuses to start unless
	// all of them and the changelog have the same number of partitions.
	Inputs []string
	// Ticks, if set, is one of Inputs whose records are ticks (see the
	// package documentation), not data.
	Ticks string
	// Changelog is the compacted changelog topic, with the inputs'
	// partition count. It must exist (pkg/topics creates it; join does for
	// its stages). Empty means Group+"."+Name+"-changelog".
	Changelog string
	// StateDir holds one Pebble store per partition: StateDir/Name/<partition>.
	StateDir string
	// Cache is the process-wide block cache shared by the stores (nil: one
	// small cache per store).
	Cache *statestore.Cache
	// Prober is the process-wide prober shared by the stages, for the
	// watchdog, the aligner and leaving the group; the caller closes it
	// after Run returns. Nil: the stage makes its own on first use.
	Prober *Prober
	// TransactionalID is this instance's transactional id for the stage.
	// Keep it stable across restarts of one instance and unique among
	// instances: then a restarted instance fences its predecessor's open
	// transaction at once instead of waiting out TransactionTimeout. Empty
	// means Name + a random suffix (safe, not stable).
	TransactionalID string
	// GroupInstanceID, if set, makes the stage a static member of its group
	// (KIP-345): a new session, or a restarted process, with the same id
	// takes its partitions back at once, where a dynamic member waits for
	// the old one's session to expire (with the broker's group state
	// reloaded after a restart, that was 15 to 20 s). Unique per instance
	// within the group; on a clean stop the stage leaves explicitly, so
	// other instances take its partitions at once.
	GroupInstanceID string
	// TransactionTimeout is the broker's bound on an open transaction of
	// the stage, and how long a crashed session's transaction blocks the
	// next owner when it has another transactional id. Keep it well below
	// 90 s (statestore.Restore gives up after 90 s without progress).
	// Zero means 30 s.
	TransactionTimeout time.Duration
	// CommitInterval is how long a transaction collects polled records
	// before it commits; it commits sooner when a poll finds nothing more.
	// Zero means 100 ms.
	CommitInterval time.Duration
	// SessionTimeout is the group session timeout; zero means kgo's default.
	SessionTimeout time.Duration
	// StallTimeout is how long the stage may go without progress while it
	// has work (records waiting, a restore, a commit) before Health reports
	// it not ready. Zero means 30 s.
	StallTimeout time.Duration
	// MaxPollRecords bounds the records of one poll; zero means no bound
	// (whatever one fetch returns).
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
	// StatsInterval is how often the state gauges (Pebble's bytes, and
	// the processor's own if it is an [Inspector]) are collected. Zero
	// means 15 s.
	StatsInterval time.Duration
	// Health receives the stage's readiness (nil: kept internally).
	Health *Health
	// Metrics counts transactions and restarts (nil: not counted).
	Metrics *Metrics
	// Logger receives the stage's log lines, and franz-go's one level
	// down (its transaction chatter at debug); nil discards them.
	Logger *slog.Logger
}

func (c *Config) fill() error {
	if c.Name == "" || c.Kafka == nil || c.Group == "" || len(c.Inputs) == 0 || c.StateDir == "" {
		return errors.New("stage: Name, Kafka, Group, Inputs and StateDir are required")
	}
	if c.Changelog == "" {
		c.Changelog = c.Group + "." + c.Name + "-changelog"
	}
	if slices.Contains(c.Inputs, c.Changelog) {
		return fmt.Errorf("stage %s: the changelog %s is also an input", c.Name, c.Changelog)
	}
	if c.Ticks != "" && !slices.Contains(c.Inputs, c.Ticks) {
		return fmt.Errorf("stage %s: the ticks topic %s is not an input", c.Name, c.Ticks)
	}
	if c.TransactionalID == "" {
		b := make([]byte, 8)
		_, _ = rand.Read(b)
		c.TransactionalID = c.Name + "-" + hex.EncodeToString(b)
	}
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&c.TransactionTimeout, 30*time.Second)
	def(&c.CommitInterval, 100*time.Millisecond)
	def(&c.StallTimeout, 30*time.Second)
	def(&c.StatsInterval, 15*time.Second)
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Health == nil {
		c.Health = NewHealth(c.Name)
	}
	c.Health.log = c.Logger
	if c.Metrics == nil {
		c.Metrics = NewMetrics(nil, "stage")
	}
	c.Health.gauge = c.Metrics.ready.WithLabelValues(c.Name)
	c.Health.gauge.Set(0)
	return nil
}

// GroupID is the consumer group the stage joins.
func (c Config) GroupID() string { return c.Group + "." + c.Name }

// fatalError marks an error no new session can fix.
type fatalError struct{ err error }

func (e fatalError) Error() string { return e.err.Error() }
func (e fatalError) Unwrap() error { return e.err }

func fatal(err error) error { return fatalError{err} }

// Backoff bounds between sessions: the first retry is quick (a coordinator
// move heals in a moment), a broker that stays away is asked every 2 s (a
// refused dial costs nothing; a longer wait is latency once it is back).
const (
	minBackoff = 250 * time.Millisecond
	maxBackoff = 2 * time.Second
)

// Run runs the stage until ctx is done (it then returns ctx.Err()) or a
// fatal error occurs (see the package documentation). An open transaction
// is committed (if its records were processed) or aborted before Run
// returns.
func Run(ctx context.Context, cfg Config, p Processor) error {
	if err := cfg.fill(); err != nil {
		return err
	}
	r := newRunner(cfg, p)
	defer r.close()
	wctx, stopWatch := context.WithCancel(ctx)
	watched := make(chan struct{})
	go func() { defer close(watched); r.watch(wctx) }()
	defer func() { stopWatch(); <-watched }() // before close: it uses the prober
	backoff := minBackoff
	for {
		progressed, err := r.session(ctx)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if fe := (fatalError{}); errors.As(err, &fe) {
			cfg.Health.set("stopped: " + err.Error())
			return fe.err
		}
		if progressed {
			backoff = minBackoff
		}
		cfg.Metrics.restarts.WithLabelValues(cfg.Name, reason(err)).Inc()
		cfg.Logger.Warn("stage session failed; starting a new one", "stage", cfg.Name, "err", err, "retry_in", backoff)
		r.failed(err)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, maxBackoff)
	}
}
