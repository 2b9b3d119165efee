package postback

// appsflyerTable reads AppsFlyer's partner postbacks (docs/mmp/appsflyer.md)
// and the JSON of its Push API, whose field names differ.
//
// Oddities: (advertiserId) is the GAID, and the Push API calls the GAID
// advertising_id; (monetary) is the revenue converted to USD while
// (orig-monetary) is in (currency); (timestamp) is the event time. Blocked
// (Protect360 / validation rules) postbacks carry reject_reason,
// reject_reason_value and is_rejected=1, which AppsFlyer adds on its own,
// as it does is_retargeting on re-engagements.
var appsflyerTable = table{
	name: MMPAppsFlyer,
	params: []param{
		row(fClickID, "clickid", "click_id"),
		row(fAppID, "app_id"),
		row(fPlatform, "platform"),
		row(fIDFA, "idfa"),
		row(fGAID, "advertiserid", "advertising_id"),
		row(fIDFV, "vendorid", "idfv"),
		row(fAndroidID, "android_id"),
		row(fMMPDeviceID, "appsflyer_id", "appsflyer_device_id"),
		row(fIP, "ip"),
		row(fUA, "user_agent"),
		row(fCountry, "country_code"),
		row(fInstallTime, "install_unix_ts", "install_time"),
		row(fClickTime, "click_ts", "attributed_touch_time"),
		row(fEventTime, "timestamp", "event_time"),
		row(fEventName, "event_name"),
		row(fRevenue, "orig_monetary", "event_revenue"),
		row(fCurrency, "currency", "event_revenue_currency"),
		row(fRevenueUSD, "monetary", "event_revenue_usd"),
		row(fEventValue, "event_value"),
		row(fMediaSource, "pid", "media_source"),
		row(fCampaignName, "campaign"),
		row(fCampaignID, "af_c_id"),
		row(fAdsetID, "af_adset_id", "af_adset"),
		row(fCreativeID, "af_ad_id", "af_ad"),
		row(fSiteID, "af_siteid"),
		row(fSubSiteID, "af_sub_siteid"),
		row(fIsRetargeting, "is_retargeting"),
		row(fMatchType, "match_type"),
		row(fRejectReason, "reject_reason", "blocked_reason", "rejected_reason"),
		row(fRejectReasonValue, "reject_reason_value", "blocked_reason_value", "rejected_reason_value"),
		row(fIsRejected, "is_rejected"),
		row(fCostModel, "af_cost_model"),
		row(fCostValue, "af_cost_value"),
		row(fCostCurrency, "af_cost_currency"),
	},
}
