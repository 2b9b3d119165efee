package postback

import (
	"errors"
	"net/url"
	"testing"
	"time"
)

// TestAppsFlyer parses the templates of docs/mmp/appsflyer.md filled with
// realistic macro values, then each AppsFlyer oddity.
func TestAppsFlyer(t *testing.T) {
	runCases(t, MMPAppsFlyer, []pbCase{
		{name: "install", kind: KindInstall, want: map[string]string{
			"app_id": "id1234567890", "platform": "ios", "click_id": sClick,
			"idfa": sIDFAOut, "idfv": sIDFVOut, "gaid": "", "android_id": "", "ip": sIP, "ua": sUAiOS,
			"country": "US", "install_time": sInstall, "click_time": sClickAt, // (click-ts) in ms
			"media_source": "adtrack_int", "campaign_name": "Winter Sale", "campaign_id": "cmp-42",
			"adset_id": "as-7", "creative_id": "cr-3", "site_id": "site-93", "sub_site_id": "sub-1",
			"mmp_match_type": "id_matching", "cost.model": "CPI", "cost.amount": "1.5", "cost.currency": "USD",
			"rejected": "", "is_retargeting": "", "event_id": "<hash>",
		}},
		{name: "android install", kind: KindInstall, set: map[string]string{
			"app_id": "com.example.game", "idfa": "", "vendorid": "", "advertiserid": "38400000-8CF0-11BD-B23E-10B96E40000D", "android_id": sAndroidID,
		}, want: map[string]string{"platform": "android", "gaid": sGAID, "android_id": sAndroidID, "idfa": ""}},
		{name: "zeroed IDFA is absent", kind: KindInstall, set: map[string]string{"idfa": zeroUUID},
			want: map[string]string{"idfa": "", "platform": "ios"}},
		{name: "unexpanded macros are absent", kind: KindInstall, set: map[string]string{
			"clickid": "(clickid)", "idfa": "(idfa)", "af_cost_value": "(af_cost_value)", "country_code": "(country_code)",
		}, want: map[string]string{"click_id": "", "idfa": "", "cost.amount": "", "country": "", "idfv": sIDFVOut}},
		{name: "install time in milliseconds", kind: KindInstall, set: map[string]string{"install_unix_ts": "1795853553000"},
			want: map[string]string{"install_time": sInstall}},
		{name: "UK is GB", kind: KindInstall, set: map[string]string{"country_code": "uk"}, want: map[string]string{"country": "GB"}},
		{name: "retargeting flag added by AppsFlyer", kind: KindInstall, set: map[string]string{"is_retargeting": "true"},
			want: map[string]string{"is_retargeting": "true"}},
		{name: "blocked install sent to /install", kind: KindInstall, set: map[string]string{"reject_reason": "click_flood", "is_rejected": "1"},
			want: map[string]string{"rejected": "true", "reject_reason": "click_flood"}},
		{name: "rejected", kind: KindRejected, want: map[string]string{
			"rejected": "true", "reject_reason": "click_flood:site-93x", "install_time": sInstall, "event_id": "<hash>",
		}},
		{name: "rejected via Push API names", kind: KindRejected, set: map[string]string{
			"reject_reason": "-", "reject_reason_value": "-", "blocked_reason": "bots",
		}, want: map[string]string{"rejected": "true", "reject_reason": "bots"}},
		{name: "rejected without reason", kind: KindRejected, set: map[string]string{"reject_reason": "-", "reject_reason_value": "-", "is_rejected": "-"},
			err: "reject_reason"},
		{name: "invalid IDFA", kind: KindInstall, set: map[string]string{"idfa": "not-a-uuid"}, err: "idfa"},
		{name: "missing install time", kind: KindInstall, set: map[string]string{"install_unix_ts": "-"}, err: "install_unix_ts"},
		{name: "install time a day ahead", kind: KindInstall, set: map[string]string{"install_unix_ts": "1795950000"}, err: "install_unix_ts"},
		{name: "missing app id", kind: KindInstall, set: map[string]string{"app_id": "(app-id)"}, err: "app_id"},
		{name: "cost without currency", kind: KindInstall, set: map[string]string{"af_cost_currency": "-"}, err: "af_cost_value"},
		{name: "event", kind: KindEvent, want: map[string]string{
			"event_name": "purchase", "original_event_name": "af_purchase", "event_time": "2026-11-28T09:30:01.456Z",
			"install_time": sInstall, "revenue": "4.99", "currency": "EUR", "platform": "ios", "idfa": sIDFAOut,
			"event_value": `{"af_revenue":"4.99","af_content_id":"gems_100"}`, "click_id": sClick, "event_id": "<hash>",
		}},
		{name: "currency case", kind: KindEvent, set: map[string]string{"currency": "eur"}, want: map[string]string{"currency": "EUR"}},
		{name: "USD revenue when the original currency is missing", kind: KindEvent, set: map[string]string{"currency": "(currency)"},
			want: map[string]string{"revenue": "5.42", "currency": "USD"}},
		{name: "no revenue", kind: KindEvent, set: map[string]string{"orig_monetary": "", "monetary": "", "currency": ""},
			want: map[string]string{"revenue": "0", "currency": ""}},
		{name: "refund", kind: KindEvent, set: map[string]string{"orig_monetary": "-4.99"}, want: map[string]string{"revenue": "-4.99"}},
		{name: "float noise", kind: KindEvent, set: map[string]string{"orig_monetary": "4.990000000000001"}, want: map[string]string{"revenue": "4.99"}},
		{name: "app open", kind: KindEvent, set: map[string]string{"event_name": "af_app_opened"},
			want: map[string]string{"event_name": "app_open", "original_event_name": "af_app_opened"}},
		{name: "Push API event time", kind: KindEvent, set: map[string]string{"timestamp": "-", "event_time": "2026-11-28 09:30:01.456"},
			want: map[string]string{"event_time": "2026-11-28T09:30:01.456Z"}},
		{name: "unknown currency", kind: KindEvent, set: map[string]string{"currency": "EUX"}, err: "currency"},
		{name: "revenue not a decimal", kind: KindEvent, set: map[string]string{"orig_monetary": "4,99"}, err: "orig_monetary"},
		{name: "missing event name", kind: KindEvent, set: map[string]string{"event_name": "(event-name)"}, err: "event_name"},
		{name: "missing event time", kind: KindEvent, set: map[string]string{"timestamp": ""}, err: "timestamp"},
		{name: "blocked in-app event is refused", kind: KindEvent, set: map[string]string{"is_rejected": "1", "reject_reason": "bots"}, err: "is_rejected"},
	})
}

func TestAppsFlyerInvalidCurrencyBesideUSDRevenue(t *testing.T) {
	req := &Request{MMP: MMPAppsFlyer, Kind: KindEvent, ReceivedAt: time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC),
		Params: url.Values{"app_id": {"id1234567890"}, "event_name": {"af_purchase"}, "timestamp": {"1795853553"},
			"monetary": {"4.99"}, "currency": {"XXQ"}}}
	_, err := Parse(req)
	var fe *FieldError
	if !errors.As(err, &fe) || fe.Field != "currency" {
		t.Fatalf("err = %v, want a FieldError naming currency", err)
	}
}
