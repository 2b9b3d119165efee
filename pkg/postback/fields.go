package postback

// field is a canonical postback field. Every MMP table maps its parameter
// names onto these; the parsing logic only ever sees fields.
type field uint8

const (
	fEventID field = iota // the MMP's own id for this postback
	fClickID
	fAppID
	fPlatform
	fIDFA
	fGAID
	fAdvertisingID // IDFA or GAID, resolved by platform (Tenjin)
	fIDFV
	fAndroidID
	fMMPDeviceID // the MMP's own device id: only feeds the event id hash
	fIP
	fUA
	fCountry
	fInstallTime
	fEventTime
	fActivityTime // "when this happened": install time on installs, event time on events
	fClickTime
	fEventName
	fRevenue      // decimal units, in fCurrency
	fRevenueCents // integer hundredths, in fCurrency (Adjust {revenue})
	fRevenueUSD   // decimal units, always USD (Tenjin revenue_usd_*, AppsFlyer monetary)
	fCurrency
	fEventValue
	fMediaSource
	fCampaignID
	fCampaignName
	fAdsetID
	fCreativeID
	fSiteID
	fSubSiteID
	fIsRetargeting
	fViewThrough // Singular {IS_VIEWTHROUGH}: becomes match type view_through
	fMatchType
	fActivityKind // Adjust {activity_kind}: rejected_install, reattribution, reinstall...
	fIsReinstall
	fRejectReason
	fRejectReasonValue
	fIsRejected
	fCostModel
	fCostValue
	fCostCurrency
	numFields
)

// canonicalNames are the generic MMP's parameter names; errors about a
// missing field use them when an MMP's table has no alias for it.
var canonicalNames = [numFields]string{
	fEventID:           "event_id",
	fClickID:           "click_id",
	fAppID:             "app_id",
	fPlatform:          "platform",
	fIDFA:              "idfa",
	fGAID:              "gaid",
	fAdvertisingID:     "advertising_id",
	fIDFV:              "idfv",
	fAndroidID:         "android_id",
	fMMPDeviceID:       "mmp_device_id",
	fIP:                "ip",
	fUA:                "ua",
	fCountry:           "country",
	fInstallTime:       "install_time",
	fEventTime:         "event_time",
	fActivityTime:      "event_time",
	fClickTime:         "click_time",
	fEventName:         "event_name",
	fRevenue:           "revenue",
	fRevenueCents:      "revenue_cents",
	fRevenueUSD:        "revenue_usd",
	fCurrency:          "currency",
	fEventValue:        "event_value",
	fMediaSource:       "media_source",
	fCampaignID:        "campaign_id",
	fCampaignName:      "campaign_name",
	fAdsetID:           "adset_id",
	fCreativeID:        "creative_id",
	fSiteID:            "site_id",
	fSubSiteID:         "sub_site_id",
	fIsRetargeting:     "is_retargeting",
	fViewThrough:       "is_viewthrough",
	fMatchType:         "match_type",
	fActivityKind:      "activity_kind",
	fIsReinstall:       "is_reinstall",
	fRejectReason:      "reject_reason",
	fRejectReasonValue: "reject_reason_value",
	fIsRejected:        "is_rejected",
	fCostModel:         "cost_model",
	fCostValue:         "cost_value",
	fCostCurrency:      "cost_currency",
}
