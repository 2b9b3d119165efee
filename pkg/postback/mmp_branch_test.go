package postback

import "testing"

// TestBranch parses the webhook templates of docs/mmp/branch.md filled with
// realistic FreeMarker values, then each Branch oddity.
func TestBranch(t *testing.T) {
	runCases(t, MMPBranch, []pbCase{
		{name: "install", kind: KindInstall, want: map[string]string{
			"event_id": "branch:1367459301282981044", "app_id": "id1234567890", "platform": "ios",
			"idfa": sIDFAOut, "idfv": sIDFVOut, "ip": sIP, "ua": sUAiOS, "country": "US",
			"install_time": "2026-11-28T08:12:33.12Z", "click_time": sClickAt, "click_id": sClick,
			"media_source": "AdTrack", "campaign_name": "Winter Sale", "campaign_id": "cmp-42", "adset_id": "as-7",
			"creative_id": "cr-3", "site_id": "site-93", "sub_site_id": "sub-1", "mmp_match_type": "CLICK",
			"cost.model": "CPI", "cost.amount": "1.5", "cost.currency": "USD", "is_reinstall": "",
		}},
		{name: "milliseconds are not guessed", kind: KindInstall, set: map[string]string{"event_timestamp": "1795853553"}, err: "event_timestamp"},
		{name: "zeroed IDFA (limit ad tracking)", kind: KindInstall, set: map[string]string{"user_data.idfa": zeroUUID},
			want: map[string]string{"idfa": "", "platform": "ios"}},
		{name: "unexpanded macro", kind: KindInstall, set: map[string]string{"user_data.idfa": "${(user_data.idfa)!}", "last_attributed_touch_data.~click_id": "${(last_attributed_touch_data.~click_id)!}"},
			want: map[string]string{"idfa": "", "click_id": ""}},
		{name: "android", kind: KindInstall, set: map[string]string{"user_data.os": "ANDROID", "user_data.idfa": "", "user_data.idfv": "", "user_data.aaid": sGAID},
			want: map[string]string{"platform": "android", "gaid": sGAID}},
		{name: "reinstall", kind: KindInstall, set: map[string]string{"name": "REINSTALL"}, want: map[string]string{"is_reinstall": "true"}},
		{name: "export spelling", kind: KindInstall, set: map[string]string{
			"last_attributed_touch_data.~campaign": "-", "last_attributed_touch_data_tilde_campaign": "Export Campaign", "user_data_geo_country_code": "FR", "user_data.geo_country_code": "-",
		}, want: map[string]string{"campaign_name": "Export Campaign", "country": "FR"}},
		{name: "partner from $3p", kind: KindInstall, set: map[string]string{"last_attributed_touch_data.~advertising_partner_name": "-", "last_attributed_touch_data.$3p": "a_adtrack"},
			want: map[string]string{"media_source": "a_adtrack"}},
		{name: "event on the install endpoint", kind: KindInstall, set: map[string]string{"name": "PURCHASE"}, err: "name"},
		{name: "missing app id", kind: KindInstall, set: map[string]string{"app_id": "-"}, err: "app_id"},
		{name: "event", kind: KindEvent, want: map[string]string{
			"event_id": "branch:1367459301282981045", "event_name": "purchase", "original_event_name": "PURCHASE",
			"event_time": "2026-11-28T09:30:01.456Z", "install_time": "2026-11-28T08:12:33.12Z",
			"revenue": "4.99", "currency": "EUR", "click_id": sClick,
		}},
		{name: "USD revenue when currency is missing", kind: KindEvent, set: map[string]string{"event_data.currency": "-"},
			want: map[string]string{"revenue": "5.42", "currency": "USD"}},
		{name: "hashed id without Branch's id", kind: KindEvent, set: map[string]string{"id": "${(id)!}"}, want: map[string]string{"event_id": "<hash>"}},
		{name: "achieve level", kind: KindEvent, set: map[string]string{"name": "ACHIEVE_LEVEL"}, want: map[string]string{"event_name": "level_achieved"}},
		{name: "custom event", kind: KindEvent, set: map[string]string{"name": "level_up_7"}, want: map[string]string{"event_name": "custom"}},
		{name: "install activity in seconds is refused", kind: KindEvent, set: map[string]string{"install_activity.timestamp": "1795853553"}, err: "install_activity.timestamp"},
	})
}
