package postback

import (
	"strings"
	"testing"
)

// TestGeneric parses the canonical templates of docs/mmp/generic.md, then
// the normalization rules at their boundaries.
func TestGeneric(t *testing.T) {
	runCases(t, MMPGeneric, []pbCase{
		{name: "install", kind: KindInstall, want: map[string]string{
			"event_id": "generic:gen-000123", "app_id": "com.example.game", "platform": "android", "gaid": sGAID,
			"android_id": sAndroidID, "country": "DE", "install_time": sInstall, "click_time": sClickAt,
			"cost.model": "CPC", "cost.amount": "0.05", "cost.currency": "USD", "mmp_match_type": "click_id",
			"is_retargeting": "", "is_reinstall": "",
		}},
		{name: "rejected", kind: KindRejected, want: map[string]string{
			"event_id": "generic:rejected:gen-000123", "rejected": "true", "reject_reason": "ctit_too_short",
		}},
		{name: "reject reason marks an install rejected", kind: KindInstall, set: map[string]string{"reject_reason": "bots"},
			want: map[string]string{"rejected": "true", "reject_reason": "bots"}},
		{name: "hash without event_id", kind: KindInstall, set: map[string]string{"event_id": ""}, want: map[string]string{"event_id": "<hash>"}},
		{name: "App Store id", kind: KindInstall, set: map[string]string{"app_id": "1234567890", "platform": "-", "gaid": "-", "android_id": "-"},
			want: map[string]string{"app_id": "id1234567890", "platform": "ios"}},
		{name: "web", kind: KindInstall, set: map[string]string{"platform": "WEB", "gaid": "-", "android_id": "-"}, want: map[string]string{"platform": "web"}},
		{name: "lower-case country", kind: KindInstall, set: map[string]string{"country": "fr"}, want: map[string]string{"country": "FR"}},
		{name: "reinstall", kind: KindInstall, set: map[string]string{"is_reinstall": "yes"}, want: map[string]string{"is_reinstall": "true"}},
		{name: "unknown platform", kind: KindInstall, set: map[string]string{"platform": "windows"}, err: "platform"},
		{name: "unknown country", kind: KindInstall, set: map[string]string{"country": "XY"}, err: "country"},
		{name: "too long click id", kind: KindInstall, set: map[string]string{"click_id": strings.Repeat("k", 257)}, err: "click_id"},
		{name: "too long event id", kind: KindInstall, set: map[string]string{"event_id": strings.Repeat("e", 201)}, err: "event_id"},
		{name: "cost currency unknown", kind: KindInstall, set: map[string]string{"cost_currency": "XXX1"}, err: "cost_currency"},
		{name: "event", kind: KindEvent, want: map[string]string{
			"event_id": "generic:gen-000124", "event_name": "level_achieved", "event_time": "2026-11-28T09:30:01.25Z",
			"revenue": "0", "currency": "USD", "event_value": `{"level":7}`,
		}},
		{name: "RFC 3339 with offset", kind: KindEvent, set: map[string]string{"event_time": "2026-11-28T04:30:01-05:00"}, want: map[string]string{"event_time": sEventAt}},
		{name: "fractional seconds", kind: KindEvent, set: map[string]string{"event_time": "1795858201.5"}, want: map[string]string{"event_time": "2026-11-28T09:30:01.5Z"}},
		{name: "login is custom", kind: KindEvent, set: map[string]string{"event_name": "login"}, want: map[string]string{"event_name": "custom", "original_event_name": "login"}},
		{name: "exponent revenue", kind: KindEvent, set: map[string]string{"revenue": "1e3"}, err: "revenue"},
		{name: "before 2000", kind: KindEvent, set: map[string]string{"event_time": "946684799"}, err: "event_time"},
		{name: "missing event time", kind: KindEvent, set: map[string]string{"event_time": "-"}, err: "event_time"},
	})
}
