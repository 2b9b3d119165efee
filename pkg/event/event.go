// Package event defines the canonical records that travel on the pipeline's
// Kafka topics: impressions, clicks, raw installs and in-app events parsed
// from MMP postbacks, their attributed forms, and rejected postbacks.
//
// Every type encodes to JSON with github.com/segmentio/encoding/json using
// the snake_case field names documented in schemas/events/*.schema.json; a
// test validates encoded examples against those schemas so the two cannot
// drift. Times are UTC RFC 3339 with nanoseconds; money is an exact decimal
// string (see package money).
package event

import (
	"time"

	"github.com/adtrack/postback/pkg/money"
)

// Platform is the operating system of the device an event came from.
type Platform string

// Platforms known to the pipeline; PlatformUnknown is the empty string.
const (
	PlatformUnknown Platform = ""
	PlatformIOS     Platform = "ios"
	PlatformAndroid Platform = "android"
	PlatformWeb     Platform = "web"
)

// Valid reports whether p is one of the known platforms (or unknown).
func (p Platform) Valid() bool {
	switch p {
	case PlatformUnknown, PlatformIOS, PlatformAndroid, PlatformWeb:
		return true
	}
	return false
}

// Device identifies the device behind a touch or a postback. IDFA and GAID
// are lower-case canonical UUIDs and empty when absent or all-zero.
type Device struct {
	IDFA      string `json:"idfa,omitempty"`
	GAID      string `json:"gaid,omitempty"`
	IDFV      string `json:"idfv,omitempty"`
	AndroidID string `json:"android_id,omitempty"`
	IP        string `json:"ip,omitempty"`
	UA        string `json:"ua,omitempty"`
}

// AdID returns the advertising id (IDFA, else GAID), or "" when neither is set.
func (d Device) AdID() string {
	if d.IDFA != "" {
		return d.IDFA
	}
	return d.GAID
}

// Placement says where an ad ran: campaign, ad set, creative and publisher site.
type Placement struct {
	CampaignID string `json:"campaign_id,omitempty"`
	AdsetID    string `json:"adset_id,omitempty"`
	CreativeID string `json:"creative_id,omitempty"`
	SiteID     string `json:"site_id,omitempty"`
	SubSiteID  string `json:"sub_site_id,omitempty"`
}

// PublisherSubs are a publisher's own ids for its traffic, passed as sub1
// to sub5 on our click or impression link: opaque to us, they go back to
// the publisher in its callbacks ({sub1} ... {sub5}).
type PublisherSubs struct {
	Sub1 string `json:"sub1,omitempty"`
	Sub2 string `json:"sub2,omitempty"`
	Sub3 string `json:"sub3,omitempty"`
	Sub4 string `json:"sub4,omitempty"`
	Sub5 string `json:"sub5,omitempty"`
}

// Fields returns the five sub ids in order, addressable.
func (s *PublisherSubs) Fields() [5]*string {
	return [...]*string{&s.Sub1, &s.Sub2, &s.Sub3, &s.Sub4, &s.Sub5}
}

// IsZero reports whether no sub id is set.
func (s PublisherSubs) IsZero() bool { return s == PublisherSubs{} }

// Touch holds the fields shared by impressions and clicks: our own ad traffic.
type Touch struct {
	Time        time.Time `json:"time"`
	AppID       string    `json:"app_id"`
	Platform    Platform  `json:"platform,omitempty"`
	MediaSource string    `json:"media_source"`
	Placement
	PublisherSubs
	Country string `json:"country,omitempty"`
	Device
	// Cost is what this touch costs under its campaign's model (CPC for a
	// click, CPM/1000 for an impression); zero under CPI.
	Cost     money.Amount `json:"cost"`
	Currency string       `json:"currency,omitempty"`
}

// Impression is one ad view recorded by the ingest pixel endpoint.
// Topic impressions.v1, key ImpressionID.
type Impression struct {
	ImpressionID string `json:"impression_id"`
	Touch
}

// Click is one ad click recorded by the ingest redirect endpoint.
// Topic clicks.v1, key ClickID.
type Click struct {
	ClickID string `json:"click_id"`
	// S2S is true for server-to-server clicks, whose IP and UA were passed as
	// parameters by the publisher rather than taken from the request.
	S2S bool `json:"s2s,omitempty"`
	Touch
}

// Raw is the original HTTP request a postback arrived in, kept so that any
// day can be re-parsed and re-attributed from Kafka.
type Raw struct {
	Method      string `json:"method"`
	Path        string `json:"path"`
	Query       string `json:"query,omitempty"`
	ContentType string `json:"content_type,omitempty"`
	Body        string `json:"body,omitempty"`
	RemoteIP    string `json:"remote_ip,omitempty"`
}

// Cost is an amount the MMP reported for a conversion, with its model.
type Cost struct {
	Model    string       `json:"model,omitempty"` // CPI, CPC, CPM, ...
	Amount   money.Amount `json:"amount"`
	Currency string       `json:"currency"`
}

// Postback holds what install and in-app event postbacks share: who sent
// it, the device, the join keys, and the attribution the MMP claims.
type Postback struct {
	// EventID is deterministic: the MMP's own id when it sends one, else a
	// hash of the identifying fields, so retries of one postback collide.
	EventID    string    `json:"event_id"`
	MMP        string    `json:"mmp"`
	ReceivedAt time.Time `json:"received_at"`
	AppID      string    `json:"app_id"`
	Platform   Platform  `json:"platform,omitempty"`
	ClickID    string    `json:"click_id,omitempty"`
	Device
	Country string `json:"country,omitempty"`
	// The attribution the MMP reports, recorded beside ours.
	MediaSource  string `json:"media_source,omitempty"`
	CampaignName string `json:"campaign_name,omitempty"`
	Placement
	IsRetargeting bool   `json:"is_retargeting,omitempty"`
	MatchType     string `json:"mmp_match_type,omitempty"`
	// Cost is set when the postback carries cost fields of its own.
	Cost *Cost `json:"cost,omitempty"`
	Raw  Raw   `json:"raw"`
}

// JoinKey is the Kafka key of raw installs and events: the click id, else
// the advertising id, else the vendor/android id, else "" (round-robin).
// It matches the key of clicks.v1 so click-id joins are co-partitioned.
func (p *Postback) JoinKey() string {
	switch {
	case p.ClickID != "":
		return p.ClickID
	case p.AdID() != "":
		return p.AdID()
	case p.IDFV != "":
		return p.IDFV
	default:
		return p.AndroidID
	}
}

// Install is an install postback (or an MMP's rejected-install callback).
// Topic installs.raw.v1, key JoinKey.
type Install struct {
	Postback
	InstallTime time.Time `json:"install_time"`
	// ClickTime is the touch time the MMP reports, if any.
	ClickTime *time.Time `json:"click_time,omitempty"`
	// Rejected is set for the MMP's blocked-install callbacks, with the
	// MMP's reason (e.g. "click_flood", "engagement_injection").
	Rejected     bool   `json:"rejected,omitempty"`
	RejectReason string `json:"reject_reason,omitempty"`
	IsReinstall  bool   `json:"is_reinstall,omitempty"`
}

// Taxonomy is the pipeline's event-name vocabulary; the MMP's own name is
// kept beside it in InAppEvent.OriginalName.
type Taxonomy string

// Taxonomy values.
const (
	NameInstall       Taxonomy = "install"
	NameAppOpen       Taxonomy = "app_open"
	NamePurchase      Taxonomy = "purchase"
	NameLevelAchieved Taxonomy = "level_achieved"
	NameScreenView    Taxonomy = "screen_view"
	NameClick         Taxonomy = "click"
	NameFormSubmit    Taxonomy = "form_submit"
	NameCustom        Taxonomy = "custom"
)

// InAppEvent is an in-app event postback. Topic events.raw.v1, key JoinKey.
type InAppEvent struct {
	Postback
	EventTime    time.Time  `json:"event_time"`
	InstallTime  *time.Time `json:"install_time,omitempty"`
	Name         Taxonomy   `json:"event_name"`
	OriginalName string     `json:"original_event_name"`
	// Revenue in Currency; zero with an empty Currency when the event has none.
	Revenue  money.Amount `json:"revenue"`
	Currency string       `json:"currency,omitempty"`
	// Value is the MMP's free-form event value (often a JSON string), verbatim.
	Value string `json:"event_value,omitempty"`
}

// MatchType says how an install was joined to its touch.
type MatchType string

// Match types, in the order the attribution rules try them.
const (
	MatchClickID       MatchType = "click_id"
	MatchDeviceID      MatchType = "device_id"
	MatchProbabilistic MatchType = "probabilistic"
	MatchViewThrough   MatchType = "view_through"
	MatchOrganic       MatchType = "organic"
)

// Fraud flags attached to attributed installs.
const (
	FraudClickInjection = "click_injection" // CTIT under the injection threshold
	FraudCTITTooLong    = "ctit_beyond_window"
	FraudClickFlooding  = "click_flooding"
	FraudMMPRejected    = "mmp_rejected" // the MMP reported a block reason
)

// Attribution is the outcome of joining a conversion to its touch.
type Attribution struct {
	MatchType MatchType `json:"match_type"`
	// TouchID is the winning click_id or impression_id; empty when organic.
	TouchID     string     `json:"touch_id,omitempty"`
	TouchTime   *time.Time `json:"touch_time,omitempty"`
	CTITSeconds *int64     `json:"ctit_seconds,omitempty"`
	CampaignID  string     `json:"attributed_campaign_id,omitempty"`
	MediaSource string     `json:"attributed_media_source,omitempty"`
	AdsetID     string     `json:"attributed_adset_id,omitempty"`
	CreativeID  string     `json:"attributed_creative_id,omitempty"`
	SiteID      string     `json:"attributed_site_id,omitempty"`
	SubSiteID   string     `json:"attributed_sub_site_id,omitempty"`
	// Sub1 to Sub5 are the winning touch's PublisherSubs.
	Sub1 string `json:"attributed_sub1,omitempty"`
	Sub2 string `json:"attributed_sub2,omitempty"`
	Sub3 string `json:"attributed_sub3,omitempty"`
	Sub4 string `json:"attributed_sub4,omitempty"`
	Sub5 string `json:"attributed_sub5,omitempty"`
	// Cost of this conversion (CPI bid or the postback's own cost) in CostCurrency.
	Cost         money.Amount `json:"attributed_cost"`
	CostCurrency string       `json:"attributed_cost_currency,omitempty"`
	FraudFlags   []string     `json:"fraud_flags"`
	// MMPDisagrees is set when the MMP's reported media source or campaign
	// differs from ours; both are kept so the difference is visible.
	MMPDisagrees bool      `json:"mmp_disagrees,omitempty"`
	Reinstall    bool      `json:"reinstall,omitempty"`
	AttributedAt time.Time `json:"attributed_at"`
}

// Subs returns the attributed touch's publisher sub ids.
func (a *Attribution) Subs() PublisherSubs {
	return PublisherSubs{a.Sub1, a.Sub2, a.Sub3, a.Sub4, a.Sub5}
}

// SetSubs sets the attributed touch's publisher sub ids.
func (a *Attribution) SetSubs(s PublisherSubs) {
	a.Sub1, a.Sub2, a.Sub3, a.Sub4, a.Sub5 = s.Sub1, s.Sub2, s.Sub3, s.Sub4, s.Sub5
}

// AttributedInstall is an install with its attribution.
// Topic installs.attributed.v1, key EventID.
type AttributedInstall struct {
	Install
	Attribution
}

// AttributedEvent is an in-app event carrying its install's attribution.
// Topic events.attributed.v1, key EventID.
type AttributedEvent struct {
	InAppEvent
	Attribution
	// InstallEventID is the event_id of the install this event was joined to;
	// empty when no install was found (the event is then organic).
	InstallEventID string `json:"install_event_id,omitempty"`
	// RevenueReporting is Revenue converted to ReportingCurrency.
	RevenueReporting  money.Amount `json:"revenue_reporting"`
	ReportingCurrency string       `json:"reporting_currency"`
}

// Rejected is a postback that was authenticated but could not be accepted,
// kept with its reason so nothing is silently lost.
// Topic postbacks.rejected.v1, key Source.
type Rejected struct {
	// Source is the MMP name, or "click" / "impression" / "attribution".
	Source     string    `json:"source"`
	Kind       string    `json:"kind,omitempty"` // install, event, rejected
	ReceivedAt time.Time `json:"received_at"`
	// Field names the offending field, when one is to blame.
	Field  string `json:"field,omitempty"`
	Reason string `json:"reason"`
	// EventID is set when it could be derived despite the error.
	EventID string `json:"event_id,omitempty"`
	Raw     Raw    `json:"raw"`
}

// Campaign is one entry of the compacted campaigns.v1 topic, key ID.
// A record with an empty value (tombstone) deletes the campaign.
type Campaign struct {
	ID          string   `json:"campaign_id"`
	AppID       string   `json:"app_id"`
	Platform    Platform `json:"platform,omitempty"`
	MediaSource string   `json:"media_source"`
	MMP         string   `json:"mmp,omitempty"`
	// TrackingLink is the MMP tracking URL with {click_id}, {site_id}, ...
	// macros that the click endpoint fills before redirecting.
	TrackingLink string       `json:"tracking_link,omitempty"`
	CostModel    string       `json:"cost_model"` // CPI, CPC or CPM
	Bid          money.Amount `json:"bid"`
	Currency     string       `json:"currency"`
	// MMPIDs say how each MMP names this campaign in its postbacks, keyed
	// by MMP (appsflyer, adjust, kochava, ...): attribution compares the
	// media source and campaign id a postback reports against these (and
	// against our own), so mmp_disagrees flags only a real disagreement.
	MMPIDs map[string]MMPIDs `json:"mmp_ids,omitempty"`
	// SKAN declares the campaign's SKAdNetwork / AdAttributionKit ids, which
	// map Apple's signed postbacks to the campaign.
	SKAN *SKANIDs `json:"skan,omitempty"`
}

// MMPIDs are one MMP's spellings of a campaign.
type MMPIDs struct {
	// CampaignID is the MMP's own id of the campaign (Kochava's
	// {campaign_id}); empty when the MMP echoes ours.
	CampaignID string `json:"campaign_id,omitempty"`
	// MediaSource is how the MMP names our media source (AppsFlyer's pid
	// "<network>_int", Adjust's network_name display name, ...).
	MediaSource string `json:"media_source,omitempty"`
}

// SKANIDs are a campaign's identifiers in Apple's attribution postbacks.
type SKANIDs struct {
	// AdNetworkID is our registered ad network id ("example123.skadnetwork").
	AdNetworkID string `json:"ad_network_id"`
	// CampaignIDs are the campaign-id values (1..100) of SKAdNetwork 2 to 3
	// ads signed for this campaign.
	CampaignIDs []int `json:"campaign_ids,omitempty"`
	// SourceIdentifiers are the four-digit hierarchical source identifiers
	// ("0000".."9999") of SKAdNetwork 4 and AdAttributionKit ads.
	SourceIdentifiers []string `json:"source_identifiers,omitempty"`
}

// SKANPostback is an Apple attribution postback (SKAdNetwork or
// AdAttributionKit) whose signature verified, with every field its version
// defines, mapped to our campaign where one declares its ids.
// Topic skan.v1, key TransactionID (every window of a conversion, and its
// resends, on one partition).
type SKANPostback struct {
	// PostbackID is the dedup key: transaction id (AdAttributionKit's
	// postback-identifier) "/" postback sequence index. Devices and relays
	// resend; the analyst views count each id once.
	PostbackID string    `json:"postback_id"`
	Framework  string    `json:"framework"` // skadnetwork, adattributionkit
	Version    string    `json:"version,omitempty"`
	ReceivedAt time.Time `json:"received_at"`
	// Apple's fields.
	AdNetworkID           string `json:"ad_network_id"`
	SKANCampaignID        *int64 `json:"skan_campaign_id,omitempty"` // campaign-id, 1.0-3.0
	SourceIdentifier      string `json:"source_identifier,omitempty"`
	AppID                 string `json:"app_id"` // "id" + the App Store id
	TransactionID         string `json:"transaction_id"`
	Redownload            bool   `json:"redownload"`
	SourceAppID           *int64 `json:"source_app_id,omitempty"`
	SourceDomain          string `json:"source_domain,omitempty"`
	FidelityType          *int64 `json:"fidelity_type,omitempty"`
	ConversionValue       *int64 `json:"conversion_value,omitempty"`
	CoarseConversionValue string `json:"coarse_conversion_value,omitempty"`
	// DidWin is true for a winning postback, and for every postback before
	// 3.0, which had only winning ones.
	DidWin                bool   `json:"did_win"`
	PostbackSequenceIndex int64  `json:"postback_sequence_index"`
	CountryCode           string `json:"country_code,omitempty"`
	ConversionType        string `json:"conversion_type,omitempty"`
	ImpressionType        string `json:"impression_type,omitempty"`
	MarketplaceID         string `json:"marketplace_id,omitempty"`
	AdInteractionType     string `json:"ad_interaction_type,omitempty"`
	KeyID                 string `json:"key_id,omitempty"`
	Signature             string `json:"signature"`
	// Ours: the campaign whose skan ids match, and how.
	CampaignID    string `json:"campaign_id,omitempty"`
	MediaSource   string `json:"media_source,omitempty"`
	CampaignMatch string `json:"campaign_match"` // exact, partial, ambiguous, none
	Raw           Raw    `json:"raw"`
}
