package join

import (
	"context"
	"fmt"
	"time"

	"github.com/segmentio/encoding/json"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/adtrack/postback/pkg/event"
	"github.com/adtrack/postback/pkg/statestore"
)

// Stage A state (docs/attribution-design.md): clicks by id, seen install
// event ids, and installs waiting for their click. The seen ids are keyed
// indexes (clickIDStage.seen, .impSeen): event_id -> received_at, and keyed
// impression id (event.IsKeyedTouchID) -> impression time.
var (
	aClicksV7 = v7index{'v'}     // UUIDv7 click id (16 bytes) -> touch (with app); expires by the id's time
	aClicks   = tindex{'c', 'C'} // any other click_id -> touch (with app); time = click time
	aWaiting  = tindex{'w', 'W'} // (click_id, event_id) -> deadline + install JSON; time = deadline
)

func newClickIDStage(j *Joiner) *clickIDStage {
	return &clickIDStage{j: j, clocks: clocks{}, waiting: occupancy{}, byText: occupancy{},
		seen:    newKeyed('n', tindex{'s', 'S'}, false),
		impSeen: newKeyed('o', tindex{'i', 'I'}, false)}
}

// clickIDStage is stage A. It consumes clicks, impressions and raw installs
// (co-partitioned: an install with a click id is keyed by it, like its
// click). It stores clicks by id, routes every touch to the device and
// IP+UA stages, drops installs whose event_id it has seen, attaches the
// click an install names, and parks installs whose click has not arrived
// for the grace period.
type clickIDStage struct {
	j       *Joiner
	clocks  clocks
	waiting occupancy // of aWaiting
	byText  occupancy // of aClicks, read for UUIDv7 ids while it holds clicks
	// seen install event ids and keyed impression ids (dedup window)
	seen, impSeen keyed
}

func (s *clickIDStage) Process(_ context.Context, rec *kgo.Record, b *statestore.Batch, emit func(*kgo.Record)) error {
	t := s.j.cfg.Topics
	return s.j.step(s, s.clocks, rec.Partition, rec.Timestamp, b, emit, func(now time.Time) error {
		switch rec.Topic {
		case t.Clicks:
			return s.click(rec, b, emit)
		case t.Impressions:
			return s.impression(rec, b, emit, now)
		case t.InstallsRaw:
			return s.install(rec, b, emit, now)
		}
		return fmt.Errorf("unexpected input topic %s", rec.Topic)
	})
}

// Tick moves the partition's stream time on while it receives nothing.
func (s *clickIDStage) Tick(_ context.Context, p int32, now time.Time, b *statestore.Batch, emit func(*kgo.Record)) error {
	return s.j.step(s, s.clocks, p, now, b, emit, nil)
}

// InspectState exports how many installs wait for their click.
func (s *clickIDStage) InspectState(stores map[int32]*statestore.Store) error {
	return s.j.gaugeWaiting(StageClickID, "install", aWaiting.p, stores)
}

// expire drops clicks past the longest window and seen ids past the dedup
// window.
func (s *clickIDStage) expire(p int32, b *statestore.Batch, now time.Time) error {
	ret := s.j.cfg.Rules.Retention()
	n, err := aClicks.expire(b, now.Add(-ret.Clicks-s.j.cfg.LateAllowance), nil)
	if err != nil {
		return err
	}
	m, err := aClicksV7.expire(b, now.Add(-ret.Clicks-s.j.cfg.LateAllowance))
	if err != nil {
		return err
	}
	s.j.m.expired.WithLabelValues(StageClickID, "clicks").Add(float64(n + m))
	if n, err = s.seen.expire(b, p, now.Add(-s.j.cfg.DedupWindow)); err != nil {
		return err
	}
	s.j.m.expired.WithLabelValues(StageClickID, "seen").Add(float64(n))
	if n, err = s.impSeen.expire(b, p, now.Add(-s.j.cfg.DedupWindow)); err != nil {
		return err
	}
	s.j.m.expired.WithLabelValues(StageClickID, "impressions_seen").Add(float64(n))
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
	// A keyed id (sent with an idempotency key) may come again: a client's
	// retry whose first attempt was written after all. The first one is the
	// click; a repeat neither replaces it nor counts again for the device.
	if event.IsKeyedTouchID(c.ClickID) {
		if _, dup, err := s.storedClick(b, rec.Partition, c.ClickID); err != nil || dup {
			if dup {
				s.j.m.duplicates.WithLabelValues("click").Inc()
			}
			return err
		}
	}
	if v := appendTouch(nil, &c.Touch, true); !aClicksV7.put(b, c.ClickID, c.Time, v) {
		aClicks.put(b, []byte(c.ClickID), c.Time, v)
	}
	s.j.routeTouch(tagClickBin, c.ClickID, &c.Touch, rec.Timestamp, emit)

	// Installs that were waiting for this click go on now.
	if any, err := s.waiting.mayHold(aWaiting.p, rec.Partition, b); err != nil || !any {
		return err
	}
	waits, err := aWaiting.entries(b, joinKey(c.ClickID))
	if err != nil {
		return err
	}
	for _, w := range waits {
		deadline, in, raw, err := decodeWaiting(w.v)
		if err != nil {
			return fmt.Errorf("waiting install %q: %w", w.id, err)
		}
		aWaiting.del(b, w.id, deadline)
		s.j.m.waited.WithLabelValues("install", "matched").Inc()
		p := &pending{Install: *in, ByClickID: &c, raw: raw}
		if err := s.j.toDevice(p, rec.Timestamp, emit); err != nil {
			return err
		}
	}
	return nil
}

func (s *clickIDStage) impression(rec *kgo.Record, b *statestore.Batch, emit func(*kgo.Record), now time.Time) error {
	var m event.Impression
	if err := json.Unmarshal(rec.Value, &m); err != nil {
		s.j.reject(rec, "impression", "undecodable impression: "+err.Error(), emit)
		return nil
	}
	if m.ImpressionID == "" || m.AppID == "" || m.Time.IsZero() {
		s.j.reject(rec, "impression", "impression lacks impression_id, app_id or time", emit)
		return nil
	}
	// Impressions are not kept by id here; keyed ones are remembered for
	// the dedup window, so a client's retry is not a second impression.
	if event.IsKeyedTouchID(m.ImpressionID) {
		id := []byte(m.ImpressionID)
		if _, _, dup, err := s.impSeen.get(b, rec.Partition, id, now.Add(-s.j.cfg.DedupWindow)); err != nil || dup {
			if dup {
				s.j.m.duplicates.WithLabelValues("impression").Inc()
			}
			return err
		}
		s.impSeen.put(b, rec.Partition, id, m.Time, nil)
	}
	s.j.routeTouch(tagImpBin, m.ImpressionID, &m.Touch, rec.Timestamp, emit)
	return nil
}

func (s *clickIDStage) install(rec *kgo.Record, b *statestore.Batch, emit func(*kgo.Record), now time.Time) error {
	var in event.Install
	if ok, err := s.j.admit(rec, b, emit, s.seen, now, "install", &in, &in.Postback); !ok || err != nil {
		return err
	}
	s.j.m.lookups.WithLabelValues(StageClickID).Inc()

	p := &pending{Install: in, raw: rec.Value}
	if in.ClickID != "" {
		v, ok, err := s.storedClick(b, rec.Partition, in.ClickID)
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
			s.waiting.added(rec.Partition, b)
			return nil
		}
	}
	return s.j.toDevice(p, rec.Timestamp, emit)
}

// storedClick finds a click by id: a UUIDv7 id (as ingest mints them) in
// the compact index, else, and while it holds clicks of an earlier
// version, in the text-keyed one.
func (s *clickIDStage) storedClick(b *statestore.Batch, p int32, id string) ([]byte, bool, error) {
	if v, ok, err := aClicksV7.get(b, id); err != nil || ok {
		return v, ok, err
	}
	if _, v7 := v7Key(aClicksV7.p, id); v7 {
		if had, err := s.byText.mayHold(aClicks.p, p, b); err != nil || !had {
			return nil, false, err
		}
	}
	return aClicks.get(b, []byte(id))
}

// settle sends on the installs whose grace ended by now, without their
// click: the other rules decide them.
func (s *clickIDStage) settle(_ int32, b *statestore.Batch, emit func(*kgo.Record), now time.Time) error {
	n, err := aWaiting.expire(b, now.Add(time.Nanosecond), func(id []byte, deadline time.Time, v []byte) error {
		_, in, raw, err := decodeWaiting(v)
		if err != nil {
			return fmt.Errorf("waiting install %q: %w", id, err)
		}
		return s.j.toDevice(&pending{Install: *in, raw: raw}, deadline, emit)
	})
	s.j.m.waited.WithLabelValues("install", "deadline").Add(float64(n))
	return err
}

// decodeWaiting decodes a waiting install: its deadline, the install, and
// the install's JSON (a copy: v is only valid during a scan).
func decodeWaiting(v []byte) (time.Time, *event.Install, []byte, error) {
	if len(v) < 8 {
		return time.Time{}, nil, nil, errShort
	}
	raw := append([]byte(nil), v[8:]...)
	in := new(event.Install)
	if err := json.Unmarshal(raw, in); err != nil {
		return time.Time{}, nil, nil, err
	}
	return decodeTime(v), in, raw, nil
}
