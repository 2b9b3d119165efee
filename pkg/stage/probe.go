package stage

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Position is where a consumer group stands on one input partition.
type Position struct {
	Topic     string
	Partition int32
	// Committed is the next offset the group will process: its committed
	// offset, else the start of the log.
	Committed int64
	// Stable is the last stable offset: records below it are committed or
	// aborted; from it on, a transaction is still open.
	Stable int64
	// End is the high watermark.
	End int64
	// Backlog reports committed records at or after Committed: work the
	// group has not done yet. Offsets that hold only transaction markers
	// or aborted records are not a backlog.
	Backlog bool
	// Next is the timestamp of the first backlog record (Backlog only).
	Next time.Time
}

// Open reports whether a transaction is open on the partition beyond
// what the group has processed: records that may still become visible.
func (p Position) Open() bool { return p.Stable < p.End && p.Stable >= p.Committed }

// Prober finds the backlog of consumer groups without consuming as them:
// it compares each group's committed offsets with the partitions' stable
// and end offsets, and reads the first record past a commit (as a
// read_committed consumer, keeping transaction markers) to tell real
// records from markers and aborted data. It remembers partitions found
// to hold only markers, so an idle pipeline costs two or three small
// requests per probe. Safe for concurrent use.
type Prober struct {
	conn []kgo.Opt
	cl   *kgo.Client
	adm  *kadm.Client

	mu sync.Mutex
	// ended holds, per transactional id, the latest transactions this
	// process's stages ended in a known way (ended.go): if Kafka leaves one
	// open, its outcome is known.
	ended map[string][]endedTxn
	// v2 holds the transactional ids whose transactions each end with a
	// new producer epoch (Kafka 4's transactions v2), seen by their stage.
	v2 map[string]bool
	// clusterV2 is set once the cluster was found to run transactions v2
	// (clusterRunsV2): it holds for every transactional id, also those
	// of a process that restarted before its stages could see an epoch
	// bump.
	clusterV2 bool
	// empty holds (group, partition, committed, stable) found to hold no
	// committed record between committed and stable.
	empty map[emptyKey]bool
}

type emptyKey struct {
	group, topic      string
	partition         int32
	committed, stable int64
}

// NewProber returns a prober connecting with conn (seed brokers, TLS,
// SASL). Close it when done.
func NewProber(conn ...kgo.Opt) (*Prober, error) {
	cl, err := kgo.NewClient(conn...)
	if err != nil {
		return nil, err
	}
	return &Prober{conn: conn, cl: cl, adm: kadm.NewClient(cl), empty: map[emptyKey]bool{}, ended: map[string][]endedTxn{}, v2: map[string]bool{}}, nil
}

// Close releases the prober's connections.
func (p *Prober) Close() { p.cl.Close() }

// Backlog returns group's position on every partition of topics (or, when
// only is not nil, on those partitions of it).
func (p *Prober) Backlog(ctx context.Context, group string, topics []string, only map[string][]int32) ([]Position, error) {
	ends, err := p.adm.ListEndOffsets(ctx, topics...)
	if err == nil {
		err = ends.Error()
	}
	if err != nil {
		return nil, fmt.Errorf("list end offsets of %v: %w", topics, err)
	}
	stables, err := p.adm.ListCommittedOffsets(ctx, topics...)
	if err == nil {
		err = stables.Error()
	}
	if err != nil {
		return nil, fmt.Errorf("list stable offsets of %v: %w", topics, err)
	}
	starts, err := p.adm.ListStartOffsets(ctx, topics...)
	if err == nil {
		err = starts.Error()
	}
	if err != nil {
		return nil, fmt.Errorf("list start offsets of %v: %w", topics, err)
	}
	committed, err := p.adm.FetchOffsets(ctx, group)
	if err == nil {
		err = committed.Error()
	}
	if err != nil {
		return nil, fmt.Errorf("fetch offsets of group %s: %w", group, err)
	}
	var out []Position
	peek := map[string]map[int32]kgo.Offset{}
	ends.Each(func(e kadm.ListedOffset) {
		if only != nil && !slices.Contains(only[e.Topic], e.Partition) {
			return
		}
		pos := Position{Topic: e.Topic, Partition: e.Partition, End: e.Offset, Stable: e.Offset}
		if s, ok := stables.Lookup(e.Topic, e.Partition); ok {
			pos.Stable = s.Offset
		}
		if s, ok := starts.Lookup(e.Topic, e.Partition); ok {
			pos.Committed = s.Offset
		}
		if c, ok := committed.Lookup(e.Topic, e.Partition); ok && c.At >= 0 {
			pos.Committed = max(pos.Committed, c.At)
		}
		if pos.Committed < pos.Stable && !p.isEmpty(group, pos) {
			if peek[e.Topic] == nil {
				peek[e.Topic] = map[int32]kgo.Offset{}
			}
			peek[e.Topic][e.Partition] = kgo.NewOffset().At(pos.Committed)
		}
		out = append(out, pos)
	})
	if len(peek) == 0 {
		return out, nil
	}
	next, err := p.peek(ctx, peek, out)
	if err != nil {
		return nil, err
	}
	for i := range out {
		k := topicPartition{out[i].Topic, out[i].Partition}
		if ts, ok := next[k]; ok {
			out[i].Backlog, out[i].Next = true, ts
		} else if _, peeked := peek[k.topic][k.partition]; peeked {
			p.setEmpty(group, out[i])
		}
	}
	return out, nil
}

func (p *Prober) isEmpty(group string, pos Position) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.empty[emptyKey{group, pos.Topic, pos.Partition, pos.Committed, pos.Stable}]
}

func (p *Prober) setEmpty(group string, pos Position) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.empty) > 10_000 {
		clear(p.empty) // offsets only grow: old entries are dead weight
	}
	p.empty[emptyKey{group, pos.Topic, pos.Partition, pos.Committed, pos.Stable}] = true
}

// peek reads, from each given offset, up to the first committed record
// below the partition's stable offset, and returns its timestamp. A
// partition absent from the result holds only markers and aborted records
// there.
func (p *Prober) peek(ctx context.Context, from map[string]map[int32]kgo.Offset, pos []Position) (map[topicPartition]time.Time, error) {
	stable := map[topicPartition]int64{}
	for _, q := range pos {
		stable[topicPartition{q.Topic, q.Partition}] = q.Stable
	}
	cl, err := kgo.NewClient(append(slices.Clone(p.conn), kgo.ConsumePartitions(from),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()), kgo.KeepControlRecords())...)
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	want := 0
	for _, ps := range from {
		want += len(ps)
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	next := map[topicPartition]time.Time{}
	done := map[topicPartition]bool{}
	for len(done) < want {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			return nil, fmt.Errorf("peek at %d partitions: %w", want-len(done), ctx.Err())
		}
		for _, fe := range fs.Errors() {
			return nil, fmt.Errorf("peek %s/%d: %w", fe.Topic, fe.Partition, fe.Err)
		}
		fs.EachPartition(func(fp kgo.FetchTopicPartition) {
			k := topicPartition{fp.Topic, fp.Partition}
			for _, r := range fp.Records {
				if done[k] {
					return
				}
				if !r.Attrs.IsControl() {
					next[k], done[k] = r.Timestamp, true
				} else if r.Offset+1 >= stable[k] {
					done[k] = true // only markers (and aborted records) up to the stable offset
				}
			}
			if done[k] {
				cl.PauseFetchPartitions(map[string][]int32{fp.Topic: {fp.Partition}})
			}
		})
	}
	return next, nil
}

// producerEpoch identifies one transaction of a transactional producer.
type producerEpoch struct {
	id    int64
	epoch int16
}

// bumpsEpochs records that the transactions of txnID each end with a new
// producer epoch.
func (p *Prober) bumpsEpochs(txnID string) {
	p.mu.Lock()
	p.v2[txnID] = true
	p.mu.Unlock()
}

// clusterRunsV2 reports whether the cluster's finalized transaction.version
// feature is 2 or more. franz-go opts in to KIP-890 part 2 on that same
// feature, so every transaction of every stage then ends with a new
// producer epoch. A yes is kept (the feature is only raised by an
// operator's upgrade); a no or a failed request is asked again next time.
func (p *Prober) clusterRunsV2(ctx context.Context) bool {
	p.mu.Lock()
	known := p.clusterV2
	p.mu.Unlock()
	if known {
		return true
	}
	vs, err := p.adm.ApiVersions(ctx)
	if err != nil {
		return false
	}
	v2 := false
	vs.Each(func(v kadm.BrokerApiVersions) {
		if v.Err == nil && v.Raw() != nil && transactionsV2(v.Raw().FinalizedFeatures) {
			v2 = true
		}
	})
	if v2 {
		p.mu.Lock()
		p.clusterV2 = true
		p.mu.Unlock()
	}
	return v2
}

// transactionsV2 reports whether features finalize transaction.version 2
// or more.
func transactionsV2(features []kmsg.ApiVersionsResponseFinalizedFeature) bool {
	for _, f := range features {
		if f.Name == "transaction.version" && f.MaxVersionLevel >= 2 {
			return true
		}
	}
	return false
}

// isV2 reports whether bumpsEpochs was called for txnID.
func (p *Prober) isV2(txnID string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.v2[txnID]
}
