// Package sink loads the pipeline's topics into ClickHouse, exactly once.
//
//	l, err := sink.New(cfg, conn, tel, log)   // conn from chconn.Open
//	err = l.Run(ctx)                           // until ctx ends; flushes on the way out
//
// Every row carries its Kafka source (src_topic, src_partition, src_offset).
// The sink_progress materialized views (schemas/clickhouse/002) keep the
// highest offset each table holds per partition, fed by the same INSERT as
// the rows. On assignment the sink seeks each partition to that offset + 1,
// so a crash between an insert and the offset commit, or a rebalance, never
// loads a row twice or skips one. Kafka offset commits only make lag
// visible; correctness does not depend on them.
//
// Batches close on rows, bytes or time (sink.batch_rows, batch_bytes,
// flush_interval). A failed INSERT is retried with capped exponential
// backoff while consumption pauses, so memory stays bounded by the batch;
// meanwhile a ping every second notices the server's return, and the
// insert is retried at once instead of at the end of a backoff that may
// have grown to sink.retry_max.
// A record whose content cannot be loaded (undecodable, out of range, not in
// an enum) becomes a row of the rejected table with the reason and its raw
// value, and does not block its partition.
package sink

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/adtrack/postback/pkg/config"
	"github.com/adtrack/postback/pkg/telemetry"
)

type tp struct {
	topic     string
	partition int32
}

type row struct {
	tp
	offset int64
	size   int   // bytes of the record value, for the batch_bytes budget
	ts     int64 // the record's timestamp (Unix ns), for freshness
	vals   []any // column values followed by src_topic, src_partition, src_offset
}

type buffer struct {
	table *Table
	rows  []row
	// uncertain is set after a failed attempt: before the next one, rows
	// ClickHouse already holds (per sink_progress) are dropped.
	uncertain bool
	attempts  int // INSERTs tried, to count retries
	// trimmed is set when a revocation dropped rows since the last attempt:
	// in cluster mode the next attempt is then not the same block.
	trimmed bool
	// screened is set once rows repeating a keyed touch id were dropped
	// (repeats.go), before the first attempt.
	screened bool
}

// Loader consumes the configured topics and inserts them into ClickHouse.
type Loader struct {
	cfg     Config
	conn    driver.Conn
	cluster bool              // cfg.ClickHouse.Cluster is set: insert through Distributed tables (cluster.go)
	tables  map[string]*Table // by topic
	topics  []string
	log     *slog.Logger
	m       *metrics
	now     func() time.Time
	rejects *Table
	probe   time.Duration // probeInterval; shorter in tests

	// insertMu is held for each INSERT attempt. Revocation and resume take
	// it before mu, so they never overlap an insert: once the revoke
	// callback returns, nothing of ours can still land for those partitions.
	insertMu sync.Mutex
	flushing chan error // result of the batch being inserted; nil when none

	// mu guards everything below.
	mu       sync.Mutex
	buffers  map[string]*buffer // the open batch, by table name
	inflight map[string]*buffer // the closed batch being inserted
	rows     int
	bytes    int
	first    time.Time
	owned    map[tp]bool
	rejected map[tp]int64 // rejected-table progress, to skip re-routed rows on re-read
	inserted map[tp]int64 // next offset to commit per partition
}

// New returns a Loader for cfg's topics on conn.
func New(cfg Config, conn driver.Conn, tel *telemetry.Telemetry, log *slog.Logger) (*Loader, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Kafka == nil {
		return nil, errors.New("sink: Config.Kafka is required")
	}
	t := cfg.Topics
	all := Tables(t.Clicks, t.Impressions, t.InstallsAttributed, t.EventsAttributed, t.Rejected, t.SKAN)
	all[t.Deliveries] = deliveriesTable()
	l := &Loader{
		cfg: cfg, conn: conn, cluster: cfg.ClickHouse.Cluster != "", log: log, tables: map[string]*Table{},
		m: newMetrics(tel.Registry), now: time.Now, probe: probeInterval,
		rejects: all[t.Rejected], buffers: map[string]*buffer{}, inflight: map[string]*buffer{},
		owned: map[tp]bool{}, rejected: map[tp]int64{}, inserted: map[tp]int64{},
	}
	want := cfg.Sink.Topics
	if len(want) == 0 {
		want = []string{t.Clicks, t.Impressions, t.InstallsAttributed, t.EventsAttributed, t.Rejected, t.SKAN, t.Deliveries}
	}
	for _, topic := range want {
		tab, ok := all[topic]
		if !ok {
			return nil, config.Errorf("sink.topics", "%q is not one of the loadable topics (clicks, impressions, attributed installs and events, rejected, skan, deliveries)", topic)
		}
		l.tables[topic] = tab
		l.topics = append(l.topics, topic)
	}
	return l, nil
}

// Topics returns the topics this loader consumes.
func (l *Loader) Topics() []string { return append([]string(nil), l.topics...) }

// clientOpts are the franz-go options of the loader's consumer.
func (l *Loader) clientOpts() []kgo.Opt {
	return l.cfg.Kafka.Opts("sink",
		kgo.ConsumerGroup(l.cfg.Group),
		kgo.SessionTimeout(l.cfg.SessionTimeout),
		kgo.ConsumeTopics(l.topics...),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.DisableAutoCommit(),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.AdjustFetchOffsetsFn(l.resume),
		kgo.OnPartitionsRevoked(l.revoke),
		kgo.OnPartitionsLost(l.revoke),
		kgo.FetchMaxBytes(int32(min(l.cfg.Sink.BatchBytes, 64<<20))),
	)
}

// Run consumes until ctx ends, then flushes what is buffered and leaves the
// group. It returns nil on a clean stop.
func (l *Loader) Run(ctx context.Context) error {
	cl, err := kgo.NewClient(l.clientOpts()...)
	if err != nil {
		return fmt.Errorf("sink consumer: %w", err)
	}
	defer cl.Close()
	l.log.Info("sink consuming", "topics", l.topics, "group", l.cfg.Group)
	for {
		wait := l.cfg.Sink.FlushInterval
		l.mu.Lock()
		if l.rows > 0 {
			wait -= l.now().Sub(l.first)
		}
		room := l.cfg.Sink.BatchRows - l.rows
		l.mu.Unlock()
		if wait < time.Millisecond {
			wait = time.Millisecond
		}
		pctx, cancel := context.WithTimeout(ctx, wait)
		fs := cl.PollRecords(pctx, max(room, 1))
		cancel()
		if ctx.Err() != nil {
			return l.shutdown(cl)
		}
		fs.EachError(func(topic string, p int32, err error) {
			if !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, context.Canceled) {
				l.m.fetchErrors.Inc()
				l.log.Warn("fetch error", "topic", topic, "partition", p, "err", err)
			}
		})
		l.mu.Lock()
		fs.EachPartition(func(p kgo.FetchTopicPartition) {
			if n := len(p.Records); n > 0 {
				l.setLag(p.Topic, p.Partition, p.HighWatermark-p.Records[n-1].Offset-1)
			}
			for _, r := range p.Records {
				l.add(r)
			}
		})
		full := l.rows >= l.cfg.Sink.BatchRows || l.bytes >= l.cfg.Sink.BatchBytes ||
			(l.rows > 0 && l.now().Sub(l.first) >= l.cfg.Sink.FlushInterval)
		l.m.buffered.Set(float64(l.rows))
		l.mu.Unlock()
		if full {
			// At most one batch is in flight: reading and decoding the next
			// one overlaps its INSERT, and memory stays at two batches.
			if err := l.waitFlush(); err != nil {
				if ctx.Err() != nil {
					return l.shutdown(cl)
				}
				return err
			}
			l.closeBatch()
			done := make(chan error, 1)
			l.flushing = done
			go func() { done <- l.flush(ctx, cl) }()
		}
	}
}

// waitFlush waits for the batch in flight, if any.
func (l *Loader) waitFlush() error {
	if l.flushing == nil {
		return nil
	}
	err := <-l.flushing
	l.flushing = nil
	return err
}

// closeBatch moves the open batch to inflight (the previous one is done).
func (l *Loader) closeBatch() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.inflight, l.buffers = l.buffers, map[string]*buffer{}
	l.rows, l.bytes = 0, 0
}

// shutdown flushes the open batch with a fresh deadline (SIGTERM must not
// lose the batch) and commits.
func (l *Loader) shutdown(cl *kgo.Client) error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*l.cfg.Sink.InsertTimeout+5*time.Second)
	defer cancel()
	err := l.waitFlush()
	if err == nil || ctx.Err() == nil {
		l.closeBatch()
		err = l.flushOnce(ctx, cl)
	}
	if err != nil {
		l.log.Warn("final flush failed; the rows will be loaded by the next owner of their partitions", "err", err)
	}
	l.log.Info("sink stopped")
	return nil
}

// add routes one record to its table's buffer (mu held).
func (l *Loader) add(r *kgo.Record) {
	key := tp{r.Topic, r.Partition}
	if !l.owned[key] {
		return // revoked while this fetch was in flight
	}
	tab := l.tables[r.Topic]
	vals, err := tab.Row(r.Value)
	if err != nil {
		if next, ok := l.rejected[key]; ok && r.Offset < next {
			return // already in the rejected table from before a restart
		}
		l.m.contentRejects.WithLabelValues(r.Topic).Inc()
		l.log.Warn("record not loadable, kept in the rejected table", "topic", r.Topic, "partition", r.Partition, "offset", r.Offset, "err", err)
		tab, vals = l.rejects, sinkRejection(r.Topic, r.Value, err, l.now())
	}
	vals = append(vals, r.Topic, uint32(r.Partition), uint64(r.Offset))
	if l.cluster {
		// Set here rather than by the column's DEFAULT now(), so that a
		// retried block is the same block and replication dedups it.
		vals = append(vals, l.now().UTC().Truncate(time.Second))
	}
	b := l.buffers[tab.Name]
	if b == nil {
		b = &buffer{table: tab}
		l.buffers[tab.Name] = b
	}
	if l.rows == 0 {
		l.first = l.now()
	}
	b.rows = append(b.rows, row{tp: key, offset: r.Offset, size: len(r.Value), ts: r.Timestamp.UnixNano(), vals: vals})
	l.rows++
	l.bytes += len(r.Value)
}

// flush inserts every buffer, retrying each with backoff until it lands or
// ctx ends, then commits offsets.
func (l *Loader) flush(ctx context.Context, cl *kgo.Client) error {
	var p prober
	backoff := l.cfg.Sink.RetryMin
	for {
		err := l.flushOnce(ctx, cl)
		if err == nil {
			return nil
		}
		l.m.insertFailures.Inc()
		l.log.Warn("insert failed, retrying", "err", err, "backoff", backoff)
		p.failed(err)
		back, err := l.wait(ctx, backoff, &p)
		if err != nil {
			return err
		}
		if back {
			l.log.Info("ClickHouse answers again, retrying the insert now")
			backoff = l.cfg.Sink.RetryMin
			continue
		}
		backoff = min(2*backoff, l.cfg.Sink.RetryMax)
	}
}

// probeInterval is how often a loader waiting out an insert backoff pings
// ClickHouse: after an outage the insert resumes within about this long of
// the server's return, however far the backoff has grown (to retry_max,
// 30 s by default).
const probeInterval = time.Second

// prober remembers, across the waits of one retry loop, whether the server
// was seen away: a ping failed, or an attempt could not even connect. Only
// a server seen away and then answering is a reason to retry before the
// backoff ends; one that answers throughout while inserts fail (a bad row,
// a full disk) keeps the backoff.
type prober struct{ sawDown bool }

// failed notes a failed attempt: one that could not connect saw the server
// away (it may be back before the first ping).
func (p *prober) failed(err error) {
	var op *net.OpError
	if errors.As(err, &op) && op.Op == "dial" {
		p.sawDown = true
	}
}

// wait sleeps for backoff, pinging ClickHouse at once and then every
// probeInterval; it returns early, with back set, when the server answers
// after it was seen away. It fails only when ctx ends.
func (l *Loader) wait(ctx context.Context, backoff time.Duration, p *prober) (back bool, err error) {
	end := time.NewTimer(backoff)
	defer end.Stop()
	tick := time.NewTicker(min(l.probe, backoff))
	defer tick.Stop()
	for {
		pctx, cancel := context.WithTimeout(ctx, l.probe)
		err := l.conn.Ping(pctx)
		cancel()
		switch {
		case err != nil:
			p.sawDown = true
		case p.sawDown:
			p.sawDown = false
			return true, nil
		}
		select {
		case <-ctx.Done():
			return false, ctx.Err()
		case <-end.C:
			return false, nil
		case <-tick.C:
		}
	}
}

// flushOnce makes one attempt per non-empty buffer. Rejected rows go first:
// resume is driven by the main tables' progress, so a rejection written
// before a crash is re-read later and skipped, never lost.
func (l *Loader) flushOnce(ctx context.Context, cl *kgo.Client) error {
	l.mu.Lock()
	names := make([]string, 0, len(l.inflight))
	for n := range l.inflight {
		names = append(names, n)
	}
	l.mu.Unlock()
	sort.Slice(names, func(i, j int) bool {
		if (names[i] == l.rejects.Name) != (names[j] == l.rejects.Name) {
			return names[i] == l.rejects.Name
		}
		return names[i] < names[j]
	})
	for _, n := range names {
		if err := l.insertBuffer(ctx, n); err != nil {
			return err
		}
	}
	l.commit(ctx, cl)
	return nil
}

func (l *Loader) insertBuffer(ctx context.Context, name string) error {
	l.insertMu.Lock()
	defer l.insertMu.Unlock()
	l.mu.Lock()
	b := l.inflight[name]
	var rows []row
	if b != nil {
		rows = b.rows
	}
	l.mu.Unlock()
	if len(rows) == 0 {
		return nil
	}
	// A shutdown lets an attempt finish rather than cut it off mid-stream.
	ictx, cancel := context.WithTimeout(context.WithoutCancel(ctx), l.cfg.Sink.InsertTimeout)
	defer cancel()
	if !b.screened {
		kept, dropped, err := l.dropRepeats(ictx, b.table, rows)
		if err != nil {
			return err
		}
		l.mu.Lock() // b.rows is as read above: a revocation waits for insertMu
		b.rows, b.screened = kept, true
		l.advance(dropped)
		l.mu.Unlock()
		if len(dropped) > 0 {
			l.m.repeats.WithLabelValues(name).Add(float64(len(dropped)))
			l.log.Info("rows repeating a keyed touch id not loaded again", "table", name, "rows", len(dropped))
		}
		if rows = kept; len(rows) == 0 {
			l.mu.Lock()
			delete(l.inflight, name)
			l.mu.Unlock()
			return nil
		}
	}
	if b.uncertain {
		var err error
		if rows, err = l.prepareRetry(ictx, b); err != nil {
			return err
		}
		if len(rows) == 0 {
			l.mu.Lock()
			delete(l.inflight, name)
			l.mu.Unlock()
			return nil
		}
	}
	if b.attempts++; b.attempts > 1 {
		l.m.retries.WithLabelValues(name).Inc()
	}
	start := time.Now()
	if err := insert(ictx, l.conn, b.table, rows, l.cluster); err != nil {
		l.mu.Lock()
		b.uncertain = true
		l.mu.Unlock()
		return fmt.Errorf("insert %d rows into %s: %w", len(rows), name, err)
	}
	l.m.observeInsert(name, rows, time.Since(start))
	l.mu.Lock()
	defer l.mu.Unlock()
	l.advance(rows)
	for _, r := range rows {
		if name == l.rejects.Name && l.tables[r.topic] != l.rejects {
			l.rejected[r.tp] = max(l.rejected[r.tp], r.offset+1)
		}
	}
	delete(l.inflight, name)
	return nil
}

// advance records rows as done for the offset commit (mu held).
func (l *Loader) advance(rows []row) {
	for _, r := range rows {
		if r.offset+1 > l.inserted[r.tp] {
			l.inserted[r.tp] = r.offset + 1
		}
	}
}

// prepareRetry returns the rows of b to insert after an attempt that failed
// with an unknown outcome (timeout, lost connection): ClickHouse may hold
// some of them already.
func (l *Loader) prepareRetry(ctx context.Context, b *buffer) ([]row, error) {
	l.mu.Lock()
	rows, trimmed := b.rows, b.trimmed
	l.mu.Unlock()
	rows, err := l.notYetLoaded(ctx, b.table.Name, rows)
	if err != nil && l.cluster && !trimmed {
		// Some replica does not answer, so progress is not known. The same
		// block again is safe: a replica that committed it (alive or not)
		// left its id in ZooKeeper, and the shard drops the repeat and skips
		// its materialized views.
		l.log.Info("progress unknown, retrying the same block; replicas drop it if it landed", "table", b.table.Name, "rows", len(b.rows), "err", err)
		return b.rows, nil
	}
	if err != nil {
		return nil, fmt.Errorf("check progress of %s before retrying: %w", b.table.Name, err)
	}
	l.mu.Lock()
	b.rows, b.uncertain, b.trimmed = rows, false, false
	l.mu.Unlock()
	return rows, nil
}

// notYetLoaded returns the rows whose offsets are beyond what table holds.
func (l *Loader) notYetLoaded(ctx context.Context, table string, rows []row) ([]row, error) {
	progress, err := l.readProgress(ctx)
	if err != nil {
		return nil, err
	}
	kept := make([]row, 0, len(rows))
	for _, r := range rows {
		if next, ok := progress[progressKey{table, r.tp}]; ok && r.offset < next {
			continue
		}
		kept = append(kept, r)
	}
	if dropped := len(rows) - len(kept); dropped > 0 {
		l.log.Warn("rows of a failed insert were already loaded; not inserting them again", "table", table, "rows", dropped)
	}
	return kept, nil
}

// insert writes rows with one batch INSERT naming its columns. In cluster
// mode the rows also carry inserted_at, and the INSERT into the Distributed
// table returns only once every shard's replica has committed its rows.
func insert(ctx context.Context, conn driver.Conn, t *Table, rows []row, cluster bool) error {
	cols := append(append([]string(nil), t.Columns...), srcColumns...)
	if cluster {
		cols = append(cols, "inserted_at")
		ctx = clickhouse.Context(ctx, clickhouse.WithSettings(clusterInsertSettings()))
	}
	batch, err := conn.PrepareBatch(ctx, "INSERT INTO "+t.Name+" ("+strings.Join(cols, ", ")+")")
	if err != nil {
		return err
	}
	for _, r := range rows {
		if err := batch.Append(r.vals...); err != nil {
			_ = batch.Abort()
			return fmt.Errorf("row %s/%d@%d: %w", r.topic, r.partition, r.offset, err)
		}
	}
	return batch.Send()
}

// commit records inserted offsets in Kafka, for lag monitoring only.
func (l *Loader) commit(ctx context.Context, cl *kgo.Client) {
	if !l.cfg.Sink.CommitOffsets {
		return
	}
	l.mu.Lock()
	offs := map[string]map[int32]kgo.EpochOffset{}
	for k, next := range l.inserted {
		if !l.owned[k] {
			continue
		}
		if offs[k.topic] == nil {
			offs[k.topic] = map[int32]kgo.EpochOffset{}
		}
		offs[k.topic][k.partition] = kgo.EpochOffset{Epoch: -1, Offset: next}
	}
	l.mu.Unlock()
	if len(offs) == 0 {
		return
	}
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	cl.CommitOffsetsSync(cctx, offs, func(_ *kgo.Client, _ *kmsg.OffsetCommitRequest, _ *kmsg.OffsetCommitResponse, err error) {
		if err != nil {
			l.log.Warn("offset commit failed (harmless: ClickHouse progress drives resume)", "err", err)
		}
	})
}

// revoke drops the buffered rows of revoked or lost partitions. It takes mu,
// so it waits for an insert in progress: once it returns, nothing of ours
// lands for those partitions and their new owner may read the progress.
func (l *Loader) revoke(_ context.Context, _ *kgo.Client, gone map[string][]int32) {
	l.insertMu.Lock()
	defer l.insertMu.Unlock()
	l.mu.Lock()
	defer l.mu.Unlock()
	for topic, parts := range gone {
		for _, p := range parts {
			l.dropPartition(tp{topic, p})
			l.m.lag.DeleteLabelValues(topic, fmt.Sprint(p))
			l.m.consumerLag.DeleteLabelValues(l.cfg.Group, topic, fmt.Sprint(p))
		}
	}
	l.log.Info("partitions revoked", "partitions", gone, "buffered_rows_kept", l.rows)
}

// dropPartition forgets a partition and its rows in both batches (insertMu
// and mu held).
func (l *Loader) dropPartition(k tp) {
	delete(l.owned, k)
	delete(l.inserted, k)
	delete(l.rejected, k)
	filter := func(bufs map[string]*buffer) (rows, bytes int) {
		for n, b := range bufs {
			kept := b.rows[:0:0]
			for _, r := range b.rows {
				if r.tp != k {
					kept = append(kept, r)
					bytes += r.size
				}
			}
			b.trimmed = b.trimmed || len(kept) < len(b.rows)
			b.rows = kept
			if len(kept) == 0 {
				delete(bufs, n)
			}
			rows += len(kept)
		}
		return rows, bytes
	}
	filter(l.inflight)
	l.rows, l.bytes = filter(l.buffers)
	l.m.buffered.Set(float64(l.rows))
}

// resume seeks every assigned partition to one past the highest offset its
// table holds in ClickHouse; partitions with no rows start at the log start.
func (l *Loader) resume(ctx context.Context, assigned map[string]map[int32]kgo.Offset) (map[string]map[int32]kgo.Offset, error) {
	// Consuming before the progress is known could load rows twice, so
	// wait for ClickHouse (the context ends if the group rebalances again).
	var (
		progress map[progressKey]int64
		p        prober
	)
	for backoff := l.cfg.Sink.RetryMin; ; backoff = min(2*backoff, l.cfg.Sink.RetryMax) {
		var err error
		if progress, err = l.readProgress(ctx); err == nil {
			break
		}
		l.m.resumeFailures.Inc()
		l.log.Warn("cannot read sink progress from ClickHouse yet", "err", err, "backoff", backoff)
		back, werr := l.wait(ctx, backoff, &p)
		if werr != nil {
			return nil, fmt.Errorf("read sink progress from ClickHouse: %w", err)
		}
		if back {
			backoff = l.cfg.Sink.RetryMin / 2 // doubled back to retry_min by the loop
		}
	}
	l.insertMu.Lock()
	defer l.insertMu.Unlock()
	l.mu.Lock()
	defer l.mu.Unlock()
	for topic, parts := range assigned {
		tab := l.tables[topic]
		for p := range parts {
			k := tp{topic, p}
			// Consumption restarts at ClickHouse's progress: rows buffered
			// for this partition would be read again, so drop them.
			l.dropPartition(k)
			l.owned[k] = true
			if next, ok := progress[progressKey{tab.Name, k}]; ok {
				parts[p] = kgo.NewOffset().At(next).WithEpoch(-1)
			} else {
				parts[p] = kgo.NewOffset().AtStart()
			}
			if tab != l.rejects {
				if next, ok := progress[progressKey{l.rejects.Name, k}]; ok {
					l.rejected[k] = next
				}
			}
		}
	}
	l.log.Info("partitions assigned, resuming from ClickHouse progress", "assigned", len(assigned))
	return assigned, nil
}

type progressKey struct {
	table string
	tp
}

// readProgress returns next-offset (max + 1) per table and partition, from
// the server, or in cluster mode from every replica (cluster.go).
func (l *Loader) readProgress(ctx context.Context) (map[progressKey]int64, error) {
	if l.cluster {
		return l.readClusterProgress(ctx)
	}
	return readProgress(ctx, l.conn, l.topics, "sink_progress")
}

// readProgress returns next-offset (max + 1) per table and partition as
// table (sink_progress or a replica's local one) holds it.
func readProgress(ctx context.Context, conn driver.Conn, topics []string, table string) (map[progressKey]int64, error) {
	// The table is tiny (a row per table and partition): read it whole
	// rather than bind an IN list, which 18.16 types differently.
	want := map[string]bool{}
	for _, t := range topics {
		want[t] = true
	}
	rows, err := conn.Query(ctx, `SELECT table_name, src_topic, src_partition, maxMerge(max_offset)
		FROM `+table+` GROUP BY table_name, src_topic, src_partition`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[progressKey]int64{}
	for rows.Next() {
		var (
			table, topic string
			part         uint32
			maxOff       uint64
		)
		if err := rows.Scan(&table, &topic, &part, &maxOff); err != nil {
			return nil, err
		}
		if want[topic] {
			out[progressKey{table, tp{topic, int32(part)}}] = int64(maxOff) + 1
		}
	}
	return out, rows.Err()
}

// metrics are the sink's Prometheus series.
type metrics struct {
	inserted       *prometheus.CounterVec
	insertSeconds  *prometheus.HistogramVec
	insertFailures prometheus.Counter
	contentRejects *prometheus.CounterVec
	fetchErrors    prometheus.Counter
	resumeFailures prometheus.Counter
	buffered       prometheus.Gauge
	batchRows      prometheus.Histogram
	lag            *prometheus.GaugeVec // kept for existing dashboards: consumerLag without the group
	consumerLag    *prometheus.GaugeVec
	batchBytes     prometheus.Histogram
	retries        *prometheus.CounterVec
	freshness      *prometheus.HistogramVec
	repeats        *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		inserted:       prometheus.NewCounterVec(prometheus.CounterOpts{Name: "sink_rows_inserted_total", Help: "Rows inserted into ClickHouse, by table."}, []string{"table"}),
		insertSeconds:  prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "sink_insert_duration_seconds", Help: "Duration of successful INSERTs, by table.", Buckets: prometheus.ExponentialBuckets(0.005, 2, 14)}, []string{"table"}),
		insertFailures: prometheus.NewCounter(prometheus.CounterOpts{Name: "sink_insert_failures_total", Help: "Failed INSERT attempts (retried with backoff)."}),
		contentRejects: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "sink_content_rejects_total", Help: "Records routed to the rejected table because their content cannot be loaded, by topic."}, []string{"topic"}),
		fetchErrors:    prometheus.NewCounter(prometheus.CounterOpts{Name: "sink_fetch_errors_total", Help: "Kafka fetch errors."}),
		resumeFailures: prometheus.NewCounter(prometheus.CounterOpts{Name: "sink_resume_failures_total", Help: "Failed reads of sink_progress on partition assignment."}),
		buffered:       prometheus.NewGauge(prometheus.GaugeOpts{Name: "sink_buffered_rows", Help: "Rows waiting for the next INSERT."}),
		batchRows:      prometheus.NewHistogram(prometheus.HistogramOpts{Name: "sink_batch_rows", Help: "Rows per INSERT.", Buckets: prometheus.ExponentialBuckets(1, 4, 10)}),
		lag:            prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "sink_partition_lag", Help: "Records between the last record read and the partition's high watermark (the same as sink_consumer_lag, without the group)."}, []string{"topic", "partition"}),
		consumerLag: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "sink_consumer_lag",
			Help: "Records of a partition after the last one the sink polled: the fetch's high watermark minus the next offset to process (a trailing transaction marker counts as one). Updated with every fetch that returns records."}, []string{"group", "topic", "partition"}),
		batchBytes: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "sink_batch_bytes", Help: "Bytes of Kafka record values per successful INSERT.", Buckets: prometheus.ExponentialBuckets(256, 4, 10)}),
		retries:    prometheus.NewCounterVec(prometheus.CounterOpts{Name: "sink_insert_retries_total", Help: "INSERT attempts that retry a failed one, by table."}, []string{"table"}),
		// The buckets of attribution_freshness_seconds: milliseconds when
		// live, up to an hour through a backlog.
		freshness: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "sink_freshness_seconds",
			Help:    "Seconds from a Kafka record's timestamp to the successful INSERT of its row, by table.",
			Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2, 5, 10, 30, 60, 300, 900, 3600}}, []string{"table"}),
		repeats: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "sink_repeats_dropped_total",
			Help: "Rows not loaded because their keyed click or impression id (sent with an idempotency key) is loaded already: a client's retry whose first attempt was written after all, by table."}, []string{"table"}),
	}
	reg.MustRegister(m.inserted, m.insertSeconds, m.insertFailures, m.contentRejects, m.fetchErrors, m.resumeFailures, m.buffered, m.batchRows, m.lag,
		m.consumerLag, m.batchBytes, m.retries, m.freshness, m.repeats)
	return m
}

// observeInsert records a successful INSERT of rows into table that took d.
func (m *metrics) observeInsert(table string, rows []row, d time.Duration) {
	m.insertSeconds.WithLabelValues(table).Observe(d.Seconds())
	m.inserted.WithLabelValues(table).Add(float64(len(rows)))
	m.batchRows.Observe(float64(len(rows)))
	fresh := m.freshness.WithLabelValues(table)
	now := time.Now().UnixNano()
	size := 0
	for _, r := range rows {
		size += r.size
		fresh.Observe(float64(now-r.ts) / 1e9)
	}
	m.batchBytes.Observe(float64(size))
}

// setLag records how many records of a partition follow the last one read.
func (l *Loader) setLag(topic string, partition int32, lag int64) {
	p := fmt.Sprint(partition)
	lag = max(lag, 0)
	l.m.lag.WithLabelValues(topic, p).Set(float64(lag))
	l.m.consumerLag.WithLabelValues(l.cfg.Group, topic, p).Set(float64(lag))
}
