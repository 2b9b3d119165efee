package join

import (
	"context"
	"encoding/binary"
	"fmt"
	"time"

	"github.com/segmentio/encoding/json"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/adtrack/postback/pkg/attribution"
	"github.com/adtrack/postback/pkg/event"
	"github.com/adtrack/postback/pkg/statestore"
)

// Stage B state: touches by (app, advertising id) as time series, and the
// last counted install per (app, device).
var (
	bClicks      = sindex{'k', 'K'} // (app, ad id), click time, click_id -> touch
	bImpressions = sindex{'m', 'M'} // (app, ad id), impression time, impression_id -> touch
	bPrior       = tindex{'p', 'P'} // (app, device key) -> install time (8 bytes); time = install time
)

// deviceStage is stage B: it stores clicks and impressions by advertising
// id, and gives each install the device's clicks (rule 2, click flooding),
// impressions (rule 4) and previous install (reinstall).
type deviceStage struct {
	j      *Joiner
	clocks clocks
}

func (s *deviceStage) Process(_ context.Context, rec *kgo.Record, b *statestore.Batch, emit func(*kgo.Record)) error {
	cl, _, expiry := s.clocks.advance(rec.Partition, rec.Timestamp, s.j.cfg.ExpiryInterval)
	if len(rec.Value) == 0 {
		s.j.reject(rec, "", "empty repartition record", emit)
		return nil
	}
	var err error
	switch tag, v := rec.Value[0], rec.Value[1:]; tag {
	case tagClick:
		var c event.Click
		if err := json.Unmarshal(v, &c); err != nil {
			s.j.reject(rec, "click", "undecodable click: "+err.Error(), emit)
			return nil
		}
		bClicks.put(b, joinKey(c.AppID, c.AdID()), c.Time, c.ClickID, appendTouch(nil, &c.Touch, false))
	case tagImpression:
		var m event.Impression
		if err := json.Unmarshal(v, &m); err != nil {
			s.j.reject(rec, "impression", "undecodable impression: "+err.Error(), emit)
			return nil
		}
		bImpressions.put(b, joinKey(m.AppID, m.AdID()), m.Time, m.ImpressionID, appendTouch(nil, &m.Touch, false))
	case tagInstall:
		var p pending
		if err := json.Unmarshal(v, &p); err != nil {
			s.j.reject(rec, "install", "undecodable install: "+err.Error(), emit)
			return nil
		}
		err = s.install(rec, b, emit, &p)
	default:
		s.j.reject(rec, "", fmt.Sprintf("unknown repartition record tag %q", tag), emit)
		return nil
	}
	if err != nil {
		return err
	}
	if expiry {
		ret := s.j.cfg.Rules.Retention()
		late := s.j.cfg.LateAllowance
		for _, e := range []struct {
			name string
			run  func() (int, error)
		}{
			{"clicks", func() (int, error) { return bClicks.expire(b, cl.now.Add(-ret.Clicks-late)) }},
			{"impressions", func() (int, error) { return bImpressions.expire(b, cl.now.Add(-ret.Impressions-late)) }},
			{"installs", func() (int, error) { return bPrior.expire(b, cl.now.Add(-ret.Installs-late), nil) }},
		} {
			n, err := e.run()
			if err != nil {
				return err
			}
			s.j.m.expired.WithLabelValues(StageDevice, e.name).Add(float64(n))
		}
	}
	return nil
}

func (s *deviceStage) install(rec *kgo.Record, b *statestore.Batch, emit func(*kgo.Record), p *pending) error {
	in := &p.Install
	r := s.j.cfg.Rules.For(in.AppID)
	at := attribution.InstallTime(in)
	max := s.j.cfg.MaxCandidates
	s.j.m.lookups.WithLabelValues(StageDevice).Inc()

	if ad := in.AdID(); ad != "" {
		group := joinKey(in.AppID, ad)
		dev := event.Device{IDFA: in.IDFA}
		if dev.IDFA == "" {
			dev.GAID = ad
		}
		var clicks []event.Click
		n := 0
		err := bClicks.window(b, group, at.Add(-r.ClickLookback), at, func(t time.Time, id string, v []byte) error {
			n++
			c := event.Click{ClickID: id}
			if err := decodeTouch(v, &c.Touch, false); err != nil {
				return fmt.Errorf("stored device click %s: %w", id, err)
			}
			c.AppID, c.Device = in.AppID, dev
			clicks = keepLast(clicks, c, max)
			return nil
		})
		if err != nil {
			return err
		}
		p.ByDevice, p.DeviceClickCount = clicks, n
		var imps []event.Impression
		err = bImpressions.window(b, group, at.Add(-r.ViewLookback), at, func(t time.Time, id string, v []byte) error {
			m := event.Impression{ImpressionID: id}
			if err := decodeTouch(v, &m.Touch, false); err != nil {
				return fmt.Errorf("stored impression %s: %w", id, err)
			}
			m.AppID, m.Device = in.AppID, dev
			imps = keepLast(imps, m, max)
			return nil
		})
		if err != nil {
			return err
		}
		p.Impressions = imps
	}

	pid := joinKey(in.AppID, deviceKey(in))
	v, ok, err := bPrior.get(b, pid)
	if err != nil {
		return err
	}
	var prior time.Time
	if ok {
		if len(v) != 8 {
			return fmt.Errorf("stored prior install of %q: %d bytes", pid, len(v))
		}
		prior = time.Unix(0, int64(binary.BigEndian.Uint64(v)^(1<<63))).UTC()
		p.PriorInstall = &prior
	}
	// The re-attribution window runs from the install that was counted;
	// of two counted installs (out of order) the later one is kept.
	if !r.Reinstall(in, p.PriorInstall) && (!ok || at.After(prior)) {
		if ok {
			bPrior.del(b, pid, prior)
		}
		bPrior.put(b, pid, at, statestore.AppendTime(nil, at))
	}
	return s.j.toIPUA(p, rec.Timestamp, emit)
}

// keepLast appends v to s, keeping only the last max elements (inputs
// arrive oldest first, and the latest touch before the install wins).
func keepLast[T any](s []T, v T, max int) []T {
	if len(s) < max {
		return append(s, v)
	}
	copy(s, s[1:])
	s[len(s)-1] = v
	return s
}
