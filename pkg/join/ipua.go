package join

import (
	"context"
	"fmt"
	"hash/fnv"
	"time"

	"github.com/segmentio/encoding/json"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/adtrack/postback/pkg/attribution"
	"github.com/adtrack/postback/pkg/event"
	"github.com/adtrack/postback/pkg/statestore"
)

// Stage C state: clicks by (app, IP, hash of UA) as time series.
var cClicks = sindex{'k', 'K'}

// ipuaStage is stage C: it stores clicks by IP + user agent, adds the
// probabilistic candidates (rule 3) to each install, decides, and publishes
// the attributed install to installs.attributed.v1 and, once per id it can
// be joined by, to the events stage.
type ipuaStage struct {
	j      *Joiner
	clocks clocks
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
	cl, _, expiry := s.clocks.advance(rec.Partition, rec.Timestamp, s.j.cfg.ExpiryInterval)
	if len(rec.Value) == 0 {
		s.j.reject(rec, "", "empty repartition record", emit)
		return nil
	}
	switch tag, v := rec.Value[0], rec.Value[1:]; tag {
	case tagClick:
		var c event.Click
		if err := json.Unmarshal(v, &c); err != nil {
			s.j.reject(rec, "click", "undecodable click: "+err.Error(), emit)
			return nil
		}
		cClicks.put(b, ipuaGroup(c.AppID, c.IP, c.UA), c.Time, c.ClickID, appendTouch(nil, &c.Touch, false))
	case tagInstall:
		var p pending
		if err := json.Unmarshal(v, &p); err != nil {
			s.j.reject(rec, "install", "undecodable install: "+err.Error(), emit)
			return nil
		}
		if err := s.install(rec, b, emit, &p); err != nil {
			return err
		}
	default:
		s.j.reject(rec, "", fmt.Sprintf("unknown repartition record tag %q", tag), emit)
		return nil
	}
	if expiry {
		n, err := cClicks.expire(b, cl.now.Add(-s.j.cfg.Rules.Retention().Clicks-s.j.cfg.LateAllowance))
		if err != nil {
			return err
		}
		s.j.m.expired.WithLabelValues(StageIPUA, "clicks").Add(float64(n))
	}
	return nil
}

func (s *ipuaStage) install(rec *kgo.Record, b *statestore.Batch, emit func(*kgo.Record), p *pending) error {
	in := &p.Install
	r := s.j.cfg.Rules.For(in.AppID)
	s.j.m.lookups.WithLabelValues(StageIPUA).Inc()
	c := attribution.Candidates{ByClickID: p.ByClickID, ByDevice: p.ByDevice, Impressions: p.Impressions,
		DeviceClickCount: p.DeviceClickCount, PriorInstall: p.PriorInstall}
	if in.IP != "" && in.UA != "" {
		at := attribution.InstallTime(in)
		err := cClicks.window(b, ipuaGroup(in.AppID, in.IP, in.UA), at.Add(-r.ProbabilisticWindow), at, func(_ time.Time, id string, v []byte) error {
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
	a := r.Decide(in, c, s.j.cfg.Campaigns, rec.Timestamp)
	s.j.m.installs.WithLabelValues(string(a.MatchType)).Inc()
	o, err := out(s.j.cfg.Topics.InstallsAttributed, []byte(in.EventID), 0, &a, rec.Timestamp)
	if err != nil {
		return err
	}
	emit(o)

	// The events stage keeps the install without its raw request, once
	// under every id an event may be keyed by (event.Postback.JoinKey).
	a.Raw = event.Raw{}
	var v []byte
	for i, id := range [...]string{in.ClickID, in.AdID(), in.IDFV, in.AndroidID} {
		if id == "" || dupBefore(i, id, in) {
			continue
		}
		if v == nil {
			r, err := out(s.j.byJoinKey, nil, tagAttributed, &a, rec.Timestamp)
			if err != nil {
				return err
			}
			v = r.Value
		}
		emit(&kgo.Record{Topic: s.j.byJoinKey, Key: []byte(id), Value: v, Timestamp: rec.Timestamp})
	}
	return nil
}

// dupBefore reports whether id already appeared before position i of the
// install's join ids (an IDFA equal to the IDFV, say).
func dupBefore(i int, id string, in *event.Install) bool {
	ids := [...]string{in.ClickID, in.AdID(), in.IDFV, in.AndroidID}
	for _, x := range ids[:i] {
		if x == id {
			return true
		}
	}
	return false
}
