package postback

import "strings"

// branchTable reads Branch webhooks (docs/mmp/branch.md). Our template names
// each parameter after the FreeMarker path it carries, so a GET template
// (`user_data.idfa=${(user_data.idfa)!}`) and a POSTed JSON webhook (which
// BodyParams flattens to the same "user_data.idfa") read alike; the
// flattened names of Branch's log-level exports
// ("last_attributed_touch_data_tilde_campaign") are accepted too.
//
// Oddities: every timestamp is unix milliseconds; ${(id)!} is Branch's own
// event id; the network's click id comes back as ~click_id in the last
// attributed touch; Branch has no app id macro, so the template carries ours
// as a fixed value.
var branchTable = table{
	name:        MMPBranch,
	exportNames: branchExportName,
	params: []param{
		row(fEventID, "id"),
		row(fEventName, "name"),
		msRow(fActivityTime, "event_timestamp", "timestamp"),
		msRow(fInstallTime, "install_activity.timestamp"),
		msRow(fClickTime, "last_attributed_touch_timestamp"),
		row(fAppID, "app_id"),
		row(fPlatform, "user_data.platform", "user_data.os"),
		row(fIDFA, "user_data.idfa"),
		row(fGAID, "user_data.aaid"),
		row(fIDFV, "user_data.idfv"),
		row(fAndroidID, "user_data.android_id"),
		row(fIP, "user_data.ip"),
		row(fUA, "user_data.user_agent"),
		row(fCountry, "user_data.geo_country_code"),
		row(fClickID, "last_attributed_touch_data.~click_id", "~click_id"),
		row(fMediaSource, "last_attributed_touch_data.~advertising_partner_name", "last_attributed_touch_data.$3p", "last_attributed_touch_data.~channel"),
		row(fCampaignName, "last_attributed_touch_data.~campaign"),
		row(fCampaignID, "last_attributed_touch_data.~campaign_id"),
		row(fAdsetID, "last_attributed_touch_data.~ad_set_id", "last_attributed_touch_data.~ad_set_name"),
		row(fCreativeID, "last_attributed_touch_data.~creative_id", "last_attributed_touch_data.~ad_id"),
		row(fSiteID, "last_attributed_touch_data.~secondary_publisher"),
		row(fSubSiteID, "last_attributed_touch_data.~sub_site_name"),
		row(fMatchType, "last_attributed_touch_type"),
		row(fRevenue, "event_data.revenue"),
		row(fCurrency, "event_data.currency"),
		row(fRevenueUSD, "event_data.revenue_in_usd"),
		row(fCostModel, "last_attributed_touch_data.~cost_model", "~cost_model"),
		row(fCostValue, "last_attributed_touch_data.~cost_value", "~cost_value"),
		row(fCostCurrency, "last_attributed_touch_data.~cost_currency", "~cost_currency"),
	},
}

// branchExportName spells a webhook path the way Branch's log-level exports
// do: dots become "_", "~" becomes "tilde_" and "$" becomes "dollar_".
func branchExportName(path string) string {
	return strings.NewReplacer(".", "_", "~", "tilde_", "$", "dollar_").Replace(path)
}
