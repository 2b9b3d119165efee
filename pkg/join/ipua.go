package join

import (
	"context"
	"fmt"
	"hash/fnv"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/adtrack/postback/pkg/attribution"
	"github.com/adtrack/postback/pkg/event"
	"github.com/adtrack/postback/pkg/statestore"
)

// ipuaStage is stage C: it stores clicks by IP + user agent, adds the
// probabilistic candidates (rule 3) to the installs no click won by id or
// device (the device stage decides those), decides, and publishes the
// attributed install to installs.attributed.v1 and, once per id it can be
// joined by, to the events stage.
type ipuaStage struct {
	j      *Joiner
	clocks clocks
	// Stage C state: clicks by (app, IP, hash of UA) as time series, in
	// day-long generations (the default window is 24 h: a lookup reads at
	// most two).
	clicks series
}

func newIPUAStage(j *Joiner) *ipuaStage {
	return &ipuaStage{j: j, clocks: clocks{}, clicks: newSeries(gindex{'g', 24 * time.Hour}, sindex{'k', 'K'})}
}

// ipuaGroup keys a click by app, IP and a 64-bit hash of the user agent:
// user agents run to hundreds of bytes and every stored click would repeat
// one. A hash collision between two UAs on one IP and app within the
// window is the only way this errs (1 in 2^64 per pair).
func ipuaGroup(app, ip, ua string) []byte {
	h := fnv.New64a()
	_, _ = h.Write([]byte(ua))
	return joinKey(app, ip, string(h.Sum(nil)))
}

func (s *ipuaStage) Process(_ context.Context, rec *kgo.Record, b *statestore.Batch, emit func(*kgo.Record)) error {
	return s.j.step(s, s.clocks, rec.Partition, rec.Timestamp, b, emit, func(time.Time) error {
		d, ok := s.j.decodeRepartition(rec, emit)
		switch {
		case !ok:
		case d.click != nil:
			c := d.click
			s.clicks.put(b, ipuaGroup(c.AppID, c.IP, c.UA), c.Time, c.ClickID, appendTouch(nil, &c.Touch, false))
		case d.impression != nil:
			s.j.reject(rec, "impression", "impression on the IP + UA repartition topic", emit)
		default:
			return s.install(rec, b, emit, d.install)
		}
		return nil
	})
}

// Tick moves the partition's stream time on while it receives nothing.
func (s *ipuaStage) Tick(_ context.Context, p int32, now time.Time, b *statestore.Batch, emit func(*kgo.Record)) error {
	return s.j.step(s, s.clocks, p, now, b, emit, nil)
}

// settle: nothing waits in stage C.
func (s *ipuaStage) settle(int32, *statestore.Batch, func(*kgo.Record), time.Time) error { return nil }

// expire drops clicks past the longest probabilistic window.
func (s *ipuaStage) expire(_ int32, b *statestore.Batch, now time.Time) error {
	// Only rule 3 reads these clicks: they expire with its window.
	n, err := s.clicks.expire(b, now.Add(-s.j.cfg.Rules.Retention().Probabilistic-s.j.cfg.LateAllowance))
	if err != nil {
		return err
	}
	s.j.m.expired.WithLabelValues(StageIPUA, "clicks").Add(float64(n))
	return nil
}

func (s *ipuaStage) install(rec *kgo.Record, b *statestore.Batch, emit func(*kgo.Record), p *pending) error {
	if err := p.decodeInstall(); err != nil {
		s.j.reject(rec, "install", "undecodable install JSON: "+err.Error(), emit)
		return nil
	}
	in := &p.Install
	r := s.j.cfg.Rules.For(in.AppID)
	s.j.m.lookups.WithLabelValues(StageIPUA).Inc()
	c := p.candidates()
	// The IP + UA clicks only count when no click wins by id or device.
	if in.IP != "" && in.UA != "" && !r.ClickWins(in, c) {
		at := attribution.InstallTime(in)
		err := s.clicks.window(b, rec.Partition, ipuaGroup(in.AppID, in.IP, in.UA), at.Add(-r.ProbabilisticWindow), at, func(_ time.Time, id string, v []byte) error {
			k := event.Click{ClickID: id}
			if err := decodeTouch(v, &k.Touch, false); err != nil {
				return fmt.Errorf("stored ip+ua click %s: %w", id, err)
			}
			// The key matched app, IP and UA; the entry does not repeat them.
			k.AppID, k.IP, k.UA = in.AppID, in.IP, in.UA
			c.ByIPUA = keepLast(c.ByIPUA, k, s.j.cfg.MaxCandidates)
			return nil
		})
		if err != nil {
			return err
		}
	}
	s.j.m.decided.WithLabelValues(StageIPUA).Inc()
	return s.j.decide(r, in, c, rec.Timestamp, emit)
}
