package postback

// Sample values the MMPs would put in their macros, for a device that
// installed at 08:12:33 UTC after a click at 08:10:05 and purchased at
// 09:30:01 on 2026-11-28 (receivedAt is 10:00).
const (
	sClick     = "k-7f3a9c2e"
	sIDFA      = "6D92078A-8246-4BA4-AE5B-76104861E7DC" // as iOS reports it
	sIDFAOut   = "6d92078a-8246-4ba4-ae5b-76104861e7dc"
	sIDFV      = "CCB300A0-DE1B-4D48-BC7E-599E453B8DD4"
	sIDFVOut   = "ccb300a0-de1b-4d48-bc7e-599e453b8dd4"
	sGAID      = "38400000-8cf0-11bd-b23e-10b96e40000d"
	sAndroidID = "9774d56d682e549c"
	sIP        = "203.0.113.7"
	sUAiOS     = "MyGame/3.1 CFNetwork/1490.0.4 Darwin/23.2.0"
	sUAAndroid = "Dalvik/2.1.0 (Linux; U; Android 14; Pixel 8 Build/UQ1A.240105.004)"
	sInstall   = "2026-11-28T08:12:33Z"
	sClickAt   = "2026-11-28T08:10:05Z"
	sEventAt   = "2026-11-28T09:30:01Z"
)

// samples maps each MMP's macros (and the <placeholders> of the templates)
// to a value; the device is iOS or Android per MMP, and the ids of the other
// platform are empty, as the MMPs send them.
var samples = map[string]map[string]string{
	MMPAppsFlyer: {
		"<token>": "s3cr3t", "(clickid)": sClick, "(app-id)": "id1234567890",
		"(idfa)": sIDFA, "(vendorid)": sIDFV, "(advertiserId)": "", "(android-id)": "",
		"(appsflyer-device-id)": "1795853553120-6543210", "(ip)": sIP, "(user-agent)": sUAiOS,
		"(country_code)": "US", "(install-unix-ts)": "1795853553", "(click-ts)": "1795853405000",
		"(pid)": "adtrack_int", "(campaign)": "Winter Sale", "(af_c_id)": "cmp-42",
		"(af_adset_id)": "as-7", "(af_ad_id)": "cr-3", "(af_siteid)": "site-93", "(af_sub_siteid)": "sub-1",
		"(match-type)": "id_matching", "(af_cost_model)": "CPI", "(af_cost_value)": "1.50",
		"(af_cost_currency)": "USD", "(event-name)": "af_purchase", "(timestamp)": "2026-11-28 09:30:01.456",
		"(orig-monetary)": "4.99", "(currency)": "EUR", "(monetary)": "5.42",
		"(event-value)": `{"af_revenue":"4.99","af_content_id":"gems_100"}`,
	},
	MMPAdjust: {
		"<token>": "s3cr3t", "{click_id}": sClick, "{campaign_id}": "cmp-42", "{site_id}": "site-93",
		"{sub_site_id}": "sub-1", "{app_id}": "com.example.game", "{os_name}": "android",
		"{gps_adid}": sGAID, "{idfa}": "", "{idfv}": "", "{android_id}": sAndroidID,
		"{adid}": "18546f6171f67e29d1cb983322ad1329", "{ip_address}": sIP, "{user_agent}": sUAAndroid,
		"{country}": "de", "{installed_at}": "1795853553", "{created_at}": "1795853553",
		"{click_time}": "1795853405", "{network_name}": "AdTrack", "{campaign_name}": "Winter Sale",
		"{adgroup_name}": "lookalike-1", "{creative_name}": "video-15s", "{activity_kind}": "install",
		"{is_reattributed}": "0", "{is_redownload}": "0", "{match_type}": "adid", "{cost_type}": "cpi",
		"{cost_amount}": "1.5", "{cost_currency}": "USD", "{event}": "bkrfgq", "{event_name}": "Purchase",
		"{revenue}": "499", "{revenue_float}": "4.99", "{currency}": "EUR",
		"{rejection_reason}": "engagement_injection",
	},
	MMPBranch: {
		"<token>": "s3cr3t", "<app id>": "id1234567890", "${(id)!}": "1367459301282981044",
		"${(name)!}": "INSTALL", "${(event_timestamp)!}": "1795853553120",
		"${(last_attributed_touch_timestamp)!}": "1795853405000", "${(install_activity.timestamp)!}": "1795853553120",
		"${(user_data.os)!}": "IOS", "${(user_data.idfa)!}": sIDFA, "${(user_data.aaid)!}": "",
		"${(user_data.idfv)!}": sIDFV, "${(user_data.android_id)!}": "", "${(user_data.ip)!}": sIP,
		"${(user_data.user_agent)!}": sUAiOS, "${(user_data.geo_country_code)!}": "US",
		"${(last_attributed_touch_type)!}":                           "CLICK",
		"${(last_attributed_touch_data.~click_id)!}":                 sClick,
		"${(last_attributed_touch_data.~advertising_partner_name)!}": "AdTrack",
		"${(last_attributed_touch_data.~campaign)!}":                 "Winter Sale",
		"${(last_attributed_touch_data.~campaign_id)!}":              "cmp-42",
		"${(last_attributed_touch_data.~ad_set_id)!}":                "as-7",
		"${(last_attributed_touch_data.~creative_id)!}":              "cr-3",
		"${(last_attributed_touch_data.~secondary_publisher)!}":      "site-93",
		"${(last_attributed_touch_data.~sub_site_name)!}":            "sub-1",
		"${(last_attributed_touch_data.~cost_model)!}":               "CPI",
		"${(last_attributed_touch_data.~cost_value)!}":               "1.5",
		"${(last_attributed_touch_data.~cost_currency)!}":            "USD",
		"${(event_data.revenue)!}":                                   "4.99",
		"${(event_data.currency)!}":                                  "EUR",
		"${(event_data.revenue_in_usd)!}":                            "5.42",
	},
	MMPSingular: {
		"<token>": "s3cr3t", "{cl?AdTrack}": sClick, "{PUBLIC_ID}": "1234567890", "{LONGNAME}": "com.example.game",
		"{OS}": "iOS", "{IDFA}": sIDFA, "{AIFA}": "", "{IDFV}": sIDFV, "{ANDI}": "",
		"{ATTRIBUTION_IP}": sIP, "{EVENT_IP}": "203.0.113.99", "{COUNTRY}": "US", "{UTCM}": "1795853553",
		"{NETWORK}": "AdTrack", "{CID}": "Winter Sale", "{pcrid?AdTrack}": "cr-3", "{psid?AdTrack}": "site-93",
		"{IS_RE_ENG}": "0", "{IS_VIEWTHROUGH}": "0", "{EVTNAME}": "__iap__", "{AMOUNT}": "4.99", "{CURRENCY}": "usd",
	},
	MMPKochava: {
		"<token>": "s3cr3t", "<app id>": "com.example.game", "{click_id}": sClick, "{event_name}": "_install",
		"{event_time}": "2026-11-28 08:12:33", "{revenue}": "4.99", "{currency}": "USD", "{idfa}": "",
		"{adid}": sGAID, "{android_id}": sAndroidID, "{kochava_device_id}": "KA1795853553t3a5e9c1b2d4f6a8",
		"{ip_address}": sIP, "{device_ua}": sUAAndroid, "{network_name}": "AdTrack", "{campaign_id}": "cmp-42",
		"{creative_id}": "cr-3", "{site_id}": "site-93", "{sub_site_id}": "sub-1",
	},
	MMPTenjin: {
		"<token>": "s3cr3t", "{{click_id}}": sClick, "{{bundle_id}}": "com.example.game", "{{platform}}": "ios",
		"{{advertising_id}}": "6d92078a82464ba4ae5b76104861e7dc", "{{developer_device_id}}": sIDFV,
		"{{analytics_installation_id}}": "29eeb1610fe74997b6d53f02e9711f8c", "{{ip_address}}": sIP,
		"{{country}}": "US", "{{acquired_at_ms}}": "1795853553120", "{{engaged_at_ms}}": "1795853405000",
		"{{created_at_ms}}": "1795858201456", "{{event_name}}": "purchase", "{{revenue_usd_gross}}": "4.99",
		"{{revenue_usd_net}}": "3.49", "{{site_id}}": "site-93", "{{campaign_name}}": "Winter Sale",
		"{{creative_name}}": "video-15s",
	},
	MMPGeneric: {
		"<token>": "s3cr3t", "<event_id>": "gen-000123", "<click_id>": sClick, "<app_id>": "com.example.game",
		"<platform>": "Android", "<idfa>": "", "<gaid>": "38400000-8CF0-11BD-B23E-10B96E40000D", "<idfv>": "",
		"<android_id>": sAndroidID, "<ip>": sIP, "<ua>": sUAAndroid, "<country>": "DE",
		"<install_time>": sInstall, "<click_time>": "1795853405", "<event_time>": "2026-11-28T10:30:01.250+01:00",
		"<event_name>": "level_achieved", "<revenue>": "0", "<currency>": "USD", "<event_value>": `{"level":7}`,
		"<media_source>": "adtrack", "<campaign_id>": "cmp-42", "<campaign_name>": "Winter Sale",
		"<adset_id>": "as-7", "<creative_id>": "cr-3", "<site_id>": "site-93", "<sub_site_id>": "sub-1",
		"<is_retargeting>": "false", "<is_reinstall>": "0", "<match_type>": "click_id", "<cost_model>": "cpc",
		"<cost_value>": "0.05", "<cost_currency>": "usd", "<reject_reason>": "ctit_too_short",
	},
}

// kindSamples override samples where the value depends on the postback kind.
var kindSamples = map[string]map[Kind]map[string]string{
	MMPAdjust: {
		KindEvent:    {"{created_at}": "1795858201", "{activity_kind}": "event"},
		KindRejected: {"{activity_kind}": "rejected_install"},
	},
	MMPBranch: {
		KindEvent: {"${(id)!}": "1367459301282981045", "${(name)!}": "PURCHASE", "${(event_timestamp)!}": "1795858201456"},
	},
	MMPSingular: {KindEvent: {"{UTCM}": "1795858201"}},
	MMPKochava:  {KindEvent: {"{event_name}": "Purchase", "{event_time}": "2026-11-28 09:30:01"}},
	MMPGeneric:  {KindEvent: {"<event_id>": "gen-000124"}},
}

func sample(mmp string, kind Kind, macro string) (string, bool) {
	if v, ok := kindSamples[mmp][kind][macro]; ok {
		return v, true
	}
	v, ok := samples[mmp][macro]
	return v, ok
}
