package attribution

import (
	"testing"
	"time"

	"github.com/adtrack/postback/pkg/event"
)

// BenchmarkDecide is a typical install: a click_id that is found, four more
// clicks of the device (one after the install, one beyond the lookback), a
// probabilistic click and an impression that lose, a counter and a previous
// install outside the re-attribution window.
func BenchmarkDecide(b *testing.B) {
	r := DefaultRules()
	in := install(withClickID("k1"), withMMP("acme_int", "cpi"))
	c := Candidates{
		ByClickID: clickp("k1", 40*time.Minute),
		ByDevice: []event.Click{
			click("k1", 40*time.Minute), click("d2", 3*time.Hour), click("d3", 2*day),
			click("d4", -time.Minute), click("d5", 9*day),
		},
		ByIPUA:           []event.Click{click("p1", 10*time.Minute)},
		Impressions:      []event.Impression{impression("v1", 50*time.Minute)},
		DeviceClickCount: 5,
		PriorInstall:     ago(200 * day),
	}
	b.ReportAllocs()
	for b.Loop() {
		out := r.Decide(in, c, camps, decidedAt)
		if out.Attribution.TouchID != "k1" {
			b.Fatal(out.Attribution.TouchID)
		}
	}
}

// BenchmarkDecideDevice is the same install without a click_id: the device
// rule scans the five clicks.
func BenchmarkDecideDevice(b *testing.B) {
	r := DefaultRules()
	in := install()
	c := Candidates{ByDevice: []event.Click{
		click("d1", 40*time.Minute), click("d2", 3*time.Hour), click("d3", 2*day),
		click("d4", -time.Minute), click("d5", 9*day),
	}}
	b.ReportAllocs()
	for b.Loop() {
		if out := r.Decide(in, c, camps, decidedAt); out.Attribution.TouchID != "d1" {
			b.Fatal(out.Attribution.TouchID)
		}
	}
}

// BenchmarkAttributeEvent is a purchase in EUR joined to an attributed install.
func BenchmarkAttributeEvent(b *testing.B) {
	inst := DefaultRules().Decide(install(), Candidates{ByDevice: []event.Click{click("d1", time.Hour)}}, camps, decidedAt)
	ev := purchase()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := AttributeEvent(ev, &inst, eventRates, decidedAt); err != nil {
			b.Fatal(err)
		}
	}
}
