package stage

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
)

// loopState is what the loop tells the watchdog: the step it is in (if it
// can block), when it last committed, and its last failure.
type loopState struct {
	mu         sync.Mutex
	phase      string // "" while polling and processing
	since      time.Time
	assigned   map[string][]int32 // nil until the session's first assignment
	assignedAt time.Time
	lastCommit time.Time
	failure    error // the last session's failure, until a new one is assigned
	fetchErr   error // the latest fetch error, with its time
	fetchAt    time.Time

	unreachableSince time.Time // first failed ping of the current outage

	// Watchdog-only state.
	lastQuiet time.Time                          // last probe that found nothing waiting
	open      map[topicPartition]openTransaction // partitions seen with an open transaction
}

type openTransaction struct {
	stable int64
	since  time.Time
}

func (r *runner) setPhase(phase string) {
	r.prog.mu.Lock()
	if phase != r.prog.phase {
		r.prog.phase, r.prog.since = phase, time.Now()
	}
	r.prog.mu.Unlock()
}

func (r *runner) setAssigned(m map[string][]int32) {
	r.prog.mu.Lock()
	r.prog.assigned, r.prog.assignedAt, r.prog.failure = m, time.Now(), nil
	r.prog.mu.Unlock()
}

func (r *runner) setUnassigned() {
	r.prog.mu.Lock()
	r.prog.assigned = nil
	r.prog.mu.Unlock()
}

func (r *runner) fetchFailed(err error) {
	r.prog.mu.Lock()
	r.prog.fetchErr, r.prog.fetchAt = err, time.Now()
	r.prog.mu.Unlock()
}

func (r *runner) committed() {
	r.prog.mu.Lock()
	r.prog.lastCommit = time.Now()
	r.prog.mu.Unlock()
}

func (r *runner) failed(err error) {
	r.prog.mu.Lock()
	r.prog.failure, r.prog.phase, r.prog.since = err, "waiting to start a new session", time.Now()
	r.prog.mu.Unlock()
	r.cfg.Health.set(r.diagnose(context.Background(), false))
}

// watch keeps Health current until ctx is done.
func (r *runner) watch(ctx context.Context) {
	t := time.NewTicker(2 * time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		r.cfg.Health.set(r.diagnose(ctx, true))
	}
}

// diagnose returns why the stage is not making progress, or "" when it is
// (or has nothing to do). With probe set it may ask the broker whether
// records are waiting.
func (r *runner) diagnose(ctx context.Context, probe bool) string {
	stall := r.cfg.StallTimeout
	r.prog.mu.Lock()
	phase, since, assigned := r.prog.phase, r.prog.since, r.prog.assigned
	last, failure := r.prog.lastCommit, r.prog.failure
	if r.prog.assignedAt.After(last) {
		last = r.prog.assignedAt
	}
	quiet := r.prog.lastQuiet
	fetchNote := ""
	if r.prog.fetchErr != nil && time.Since(r.prog.fetchAt) < 10*time.Second {
		fetchNote = "; last fetch error: " + r.prog.fetchErr.Error()
	}
	r.prog.mu.Unlock()
	elapsed := time.Since(since).Round(time.Second)

	switch {
	case failure != nil:
		// Not ready from the failure until a new session is assigned.
		now := ""
		if phase != "" {
			now = " (now " + phase + ")"
		}
		return r.explainRestore(ctx, probe, phase, elapsed, fmt.Sprintf("Kafka session failed, retrying%s: %v", now, failure))
	case assigned == nil && phase != "":
		if elapsed > stall {
			return r.explainRestore(ctx, probe, phase, elapsed, fmt.Sprintf("%s for %s%s", phase, elapsed, fetchNote))
		}
		return phase + fetchNote
	case assigned == nil:
		return "joining the group" + fetchNote
	case phase != "" && elapsed > stall:
		return r.explainRestore(ctx, probe, phase, elapsed, fmt.Sprintf("%s for %s%s", phase, elapsed, fetchNote))
	case !probe:
		return ""
	}
	p, err := r.probe()
	if err != nil {
		return "cannot check for waiting records: " + err.Error()
	}
	// An idle stage meets no error of its own while the broker is away.
	if down := r.unreachable(ctx, p); down != "" {
		return down
	}
	if time.Since(last) < stall || time.Since(quiet) < stall/3 {
		return ""
	}
	// Nothing committed for a while: is that because there is nothing to do?
	pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	pos, err := p.Backlog(pctx, r.cfg.GroupID(), r.cfg.Inputs, assigned)
	if err != nil {
		return "cannot check for waiting records: " + err.Error()
	}
	reason := r.stuckReason(pos, last, stall)
	if reason == "" {
		r.prog.mu.Lock()
		r.prog.lastQuiet = time.Now()
		r.prog.mu.Unlock()
		return ""
	}
	return r.explain(ctx, p, reason)
}

// restoreStuck reports whether a restore has gone on past the stall
// timeout: a transaction Kafka left open on the changelog stops a restore
// (it reads to the changelog's end), and the session that would fence it
// starts only after the restore.
func restoreStuck(phase string, elapsed, stall time.Duration) bool {
	return strings.HasPrefix(phase, restoringPhase) && elapsed > stall
}

// explainRestore returns reason, and while a restore is stuck (with probe
// set) what explain finds behind it: the hanging transaction on the
// changelog, whose marker it writes when its outcome is known (markKnown).
func (r *runner) explainRestore(ctx context.Context, probe bool, phase string, elapsed time.Duration, reason string) string {
	if !probe || !restoreStuck(phase, elapsed, r.cfg.StallTimeout) {
		return reason
	}
	p, err := r.probe()
	if err != nil {
		return reason
	}
	return r.explain(ctx, p, reason)
}

// unreachable pings the brokers and returns why none answered, once that
// has lasted longer than a blip (unreachableAfter).
func (r *runner) unreachable(ctx context.Context, p *Prober) string {
	pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	err := p.cl.Ping(pctx)
	cancel()
	r.prog.mu.Lock()
	defer r.prog.mu.Unlock()
	if err == nil || ctx.Err() != nil {
		r.prog.unreachableSince = time.Time{}
		return ""
	}
	if r.prog.unreachableSince.IsZero() {
		r.prog.unreachableSince = time.Now()
	}
	if d := time.Since(r.prog.unreachableSince); d >= unreachableAfter {
		return fmt.Sprintf("no Kafka broker answers (for %s): %v", d.Round(time.Second), err)
	}
	return ""
}

// unreachableAfter is how long the brokers may not answer before the
// stage is reported: a coordinator move or a slow answer is not news.
const unreachableAfter = 4 * time.Second

// stuckReason interprets a probe: records waiting while nothing commits,
// or a transaction open on an input for longer than stall.
func (r *runner) stuckReason(pos []Position, last time.Time, stall time.Duration) string {
	r.prog.mu.Lock()
	defer r.prog.mu.Unlock()
	if r.prog.open == nil {
		r.prog.open = map[topicPartition]openTransaction{}
	}
	open := map[topicPartition]openTransaction{}
	waiting, why := 0, ""
	for _, q := range pos {
		k := topicPartition{q.Topic, q.Partition}
		if q.Backlog {
			if waiting++; why == "" {
				why = fmt.Sprintf("%s/%d from offset %d, record time %s", q.Topic, q.Partition, q.Committed, q.Next.UTC().Format(time.RFC3339))
			}
		}
		if q.Open() {
			o, ok := r.prog.open[k]
			if !ok || o.stable != q.Stable {
				o = openTransaction{q.Stable, time.Now()}
			}
			open[k] = o
		}
	}
	r.prog.open = open
	if waiting > 0 {
		return fmt.Sprintf("%d partition(s) have records waiting (%s) but nothing was committed for %s", waiting, why, time.Since(last).Round(time.Second))
	}
	for k, o := range open {
		if d := time.Since(o.since); d > stall {
			return fmt.Sprintf("a transaction has been open on %s/%d at offset %d for %s: records past it cannot be read", k.topic, k.partition, o.stable, d.Round(time.Second))
		}
	}
	return ""
}

// explain adds to reason what a hanging transaction behind it is, if one
// is: the operator's next step (see hanging.go).
func (r *runner) explain(ctx context.Context, p *Prober, reason string) string {
	stall := r.cfg.StallTimeout
	r.prog.mu.Lock()
	if r.prog.fetchErr != nil && time.Since(r.prog.fetchAt) < stall {
		reason += "; last fetch error: " + r.prog.fetchErr.Error()
	}
	blocked := kadm.TopicsSet{}
	for k, o := range r.prog.open {
		if time.Since(o.since) > stall {
			blocked.Add(k.topic, k.partition)
		}
	}
	r.prog.mu.Unlock()
	// Every partition of the stage's own changelog too (an empty set
	// means all): a transaction left open there stalls its restore, which
	// reads the changelog to its end.
	search := kadm.TopicsSet{r.cfg.Changelog: {}}
	for t, ps := range blocked {
		search[t] = ps
	}
	// A transaction Kafka left open on __consumer_offsets keeps the
	// group's offsets pending: franz-go waits for them after every join,
	// and the session never fetches (seen after broker restarts, along
	// with the same transaction left open on the changelog).
	if ok, err := groupOffsetsBlocked(ctx, p, r.cfg.GroupID(), r.cfg.Inputs); err == nil && ok {
		reason = "the group's committed offsets cannot be read (UNSTABLE_OFFSET_COMMIT): " + reason
		search["__consumer_offsets"] = map[int32]struct{}{}
	}
	hs, err := findHanging(ctx, p, search, stall)
	if err != nil || len(hs) == 0 {
		return reason
	}
	resolved, left, err := markKnown(ctx, p, hs)
	for _, h := range resolved {
		r.cfg.Logger.Warn("wrote the marker Kafka left out: a transaction stayed open after its outcome was decided",
			"stage", r.cfg.Name, "transaction", h.String())
		r.cfg.Metrics.hangingResolved.WithLabelValues(r.cfg.Name).Inc()
	}
	if err != nil {
		r.cfg.Logger.Warn("could not write the marker of a transaction left open by Kafka", "stage", r.cfg.Name, "err", err)
	}
	if desc := describeHanging(left); desc != "" {
		return reason + "; " + desc
	}
	return reason
}
