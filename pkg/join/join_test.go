package join

import (
	"encoding/binary"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/encoding/json"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/adtrack/postback/pkg/event"
	"github.com/adtrack/postback/pkg/statestore"
)

const (
	sec  = time.Second
	min_ = time.Minute
	hour = time.Hour
	day  = 24 * time.Hour
)

type wantInstall struct {
	match event.MatchType
	touch string
	flags []string
	cost  string
	re    bool
}

func checkInstall(t *testing.T, got map[string]event.AttributedInstall, id string, w wantInstall) {
	t.Helper()
	a, ok := got[id]
	if !ok {
		t.Fatalf("install %s not published (have %d)", id, len(got))
	}
	if a.MatchType != w.match || a.TouchID != w.touch {
		t.Errorf("install %s: match %s touch %q, want %s %q", id, a.MatchType, a.TouchID, w.match, w.touch)
	}
	if w.flags == nil {
		w.flags = []string{}
	}
	if !slices.Equal(a.FraudFlags, w.flags) {
		t.Errorf("install %s: flags %v, want %v", id, a.FraudFlags, w.flags)
	}
	if w.cost != "" && a.Cost.String() != w.cost {
		t.Errorf("install %s: cost %s, want %s", id, a.Cost, w.cost)
	}
	if a.Reinstall != w.re {
		t.Errorf("install %s: reinstall %v, want %v", id, a.Reinstall, w.re)
	}
}

// TestRules runs each attribution rule through the four stages and their
// stores: the rules engine's tables are in pkg/attribution; these check
// that the stores find what the rules need, at the window limits too.
func TestRules(t *testing.T) {
	cases := []struct {
		name string
		recs []*kgo.Record
		want wantInstall
	}{
		{"click_id", []*kgo.Record{click("k1", 0), install("i", 5*min_, iClick("k1"))},
			wantInstall{match: event.MatchClickID, touch: "k1", cost: "1.5"}},
		{"click_id of another app is not a match", []*kgo.Record{click("k1", 0, withApp("other")), install("i", 5*min_, iClick("k1"))},
			wantInstall{match: event.MatchOrganic, cost: "0"}},
		{"device id", []*kgo.Record{click("k1", 0, withIDFA(idfa1)), install("i", 5*min_, iIDFA(idfa1))},
			wantInstall{match: event.MatchDeviceID, touch: "k1", cost: "1.5"}},
		{"device id exactly at the 7 d lookback", []*kgo.Record{click("k1", 0, withIDFA(idfa1)), install("i", 7*day, iIDFA(idfa1))},
			wantInstall{match: event.MatchDeviceID, touch: "k1"}},
		{"device id 1 s past the lookback", []*kgo.Record{click("k1", 0, withIDFA(idfa1)), install("i", 7*day+sec, iIDFA(idfa1))},
			wantInstall{match: event.MatchOrganic}},
		{"device id: the last click before the install wins", []*kgo.Record{
			click("k1", 0, withIDFA(idfa1)), click("k2", hour, withIDFA(idfa1)), click("k3", 3*hour, withIDFA(idfa1)),
			install("i", 2*hour, iIDFA(idfa1), iReceived(4*hour))},
			wantInstall{match: event.MatchDeviceID, touch: "k2"}},
		{"device id: another device's click is no match", []*kgo.Record{click("k1", 0, withIDFA(idfa2)), install("i", 5*min_, iIDFA(idfa1))},
			wantInstall{match: event.MatchOrganic}},
		{"probabilistic", []*kgo.Record{click("k1", 0, withIPUA("10.0.0.1")), install("i", hour, iIPUA("10.0.0.1"))},
			wantInstall{match: event.MatchProbabilistic, touch: "k1"}},
		{"probabilistic exactly at 24 h", []*kgo.Record{click("k1", 0, withIPUA("10.0.0.1")), install("i", day, iIPUA("10.0.0.1"))},
			wantInstall{match: event.MatchProbabilistic, touch: "k1"}},
		{"probabilistic 1 s past 24 h", []*kgo.Record{click("k1", 0, withIPUA("10.0.0.1")), install("i", day+sec, iIPUA("10.0.0.1"))},
			wantInstall{match: event.MatchOrganic}},
		{"probabilistic needs the same IP", []*kgo.Record{click("k1", 0, withIPUA("10.0.0.1")), install("i", hour, iIPUA("10.0.0.2"))},
			wantInstall{match: event.MatchOrganic}},
		{"deterministic beats a later probabilistic click", []*kgo.Record{
			click("k1", 0, withIDFA(idfa1)), click("k2", 30*min_, withIPUA("10.0.0.1")),
			install("i", hour, iIDFA(idfa1), iIPUA("10.0.0.1"))},
			wantInstall{match: event.MatchDeviceID, touch: "k1"}},
		{"view-through", []*kgo.Record{impression("m1", 0, idfa1), install("i", hour, iIDFA(idfa1))},
			wantInstall{match: event.MatchViewThrough, touch: "m1", cost: "1.5"}},
		{"click beats a later impression", []*kgo.Record{
			click("k1", 0, withIDFA(idfa1)), impression("m1", 30*min_, idfa1), install("i", hour, iIDFA(idfa1))},
			wantInstall{match: event.MatchDeviceID, touch: "k1"}},
		{"view-through 1 s past 24 h", []*kgo.Record{impression("m1", 0, idfa1), install("i", day+sec, iIDFA(idfa1))},
			wantInstall{match: event.MatchOrganic}},
		{"organic", []*kgo.Record{install("i", hour, iIDFA(idfa1), iIPUA("10.0.0.1"))},
			wantInstall{match: event.MatchOrganic, cost: "0"}},
		{"click after the install never wins", []*kgo.Record{
			click("k1", 2*hour, withIDFA(idfa1)), install("i", hour, iIDFA(idfa1), iReceived(3*hour))},
			wantInstall{match: event.MatchOrganic}},
		{"injection: CTIT under 10 s", []*kgo.Record{click("k1", 0), install("i", 9*sec, iClick("k1"))},
			wantInstall{match: event.MatchClickID, touch: "k1", flags: []string{event.FraudClickInjection}}},
		{"no injection at exactly 10 s", []*kgo.Record{click("k1", 0), install("i", 10*sec, iClick("k1"))},
			wantInstall{match: event.MatchClickID, touch: "k1"}},
		{"click_id beyond the lookback: rejected, flagged, device match instead", []*kgo.Record{
			click("k1", 0, withIDFA(idfa1)), click("k2", 7*day, withIDFA(idfa1)), install("i", 7*day+sec, iClick("k1"), iIDFA(idfa1))},
			wantInstall{match: event.MatchDeviceID, touch: "k2", flags: []string{event.FraudClickInjection, event.FraudCTITTooLong}}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e := newEngine(t, testConfig(t))
			e.feed(c.recs...)
			got := e.installs()
			if len(got) != 1 {
				t.Fatalf("%d installs published, want 1", len(got))
			}
			checkInstall(t, got, "i", c.want)
		})
	}
}

// TestSeparateRounds feeds each record in its own round (its own
// transaction), as records normally arrive.
func TestSeparateRounds(t *testing.T) {
	e := newEngine(t, testConfig(t))
	for _, r := range []*kgo.Record{
		click("k1", 0, withIDFA(idfa1), withIPUA("10.0.0.1")),
		click("k2", min_, withIPUA("10.0.0.9")),
		impression("m1", 2*min_, idfa2),
		install("a", 10*min_, iClick("k1")),
		install("b", 11*min_, iIDFA(idfa1)),
		install("c", 12*min_, iIPUA("10.0.0.9")),
		install("d", 13*min_, iIDFA(idfa2)),
	} {
		e.feed(r)
	}
	got := e.installs()
	checkInstall(t, got, "a", wantInstall{match: event.MatchClickID, touch: "k1"})
	checkInstall(t, got, "b", wantInstall{match: event.MatchDeviceID, touch: "k1", re: false})
	checkInstall(t, got, "c", wantInstall{match: event.MatchProbabilistic, touch: "k2"})
	checkInstall(t, got, "d", wantInstall{match: event.MatchViewThrough, touch: "m1"})
}

// floodConfig is the test config with click_flooding above n clicks.
func floodConfig(t *testing.T, n int) Config {
	cfg := testConfig(t)
	r := cfg.Rules.Default
	r.FloodClicks = n
	cfg.Rules.Default = r
	return cfg
}

func TestClickFlooding(t *testing.T) {
	e := newEngine(t, floodConfig(t, 3))
	for i := range 4 {
		e.feed(click("k"+string(rune('0'+i)), time.Duration(i)*min_, withIDFA(idfa1)))
	}
	e.feed(install("i", hour, iIDFA(idfa1)))
	// MaxCandidates does not cap the count the flag is based on.
	cfg2 := floodConfig(t, 3)
	cfg2.MaxCandidates = 1
	e2 := newEngine(t, cfg2)
	for i := range 4 {
		e2.feed(click("k"+string(rune('0'+i)), time.Duration(i)*min_, withIDFA(idfa1)))
	}
	e2.feed(install("i", hour, iIDFA(idfa1)))
	for _, got := range []map[string]event.AttributedInstall{e.installs(), e2.installs()} {
		checkInstall(t, got, "i", wantInstall{match: event.MatchDeviceID, touch: "k3", flags: []string{event.FraudClickFlooding}})
	}
}

// TestDecidedWhereTheRulesAllow: an install a click wins by id or device
// is decided by the device stage, with the same result as the IP + UA
// stage would give it (an IP + UA click of the same device is there and
// must not count); the others still go on to the IP + UA stage.
func TestDecidedWhereTheRulesAllow(t *testing.T) {
	e := newEngine(t, testConfig(t))
	e.feed(click("by-id", 0), click("by-device", 0, withIDFA(idfa1)),
		click("ipua-1", 30*min_, withIPUA("10.0.0.1")), click("ipua-2", 30*min_, withIPUA("10.0.0.2")),
		impression("imp", 0, idfa2))
	e.feed(install("i-id", hour, iClick("by-id"), iIDFA("6d9a1f0c-7b1e-4f2a-9a59-0c8f3b2a1e03"), iIPUA("10.0.0.1")),
		install("i-device", hour, iIDFA(idfa1), iIPUA("10.0.0.1")),
		install("i-ipua", hour, iIPUA("10.0.0.2")),
		install("i-view", hour, iIDFA(idfa2)),
		install("i-organic", hour, iIDFA("6d9a1f0c-7b1e-4f2a-9a59-0c8f3b2a1eff")))
	got := e.installs()
	checkInstall(t, got, "i-id", wantInstall{match: event.MatchClickID, touch: "by-id", cost: "1.5"})
	checkInstall(t, got, "i-device", wantInstall{match: event.MatchDeviceID, touch: "by-device", cost: "1.5"})
	checkInstall(t, got, "i-ipua", wantInstall{match: event.MatchProbabilistic, touch: "ipua-2", cost: "1.5"})
	checkInstall(t, got, "i-view", wantInstall{match: event.MatchViewThrough, touch: "imp", cost: "1.5"})
	checkInstall(t, got, "i-organic", wantInstall{match: event.MatchOrganic})
	for stage, want := range map[string]float64{StageDevice: 2, StageIPUA: 3} {
		if n := counter(t, e.j.m.decided.WithLabelValues(stage)); n != want {
			t.Errorf("installs decided by stage %s: %v, want %v", stage, n, want)
		}
	}
	if n := counter(t, e.j.m.lookups.WithLabelValues(StageIPUA)); n != 3 {
		t.Errorf("installs that reached the IP + UA stage: %v, want 3", n)
	}
}

func TestReinstall(t *testing.T) {
	e := newEngine(t, testConfig(t))
	e.feed(click("k1", 0, withIDFA(idfa1)), install("first", hour, iIDFA(idfa1)))
	e.feed(click("k2", 30*day, withIDFA(idfa1)), install("second", 30*day+hour, iIDFA(idfa1)))
	e.feed(install("third", 30*day+91*day+2*hour, iIDFA(idfa1)))
	got := e.installs()
	checkInstall(t, got, "first", wantInstall{match: event.MatchDeviceID, touch: "k1", cost: "1.5"})
	// Within 90 d of the counted install: a reinstall, costing nothing.
	checkInstall(t, got, "second", wantInstall{match: event.MatchDeviceID, touch: "k2", cost: "0", re: true})
	// 90 d after the first counted install (the reinstall did not restart the window).
	checkInstall(t, got, "third", wantInstall{match: event.MatchOrganic})
}

func TestDuplicateInstallDropped(t *testing.T) {
	e := newEngine(t, testConfig(t))
	in := install("i", hour, iIDFA(idfa1))
	e.feed(click("k1", 0, withIDFA(idfa1)), in)
	retry := *in
	retry.Timestamp = in.Timestamp.Add(30 * min_)
	e.feed(&retry)
	e.feed(&retry)
	if got := e.installs(); len(got) != 1 {
		t.Fatalf("%d installs published, want 1", len(got))
	}
	if n := counter(t, e.j.m.duplicates.WithLabelValues("install")); n != 2 {
		t.Errorf("duplicates counted %v, want 2", n)
	}
}

// TestGrace: an install whose click has not arrived waits, and is settled
// when the click arrives (click_id match) or when stream time passes its
// grace deadline (then the other rules decide).
func TestGrace(t *testing.T) {
	t.Run("click arrives within grace", func(t *testing.T) {
		e := newEngine(t, testConfig(t))
		in := install("i", 5*min_, iClick("k1"))
		e.feed(in)
		if n := len(e.installs()); n != 0 {
			t.Fatalf("install published before its click: %d", n)
		}
		c := click("k1", 0)
		c.Timestamp = base.Add(9 * min_) // received late, but before the deadline
		e.feed(c)
		checkInstall(t, e.installs(), "i", wantInstall{match: event.MatchClickID, touch: "k1"})
	})
	t.Run("grace expires: other rules decide", func(t *testing.T) {
		e := newEngine(t, testConfig(t))
		e.feed(click("d1", 0, withIDFA(idfa1)))
		e.feed(install("i", 5*min_, iClick("k1"), iIDFA(idfa1)))
		e.feed(click("x", 14*min_)) // stream time 14m: before 5m + 10m
		if n := len(e.installs()); n != 0 {
			t.Fatalf("settled before the deadline: %d", n)
		}
		e.feed(click("y", 15*min_)) // exactly at the deadline: decided
		checkInstall(t, e.installs(), "i", wantInstall{match: event.MatchDeviceID, touch: "d1"})
		late := click("k1", time.Minute)
		late.Timestamp = base.Add(16 * min_)
		e.feed(late)
		if n := len(e.installs()); n != 1 {
			t.Fatalf("%d installs after the late click, want 1", n)
		}
		if got := counter(t, e.j.m.waited.WithLabelValues("install", "deadline")); got != 1 {
			t.Errorf("deadline settlements %v, want 1", got)
		}
	})
	t.Run("click_time beyond the lookback does not wait", func(t *testing.T) {
		e := newEngine(t, testConfig(t))
		ct := base.Add(-8 * day)
		e.feed(install("i", 0, iClick("k1"), func(in *event.Install) { in.ClickTime = &ct }))
		checkInstall(t, e.installs(), "i", wantInstall{match: event.MatchOrganic, flags: []string{event.FraudCTITTooLong}})
	})
}

func TestEvents(t *testing.T) {
	e := newEngine(t, testConfig(t))
	e.feed(click("k1", 0, withIDFA(idfa1)), install("i", hour, iClick("k1"), iIDFA(idfa1)))
	evIDFA := func(ev *event.InAppEvent) { ev.IDFA = idfa1 }
	withClick := func(ev *event.InAppEvent) { ev.ClickID = "k1" }
	e.feed(inAppEvent("e-device", 2*hour, evIDFA), inAppEvent("e-click", 2*hour, withClick))
	// An event before its install waits, then joins it.
	early := inAppEvent("e-early", 3*hour, func(ev *event.InAppEvent) { ev.IDFA = idfa2 })
	e.feed(early)
	if _, ok := e.events()["e-early"]; ok {
		t.Fatal("event published before its install arrived")
	}
	e.feed(click("k2", 3*hour-10*min_, withIDFA(idfa2)), install("i2", 3*hour-5*min_, iIDFA(idfa2), iReceived(3*hour+min_)))
	// No install at all: published organic once the grace passes.
	e.feed(inAppEvent("e-orphan", 4*hour, func(ev *event.InAppEvent) { ev.IDFA = "aaaaaaaa-0000-4000-8000-000000000001" }))
	e.feed(click("tick", 4*hour+10*min_))
	// Duplicate and no-rate cases.
	e.feed(inAppEvent("e-device", 5*hour, evIDFA))
	e.feed(inAppEvent("e-yen", 5*hour, evIDFA, func(ev *event.InAppEvent) { ev.Currency = "JPY" }))

	got := e.events()
	for id, w := range map[string]struct {
		install, touch string
		match          event.MatchType
	}{
		"e-device": {"i", "k1", event.MatchClickID},
		"e-click":  {"i", "k1", event.MatchClickID},
		"e-early":  {"i2", "k2", event.MatchDeviceID},
		"e-orphan": {"", "", event.MatchOrganic},
	} {
		a, ok := got[id]
		if !ok {
			t.Errorf("event %s not published", id)
			continue
		}
		if a.InstallEventID != w.install || a.TouchID != w.touch || a.MatchType != w.match {
			t.Errorf("event %s: install %q touch %q match %s, want %q %q %s", id, a.InstallEventID, a.TouchID, a.MatchType, w.install, w.touch, w.match)
		}
		if a.RevenueReporting.String() != "2.2" || a.ReportingCurrency != "USD" || a.Revenue.String() != "2" || a.Currency != "EUR" {
			t.Errorf("event %s: revenue %s %s -> %s %s, want 2 EUR -> 2.2 USD", id, a.Revenue, a.Currency, a.RevenueReporting, a.ReportingCurrency)
		}
		if a.Cost != 0 {
			t.Errorf("event %s carries the install's cost %s", id, a.Cost)
		}
	}
	if len(got) != 4 {
		t.Errorf("%d events published, want 4", len(got))
	}
	if n := counter(t, e.j.m.duplicates.WithLabelValues("event")); n != 1 {
		t.Errorf("event duplicates %v, want 1", n)
	}
	validateRecords(t, "events.attributed.v1", e.out[testTopics.EventsAttributed])
	validateRecords(t, "installs.attributed.v1", e.out[testTopics.InstallsAttributed])
	rej := e.out[testTopics.Rejected]
	validateRecords(t, "postbacks.rejected.v1", rej)
	if len(rej) != 1 || !strings.Contains(string(rej[0].Value), "JPY") {
		t.Fatalf("rejected records %d, want 1 naming JPY: %s", len(rej), rejValues(rej))
	}
}

// TestBadInput: undecodable or incomplete records go to the rejected topic
// with a reason and their bytes; the records around them are unaffected.
func TestBadInput(t *testing.T) {
	e := newEngine(t, testConfig(t))
	e.feed(
		&kgo.Record{Topic: testTopics.Clicks, Value: []byte("{not json"), Timestamp: base},
		&kgo.Record{Topic: testTopics.InstallsRaw, Value: []byte(`{"event_id":""}`), Timestamp: base},
		&kgo.Record{Topic: testTopics.Impressions, Value: []byte(`[]`), Timestamp: base},
		&kgo.Record{Topic: testTopics.EventsRaw, Value: []byte(`{"event_id":"x","app_id":"app","revenue":"abc"}`), Timestamp: base},
		&kgo.Record{Topic: e.j.byDevice, Value: []byte("Zjunk"), Timestamp: base},
		&kgo.Record{Topic: e.j.byIPUA, Value: nil, Timestamp: base},
		&kgo.Record{Topic: e.j.byJoinKey, Value: []byte("A{"), Timestamp: base},
		click("k1", 0), install("i", min_, iClick("k1")),
	)
	checkInstall(t, e.installs(), "i", wantInstall{match: event.MatchClickID, touch: "k1"})
	rej := e.out[testTopics.Rejected]
	validateRecords(t, "postbacks.rejected.v1", rej)
	if len(rej) != 7 {
		t.Fatalf("%d rejected, want 7: %s", len(rej), rejValues(rej))
	}
	for _, r := range rej {
		var x event.Rejected
		if err := json.Unmarshal(r.Value, &x); err != nil {
			t.Fatal(err)
		}
		if x.Source != "attribution" || x.Reason == "" {
			t.Errorf("rejected record without source or reason: %s", r.Value)
		}
	}
}

// TestExpiry: state older than its window plus the late allowance is
// removed as stream time moves on, so memory and disk stay bounded.
func TestExpiry(t *testing.T) {
	cfg := testConfig(t)
	e := newEngine(t, cfg)
	e.feed(click("k1", 0, withIDFA(idfa1), withIPUA("10.0.0.1")), impression("m1", 0, idfa1))
	e.feed(install("i", hour, iIDFA(idfa1)))
	before := e.keys()
	// 7 d lookback + 24 h allowance, then the rest of the device stage's
	// 8-day click generation: 16 days and a minute later, a click moves
	// the stream time of every stage (expiry is driven by each
	// partition's own records).
	e.feed(click("tick", 16*day+2*min_, withIDFA(idfa2), withIPUA("10.0.0.2")))
	after := e.keys()
	for st, n := range before {
		t.Logf("stage %s: %d keys before, %d after", st, n, after[st])
	}
	// Stage A keeps only "tick" (click + expiry entry) and the seen id
	// (dedup window 72 h: expired too).
	if after[StageClickID] != 2 {
		t.Errorf("stage A keys after expiry %d, want 2 (the new click)", after[StageClickID])
	}
	// Stages B and C keep clicks in generations: one key each.
	if after[StageIPUA] != 1 {
		t.Errorf("stage C keys after expiry %d, want 1 (the new click)", after[StageIPUA])
	}
	// Stage B keeps the new click and the counted install (90 d
	// re-attribution window): one key each.
	if after[StageDevice] != 2 {
		t.Errorf("stage B keys after expiry %d, want 2", after[StageDevice])
	}
	e.feed(install("late", 16*day+3*min_, iIDFA(idfa1)))
	checkInstall(t, e.installs(), "late", wantInstall{match: event.MatchOrganic, re: true})
}

func (e *engine) keys() map[string]int {
	m := map[string]int{}
	for name, ps := range e.procs {
		n := 0
		if err := ps.s.Scan(nil, func(_, _ []byte) error { n++; return nil }); err != nil {
			e.t.Fatal(err)
		}
		m[name] = n
	}
	return m
}

func rejValues(rs []*kgo.Record) string {
	var b strings.Builder
	for _, r := range rs {
		b.Write(r.Value)
		b.WriteByte('\n')
	}
	return b.String()
}

// put writes an entry the way earlier versions did (the layout is only
// read and expired now).
func (ix sindex) put(b *statestore.Batch, group []byte, t time.Time, id string, v []byte) {
	b.Set(ix.key(group, t, id), v)
	x := statestore.AppendTime([]byte{ix.x}, t)
	x = binary.AppendUvarint(x, uint64(len(group)))
	x = append(x, group...)
	b.Set(append(x, id...), nil)
}

// TestLegacyLayouts: clicks an earlier version stored with an expiry index
// (sindex) are still found by the device and IP + UA stages after an
// upgrade, and still expire.
func TestLegacyLayouts(t *testing.T) {
	e := newEngine(t, testConfig(t))
	touch := event.Touch{Time: base, AppID: "app", MediaSource: "net", Placement: event.Placement{CampaignID: "cmp-1"}, Currency: "USD"}
	for st, group := range map[string][]byte{
		StageDevice: joinKey("app", idfa1),
		StageIPUA:   ipuaGroup("app", "10.0.0.1", ua),
	} {
		b := e.procs[st].s.NewBatch()
		sindex{'k', 'K'}.put(b, group, base, "old-"+st, appendTouch(nil, &touch, false))
		if err := b.Commit(); err != nil {
			t.Fatal(err)
		}
	}
	e.feed(install("by-device", min_, iIDFA(idfa1)), install("by-ipua", min_, iIPUA("10.0.0.1")))
	got := e.installs()
	checkInstall(t, got, "by-device", wantInstall{match: event.MatchDeviceID, touch: "old-" + StageDevice})
	checkInstall(t, got, "by-ipua", wantInstall{match: event.MatchProbabilistic, touch: "old-" + StageIPUA})

	e.feed(click("tick", 16*day+2*min_, withIDFA(idfa2), withIPUA("10.0.0.2")))
	for _, st := range []string{StageDevice, StageIPUA} {
		if err := e.procs[st].s.Scan([]byte{'k'}, func(k, _ []byte) error {
			t.Errorf("stage %s still holds the legacy entry %q", st, k)
			return nil
		}); err != nil {
			t.Fatal(err)
		}
	}
}

// TestClickIDLayouts: UUIDv7 click ids (ingest's) are stored in the compact
// index and expire by their embedded time; other ids, v7 ids minted far
// from their click's time, and v7 ids an earlier version stored as text are
// all still found by id.
func TestClickIDLayouts(t *testing.T) {
	v7 := func(at time.Duration) string { return uuid7(base.Add(at), 1) }
	fresh, skewed, legacy := v7(0), v7(-2*hour), v7(time.Second)
	e := newEngine(t, testConfig(t))
	b := e.procs[StageClickID].s.NewBatch()
	touch := event.Touch{Time: base, AppID: "app", MediaSource: "net", Placement: event.Placement{CampaignID: "cmp-1"}, Currency: "USD"}
	aClicks.put(b, []byte(legacy), base, appendTouch(nil, &touch, true))
	if err := b.Commit(); err != nil {
		t.Fatal(err)
	}
	e.feed(click(fresh, 0), click(skewed, 0), click("plain-id", 0))
	var v7Keys, textKeys int
	count := func() {
		v7Keys, textKeys = 0, 0
		_ = e.procs[StageClickID].s.Scan([]byte{'v'}, func(_, _ []byte) error { v7Keys++; return nil })
		_ = e.procs[StageClickID].s.Scan([]byte{'c'}, func(_, _ []byte) error { textKeys++; return nil })
	}
	count()
	if v7Keys != 1 || textKeys != 3 {
		t.Fatalf("%d compact and %d text-keyed clicks, want 1 (%s) and 3", v7Keys, textKeys, fresh)
	}
	e.feed(install("i1", min_, iClick(fresh)), install("i2", min_, iClick(skewed)),
		install("i3", min_, iClick("plain-id")), install("i4", min_, iClick(legacy)))
	got := e.installs()
	for id, touch := range map[string]string{"i1": fresh, "i2": skewed, "i3": "plain-id", "i4": legacy} {
		checkInstall(t, got, id, wantInstall{match: event.MatchClickID, touch: touch})
	}
	e.feed(click("tick", 9*day))
	count()
	if v7Keys != 0 || textKeys != 1 {
		t.Errorf("after expiry %d compact and %d text-keyed clicks, want 0 and 1 (tick)", v7Keys, textKeys)
	}
}

// TestRepeatedKeyedTouchesCountOnce: a click or impression whose keyed id
// (sent with an idempotency key) comes again, as when a client retries
// after a 503 that was written after all, is one touch: the first copy
// stays the touch (its time), and the repeat counts neither for click
// flooding nor as another impression.
func TestRepeatedKeyedTouchesCountOnce(t *testing.T) {
	e := newEngine(t, floodConfig(t, 2))
	k := event.KeyedClickID("cmp-1", "req-1")
	m := event.KeyedImpressionID("cmp-1", "req-2")
	e.feed(click(k, 0, withIDFA(idfa1)), click(k, min_, withIDFA(idfa1)), click("k2", 2*min_, withIDFA(idfa1)))
	e.feed(impression(m, 0, idfa2), impression(m, 3*min_, idfa2))
	e.feed(install("i", hour, iClick(k), iIDFA(idfa1)), install("v", hour, iIDFA(idfa2)))
	got := e.installs()
	// Two clicks on the device, not three: no click_flooding (> 2).
	checkInstall(t, got, "i", wantInstall{match: event.MatchClickID, touch: k})
	checkInstall(t, got, "v", wantInstall{match: event.MatchViewThrough, touch: m})
	for id, want := range map[string]time.Time{"i": base, "v": base} {
		if tt := got[id].TouchTime; tt == nil || !tt.Equal(want) {
			t.Errorf("install %s: touch time %v, want the first copy's %v", id, tt, want)
		}
	}
	for kind, want := range map[string]float64{"click": 1, "impression": 1} {
		if n := counter(t, e.j.m.duplicates.WithLabelValues(kind)); n != want {
			t.Errorf("%s duplicates %v, want %v", kind, n, want)
		}
	}
}
