package join

import (
	"fmt"
	"testing"
	"time"

	"github.com/adtrack/postback/pkg/event"
	"github.com/adtrack/postback/pkg/statestore"
)

// TestKeyedSweep: lookups ignore entries older than their bound before any
// sweep; a sweep visits at least sweepMin entries, four per entry written
// since the last, from where the last one stopped, deletes the expired
// ones it visits, and starts over once it reached the end.
func TestKeyedSweep(t *testing.T) {
	s, err := statestore.Open(t.TempDir(), statestore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	k := newKeyed('n', tindex{'s', 'S'}, false)
	sec := func(i int) time.Time { return base.Add(time.Duration(i) * time.Second) }
	id := func(i int) []byte { return fmt.Appendf(nil, "e%05d", i) }
	count := func() int {
		n, err := s.Count([]byte{'n'})
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	commit := func(b *statestore.Batch) {
		t.Helper()
		if err := b.Commit(); err != nil {
			t.Fatal(err)
		}
	}

	// 3000 entries, one a second. A sweep now visits 4 × 3000: all.
	b := s.NewBatch()
	for i := range 3000 {
		k.put(b, 0, id(i), sec(i), []byte{byte(i)})
	}
	commit(b)
	b = s.NewBatch()
	if _, _, ok, err := k.get(b, 0, id(5), sec(10)); err != nil || ok {
		t.Errorf("entry of second 5 found with the bound at second 10 (ok %v, err %v)", ok, err)
	}
	if at, v, ok, err := k.get(b, 0, id(15), sec(10)); err != nil || !ok || !at.Equal(sec(15)) || v[0] != 15 {
		t.Errorf("entry of second 15: at %v value %v ok %v err %v, want second 15 and [15]", at, v, ok, err)
	}
	if n, err := k.expire(b, 0, sec(1500)); err != nil || n != 1500 {
		t.Fatalf("first sweep removed %d (err %v), want 1500", n, err)
	}
	commit(b)
	if n := count(); n != 1500 {
		t.Fatalf("%d entries after the first sweep, want 1500", n)
	}
	if k.parts[0].next != nil {
		t.Fatalf("the sweep that read to the end goes on from %q, want the start", k.parts[0].next)
	}

	// Nothing written since: the next sweeps visit sweepMin (1024) entries
	// each: e01500..e02523, then the rest, then from the start again.
	b = s.NewBatch()
	if n, err := k.expire(b, 0, sec(3000)); err != nil || n != sweepMin {
		t.Fatalf("second sweep removed %d (err %v), want %d", n, err, sweepMin)
	}
	commit(b)
	if want := fmt.Appendf(nil, "ne%05d\x00", 1500+sweepMin-1); string(k.parts[0].next) != string(want) {
		t.Fatalf("second sweep stopped before %q, want %q", k.parts[0].next, want)
	}
	b = s.NewBatch()
	if n, err := k.expire(b, 0, sec(3000)); err != nil || n != 1500-sweepMin {
		t.Fatalf("third sweep removed %d (err %v), want %d", n, err, 1500-sweepMin)
	}
	commit(b)
	if n := count(); n != 0 || k.parts[0].next != nil {
		t.Fatalf("%d entries left, next sweep from %q; want none, from the start", n, k.parts[0].next)
	}
}

// TestKeyedLegacyLayouts: seen ids, counted installs and the events stage's
// installs that an earlier version stored with an expiry index (tindex)
// still count after an upgrade (a retry is dropped, a reinstall is one, an
// event joins its install), and still expire.
func TestKeyedLegacyLayouts(t *testing.T) {
	const idfa3 = "6d9a1f0c-7b1e-4f2a-9a59-0c8f3b2a1e03"
	e := newEngine(t, testConfig(t))
	write := func(st string, fn func(b *statestore.Batch)) {
		b := e.procs[st].s.NewBatch()
		fn(b)
		if err := b.Commit(); err != nil {
			t.Fatal(err)
		}
	}
	write(StageClickID, func(b *statestore.Batch) { tindex{'s', 'S'}.put(b, []byte("seen-before"), base, nil) })
	write(StageDevice, func(b *statestore.Batch) {
		tindex{'p', 'P'}.put(b, joinKey("app", idfa2), base, statestore.AppendTime(nil, base))
	})
	legacy := event.AttributedInstall{
		Install:     event.Install{Postback: event.Postback{EventID: "legacy-install", AppID: "app", ReceivedAt: base}, InstallTime: base},
		Attribution: event.Attribution{MatchType: event.MatchDeviceID, TouchID: "old-click", CampaignID: "cmp-1", MediaSource: "net"},
	}
	write(StageEvents, func(b *statestore.Batch) {
		tindex{'j', 'J'}.put(b, joinKey(idfa3, "app"), base, append(statestore.AppendTime(nil, base), appendJoined(nil, &legacy)...))
	})

	e.feed(click("k1", hour, withIDFA(idfa1)), click("k2", hour, withIDFA(idfa2)))
	e.feed(install("seen-before", 2*hour, iIDFA(idfa1)), install("again", 2*hour, iIDFA(idfa2)))
	e.feed(inAppEvent("ev", 3*hour, func(ev *event.InAppEvent) { ev.IDFA = idfa3 }))
	got := e.installs()
	if _, ok := got["seen-before"]; ok {
		t.Error("an install whose event_id an earlier version saw was published again")
	}
	checkInstall(t, got, "again", wantInstall{match: event.MatchDeviceID, touch: "k2", cost: "0", re: true})
	if a, ok := e.events()["ev"]; !ok || a.InstallEventID != "legacy-install" || a.TouchID != "old-click" {
		t.Errorf("event joined to %q via %q (published %v), want legacy-install via old-click", a.InstallEventID, a.TouchID, ok)
	}

	// 100 days on, past every window: the earlier layout's entries are gone.
	e.feed(click("tick", 100*day, withIDFA(idfa1)), inAppEvent("tick-ev", 100*day))
	for st, prefixes := range map[string]string{StageClickID: "sS", StageDevice: "pP", StageEvents: "jJ"} {
		for _, p := range []byte(prefixes) {
			if err := e.procs[st].s.Scan([]byte{p}, func(k, _ []byte) error {
				t.Errorf("stage %s still holds the earlier layout's entry %q", st, k)
				return nil
			}); err != nil {
				t.Fatal(err)
			}
		}
	}
}
