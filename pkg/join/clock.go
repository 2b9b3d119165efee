package join

import (
	"time"

	"github.com/adtrack/postback/pkg/statestore"
	"github.com/twmb/franz-go/pkg/kgo"
)

// clock is a partition's stream time (the greatest record or tick
// timestamp seen since the partition was assigned to this process) and
// when its timers and expiry last ran. It is memory only: after a restart
// the first record's timestamp starts it again, and any grace deadline that
// passed meanwhile is settled then.
type clock struct {
	now, timers, expiry time.Time
}

type clocks map[int32]*clock

// advance moves partition p's stream time to ts and reports whether the
// timers (once per second of stream time) and the expiry (once per
// interval) are due.
func (c clocks) advance(p int32, ts time.Time, interval time.Duration) (cl *clock, timers, expiry bool) {
	cl = c[p]
	if cl == nil {
		cl = &clock{}
		c[p] = cl
	}
	if ts.After(cl.now) {
		cl.now = ts
	}
	if cl.now.Sub(cl.timers) >= time.Second {
		cl.timers, timers = cl.now, true
	}
	if cl.now.Sub(cl.expiry) >= interval {
		cl.expiry, expiry = cl.now, true
	}
	return cl, timers, expiry
}

// timed is what a stage runs as its stream time moves: settle publishes
// what waited past its grace deadline, expire drops state past its window.
type timed interface {
	settle(p int32, b *statestore.Batch, emit func(*kgo.Record), now time.Time) error
	expire(p int32, b *statestore.Batch, now time.Time) error
}

// step advances partition p's stream time to ts, runs handle (nil for a
// tick) with the new stream time, then the timers that came due.
func (j *Joiner) step(t timed, c clocks, p int32, ts time.Time, b *statestore.Batch, emit func(*kgo.Record), handle func(now time.Time) error) error {
	cl, timers, expiry := c.advance(p, ts, j.cfg.ExpiryInterval)
	if handle != nil {
		if err := handle(cl.now); err != nil {
			return err
		}
	}
	if timers {
		if err := t.settle(p, b, emit, cl.now); err != nil {
			return err
		}
	}
	if expiry {
		return t.expire(p, b, cl.now)
	}
	return nil
}
