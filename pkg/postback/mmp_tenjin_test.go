package postback

import "testing"

// TestTenjin parses the callbacks of docs/mmp/tenjin.md filled with
// realistic macro values, then each Tenjin oddity.
func TestTenjin(t *testing.T) {
	runCases(t, MMPTenjin, []pbCase{
		{name: "install", kind: KindInstall, want: map[string]string{
			"app_id": "com.example.game", "platform": "ios", "idfa": sIDFAOut, "gaid": "", "idfv": sIDFVOut,
			"ip": sIP, "country": "US", "install_time": "2026-11-28T08:12:33.12Z", "click_time": sClickAt,
			"click_id": sClick, "site_id": "site-93", "campaign_name": "Winter Sale", "creative_id": "video-15s", "event_id": "<hash>",
		}},
		{name: "android advertising id", kind: KindInstall, set: map[string]string{"platform": "android", "developer_device_id": "", "advertising_id": "38400000-8CF0-11BD-B23E-10B96E40000D"},
			want: map[string]string{"platform": "android", "gaid": sGAID, "idfa": ""}},
		{name: "amazon is android", kind: KindInstall, set: map[string]string{"platform": "amazon", "developer_device_id": ""},
			want: map[string]string{"platform": "android", "gaid": sIDFAOut}},
		{name: "no platform: IDFV means iOS", kind: KindInstall, set: map[string]string{"platform": "{{platform}}"},
			want: map[string]string{"platform": "ios", "idfa": sIDFAOut}},
		{name: "zeroed advertising id", kind: KindInstall, set: map[string]string{"advertising_id": "00000000000000000000000000000000"},
			want: map[string]string{"idfa": "", "gaid": ""}},
		{name: "unexpanded advertising id", kind: KindInstall, set: map[string]string{"advertising_id": "{{advertising_id}}"},
			want: map[string]string{"idfa": "", "gaid": ""}},
		{name: "seconds in a milliseconds field", kind: KindInstall, set: map[string]string{"acquired_at_ms": "1795853553"}, err: "acquired_at_ms"},
		{name: "invalid advertising id", kind: KindInstall, set: map[string]string{"advertising_id": "6d92078a82464ba4ae5b76104861e7dz"}, err: "advertising_id"},
		{name: "event", kind: KindEvent, want: map[string]string{
			"event_name": "purchase", "event_time": "2026-11-28T09:30:01.456Z", "install_time": "2026-11-28T08:12:33.12Z",
			"revenue": "4.99", "currency": "USD", "event_id": "<hash>",
		}},
		{name: "net revenue when gross is missing", kind: KindEvent, set: map[string]string{"revenue_usd_gross": "{{revenue_usd_gross}}"},
			want: map[string]string{"revenue": "3.49", "currency": "USD"}},
		{name: "no revenue", kind: KindEvent, set: map[string]string{"revenue_usd_gross": "", "revenue_usd_net": ""},
			want: map[string]string{"revenue": "0", "currency": ""}},
		{name: "missing event time", kind: KindEvent, set: map[string]string{"created_at_ms": "{{created_at_ms}}"}, err: "created_at_ms"},
	})
}
