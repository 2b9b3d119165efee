package forwarder

import (
	"fmt"
	"testing"
	"time"

	"github.com/segmentio/encoding/json"

	"github.com/adtrack/postback/pkg/event"
)

// afQuery is an AppsFlyer install postback's query as ingest keeps it in
// the raw request, about a kilobyte: a real record is mostly this.
const afQuery = "app_id=com.example.game&platform=android&event_name=install&appsflyer_id=1764836190123-4567890123456789012" +
	"&advertising_id=38400000-8cf0-11bd-b23e-10b96e40000d&android_id=&idfa=&idfv=&customer_user_id=u-48151623" +
	"&install_time=2026-11-28%2010%3A00%3A00.000&install_time_selected_timezone=2026-11-28%2011%3A00%3A00.000%2B0100" +
	"&attributed_touch_type=click&attributed_touch_time=2026-11-28%2009%3A59%3A18.000&media_source=pub_int" +
	"&af_channel=&campaign=summer_sale&af_c_id=c1&af_adset=adset_4&af_adset_id=as4&af_ad=creative_9&af_ad_id=cr9" +
	"&af_siteid=site7&af_sub_siteid=sub9&af_sub1=pub-42&af_sub2=&af_sub3=&af_sub4=&af_sub5=&af_click_lookback=7d" +
	"&country_code=DE&city=Berlin&region=EU&state=BE&postal_code=10115&ip=203.0.113.7&wifi=true&operator=Telekom" +
	"&carrier=Telekom.de&language=de-DE&device_type=SM-G998B&os_version=14&app_version=3.2.1&sdk_version=v6.12.2" +
	"&user_agent=Dalvik%2F2.1.0%20%28Linux%3B%20U%3B%20Android%2014%3B%20SM-G998B%20Build%2FUP1A%29" +
	"&is_retargeting=false&is_primary_attribution=true&match_type=id_matching&cost_model=CPI&cost_value=1.50&cost_currency=USD"

// attributedInstall returns attributed install i (campaign c1 of media
// source pub_int) with its raw AppsFlyer postback, as attribution
// publishes it.
func attributedInstall(i int) event.AttributedInstall {
	at := time.Date(2026, 11, 28, 10, 0, 0, 0, time.UTC)
	touch, ctit := at.Add(-42*time.Second), int64(42)
	return event.AttributedInstall{
		Install: event.Install{Postback: event.Postback{EventID: fmt.Sprintf("inst-%06d", i), MMP: "appsflyer", ReceivedAt: at,
			AppID: "com.example.game", Platform: event.PlatformAndroid,
			Device: event.Device{GAID: "38400000-8cf0-11bd-b23e-10b96e40000d", IP: "203.0.113.7", UA: "Mozilla/5.0"}, Country: "DE",
			Raw: event.Raw{Method: "GET", Path: "/v1/postbacks/appsflyer", Query: afQuery, RemoteIP: "198.51.100.7"}},
			InstallTime: at},
		Attribution: event.Attribution{MatchType: event.MatchClickID, TouchID: fmt.Sprintf("click-%06d", i), TouchTime: &touch,
			CTITSeconds: &ctit, CampaignID: "c1", MediaSource: "pub_int", SiteID: "site7", SubSiteID: "sub9", AttributedAt: at},
	}
}

// realisticInstall is attributed install 1's record: JSON, as attribution
// publishes it.
func realisticInstall(tb testing.TB) []byte {
	v, err := json.Marshal(attributedInstall(1))
	if err != nil {
		tb.Fatal(err)
	}
	return v
}
