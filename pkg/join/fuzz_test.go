package join

import (
	"context"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/adtrack/postback/pkg/event"
)

// FuzzStages feeds arbitrary bytes, as any input topic of any stage, to the
// stage processors: none may panic or fail (a failure would stop the
// service and re-read the same record forever); bad content must go to
// the rejected topic or be used.
func FuzzStages(f *testing.F) {
	c := click("k1", 0, withIDFA(idfa1), withIPUA("10.0.0.1"))
	in := install("i", min_, iClick("k1"), iIDFA(idfa1), iIPUA("10.0.0.1"))
	ev := inAppEvent("e", 2*min_, func(e *event.InAppEvent) { e.IDFA = idfa1 })
	bin := wireSamples(f)
	// Keyed ids (sent with an idempotency key): looked up as repeats.
	kc := click(event.KeyedClickID("cmp-1", "k"), 0, withIDFA(idfa1))
	km := impression(event.KeyedImpressionID("cmp-1", "k"), 0, idfa1)
	for topic := range 7 {
		f.Add(uint8(topic), kc.Value)
		f.Add(uint8(topic), km.Value)
		for _, v := range bin {
			f.Add(uint8(topic), v)
		}
		f.Add(uint8(topic), c.Value)
		f.Add(uint8(topic), in.Value)
		f.Add(uint8(topic), ev.Value)
		f.Add(uint8(topic), append([]byte{tagInstall}, `{"install":`+string(in.Value)+`}`...))
		f.Add(uint8(topic), append([]byte{tagClick}, c.Value...))
		f.Add(uint8(topic), []byte(`{"event_id":"x","app_id":"a","install_time":"2026-13-01T00:00:00Z"}`))
		f.Add(uint8(topic), []byte{})
	}
	e := newEngine(f, testConfig(f))
	topics := []string{testTopics.Clicks, testTopics.Impressions, testTopics.InstallsRaw, testTopics.EventsRaw,
		e.j.byDevice, e.j.byIPUA, e.j.byJoinKey}
	f.Fuzz(func(t *testing.T, topic uint8, value []byte) {
		tp := topics[int(topic)%len(topics)]
		st := e.stageOf(tp)
		ps := e.procs[st]
		b := ps.s.NewBatch()
		defer b.Close()
		rec := &kgo.Record{Topic: tp, Key: []byte("k"), Value: value, Timestamp: base.Add(time.Hour)}
		if err := ps.p.Process(context.Background(), rec, b, func(*kgo.Record) {}); err != nil {
			t.Fatalf("stage %s failed on %q: %v", st, value, err)
		}
	})
}

// FuzzDecodeTouch: a stored touch entry of any bytes decodes or errors,
// never panics; entries appendTouch writes decode to what was written.
func FuzzDecodeTouch(f *testing.F) {
	t := event.Touch{Time: base, AppID: "app", MediaSource: "net", Placement: event.Placement{CampaignID: "c", SiteID: "s"}, Currency: "USD"}
	f.Add(appendTouch(nil, &t, true), true)
	f.Add(appendTouch(nil, &t, false), false)
	f.Add([]byte{0x80}, true)
	f.Fuzz(func(tt *testing.T, b []byte, withApp bool) {
		var got event.Touch
		if err := decodeTouch(b, &got, withApp); err != nil {
			return
		}
		again := appendTouch(nil, &got, withApp)
		var back event.Touch
		if err := decodeTouch(again, &back, withApp); err != nil || back != got {
			tt.Fatalf("round trip: %v, %+v != %+v", err, back, got)
		}
	})
}
