package join

import (
	"context"
	"fmt"
	"time"

	"github.com/segmentio/encoding/json"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/adtrack/postback/pkg/attribution"
	"github.com/adtrack/postback/pkg/event"
	"github.com/adtrack/postback/pkg/statestore"
)

// Stage E state: attributed installs by (join id, app) and seen event ids
// (keyed indexes: eventsStage.installs, .seen), and events waiting for
// their install. Waiting values start with their deadline (8 bytes), so a
// delete can find the expiry entry to remove with them.
var eWaiting = tindex{'w', 'W'} // (join id, app, event_id) -> deadline + event JSON; time = deadline

// eventsStage is stage E: it consumes raw in-app events (keyed by their
// join id) and attributed installs re-keyed the same way, drops events
// whose event_id it has seen, and gives each event its install's
// attribution. An event that arrives before its install waits for it up to
// EventGrace of stream time and is then published organic.
type eventsStage struct {
	j       *Joiner
	clocks  clocks
	waiting occupancy // of eWaiting
	// (join id, app) -> the install's time and its joined install (or
	// JSON, when an earlier version stored it); event_id -> received_at
	installs, seen keyed
}

func newEventsStage(j *Joiner) *eventsStage {
	return &eventsStage{j: j, clocks: clocks{}, waiting: occupancy{},
		installs: newKeyed('l', tindex{'j', 'J'}, true),
		seen:     newKeyed('n', tindex{'s', 'S'}, false)}
}

func (s *eventsStage) Process(_ context.Context, rec *kgo.Record, b *statestore.Batch, emit func(*kgo.Record)) error {
	return s.j.step(s, s.clocks, rec.Partition, rec.Timestamp, b, emit, func(now time.Time) error {
		switch rec.Topic {
		case s.j.cfg.Topics.EventsRaw:
			return s.event(rec, b, emit, now)
		case s.j.byJoinKey:
			return s.install(rec, b, emit, now)
		}
		return fmt.Errorf("unexpected input topic %s", rec.Topic)
	})
}

// Tick moves the partition's stream time on while it receives nothing.
func (s *eventsStage) Tick(_ context.Context, p int32, now time.Time, b *statestore.Batch, emit func(*kgo.Record)) error {
	return s.j.step(s, s.clocks, p, now, b, emit, nil)
}

// settle publishes, organic, the events whose install did not come within
// the event grace.
func (s *eventsStage) settle(p int32, b *statestore.Batch, emit func(*kgo.Record), now time.Time) error {
	// Where a rejected event came from, for its reason; the waiting
	// entry does not keep its offset.
	from := &kgo.Record{Topic: s.j.cfg.Topics.EventsRaw, Partition: p, Offset: -1}
	n, err := eWaiting.expire(b, now.Add(time.Nanosecond), func(id []byte, deadline time.Time, v []byte) error {
		ev := new(event.InAppEvent)
		if err := unmarshalTimed(v, ev); err != nil {
			return fmt.Errorf("waiting event %q: %w", id, err)
		}
		return s.publish(from, ev, nil, deadline, emit)
	})
	s.j.m.waited.WithLabelValues("event", "deadline").Add(float64(n))
	return err
}

// InspectState exports how many events wait for their install.
func (s *eventsStage) InspectState(stores map[int32]*statestore.Store) error {
	return s.j.gaugeWaiting(StageEvents, "event", eWaiting.p, stores)
}

// expire drops installs past the event join window and seen ids past the
// dedup window.
func (s *eventsStage) expire(p int32, b *statestore.Batch, now time.Time) error {
	n, err := s.installs.expire(b, p, now.Add(-s.j.cfg.EventJoinWindow))
	if err != nil {
		return err
	}
	s.j.m.expired.WithLabelValues(StageEvents, "installs").Add(float64(n))
	if n, err = s.seen.expire(b, p, now.Add(-s.j.cfg.DedupWindow)); err != nil {
		return err
	}
	s.j.m.expired.WithLabelValues(StageEvents, "seen").Add(float64(n))
	return nil
}

func (s *eventsStage) install(rec *kgo.Record, b *statestore.Batch, emit func(*kgo.Record), now time.Time) error {
	var a *event.AttributedInstall
	var at time.Time
	var stored []byte // the stored form: a joined install (binary) or JSON
	switch {
	case len(rec.Value) > 0 && rec.Value[0] == tagJoinBin:
		var err error
		if a, at, err = decodeJoined(rec.Value[1:]); err != nil {
			s.j.reject(rec, "install", "undecodable attributed install: "+err.Error(), emit)
			return nil
		}
		stored = rec.Value
	case len(rec.Value) > 0 && rec.Value[0] == tagAttributed: // JSON, from an earlier version
		a = new(event.AttributedInstall)
		if err := json.Unmarshal(rec.Value[1:], a); err != nil {
			s.j.reject(rec, "install", "undecodable attributed install: "+err.Error(), emit)
			return nil
		}
		at, stored = attribution.InstallTime(&a.Install), rec.Value[1:]
	default:
		s.j.reject(rec, "install", "repartition record is not an attributed install", emit)
		return nil
	}
	key := string(rec.Key)
	id := joinKey(key, a.AppID)
	ot, _, ok, err := s.installs.get(b, rec.Partition, id, now.Add(-s.j.cfg.EventJoinWindow))
	if err != nil {
		return err
	}
	// Events belong to the device's latest install.
	if ok && ot.After(at) {
		return s.wake(rec, b, emit, key, a.AppID, nil, now)
	}
	s.installs.put(b, rec.Partition, id, at, stored)
	return s.wake(rec, b, emit, key, a.AppID, a, now)
}

// wake publishes the events waiting for the install of (key, app). With a
// nil install (a newer one is stored) it reads the stored one.
func (s *eventsStage) wake(rec *kgo.Record, b *statestore.Batch, emit func(*kgo.Record), key, app string, a *event.AttributedInstall, now time.Time) error {
	if any, err := s.waiting.mayHold(eWaiting.p, rec.Partition, b); err != nil || !any {
		return err
	}
	waits, err := eWaiting.entries(b, joinKey(key, app))
	if err != nil {
		return err
	}
	if len(waits) == 0 {
		return nil
	}
	if a == nil {
		if a, err = s.lookup(b, rec.Partition, key, app, now); err != nil || a == nil {
			return err
		}
	}
	for _, w := range waits {
		ev := new(event.InAppEvent)
		if err := unmarshalTimed(w.v, ev); err != nil {
			return fmt.Errorf("waiting event %q: %w", w.id, err)
		}
		eWaiting.del(b, w.id, decodeTime(w.v))
		s.j.m.waited.WithLabelValues("event", "matched").Inc()
		if err := s.publish(rec, ev, a, rec.Timestamp, emit); err != nil {
			return err
		}
	}
	return nil
}

// lookup reads the stored install of (key, app), nil when there is none.
// Stored installs are a joined install (binary), or JSON when an earlier
// version stored them.
func (s *eventsStage) lookup(b *statestore.Batch, p int32, key, app string, now time.Time) (*event.AttributedInstall, error) {
	_, v, ok, err := s.installs.get(b, p, joinKey(key, app), now.Add(-s.j.cfg.EventJoinWindow))
	if err != nil || !ok {
		return nil, err
	}
	if len(v) > 0 && v[0] == tagJoinBin {
		a, _, err := decodeJoined(v[1:])
		if err != nil {
			return nil, fmt.Errorf("stored install of %q: %w", key, err)
		}
		return a, nil
	}
	a := new(event.AttributedInstall)
	if err := json.Unmarshal(v, a); err != nil {
		return nil, fmt.Errorf("stored install of %q: %w", key, err)
	}
	return a, nil
}

func (s *eventsStage) event(rec *kgo.Record, b *statestore.Batch, emit func(*kgo.Record), now time.Time) error {
	ev := new(event.InAppEvent)
	if ok, err := s.j.admit(rec, b, emit, s.seen, now, "event", ev, &ev.Postback); !ok || err != nil {
		return err
	}

	key := ev.JoinKey()
	if key == "" {
		return s.publish(rec, ev, nil, rec.Timestamp, emit)
	}
	a, err := s.lookup(b, rec.Partition, key, ev.AppID, now)
	if err != nil {
		return err
	}
	if a == nil {
		if deadline := ev.ReceivedAt.Add(s.j.cfg.EventGrace); now.Before(deadline) {
			eWaiting.put(b, joinKey(key, ev.AppID, ev.EventID), deadline,
				append(statestore.AppendTime(nil, deadline), rec.Value...))
			s.waiting.added(rec.Partition, b)
			return nil
		}
	}
	return s.publish(rec, ev, a, rec.Timestamp, emit)
}

// publish attributes ev to a (nil: organic) and emits it, or rejects it
// when its revenue cannot be converted (no rate for its currency): an
// event with a wrong reporting revenue would mislead every ROAS query.
func (s *eventsStage) publish(rec *kgo.Record, ev *event.InAppEvent, a *event.AttributedInstall, now time.Time, emit func(*kgo.Record)) error {
	ae, err := attribution.AttributeEventIn(ev, a, s.j.cfg.Rates, s.j.cfg.Campaigns, now)
	if err != nil {
		raw, _ := json.Marshal(ev)
		s.j.reject(&kgo.Record{Topic: rec.Topic, Partition: rec.Partition, Offset: rec.Offset, Timestamp: now, Value: raw},
			"event", fmt.Sprintf("event %s: revenue: %v", ev.EventID, err), emit)
		return nil
	}
	joined := "organic"
	if ae.InstallEventID != "" {
		joined = "install"
	}
	s.j.m.events.WithLabelValues(joined).Inc()
	o, err := out(s.j.cfg.Topics.EventsAttributed, []byte(ev.EventID), 0, &ae, now)
	if err != nil {
		return err
	}
	emit(o)
	return nil
}

// decodeTime is the time a state value starts with; zero when the value is
// too short to hold one.
func decodeTime(v []byte) time.Time {
	if len(v) < 8 {
		return time.Time{}
	}
	return statestore.DecodeTime(v)
}

// unmarshalTimed decodes a state value made of an 8-byte time and JSON.
func unmarshalTimed(v []byte, dst any) error {
	if len(v) < 8 {
		return errShort
	}
	return json.Unmarshal(v[8:], dst)
}
