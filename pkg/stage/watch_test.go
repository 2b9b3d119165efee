package stage

import (
	"context"
	"errors"
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
