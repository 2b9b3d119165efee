package stage

import (
	"context"
	"log/slog"
	"slices"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// aligner keeps a stage's input partitions in step by record time while a
// backlog is read (Config.AlignSlack). Kafka orders records only within a
// partition; a join that reads a day of clicks and the installs they caused
// must not take the installs first because their partition fetched
// faster.
//
// On assignment every partition is paused (hold) and the loop learns where
// each stands (reset): which partitions have records left beyond the
// group's committed offset, and the timestamp of the first of them (read
// with a separate client; nothing is consumed). From then on, while some
// partitions have a backlog, the floor is the earliest timestamp among
// them, and only partitions whose next records are at most AlignSlack past
// the floor are fetched. A partition without a backlog counts as being at
// the time it was last seen caught up (records it gets later are newer), so
// it waits while the backlog is older than that and runs freely once the
// backlog is live too. With no backlog left, every partition is resumed and
// alignment costs nothing.
//
// Pausing never loses records: kgo drops the buffered, unpolled records of
// a paused partition and fetches them again on resume, and offsets only
// move past records the stage processed. The granularity is one poll: a
// partition within the slack delivers its whole fetch.
type aligner struct {
	slack time.Duration
	name  string
	group string
	conn  []kgo.Opt
	log   *slog.Logger

	parts  map[topicPartition]*progress
	paused map[topicPartition]bool
	// txn marks topics seen with gaps between consecutive records: they
	// are written in transactions, and an offset left at the end of a
	// partition can be a commit marker rather than a record.
	txn map[string]bool
}

type topicPartition struct {
	topic     string
	partition int32
}

// progress is where one input partition stands.
type progress struct {
	next    time.Time // timestamp of its next record to process (or of the last processed, a lower bound)
	backlog bool      // records remain beyond the processed ones
	active  time.Time // when it was last resumed or delivered records (wall clock)
	// caughtAt is when it was last seen without a backlog (wall clock):
	// records it receives later were produced after that, so their
	// timestamps are at least this (producers stamp records on send).
	caughtAt time.Time
}

// upTo is the earliest timestamp its next record can have, as known.
func (st *progress) upTo() time.Time {
	if !st.backlog && st.caughtAt.After(st.next) {
		return st.caughtAt
	}
	return st.next
}

// silence is how long a resumed partition with a backlog may deliver
// nothing before it is taken as caught up (its remaining records are
// invisible to read_committed: aborted, or markers). A resumed partition is
// fetched once the broker answers the fetch in flight, which waits up to
// alignFetchWait for data: silence is well above both.
const (
	silence        = 3 * time.Second
	alignFetchWait = 500 * time.Millisecond
)

func newAligner(cfg Config, conn []kgo.Opt) *aligner {
	return &aligner{slack: cfg.AlignSlack, name: cfg.Name, group: cfg.GroupID(), conn: conn, log: cfg.Logger,
		parts: map[topicPartition]*progress{}, paused: map[topicPartition]bool{}, txn: map[string]bool{}}
}

// hold pauses the newly assigned partitions; it runs in the assignment
// callback, before they are fetched.
func (a *aligner) hold(cl *kgo.Client, assigned map[string][]int32) {
	cl.PauseFetchPartitions(assigned)
}

// reset learns the backlog of every assigned partition and plans which to
// fetch. If it cannot (the broker does not answer), it resumes everything
// and aligns nothing until the next assignment, rather than stall.
func (a *aligner) reset(ctx context.Context, cl *kgo.Client, assigned map[string][]int32) {
	clear(a.parts)
	clear(a.paused)
	for t, ps := range assigned {
		for _, p := range ps {
			a.paused[topicPartition{t, p}] = true // as hold left them
		}
	}
	if err := a.learn(ctx, cl, assigned); err != nil {
		a.log.Warn("cannot read the input backlog; partitions are not aligned until the next assignment", "stage", a.name, "err", err)
		clear(a.parts)
	}
	a.plan(cl)
}

// learn fills parts from the committed and end offsets, and the first
// unprocessed record's timestamp of each partition with a backlog.
func (a *aligner) learn(ctx context.Context, cl *kgo.Client, assigned map[string][]int32) error {
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	adm := kadm.NewClient(cl)
	topics := make([]string, 0, len(assigned))
	for t := range assigned {
		topics = append(topics, t)
	}
	ends, err := adm.ListEndOffsets(ctx, topics...)
	if err == nil {
		err = ends.Error()
	}
	if err != nil {
		return err
	}
	starts, err := adm.ListStartOffsets(ctx, topics...)
	if err == nil {
		err = starts.Error()
	}
	if err != nil {
		return err
	}
	committed, err := adm.FetchOffsets(ctx, a.group)
	if err == nil {
		err = committed.Error()
	}
	if err != nil {
		return err
	}
	from := map[string]map[int32]kgo.Offset{}
	for t, ps := range assigned {
		for _, p := range ps {
			at := int64(0)
			if s, ok := starts.Lookup(t, p); ok {
				at = s.Offset
			}
			if c, ok := committed.Lookup(t, p); ok && c.At >= 0 {
				at = max(at, c.At)
			}
			end, _ := ends.Lookup(t, p)
			// Offsets left may be records or only transaction markers;
			// the peek below tells which.
			st := &progress{backlog: end.Offset > at}
			if !st.backlog {
				st.caughtAt = time.Now()
			}
			a.parts[topicPartition{t, p}] = st
			if st.backlog {
				if from[t] == nil {
					from[t] = map[int32]kgo.Offset{}
				}
				from[t][p] = kgo.NewOffset().At(at)
			}
		}
	}
	if len(from) == 0 {
		return nil
	}
	peek, err := kgo.NewClient(append(slices.Clone(a.conn), kgo.ConsumePartitions(from),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()), kgo.KeepControlRecords())...)
	if err != nil {
		return err
	}
	defer peek.Close()
	want := 0
	for _, ps := range from {
		want += len(ps)
	}
	seen := map[topicPartition]bool{}
	for len(seen) < want && ctx.Err() == nil {
		pctx, pcancel := context.WithTimeout(ctx, 2*time.Second)
		fs := peek.PollFetches(pctx)
		pcancel()
		got := false
		fs.EachPartition(func(p kgo.FetchTopicPartition) {
			k := topicPartition{p.Topic, p.Partition}
			if seen[k] {
				return
			}
			for _, r := range p.Records {
				got = true
				if r.Attrs.IsControl() {
					a.txn[p.Topic] = true
					if end, _ := ends.Lookup(p.Topic, p.Partition); r.Offset+1 >= end.Offset {
						seen[k] = true // only markers were left
						a.parts[k].backlog = false
						a.parts[k].caughtAt = time.Now()
						break
					}
					continue
				}
				seen[k] = true
				a.parts[k].next = r.Timestamp
				break
			}
			if seen[k] {
				peek.PauseFetchPartitions(map[string][]int32{p.Topic: {p.Partition}})
			}
		})
		if !got {
			break // the rest hold no committed records (aborted data only)
		}
	}
	for k, st := range a.parts {
		if st.backlog && !seen[k] {
			st.backlog, st.caughtAt = false, time.Now()
		}
	}
	return nil
}

// processed records how far the committed transaction took each partition.
func (a *aligner) processed(cl *kgo.Client, fetches kgo.Fetches) {
	fetches.EachPartition(func(p kgo.FetchTopicPartition) {
		n := len(p.Records)
		if n == 0 {
			return
		}
		k := topicPartition{p.Topic, p.Partition}
		st := a.parts[k]
		if st == nil {
			st = &progress{}
			a.parts[k] = st
		}
		last := p.Records[n-1]
		st.next, st.active = last.Timestamp, time.Now()
		if last.Offset-p.Records[0].Offset+1 != int64(n) {
			a.txn[p.Topic] = true // markers between the records
		}
		left := p.LastStableOffset - (last.Offset + 1)
		st.backlog = left > 1 || (left == 1 && !a.txn[p.Topic])
		if !st.backlog {
			st.caughtAt = time.Now()
		}
	})
	a.plan(cl)
}

// idle handles a poll that returned nothing: partitions fetched for
// longer than silence without delivering have no records left that a
// read_committed consumer can see.
func (a *aligner) idle(cl *kgo.Client) {
	changed := false
	for k, st := range a.parts {
		if st.backlog && !a.paused[k] && time.Since(st.active) > silence {
			st.backlog, st.caughtAt, changed = false, time.Now(), true
		}
	}
	if changed {
		a.plan(cl)
	}
}

// plan pauses and resumes partitions around the backlog's floor.
func (a *aligner) plan(cl *kgo.Client) {
	var floor time.Time
	backlog := false
	for _, st := range a.parts {
		if st.backlog && (!backlog || st.next.Before(floor)) {
			floor, backlog = st.next, true
		}
	}
	pause, resume := map[string][]int32{}, map[string][]int32{}
	for k, st := range a.parts {
		hold := backlog && st.upTo().After(floor.Add(a.slack))
		switch {
		case hold && !a.paused[k]:
			pause[k.topic] = append(pause[k.topic], k.partition)
			a.paused[k] = true
		case !hold && a.paused[k]:
			resume[k.topic] = append(resume[k.topic], k.partition)
			delete(a.paused, k)
			st.active = time.Now()
		}
	}
	// Partitions assigned but unknown (learn failed) are never held.
	for k := range a.paused {
		if _, ok := a.parts[k]; !ok {
			resume[k.topic] = append(resume[k.topic], k.partition)
			delete(a.paused, k)
		}
	}
	if len(pause) > 0 {
		cl.PauseFetchPartitions(pause)
	}
	if len(resume) > 0 {
		cl.ResumeFetchPartitions(resume)
	}
	if len(pause) > 0 || len(resume) > 0 {
		a.log.Debug("aligning inputs", "stage", a.name, "backlog_floor", floor, "paused", pause, "resumed", resume)
	}
}
