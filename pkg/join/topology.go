package join

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/adtrack/postback/pkg/topics"
)

// inputWait is how long EnsureTopics looks for an input topic before it
// reports it missing.
const inputWait = 15 * time.Second

// ticksRetention keeps a day of ticks: they matter only until every stage
// has read them.
const ticksRetention = 24 * time.Hour

// EnsureTopics checks that the four input topics are co-partitioned and
// creates, through topics.Ensure, the internal topics with the same
// partition count: the repartition topics, each stage's compacted
// changelog, and the ticks topic. A partition mismatch is an error
// wrapping topics.ErrNotCoPartitioned, naming both topics and counts: a
// join over differently partitioned topics would silently miss matches.
func (j *Joiner) EnsureTopics(ctx context.Context) (partitions int32, err error) {
	cl, err := kgo.NewClient(j.conn("")...)
	if err != nil {
		return 0, err
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	t := j.cfg.Topics
	inputs := []string{t.Clicks, t.Impressions, t.InstallsRaw, t.EventsRaw}
	// A topic created a moment ago may not be in every broker's metadata
	// yet: look again for a while before calling it missing.
	wctx, cancel := context.WithTimeout(ctx, inputWait)
	td, err := topics.WaitVisible(wctx, adm, inputs)
	cancel()
	if err != nil {
		if ctx.Err() != nil {
			return 0, ctx.Err()
		}
		return 0, fmt.Errorf("join: input %w (run postbackctl bootstrap)", err)
	}
	n, first := int32(-1), ""
	for _, name := range inputs {
		c := int32(len(td[name].Partitions))
		if n < 0 {
			n, first = c, name
		} else if c != n {
			return 0, fmt.Errorf("join: %w: %s has %d partitions, %s has %d", topics.ErrNotCoPartitioned, first, n, name, c)
		}
	}
	if _, err := topics.Ensure(ctx, adm, j.internalSpecs(n)); err != nil {
		return 0, fmt.Errorf("join: internal topics: %w", err)
	}
	return n, nil
}

// internalSpecs are the topics the joins own, all with the inputs'
// partition count.
func (j *Joiner) internalSpecs(n int32) []topics.Spec {
	rf := j.cfg.RepartitionReplication
	if rf == 0 {
		rf = -1 // the broker's default
	}
	spec := func(name string, configs map[string]string) topics.Spec {
		return topics.Spec{Name: name, Partitions: n, ReplicationFactor: rf, Configs: configs, CoPartitioned: true}
	}
	retention := strconv.FormatInt(j.cfg.RepartitionRetention.Milliseconds(), 10)
	var specs []topics.Spec
	for _, name := range j.InternalTopics() {
		specs = append(specs, spec(name, map[string]string{"cleanup.policy": "delete", "retention.ms": retention}))
	}
	for _, name := range Stages {
		specs = append(specs, spec(j.Changelog(name), map[string]string{"cleanup.policy": "compact"}))
	}
	if j.cfg.TickInterval > 0 {
		specs = append(specs, spec(j.ticks, map[string]string{"cleanup.policy": "delete",
			"retention.ms": strconv.FormatInt(ticksRetention.Milliseconds(), 10)}))
	}
	return specs
}

// ensureTopicsRetrying runs EnsureTopics until it succeeds, ctx is done,
// or the topics are found not co-partitioned (which no retry fixes). A
// broker that is away at start is waited for, not a reason to exit.
func (j *Joiner) ensureTopicsRetrying(ctx context.Context) (int32, error) {
	backoff := 250 * time.Millisecond
	for {
		n, err := j.EnsureTopics(ctx)
		if err == nil {
			j.topicsHealth.Set("")
			return n, nil
		}
		if ctx.Err() != nil {
			return 0, ctx.Err()
		}
		if errors.Is(err, topics.ErrNotCoPartitioned) {
			j.topicsHealth.Set("stopped: " + err.Error())
			return 0, err
		}
		j.topicsHealth.Set("checking and creating topics: " + err.Error())
		j.cfg.Logger.Warn("cannot check or create the topics yet; retrying", "err", err, "retry_in", backoff)
		select {
		case <-ctx.Done():
			return 0, ctx.Err()
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 10*time.Second)
	}
}
