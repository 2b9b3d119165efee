package postback

// kochavaTable reads Kochava custom postbacks (docs/mmp/kochava.md).
//
// Oddities: one template serves installs and events, {event_name} being
// "_install" for installs; {event_time} is the time of that activity; the
// click parameters of the tracking link (click_id, site_id, sub_site_id,
// creative_id) come back as macros of the same name.
var kochavaTable = table{
	name: MMPKochava,
	params: []param{
		row(fClickID, "click_id"),
		row(fAppID, "app_id"),
		row(fEventName, "event_name"),
		row(fActivityTime, "event_time"),
		row(fRevenue, "revenue"),
		row(fCurrency, "currency"),
		row(fIDFA, "idfa"),
		row(fGAID, "adid"),
		row(fAndroidID, "android_id"),
		row(fMMPDeviceID, "kochava_device_id"),
		row(fIP, "ip_address"),
		row(fUA, "device_ua"),
		row(fMediaSource, "network_name"),
		row(fCampaignID, "campaign_id"),
		row(fCreativeID, "creative_id"),
		row(fSiteID, "site_id"),
		row(fSubSiteID, "sub_site_id"),
	},
}
