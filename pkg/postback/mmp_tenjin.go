package postback

// tenjinTable reads Tenjin callbacks (docs/mmp/tenjin.md).
//
// Oddities: {{advertising_id}} is the IDFA on iOS and the GAID on Android,
// often without hyphens; its meaning is settled by {{platform}}; every *_ms
// time is unix milliseconds; revenue only comes in USD (revenue_usd_gross,
// else revenue_usd_net), so no currency parameter is needed.
var tenjinTable = table{
	name: MMPTenjin,
	params: []param{
		row(fClickID, "click_id"),
		row(fAppID, "bundle_id", "app_id"),
		row(fPlatform, "platform"),
		row(fAdvertisingID, "advertising_id"),
		row(fIDFV, "developer_device_id"),
		row(fMMPDeviceID, "analytics_installation_id"),
		row(fIP, "ip_address"),
		row(fCountry, "country"),
		msRow(fInstallTime, "acquired_at_ms"),
		msRow(fClickTime, "engaged_at_ms"),
		msRow(fEventTime, "created_at_ms"),
		row(fEventName, "event_name"),
		row(fRevenueUSD, "revenue_usd_gross", "revenue_usd_net"),
		row(fSiteID, "site_id"),
		row(fCampaignName, "campaign_name"),
		row(fCreativeID, "creative_name"),
	},
}
