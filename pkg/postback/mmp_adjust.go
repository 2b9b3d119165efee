package postback

// adjustTable reads Adjust callbacks (docs/mmp/adjust.md). The network puts
// the URL-encoded callback on its Adjust link (install_callback,
// event_callback_<token>, rejected_install_callback, reattribution_callback),
// so our own values (click_id, campaign_id, site_id, sub_site_id) travel in
// it as plain parameters.
//
// Oddities: {revenue} is in cents (an integer) and {revenue_float} in units;
// times are unix seconds; {created_at} is the time of the activity itself;
// {activity_kind} says rejected_install / reattribution / reinstall; Adjust
// drops placeholders it has no value for, and reports an unknown country as
// "zz".
var adjustTable = table{
	name: MMPAdjust,
	params: []param{
		row(fClickID, "click_id"),
		row(fAppID, "app_id"),
		row(fPlatform, "os_name"),
		row(fGAID, "gps_adid"),
		row(fIDFA, "idfa"),
		row(fIDFV, "idfv"),
		row(fAndroidID, "android_id"),
		row(fMMPDeviceID, "adid"),
		row(fIP, "ip_address"),
		row(fUA, "user_agent"),
		row(fCountry, "country"),
		row(fInstallTime, "installed_at"),
		row(fActivityTime, "created_at"),
		row(fClickTime, "click_time", "engagement_time"),
		row(fEventName, "event_name", "event"),
		row(fRevenueCents, "revenue"),
		row(fRevenue, "revenue_float"),
		row(fCurrency, "currency"),
		row(fMediaSource, "network_name"),
		row(fCampaignName, "campaign_name"),
		row(fCampaignID, "campaign_id"),
		row(fAdsetID, "adgroup_name"),
		row(fCreativeID, "creative_name"),
		row(fSiteID, "site_id"),
		row(fSubSiteID, "sub_site_id"),
		row(fIsRetargeting, "is_reattributed"),
		row(fActivityKind, "activity_kind"),
		row(fIsReinstall, "is_redownload"),
		row(fMatchType, "match_type"),
		row(fRejectReason, "rejection_reason"),
		row(fCostModel, "cost_type"),
		row(fCostValue, "cost_amount"),
		row(fCostCurrency, "cost_currency"),
	},
}
