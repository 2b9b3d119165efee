package postback

// singularTable reads Singular postbacks (docs/mmp/singular.md).
//
// Oddities: our click id comes back through {cl?<NetworkName>}; {PUBLIC_ID}
// is the numeric App Store id (normalized to "id<digits>") and {LONGNAME}
// the bundle / package name; {UTCM} is the unix time of the activity;
// {IS_RE_ENG} and {IS_VIEWTHROUGH} are 1/0.
var singularTable = table{
	name: MMPSingular,
	params: []param{
		row(fClickID, "click_id"),
		row(fAppID, "store_id", "app_id"),
		row(fPlatform, "os"),
		row(fIDFA, "idfa"),
		row(fGAID, "aifa"),
		row(fIDFV, "idfv"),
		row(fAndroidID, "andi"),
		row(fIP, "event_ip", "attribution_ip"),
		row(fCountry, "country"),
		row(fActivityTime, "utcm"),
		row(fEventName, "event"),
		row(fRevenue, "amount"),
		row(fCurrency, "currency"),
		row(fMediaSource, "network"),
		row(fCampaignName, "campaign_name"),
		row(fCreativeID, "creative_id"),
		row(fSiteID, "site_id"),
		row(fIsRetargeting, "is_re_eng"),
		row(fViewThrough, "is_viewthrough"),
	},
}
