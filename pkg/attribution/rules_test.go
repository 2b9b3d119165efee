package attribution

import (
	"strings"
	"testing"
	"time"

	"github.com/adtrack/postback/pkg/event"
)

func TestDefaultRules(t *testing.T) {
	r := DefaultRules()
	if err := r.Validate(); err != nil {
		t.Fatal(err)
	}
	want := Rules{ClickLookback: 7 * day, ProbabilisticWindow: day, ViewLookback: day, InjectionCTIT: 10 * sec,
		ReattributionWindow: 90 * day, Grace: 10 * time.Minute, FloodClicks: 50}
	if r != want {
		t.Fatalf("DefaultRules() = %+v, want DESIGN.md's %+v", r, want)
	}
}

func TestValidate(t *testing.T) {
	tests := []struct {
		key string
		mod func(*Rules)
	}{
		{"click_lookback", func(r *Rules) { r.ClickLookback = 7 }}, // "7" read as nanoseconds
		{"probabilistic_window", func(r *Rules) { r.ProbabilisticWindow = 0 }},
		{"view_lookback", func(r *Rules) { r.ViewLookback = -time.Hour }},
		{"reattribution_window", func(r *Rules) { r.ReattributionWindow = time.Millisecond }},
		{"injection_ctit", func(r *Rules) { r.InjectionCTIT = -1 }},
		{"injection_ctit", func(r *Rules) { r.InjectionCTIT = r.ClickLookback }},
		{"grace", func(r *Rules) { r.Grace = -time.Minute }},
		{"flood_clicks", func(r *Rules) { r.FloodClicks = -1 }},
	}
	for _, tt := range tests {
		r := DefaultRules()
		tt.mod(&r)
		err := r.Validate()
		if err == nil || !strings.Contains(err.Error(), tt.key) {
			t.Errorf("%s: Validate() = %v, want an error naming it", tt.key, err)
		}
	}
	r := DefaultRules()
	r.InjectionCTIT, r.Grace, r.FloodClicks = 0, 0, 0 // zero disables these three
	if err := r.Validate(); err != nil {
		t.Errorf("disabled flags: %v", err)
	}
}

func TestRuleSet(t *testing.T) {
	short := DefaultRules()
	short.ClickLookback = day
	long := DefaultRules()
	long.ViewLookback = 3 * day
	long.ReattributionWindow = 180 * day
	s := RuleSet{Default: DefaultRules(), Apps: map[string]Rules{"short": short, "long": long}}
	if err := s.Validate(); err != nil {
		t.Fatal(err)
	}
	if s.For("short") != short || s.For("long") != long || s.For("any") != DefaultRules() {
		t.Fatal("For does not pick the app's rules")
	}
	if got, want := s.Retention(), (Retention{Clicks: 7 * day, Probabilistic: day, Impressions: 3 * day, Installs: 180 * day}); got != want {
		t.Fatalf("Retention() = %+v, want %+v", got, want)
	}
	// Probabilistic longer than the click lookback keeps clicks that long.
	wide := DefaultRules()
	wide.ClickLookback, wide.ProbabilisticWindow = day, 2*day
	if got := wide.Retention().Clicks; got != 2*day {
		t.Fatalf("clicks retention = %v, want 48h", got)
	}
	bad := DefaultRules()
	bad.Grace = -1
	s.Apps["broken"] = bad
	if err := s.Validate(); err == nil || !strings.Contains(err.Error(), `app "broken"`) || !strings.Contains(err.Error(), "grace") {
		t.Fatalf("Validate() = %v, want it to name the app and key", err)
	}
}

func TestSettle(t *testing.T) {
	r := DefaultRules()
	received := installAt.Add(time.Minute)
	deadline := received.Add(10 * time.Minute)
	if got := r.GraceDeadline(install(withClickID("k1"))); !got.Equal(deadline) {
		t.Fatalf("GraceDeadline = %v, want %v", got, deadline)
	}
	tests := []struct {
		name  string
		in    *event.Install
		found bool
		now   time.Time
		wait  bool
	}{
		{"click_id not found, just received: waits", install(withClickID("k1")), false, received, true},
		{"click_id not found, 1s before the deadline: waits", install(withClickID("k1")), false, deadline.Add(-sec), true},
		{"click_id not found, at the deadline: decided", install(withClickID("k1")), false, deadline, false},
		{"click_id found: decided", install(withClickID("k1")), true, received, false},
		{"no click_id: decided", install(), false, received, false},
		{"MMP click time beyond the lookback: decided at once",
			install(withClickID("k1"), func(in *event.Install) { in.ClickTime = ago(7*day + sec) }), false, received, false},
		{"MMP click time at the lookback: waits",
			install(withClickID("k1"), func(in *event.Install) { in.ClickTime = ago(7 * day) }), false, received, true},
	}
	for _, tt := range tests {
		if got := r.Settle(tt.in, tt.found, tt.now); got != tt.wait {
			t.Errorf("%s: Settle = %v, want %v", tt.name, got, tt.wait)
		}
	}
	r.Grace = 0
	if r.Settle(install(withClickID("k1")), false, received) {
		t.Error("grace 0 must not wait")
	}
}

// TestGraceSettlement plays the grace buffer both ways, as the service will:
// ask Settle, park, and decide when the click arrives or the grace expires.
func TestGraceSettlement(t *testing.T) {
	r := DefaultRules()
	in := install(withClickID("k1"))
	received := in.ReceivedAt
	deviceClick := click("d1", 3*time.Hour)

	t.Run("click arrives within grace", func(t *testing.T) {
		store := Candidates{ByDevice: []event.Click{deviceClick}}
		if !r.Settle(in, store.ByClickID != nil, received) {
			t.Fatal("an install whose click is not stored yet must wait")
		}
		// Nine minutes later the click (made 2 minutes before the install) arrives.
		store.ByClickID = clickp("k1", 2*time.Minute)
		now := received.Add(9 * time.Minute)
		if r.Settle(in, store.ByClickID != nil, now) {
			t.Fatal("must not wait once the click is found")
		}
		got := r.Decide(in, store, camps, now)
		if got.Attribution.MatchType != event.MatchClickID || got.Attribution.TouchID != "k1" || *got.Attribution.CTITSeconds != 120 {
			t.Fatalf("got %+v, want the click_id match", got.Attribution)
		}
	})
	t.Run("grace expires: the other rules decide", func(t *testing.T) {
		store := Candidates{ByDevice: []event.Click{deviceClick}}
		if !r.Settle(in, false, received.Add(10*time.Minute-sec)) {
			t.Fatal("must still wait 1s before the deadline")
		}
		now := r.GraceDeadline(in)
		if r.Settle(in, false, now) {
			t.Fatal("must stop waiting at the deadline")
		}
		got := r.Decide(in, store, camps, now)
		if got.Attribution.MatchType != event.MatchDeviceID || got.Attribution.TouchID != "d1" {
			t.Fatalf("got %+v, want the device match", got.Attribution)
		}
		if len(got.Attribution.FraudFlags) != 0 {
			t.Fatalf("flags %v: a click that never arrived is not stale", got.Attribution.FraudFlags)
		}
	})
	t.Run("grace expires with nothing else: organic", func(t *testing.T) {
		got := r.Decide(in, Candidates{}, camps, r.GraceDeadline(in))
		if got.Attribution.MatchType != event.MatchOrganic {
			t.Fatalf("got %s, want organic", got.Attribution.MatchType)
		}
	})
}
