package join

import (
	"testing"

	dto "github.com/prometheus/client_model/go"

	"github.com/adtrack/postback/pkg/event"
	"github.com/adtrack/postback/pkg/stage"
	"github.com/adtrack/postback/pkg/statestore"
)

// inspect runs the stages' state inspection, as pkg/stage does every
// stats interval, over the engine's stores.
func (e *engine) inspect() {
	e.t.Helper()
	for name, ps := range e.procs {
		if in, ok := ps.p.(stage.Inspector); ok {
			if err := in.InspectState(map[int32]*statestore.Store{0: ps.s}); err != nil {
				e.t.Fatalf("stage %s: %v", name, err)
			}
		}
	}
}

func gauge(t testing.TB, g interface{ Write(*dto.Metric) error }) float64 {
	t.Helper()
	var m dto.Metric
	if err := g.Write(&m); err != nil {
		t.Fatal(err)
	}
	return m.GetGauge().GetValue()
}

// TestGraceWaitingGauge: an install whose click has not come and an event
// whose install has not come are counted in their stage's grace buffer
// until their partner arrives.
func TestGraceWaitingGauge(t *testing.T) {
	e := newEngine(t, testConfig(t))
	installs := e.j.m.waiting.WithLabelValues(StageClickID, "install")
	events := e.j.m.waiting.WithLabelValues(StageEvents, "event")

	e.feed(install("i", 5*min_, iClick("k1")))
	e.feed(inAppEvent("e-early", 6*min_, func(ev *event.InAppEvent) { ev.IDFA = idfa2 }))
	e.inspect()
	if got := gauge(t, installs); got != 1 {
		t.Errorf("installs waiting = %v, want 1", got)
	}
	if got := gauge(t, events); got != 1 {
		t.Errorf("events waiting = %v, want 1", got)
	}

	c := click("k1", 0)
	c.Timestamp = base.Add(7 * min_)
	e.feed(c, install("i2", 6*min_, iIDFA(idfa2), iReceived(7*min_)))
	e.inspect()
	if got := gauge(t, installs); got != 0 {
		t.Errorf("installs waiting after the click came = %v, want 0", got)
	}
	if got := gauge(t, events); got != 0 {
		t.Errorf("events waiting after their install came = %v, want 0", got)
	}
	if n := len(e.installs()); n != 2 {
		t.Errorf("%d installs published, want 2", n)
	}
	if n := len(e.events()); n != 1 {
		t.Errorf("%d events published, want 1", n)
	}
}

// TestMatchAndFraudCounters: installs are counted by match type, fraud
// flags by flag, and an install with two flags once among the flagged.
func TestMatchAndFraudCounters(t *testing.T) {
	e := newEngine(t, testConfig(t))
	e.feed(click("k1", 0), install("injected", 9*sec, iClick("k1")))
	e.feed(click("k2", 0), install("clean", 5*min_, iClick("k2")))
	e.feed(install("organic", 6*min_))
	if got := counter(t, e.j.m.installs.WithLabelValues(string(event.MatchClickID))); got != 2 {
		t.Errorf("installs_total{match_type=click_id} = %v, want 2", got)
	}
	if got := counter(t, e.j.m.installs.WithLabelValues(string(event.MatchOrganic))); got != 1 {
		t.Errorf("installs_total{match_type=organic} = %v, want 1", got)
	}
	if got := counter(t, e.j.m.flags.WithLabelValues(event.FraudClickInjection)); got != 1 {
		t.Errorf("fraud_flags_total{flag=click_injection} = %v, want 1", got)
	}
	if got := counter(t, e.j.m.flagged); got != 1 {
		t.Errorf("flagged_installs_total = %v, want 1", got)
	}
}
