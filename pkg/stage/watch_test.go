package stage

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
)

// TestDiagnose: what Health says in each state the loop can be in
// (without asking the broker).
func TestDiagnose(t *testing.T) {
	stall := 30 * time.Second
	long := time.Now().Add(-time.Minute)
	assigned := map[string][]int32{"in": {0}}
	for _, c := range []struct {
		name string
		set  func(*loopState)
		want string // substring; "" means ready
	}{
		{"starting", func(s *loopState) { *s = loopState{phase: "joining the group", since: time.Now()} }, "joining the group"},
		{"joining too long", func(s *loopState) { *s = loopState{phase: "joining the group", since: long} }, "joining the group for 1m0s"},
		{"session failed", func(s *loopState) {
			*s = loopState{failure: errors.New("dial tcp: connection refused"), phase: "waiting to start a new session", since: time.Now()}
		},
			"Kafka session failed, retrying (now waiting to start a new session): dial tcp: connection refused"},
		{"restore stuck", func(s *loopState) {
			*s = loopState{assigned: assigned, assignedAt: long, lastCommit: long, phase: "restoring partition 3 from c", since: long}
		}, "restoring partition 3 from c for 1m0s"},
		{"commit stuck, with the fetch error", func(s *loopState) {
			*s = loopState{assigned: assigned, assignedAt: long, phase: "committing a transaction", since: long,
				fetchErr: errors.New("in/0: NOT_LEADER"), fetchAt: time.Now()}
		}, "committing a transaction for 1m0s; last fetch error: in/0: NOT_LEADER"},
		{"running", func(s *loopState) { *s = loopState{assigned: assigned, assignedAt: long, lastCommit: time.Now()} }, ""},
		{"idle since assignment", func(s *loopState) { *s = loopState{assigned: assigned, assignedAt: time.Now()} }, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := &runner{cfg: Config{StallTimeout: stall}}
			c.set(&r.prog)
			got := r.diagnose(context.Background(), false)
			if (c.want == "") != (got == "") || !strings.Contains(got, c.want) {
				t.Errorf("diagnose = %q, want %q", got, c.want)
			}
		})
	}
}

// TestRestoreStuck: the watchdog looks behind a restore (for a transaction
// Kafka left open on the changelog) only once it has outlasted the stall
// timeout, whether or not a session failure is still being reported.
func TestRestoreStuck(t *testing.T) {
	stall := 10 * time.Second
	for _, c := range []struct {
		phase   string
		elapsed time.Duration
		want    bool
	}{
		{"restoring partition 1 from g.ipua-changelog", 11 * time.Second, true},
		{"restoring partition 1 from g.ipua-changelog", 9 * time.Second, false},
		{"committing a transaction", time.Minute, false},
		{"waiting to start a new session", time.Minute, false},
		{"", time.Minute, false},
	} {
		if got := restoreStuck(c.phase, c.elapsed, stall); got != c.want {
			t.Errorf("restoreStuck(%q, %v) = %v, want %v", c.phase, c.elapsed, got, c.want)
		}
	}
	// The phase the loop sets while restoring is the one looked for.
	if !strings.HasPrefix(fmt.Sprintf("%s %d from %s", restoringPhase, 3, "c"), "restoring partition 3") {
		t.Fatal("restoringPhase no longer names the restore")
	}
}
