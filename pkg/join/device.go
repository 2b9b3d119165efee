package join

import (
	"context"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/adtrack/postback/pkg/attribution"
	"github.com/adtrack/postback/pkg/event"
	"github.com/adtrack/postback/pkg/statestore"
)

// deviceStage is stage B: it stores clicks and impressions by advertising
// id, and gives each install the device's clicks (rule 2, click flooding),
// impressions (rule 4) and previous install (reinstall). It decides the
// installs a click wins by id or device, and sends the rest on to the
// IP + UA stage.
type deviceStage struct {
	j      *Joiner
	clocks clocks
	// (app, ad id), touch time, click or impression id -> touch, in
	// generations longer than the default windows (7 d and 24 h), so a
	// lookup reads at most two.
	clicks, impressions series
	// (app, device key) -> the last counted install's time (re-attribution
	// window)
	prior keyed
}

func newDeviceStage(j *Joiner) *deviceStage {
	return &deviceStage{j: j, clocks: clocks{},
		clicks:      newSeries(gindex{'g', 8 * 24 * time.Hour}, sindex{'k', 'K'}),
		impressions: newSeries(gindex{'h', 24 * time.Hour}, sindex{'m', 'M'}),
		prior:       newKeyed('q', tindex{'p', 'P'}, true)}
}

func (s *deviceStage) Process(_ context.Context, rec *kgo.Record, b *statestore.Batch, emit func(*kgo.Record)) error {
	return s.j.step(s, s.clocks, rec.Partition, rec.Timestamp, b, emit, func(now time.Time) error {
		d, ok := s.j.decodeRepartition(rec, emit)
		switch {
		case !ok:
		case d.click != nil:
			s.clicks.put(b, joinKey(d.click.AppID, d.click.AdID()), d.click.Time, d.click.ClickID, appendTouch(nil, &d.click.Touch, false))
		case d.impression != nil:
			m := d.impression
			s.impressions.put(b, joinKey(m.AppID, m.AdID()), m.Time, m.ImpressionID, appendTouch(nil, &m.Touch, false))
		default:
			return s.install(rec, b, emit, d.install, now)
		}
		return nil
	})
}

// Tick moves the partition's stream time on while it receives nothing.
func (s *deviceStage) Tick(_ context.Context, p int32, now time.Time, b *statestore.Batch, emit func(*kgo.Record)) error {
	return s.j.step(s, s.clocks, p, now, b, emit, nil)
}

// settle: nothing waits in stage B.
func (s *deviceStage) settle(int32, *statestore.Batch, func(*kgo.Record), time.Time) error {
	return nil
}

// expire drops touches past their windows and counted installs past the
// re-attribution window.
func (s *deviceStage) expire(p int32, b *statestore.Batch, now time.Time) error {
	ret := s.j.cfg.Rules.Retention()
	late := s.j.cfg.LateAllowance
	for _, e := range []struct {
		name string
		run  func() (int, error)
	}{
		{"clicks", func() (int, error) { return s.clicks.expire(b, now.Add(-ret.Clicks-late)) }},
		{"impressions", func() (int, error) { return s.impressions.expire(b, now.Add(-ret.Impressions-late)) }},
		{"installs", func() (int, error) { return s.prior.expire(b, p, now.Add(-ret.Installs-late)) }},
	} {
		n, err := e.run()
		if err != nil {
			return err
		}
		s.j.m.expired.WithLabelValues(StageDevice, e.name).Add(float64(n))
	}
	return nil
}

// install adds the device's candidates and prior install. When a click
// wins by id or device, the IP + UA stage could not change the decision
// (rules 3 and 4 come later): the install is decided here, sparing it a
// hop (a repartition record and a transaction); else it goes on there.
func (s *deviceStage) install(rec *kgo.Record, b *statestore.Batch, emit func(*kgo.Record), p *pending, now time.Time) error {
	in := &p.Install
	r := s.j.cfg.Rules.For(in.AppID)
	at := attribution.InstallTime(in)
	s.j.m.lookups.WithLabelValues(StageDevice).Inc()

	ad := in.AdID()
	var group []byte // (app, ad id): the device's touches, when it has an ad id
	dev := event.Device{IDFA: in.IDFA}
	if dev.IDFA == "" {
		dev.GAID = ad
	}
	if ad != "" {
		group = joinKey(in.AppID, ad)
		if err := s.deviceClicks(b, rec.Partition, group, dev, p, at.Add(-r.ClickLookback), at); err != nil {
			return err
		}
	}
	wins := r.ClickWins(in, p.candidates())
	// Impressions only count when no click wins (rule 4 is last).
	if ad != "" && !wins {
		var err error
		if p.Impressions, err = s.deviceImpressions(b, rec.Partition, group, dev, in.AppID, at.Add(-r.ViewLookback), at); err != nil {
			return err
		}
	}
	if err := s.reinstall(b, rec.Partition, r, p, at, now); err != nil {
		return err
	}
	if !wins {
		return s.j.toIPUA(p, rec.Timestamp, emit)
	}
	if err := p.decodeInstall(); err != nil {
		s.j.reject(rec, "install", "undecodable install JSON: "+err.Error(), emit)
		return nil
	}
	s.j.m.decided.WithLabelValues(StageDevice).Inc()
	return s.j.decide(r, &p.Install, p.candidates(), rec.Timestamp, emit)
}

// deviceClicks sets p's device candidates: the latest MaxCandidates clicks
// of group in [from, to] (oldest first), and how many there were (rule 2's
// click flooding counts them all).
func (s *deviceStage) deviceClicks(b *statestore.Batch, part int32, group []byte, dev event.Device, p *pending, from, to time.Time) error {
	var clicks []event.Click
	n := 0
	err := s.clicks.window(b, part, group, from, to, func(t time.Time, id string, v []byte) error {
		n++
		c := event.Click{ClickID: id}
		if err := decodeTouch(v, &c.Touch, false); err != nil {
			return fmt.Errorf("stored device click %s: %w", id, err)
		}
		c.AppID, c.Device = p.Install.AppID, dev
		clicks = keepLast(clicks, c, s.j.cfg.MaxCandidates)
		return nil
	})
	p.ByDevice, p.DeviceClickCount = clicks, n
	return err
}

// reinstall sets p's prior install (the device's last counted install
// within the re-attribution window) and records this install as the
// device's last counted one unless it is a reinstall.
func (s *deviceStage) reinstall(b *statestore.Batch, part int32, r attribution.Rules, p *pending, at, now time.Time) error {
	in := &p.Install
	pid := joinKey(in.AppID, deviceKey(in))
	// Installs before the re-attribution window (and its late allowance)
	// are forgotten, as expiry forgets them.
	prior, _, ok, err := s.prior.get(b, part, pid, now.Add(-s.j.cfg.Rules.Retention().Installs-s.j.cfg.LateAllowance))
	if err != nil {
		return err
	}
	if ok {
		p.PriorInstall = &prior
	}
	// The re-attribution window runs from the install that was counted;
	// of two counted installs (out of order) the later one is kept.
	if !r.Reinstall(in, p.PriorInstall) && (!ok || at.After(prior)) {
		s.prior.put(b, part, pid, at, nil)
	}
	return nil
}

// deviceImpressions returns the latest MaxCandidates impressions of group
// (one app's device) in [from, to], oldest first.
func (s *deviceStage) deviceImpressions(b *statestore.Batch, p int32, group []byte, dev event.Device, app string, from, to time.Time) ([]event.Impression, error) {
	var imps []event.Impression
	err := s.impressions.window(b, p, group, from, to, func(t time.Time, id string, v []byte) error {
		m := event.Impression{ImpressionID: id}
		if err := decodeTouch(v, &m.Touch, false); err != nil {
			return fmt.Errorf("stored impression %s: %w", id, err)
		}
		m.AppID, m.Device = app, dev
		imps = keepLast(imps, m, s.j.cfg.MaxCandidates)
		return nil
	})
	return imps, err
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
