package postback

import "testing"

// TestKochava parses the custom postbacks of docs/mmp/kochava.md filled with
// realistic macro values, then each Kochava oddity.
func TestKochava(t *testing.T) {
	runCases(t, MMPKochava, []pbCase{
		{name: "install", kind: KindInstall, want: map[string]string{
			"app_id": "com.example.game", "platform": "android", "gaid": sGAID, "android_id": sAndroidID, "idfa": "",
			"ip": sIP, "ua": sUAAndroid, "install_time": sInstall, "click_id": sClick, "media_source": "AdTrack",
			"campaign_id": "cmp-42", "creative_id": "cr-3", "site_id": "site-93", "sub_site_id": "sub-1", "event_id": "<hash>",
		}},
		{name: "iOS device", kind: KindInstall, set: map[string]string{"adid": "", "android_id": "", "idfa": sIDFA},
			want: map[string]string{"platform": "ios", "idfa": sIDFAOut, "gaid": ""}},
		{name: "platform from the package name", kind: KindInstall, set: map[string]string{"adid": "-", "android_id": "-"},
			want: map[string]string{"platform": "android", "gaid": ""}},
		{name: "unix event time", kind: KindInstall, set: map[string]string{"event_time": "1795853553"}, want: map[string]string{"install_time": sInstall}},
		{name: "event on the install endpoint", kind: KindInstall, set: map[string]string{"event_name": "Purchase"}, err: "event_name"},
		{name: "missing time", kind: KindInstall, set: map[string]string{"event_time": "{event_time}"}, err: "event_time"},
		{name: "event", kind: KindEvent, want: map[string]string{
			"event_name": "purchase", "original_event_name": "Purchase", "event_time": sEventAt,
			"revenue": "4.99", "currency": "USD", "platform": "android", "event_id": "<hash>",
		}},
		{name: "_install on the event endpoint", kind: KindEvent, set: map[string]string{"event_name": "_install", "revenue": "-"},
			want: map[string]string{"event_name": "install", "original_event_name": "_install", "revenue": "0"}},
		{name: "Level Complete", kind: KindEvent, set: map[string]string{"event_name": "Level Complete"}, want: map[string]string{"event_name": "level_achieved"}},
		{name: "revenue without currency", kind: KindEvent, set: map[string]string{"currency": "{currency}"}, err: "revenue"},
	})
}
