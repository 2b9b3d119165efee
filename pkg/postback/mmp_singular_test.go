package postback

import "testing"

// TestSingular parses the postbacks of docs/mmp/singular.md filled with
// realistic macro values, then each Singular oddity.
func TestSingular(t *testing.T) {
	runCases(t, MMPSingular, []pbCase{
		{name: "install", kind: KindInstall, want: map[string]string{
			"app_id": "id1234567890", "platform": "ios", "idfa": sIDFAOut, "idfv": sIDFVOut, "gaid": "",
			"ip": sIP, "country": "US", "install_time": sInstall, "click_id": sClick, "media_source": "AdTrack",
			"campaign_name": "Winter Sale", "creative_id": "cr-3", "site_id": "site-93",
			"is_retargeting": "", "mmp_match_type": "", "event_id": "<hash>",
		}},
		{name: "re-engagement", kind: KindInstall, set: map[string]string{"is_re_eng": "1"}, want: map[string]string{"is_retargeting": "true"}},
		{name: "view-through", kind: KindInstall, set: map[string]string{"is_viewthrough": "1"}, want: map[string]string{"mmp_match_type": "view_through"}},
		{name: "android has no PUBLIC_ID", kind: KindInstall, set: map[string]string{
			"store_id": "{PUBLIC_ID}", "os": "Android", "idfa": "", "idfv": "", "aifa": sGAID, "andi": sAndroidID,
		}, want: map[string]string{"app_id": "com.example.game", "platform": "android", "gaid": sGAID, "android_id": sAndroidID}},
		{name: "unexpanded click macro", kind: KindInstall, set: map[string]string{"click_id": "{cl?AdTrack}"}, want: map[string]string{"click_id": ""}},
		{name: "UTCM in milliseconds", kind: KindInstall, set: map[string]string{"utcm": "1795853553120"}, want: map[string]string{"install_time": "2026-11-28T08:12:33.12Z"}},
		{name: "bad flag", kind: KindInstall, set: map[string]string{"is_re_eng": "maybe"}, err: "is_re_eng"},
		{name: "missing time", kind: KindInstall, set: map[string]string{"utcm": "{UTCM}"}, err: "utcm"},
		{name: "event", kind: KindEvent, want: map[string]string{
			"event_name": "purchase", "original_event_name": "__iap__", "event_time": sEventAt,
			"revenue": "4.99", "currency": "USD", "ip": "203.0.113.99", "event_id": "<hash>",
		}},
		{name: "re-engagement event", kind: KindEvent, set: map[string]string{"is_re_eng": "1"}, want: map[string]string{"is_retargeting": "true"}},
		{name: "amount without currency", kind: KindEvent, set: map[string]string{"currency": "{CURRENCY}"}, err: "amount"},
		{name: "missing event name", kind: KindEvent, set: map[string]string{"event": "{EVTNAME}"}, err: "event"},
	})
}
