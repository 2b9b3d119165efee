package forward

import (
	"testing"

	"github.com/adtrack/postback/pkg/event"
)

// BenchmarkRender renders the callback of an install to a GET endpoint
// naming three macros, as most endpoints do.
func BenchmarkRender(b *testing.B) {
	ep := &Endpoint{ID: "p", URL: "https://pub.example/cb?click={click_id}&sub={sub_site_id}&payout={payout}", Method: MethodGet,
		KeyID: "k1", Payout: Payout{Model: PayoutCPI, Amount: 1_500_000, Currency: "USD"}}
	c := FromInstall(inst(event.MatchClickID))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Render(ep, c); err != nil {
			b.Fatal(err)
		}
	}
}
