package join

import (
	"context"
	"encoding/binary"
	"fmt"
	"time"

	"github.com/segmentio/encoding/json"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/adtrack/postback/pkg/event"
	"github.com/adtrack/postback/pkg/statestore"
)

// Stage A state (docs/attribution-design.md): clicks by id, seen install
// event ids, and installs waiting for their click.
var (
	aClicks  = tindex{'c', 'C'} // click_id -> touch (with app); time = click time
	aSeen    = tindex{'s', 'S'} // event_id -> ""; time = received_at
	aWaiting = tindex{'w', 'W'} // (click_id, event_id) -> deadline + install JSON; time = deadline
)

// clickIDStage is stage A. It consumes clicks, impressions and raw installs
// (co-partitioned: an install with a click id is keyed by it, like its
// click). It stores clicks by id, routes every touch to the device and
// IP+UA stages, drops installs whose event_id it has seen, attaches the
// click an install names, and parks installs whose click has not arrived
// for the grace period.
type clickIDStage struct {
	j      *Joiner
	clocks clocks
}

func (s *clickIDStage) Process(_ context.Context, rec *kgo.Record, b *statestore.Batch, emit func(*kgo.Record)) error {
	cl, timers, expiry := s.clocks.advance(rec.Partition, rec.Timestamp, s.j.cfg.ExpiryInterval)
	t := s.j.cfg.Topics
	var err error
	switch rec.Topic {
	case t.Clicks:
		err = s.click(rec, b, emit)
	case t.Impressions:
		err = s.impression(rec, emit)
	case t.InstallsRaw:
		err = s.install(rec, b, emit, cl.now)
	default:
		return fmt.Errorf("unexpected input topic %s", rec.Topic)
	}
	if err != nil {
		return err
	}
	if timers {
		if err := s.settleExpired(b, emit, cl.now); err != nil {
			return err
		}
	}
	if expiry {
		ret := s.j.cfg.Rules.Retention()
		n, err := aClicks.expire(b, cl.now.Add(-ret.Clicks-s.j.cfg.LateAllowance), nil)
		if err != nil {
			return err
		}
		s.j.m.expired.WithLabelValues(StageClickID, "clicks").Add(float64(n))
		if n, err = aSeen.expire(b, cl.now.Add(-s.j.cfg.DedupWindow), nil); err != nil {
			return err
		}
		s.j.m.expired.WithLabelValues(StageClickID, "seen").Add(float64(n))
	}
	return nil
}

func (s *clickIDStage) click(rec *kgo.Record, b *statestore.Batch, emit func(*kgo.Record)) error {
	var c event.Click
	if err := json.Unmarshal(rec.Value, &c); err != nil {
		s.j.reject(rec, "click", "undecodable click: "+err.Error(), emit)
		return nil
	}
	if c.ClickID == "" || c.AppID == "" || c.Time.IsZero() {
		s.j.reject(rec, "click", "click lacks click_id, app_id or time", emit)
		return nil
	}
	aClicks.put(b, []byte(c.ClickID), c.Time, appendTouch(nil, &c.Touch, true))
	s.j.routeTouch(tagClick, c.AppID, &c.Device, rec, emit)

	// Installs that were waiting for this click go on now.
	waits, err := aWaiting.entries(b, joinKey(c.ClickID))
	if err != nil {
		return err
	}
	for _, w := range waits {
		deadline, in, err := decodeWaiting(w.v)
		if err != nil {
			return fmt.Errorf("waiting install %q: %w", w.id, err)
		}
		aWaiting.del(b, w.id, deadline)
		s.j.m.waited.WithLabelValues("install", "matched").Inc()
		p := &pending{Install: *in, ByClickID: &c}
		if err := s.j.toDevice(p, rec.Timestamp, emit); err != nil {
			return err
		}
	}
	return nil
}

func (s *clickIDStage) impression(rec *kgo.Record, emit func(*kgo.Record)) error {
	var m event.Impression
	if err := json.Unmarshal(rec.Value, &m); err != nil {
		s.j.reject(rec, "impression", "undecodable impression: "+err.Error(), emit)
		return nil
	}
	if m.ImpressionID == "" || m.AppID == "" || m.Time.IsZero() {
		s.j.reject(rec, "impression", "impression lacks impression_id, app_id or time", emit)
		return nil
	}
	s.j.routeTouch(tagImpression, m.AppID, &m.Device, rec, emit)
	return nil
}

// admit decodes a raw install or event into v (whose postback is pb) and
// reports whether to process it: undecodable records and records without
// an event id or app id go to the rejected topic, and an event id already
// seen within the dedup window (an MMP retry) is dropped and counted. An
// admitted record's event id is marked seen.
func (j *Joiner) admit(rec *kgo.Record, b *statestore.Batch, emit func(*kgo.Record), seen tindex, kind string, v any, pb *event.Postback) (bool, error) {
	if err := json.Unmarshal(rec.Value, v); err != nil {
		j.reject(rec, kind, "undecodable "+kind+": "+err.Error(), emit)
		return false, nil
	}
	if pb.EventID == "" || pb.AppID == "" {
		j.reject(rec, kind, kind+" lacks event_id or app_id", emit)
		return false, nil
	}
	id := []byte(pb.EventID)
	if _, dup, err := seen.get(b, id); err != nil || dup {
		if dup {
			j.m.duplicates.WithLabelValues(kind).Inc()
		}
		return false, err
	}
	seen.put(b, id, pb.ReceivedAt, nil)
	return true, nil
}

// routeTouch sends a click or impression (its original bytes behind a tag)
// to the stages that look touches up by device and by IP + UA.
func (j *Joiner) routeTouch(tag byte, app string, d *event.Device, rec *kgo.Record, emit func(*kgo.Record)) {
	val := func() []byte { return append([]byte{tag}, rec.Value...) }
	if ad := d.AdID(); ad != "" {
		emit(&kgo.Record{Topic: j.byDevice, Key: joinKey(app, ad), Value: val(), Timestamp: rec.Timestamp})
	}
	if tag == tagClick && d.IP != "" && d.UA != "" {
		emit(&kgo.Record{Topic: j.byIPUA, Key: joinKey(app, d.IP, d.UA), Value: val(), Timestamp: rec.Timestamp})
	}
}

func (s *clickIDStage) install(rec *kgo.Record, b *statestore.Batch, emit func(*kgo.Record), now time.Time) error {
	var in event.Install
	if ok, err := s.j.admit(rec, b, emit, aSeen, "install", &in, &in.Postback); !ok || err != nil {
		return err
	}
	s.j.m.lookups.WithLabelValues(StageClickID).Inc()

	p := &pending{Install: in}
	if in.ClickID != "" {
		v, ok, err := aClicks.get(b, []byte(in.ClickID))
		if err != nil {
			return err
		}
		if ok {
			c := event.Click{ClickID: in.ClickID}
			if err := decodeTouch(v, &c.Touch, true); err != nil {
				return fmt.Errorf("stored click %s: %w", in.ClickID, err)
			}
			p.ByClickID = &c
		} else if r := s.j.cfg.Rules.For(in.AppID); r.Settle(&in, false, now) {
			deadline := r.GraceDeadline(&in)
			v := statestore.AppendTime(nil, deadline)
			aWaiting.put(b, joinKey(in.ClickID, in.EventID), deadline, append(v, rec.Value...))
			return nil
		}
	}
	return s.j.toDevice(p, rec.Timestamp, emit)
}

// settleExpired sends on the installs whose grace ended by now, without
// their click: the other rules decide them.
func (s *clickIDStage) settleExpired(b *statestore.Batch, emit func(*kgo.Record), now time.Time) error {
	n, err := aWaiting.expire(b, now.Add(time.Nanosecond), func(id []byte, deadline time.Time, v []byte) error {
		_, in, err := decodeWaiting(v)
		if err != nil {
			return fmt.Errorf("waiting install %q: %w", id, err)
		}
		return s.j.toDevice(&pending{Install: *in}, deadline, emit)
	})
	s.j.m.waited.WithLabelValues("install", "deadline").Add(float64(n))
	return err
}

func decodeWaiting(v []byte) (time.Time, *event.Install, error) {
	if len(v) < 8 {
		return time.Time{}, nil, errShort
	}
	ns := int64(binary.BigEndian.Uint64(v) ^ (1 << 63))
	in := new(event.Install)
	if err := json.Unmarshal(v[8:], in); err != nil {
		return time.Time{}, nil, err
	}
	return time.Unix(0, ns).UTC(), in, nil
}

// deviceKey is the id reinstalls are tracked by: the advertising id, else
// the vendor or Android id.
func deviceKey(in *event.Install) string {
	if ad := in.AdID(); ad != "" {
		return ad
	}
	if in.IDFV != "" {
		return in.IDFV
	}
	return in.AndroidID
}

// toDevice forwards an install to the device stage, or straight to the
// IP + UA stage when it has no device id at all.
func (j *Joiner) toDevice(p *pending, ts time.Time, emit func(*kgo.Record)) error {
	in := &p.Install
	dk := deviceKey(in)
	if dk == "" {
		return j.toIPUA(p, ts, emit)
	}
	r, err := out(j.byDevice, joinKey(in.AppID, dk), tagInstall, p, ts)
	if err != nil {
		return err
	}
	emit(r)
	return nil
}

// toIPUA forwards an install to the IP + UA stage, keyed like the clicks it
// must meet there; without an IP and UA any partition will do.
func (j *Joiner) toIPUA(p *pending, ts time.Time, emit func(*kgo.Record)) error {
	in := &p.Install
	key := []byte(in.EventID)
	if in.IP != "" && in.UA != "" {
		key = joinKey(in.AppID, in.IP, in.UA)
	}
	r, err := out(j.byIPUA, key, tagInstall, p, ts)
	if err != nil {
		return err
	}
	emit(r)
	return nil
}
