package stage

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"time"

	"github.com/adtrack/postback/pkg/statestore"
)

// Assignment and restore: the group callbacks only record what happened;
// the loop applies it between transactions, closing the stores of revoked
// partitions and restoring every assigned one before its first record.

// restoringPhase starts the loop's phase while it restores a partition.
const restoringPhase = "restoring partition"

// rebalance applies the group callbacks seen since the last poll. The
// open transaction is doomed by any of them (the session aborts it on
// End): abort it now. Then every assigned partition is restored before a
// record of it is processed.
func (r *runner) rebalance(ctx context.Context, evs []event) error {
	if r.tx != nil {
		if err := r.abort(ctx, errRebalance); err != nil {
			return err
		}
	}
	assigned := r.applyEvents(evs)
	clear(r.next) // positions of an assignment start at the committed offsets
	parts := make([]int32, 0, len(r.owned))
	for p := range r.owned {
		parts = append(parts, p)
	}
	slices.Sort(parts)
	for _, p := range parts {
		if _, err := r.store(ctx, p); err != nil {
			return err
		}
	}
	if assigned != nil {
		r.setAssigned(assigned)
		if r.align != nil {
			r.align.reset(ctx, r.sess.Client(), assigned)
		}
	}
	r.setPhase("")
	return nil
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
	r.evSeq++
	r.mu.Unlock()
}

func (r *runner) takeEvents() []event {
	r.mu.Lock()
	defer r.mu.Unlock()
	evs := r.events
	r.events = nil
	return evs
}

func (r *runner) pendingEvents() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.events) > 0
}

func (r *runner) eventSeq() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.evSeq
}

// applyEvents replays the callbacks in order and returns the latest
// assignment among them (nil if none).
func (r *runner) applyEvents(evs []event) (assigned map[string][]int32) {
	for _, ev := range evs {
		switch ev.kind {
		case evRevoked:
			for _, p := range ev.parts {
				delete(r.owned, p)
				r.closeStore(p)
				r.forgetLag(p)
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
					r.forgetLag(p)
				}
			}
			for _, p := range ev.parts {
				r.owned[p] = true
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
}

func (r *runner) closeStores() {
	for p := range r.stores {
		r.closeStore(p)
	}
}

// store returns partition p's store, opening and restoring it from the
// changelog if this session has not yet.
func (r *runner) store(ctx context.Context, p int32) (*statestore.Store, error) {
	if s := r.stores[p]; s != nil {
		return s, nil
	}
	r.setPhase(fmt.Sprintf("%s %d from %s", restoringPhase, p, r.cfg.Changelog))
	dir := filepath.Join(r.cfg.StateDir, r.cfg.Name, strconv.Itoa(int(p)))
	s, n, err := r.openRestored(ctx, dir, p)
	if errors.Is(err, statestore.ErrAheadOfChangelog) {
		// The changelog is the truth: a store it does not explain is
		// rebuilt from it.
		r.cfg.Logger.Warn("state store ahead of its changelog; wiping and restoring it", "stage", r.cfg.Name, "partition", p, "err", err)
		if err = os.RemoveAll(dir); err == nil {
			s, n, err = r.openRestored(ctx, dir, p)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("stage %s: restore partition %d from %s: %w", r.cfg.Name, p, r.cfg.Changelog, err)
	}
	r.cfg.Metrics.restored.WithLabelValues(r.cfg.Name).Add(float64(n))
	r.stores[p] = s
	return s, nil
}

func (r *runner) openRestored(ctx context.Context, dir string, p int32) (*statestore.Store, int, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, 0, err
	}
	s, err := statestore.Open(dir, statestore.Options{Cache: r.cfg.Cache, Logger: r.cfg.Logger})
	if err != nil {
		return nil, 0, err
	}
	start := time.Now()
	n, err := statestore.Restore(ctx, s, r.cfg.Changelog, p, r.conn...)
	if err != nil {
		_ = s.Close()
		return nil, n, err
	}
	r.cfg.Logger.Info("restored", "stage", r.cfg.Name, "partition", p, "records", n, "took", time.Since(start))
	return s, n, nil
}
