package postback

import "testing"

// TestAdjust parses the callbacks of docs/mmp/adjust.md filled with
// realistic placeholder values, then each Adjust oddity.
func TestAdjust(t *testing.T) {
	runCases(t, MMPAdjust, []pbCase{
		{name: "install", kind: KindInstall, want: map[string]string{
			"app_id": "com.example.game", "platform": "android", "gaid": sGAID, "android_id": sAndroidID, "idfa": "",
			"ip": sIP, "ua": sUAAndroid, "country": "DE", "install_time": sInstall, "click_time": sClickAt,
			"click_id": sClick, "campaign_id": "cmp-42", "site_id": "site-93", "sub_site_id": "sub-1",
			"media_source": "AdTrack", "campaign_name": "Winter Sale", "adset_id": "lookalike-1", "creative_id": "video-15s",
			"mmp_match_type": "adid", "cost.model": "CPI", "cost.amount": "1.5", "cost.currency": "USD",
			"is_retargeting": "", "is_reinstall": "", "rejected": "", "event_id": "<hash>",
		}},
		{name: "iOS install", kind: KindInstall, set: map[string]string{
			"os_name": "ios", "app_id": "1234567890", "idfa": sIDFA, "idfv": sIDFV, "gps_adid": "", "android_id": "",
		}, want: map[string]string{"platform": "ios", "app_id": "id1234567890", "idfa": sIDFAOut, "idfv": sIDFVOut, "gaid": ""}},
		{name: "unknown country zz", kind: KindInstall, set: map[string]string{"country": "zz"}, want: map[string]string{"country": ""}},
		{name: "unexpanded placeholders", kind: KindInstall, set: map[string]string{"gps_adid": "{gps_adid}", "android_id": "{android_id}"},
			want: map[string]string{"gaid": "", "android_id": "", "platform": "android"}},
		{name: "reattribution", kind: KindInstall, set: map[string]string{"activity_kind": "reattribution"},
			want: map[string]string{"is_retargeting": "true"}},
		{name: "is_reattributed", kind: KindInstall, set: map[string]string{"is_reattributed": "1"}, want: map[string]string{"is_retargeting": "true"}},
		{name: "redownload", kind: KindInstall, set: map[string]string{"is_redownload": "1"}, want: map[string]string{"is_reinstall": "true"}},
		{name: "reinstall activity", kind: KindInstall, set: map[string]string{"activity_kind": "reattribution_reinstall"},
			want: map[string]string{"is_reinstall": "true", "is_retargeting": "true"}},
		{name: "install time from created_at", kind: KindInstall, set: map[string]string{"installed_at": "-", "created_at": "1795853560"},
			want: map[string]string{"install_time": "2026-11-28T08:12:40Z"}},
		{name: "rejected install on /install", kind: KindInstall, set: map[string]string{"activity_kind": "rejected_install", "rejection_reason": "too_many_engagements"},
			want: map[string]string{"rejected": "true", "reject_reason": "too_many_engagements"}},
		{name: "no install time", kind: KindInstall, set: map[string]string{"installed_at": "-", "created_at": "-"}, err: "installed_at"},
		{name: "rejected", kind: KindRejected, want: map[string]string{
			"rejected": "true", "reject_reason": "engagement_injection", "install_time": sInstall, "click_id": sClick,
		}},
		{name: "rejected without reason", kind: KindRejected, set: map[string]string{"rejection_reason": "{rejection_reason}"}, err: "rejection_reason"},
		{name: "event", kind: KindEvent, want: map[string]string{
			"event_name": "purchase", "original_event_name": "Purchase", "event_time": sEventAt, "install_time": sInstall,
			"revenue": "4.99", "currency": "EUR", "platform": "android", "country": "DE", "event_id": "<hash>",
		}},
		{name: "revenue in cents only", kind: KindEvent, set: map[string]string{"revenue_float": "-", "revenue": "1999"},
			want: map[string]string{"revenue": "19.99"}},
		{name: "cents win over revenue_float", kind: KindEvent, set: map[string]string{"revenue": "100", "revenue_float": "0.99"},
			want: map[string]string{"revenue": "1"}},
		{name: "revenue_float only", kind: KindEvent, set: map[string]string{"revenue": "{revenue}", "revenue_float": "1.99"},
			want: map[string]string{"revenue": "1.99"}},
		{name: "refund in cents", kind: KindEvent, set: map[string]string{"revenue": "-499"}, want: map[string]string{"revenue": "-4.99"}},
		{name: "event token when the name is missing", kind: KindEvent, set: map[string]string{"event_name": "-"},
			want: map[string]string{"original_event_name": "bkrfgq", "event_name": "custom"}},
		{name: "cents that are not whole", kind: KindEvent, set: map[string]string{"revenue": "4.99"}, err: "revenue"},
		{name: "revenue without currency", kind: KindEvent, set: map[string]string{"currency": "-"}, err: "revenue"},
		{name: "missing event time", kind: KindEvent, set: map[string]string{"created_at": "{created_at}"}, err: "created_at"},
	})
}
