package stage

import (
	"context"
	"log/slog"
	"time"

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
// by a [Prober]; nothing is consumed). From then on, while some
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
	slack  time.Duration
	name   string
	group  string
	prober func() (*Prober, error)
	log    *slog.Logger

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

// liveWindow is how recent a partition's next record may be for the
// partition to count as live rather than as a backlog. Pausing a live
// partition costs a fetch round trip per pause; what it could reorder is
// a touch and an install less than this apart, which no real install is
// (a click-to-install time under 10 s is already flagged as injection).
const liveWindow = 2 * time.Second

func newAligner(cfg Config, prober func() (*Prober, error)) *aligner {
	return &aligner{slack: cfg.AlignSlack, name: cfg.Name, group: cfg.GroupID(), prober: prober, log: cfg.Logger,
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
	if err := a.learn(ctx, assigned); err != nil {
		a.log.Warn("cannot read the input backlog; partitions are not aligned until the next assignment", "stage", a.name, "err", err)
		clear(a.parts)
	}
	a.plan(cl)
}

// learn fills parts from the group's position on every assigned
// partition: which have records left beyond the committed offset, and the
// timestamp of the first of them.
func (a *aligner) learn(ctx context.Context, assigned map[string][]int32) error {
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	p, err := a.prober()
	if err != nil {
		return err
	}
	topics := make([]string, 0, len(assigned))
	for t := range assigned {
		topics = append(topics, t)
	}
	pos, err := p.Backlog(ctx, a.group, topics, assigned)
	if err != nil {
		return err
	}
	for _, q := range pos {
		st := &progress{backlog: q.Backlog, next: q.Next}
		if !q.Backlog {
			st.caughtAt = time.Now()
			if q.Committed < q.Stable {
				a.txn[q.Topic] = true // only markers were left
			}
		}
		a.parts[topicPartition{q.Topic, q.Partition}] = st
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
	live := time.Now().Add(-liveWindow)
	for _, st := range a.parts {
		// Under live traffic every partition has a few records waiting
		// at any moment; only a partition behind the wall clock is a
		// backlog to align on.
		if st.backlog && st.next.Before(live) && (!backlog || st.next.Before(floor)) {
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
