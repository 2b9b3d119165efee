package sink

import (
	"bytes"
	"errors"
	"fmt"
	"time"

	"github.com/segmentio/encoding/json"
	"github.com/shopspring/decimal"

	"github.com/adtrack/postback/pkg/event"
	"github.com/adtrack/postback/pkg/forward"
	"github.com/adtrack/postback/pkg/money"
)

// Table describes how one topic loads into one ClickHouse table.
type Table struct {
	// Name is the ClickHouse table.
	Name string
	// Columns are listed in every INSERT: ClickHouse 18.16 needs them, and
	// they keep the sink independent of column order in the DDL.
	Columns []string
	// Row decodes one record value into column values, in Columns order,
	// without the trailing src_topic, src_partition, src_offset.
	Row func(value []byte) ([]any, error)
	// KeyedID: the first column is a click or impression id, and a keyed
	// one (event.IsKeyedTouchID) is loaded once (repeats.go).
	KeyedID bool
}

// srcColumns end every row: where in Kafka it came from.
var srcColumns = []string{"src_topic", "src_partition", "src_offset"}

// ErrContent wraps every error that comes from a record's content rather
// than from ClickHouse or Kafka: the record goes to the rejected table.
var ErrContent = errors.New("record content")

func contentErr(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrContent, fmt.Sprintf(format, args...))
}

// Tables maps the topic names of cfg to their tables.
func Tables(clicks, impressions, installs, events, rejected, skan string) map[string]*Table {
	return map[string]*Table{
		skan:        {Name: "skan_postbacks", Columns: skanColumns, Row: skanRow},
		clicks:      {Name: "clicks", Columns: clickColumns, Row: clickRow, KeyedID: true},
		impressions: {Name: "impressions", Columns: impressionColumns, Row: impressionRow, KeyedID: true},
		installs:    {Name: "installs", Columns: installColumns, Row: installRow},
		events:      {Name: "events", Columns: eventColumns, Row: eventRow},
		rejected:    {Name: "rejected", Columns: rejectedColumns, Row: rejectedRow},
	}
}

// minTime and maxTime bound ClickHouse's DateTime (UInt32 seconds).
var (
	minTime = time.Unix(0, 0)
	maxTime = time.Unix(1<<32-1, 0)
)

// maxDecimal is the largest magnitude Decimal(18, 6) holds, in micros.
const maxDecimal = 999_999_999_999_999_999

// conv converts field values to column values and keeps the first content
// error, so a row builder reads as one list of columns.
type conv struct{ err error }

func (c *conv) fail(format string, args ...any) {
	if c.err == nil {
		c.err = contentErr(format, args...)
	}
}

// check records a content error unless ok.
func (c *conv) check(ok bool, format string, args ...any) {
	if !ok {
		c.fail(format, args...)
	}
}

// time converts for a DateTime('UTC') column: outside its range ClickHouse
// would refuse the whole INSERT, so it is this record's content error.
func (c *conv) time(name string, t time.Time) time.Time {
	if t.Before(minTime) || t.After(maxTime) {
		c.fail("%s %s outside ClickHouse DateTime range", name, t.Format(time.RFC3339))
	}
	return t.UTC()
}

func (c *conv) timePtr(name string, t *time.Time) *time.Time {
	if t == nil {
		return nil
	}
	v := c.time(name, *t)
	return &v
}

// amount converts for a Decimal(18, 6) column, range-checked likewise.
func (c *conv) amount(name string, a money.Amount) decimal.Decimal {
	if m := a.Micros(); m > maxDecimal || m < -maxDecimal {
		c.fail("%s %s outside Decimal(18, 6)", name, a)
	}
	return decimal.New(a.Micros(), -money.Scale)
}

func (c *conv) platform(p event.Platform) string {
	c.check(p.Valid(), "platform %q is not in the enum", p)
	return string(p)
}

func (c *conv) matchType(m event.MatchType) string {
	c.check(matchTypes[m], "match_type %q is not in the enum", m)
	return string(m)
}

func b2u(b bool) uint8 {
	if b {
		return 1
	}
	return 0
}

// decodeFlags: field names are exact (the producers are ours), and strings
// point into the record value instead of being copied; the value lives as
// long as the row, until its INSERT.
const decodeFlags = json.DontCopyString | json.DontMatchCaseInsensitiveStructFields

func decode(value []byte, v any) error {
	rest, err := json.Parse(value, v, decodeFlags)
	if err == nil && len(bytes.TrimSpace(rest)) > 0 {
		err = fmt.Errorf("%d bytes after the JSON value", len(rest))
	}
	if err != nil {
		return contentErr("undecodable JSON: %v", err)
	}
	return nil
}

var touchColumns = []string{"time", "app_id", "platform", "media_source", "campaign_id", "adset_id", "creative_id",
	"site_id", "sub_site_id", "country", "idfa", "gaid", "ip", "ua", "cost", "currency"}

func touchRow(c *conv, t *event.Touch) []any {
	c.check(t.AppID != "", "app_id is empty")
	return []any{c.time("time", t.Time), t.AppID, c.platform(t.Platform), t.MediaSource, t.CampaignID, t.AdsetID, t.CreativeID,
		t.SiteID, t.SubSiteID, t.Country, t.IDFA, t.GAID, t.IP, t.UA, c.amount("cost", t.Cost), t.Currency}
}

var clickColumns = cat([]string{"click_id", "s2s"}, touchColumns)

func clickRow(value []byte) ([]any, error) {
	var k event.Click
	if err := decode(value, &k); err != nil {
		return nil, err
	}
	var c conv
	c.check(k.ClickID != "", "click_id is empty")
	row := cat([]any{k.ClickID, b2u(k.S2S)}, touchRow(&c, &k.Touch))
	return row, c.err
}

var impressionColumns = cat([]string{"impression_id"}, touchColumns)

func impressionRow(value []byte) ([]any, error) {
	var i event.Impression
	if err := decode(value, &i); err != nil {
		return nil, err
	}
	var c conv
	c.check(i.ImpressionID != "", "impression_id is empty")
	row := cat([]any{i.ImpressionID}, touchRow(&c, &i.Touch))
	return row, c.err
}

var matchTypes = map[event.MatchType]bool{event.MatchOrganic: true, event.MatchClickID: true,
	event.MatchDeviceID: true, event.MatchProbabilistic: true, event.MatchViewThrough: true}

func flags(f []string) []string {
	if f == nil {
		return []string{}
	}
	return f
}

// attributionColumns are the columns of our attribution shared by installs
// and events; attributionRow fills them in the same order.
var attributionColumns = []string{"match_type", "touch_id", "media_source", "campaign_id", "adset_id", "creative_id",
	"site_id", "sub_site_id", "fraud_flags", "attributed_at"}

func attributionRow(c *conv, a *event.Attribution) []any {
	return []any{c.matchType(a.MatchType), a.TouchID, a.MediaSource, a.CampaignID, a.AdsetID, a.CreativeID,
		a.SiteID, a.SubSiteID, flags(a.FraudFlags), c.time("attributed_at", a.AttributedAt)}
}

var installColumns = cat([]string{"event_id", "mmp", "received_at", "install_time", "app_id", "platform", "click_id",
	"idfa", "gaid", "idfv", "android_id", "ip", "ua", "country",
	"mmp_media_source", "mmp_campaign_id", "mmp_campaign_name", "mmp_match_type", "is_retargeting", "rejected", "reject_reason",
	"touch_time", "ctit_seconds", "cost", "cost_currency", "mmp_disagrees", "reinstall"}, attributionColumns)

func installRow(value []byte) ([]any, error) {
	var a event.AttributedInstall
	if err := decode(value, &a); err != nil {
		return nil, err
	}
	var c conv
	pb := &a.Install.Postback
	c.check(pb.EventID != "" && pb.AppID != "", "event_id and app_id are required")
	row := cat([]any{pb.EventID, pb.MMP, c.time("received_at", pb.ReceivedAt), c.time("install_time", a.InstallTime),
		pb.AppID, c.platform(pb.Platform), pb.ClickID, pb.IDFA, pb.GAID, pb.IDFV, pb.AndroidID, pb.IP, pb.UA, pb.Country,
		pb.MediaSource, pb.Placement.CampaignID, pb.CampaignName, pb.MatchType, b2u(pb.IsRetargeting), b2u(a.Rejected), a.RejectReason,
		c.timePtr("touch_time", a.TouchTime), a.CTITSeconds, c.amount("attributed_cost", a.Attribution.Cost), a.CostCurrency,
		b2u(a.MMPDisagrees), b2u(a.Reinstall || a.IsReinstall)}, attributionRow(&c, &a.Attribution))
	return row, c.err
}

var taxonomy = map[event.Taxonomy]bool{event.NameCustom: true, event.NameInstall: true, event.NameAppOpen: true,
	event.NamePurchase: true, event.NameLevelAchieved: true, event.NameScreenView: true, event.NameClick: true, event.NameFormSubmit: true}

var eventColumns = cat([]string{"event_id", "mmp", "received_at", "event_time", "install_time", "install_event_id", "app_id", "platform",
	"click_id", "idfa", "gaid", "idfv", "android_id", "country", "event_name", "original_event_name", "event_value",
	"revenue", "currency", "revenue_reporting", "reporting_currency"}, attributionColumns)

func eventRow(value []byte) ([]any, error) {
	var a event.AttributedEvent
	if err := decode(value, &a); err != nil {
		return nil, err
	}
	var c conv
	pb := &a.InAppEvent.Postback
	c.check(pb.EventID != "" && pb.AppID != "", "event_id and app_id are required")
	c.check(taxonomy[a.Name], "event_name %q is not in the taxonomy", a.Name)
	row := cat([]any{pb.EventID, pb.MMP, c.time("received_at", pb.ReceivedAt), c.time("event_time", a.EventTime),
		c.timePtr("install_time", a.InAppEvent.InstallTime), a.InstallEventID, pb.AppID, c.platform(pb.Platform),
		pb.ClickID, pb.IDFA, pb.GAID, pb.IDFV, pb.AndroidID, pb.Country, string(a.Name), a.OriginalName, a.Value,
		c.amount("revenue", a.Revenue), a.Currency, c.amount("revenue_reporting", a.RevenueReporting), a.ReportingCurrency},
		attributionRow(&c, &a.Attribution))
	return row, c.err
}

// deliveriesTable loads the forwarder's delivery log.
func deliveriesTable() *Table {
	return &Table{Name: "postback_deliveries", Columns: deliveryColumns, Row: deliveryRow}
}

var deliveryColumns = []string{"delivery_id", "endpoint_id", "publisher", "kind", "event_id", "app_id", "campaign_id", "media_source",
	"converted_at", "attempt", "attempted_at", "latency_ms", "method", "host", "status", "error", "response", "outcome", "final",
	"next_attempt_at", "payout", "payout_currency"}

var deliveryOutcomes = map[string]bool{forward.OutcomeDelivered: true, forward.OutcomeRetrying: true, forward.OutcomeFailed: true,
	forward.OutcomeExpired: true, forward.OutcomeDropped: true}

func deliveryRow(value []byte) ([]any, error) {
	var a forward.Attempt
	if err := decode(value, &a); err != nil {
		return nil, err
	}
	var c conv
	c.check(a.DeliveryID != "" && a.EndpointID != "", "delivery_id and endpoint_id are required")
	c.check(a.Kind == forward.KindInstall || a.Kind == forward.KindEvent, "kind %q is not install or event", a.Kind)
	c.check(deliveryOutcomes[a.Outcome], "outcome %q is not in the enum", a.Outcome)
	c.check(a.Attempt >= 0 && a.Attempt <= 65535 && a.Status >= 0 && a.Status <= 65535, "attempt or status out of range")
	latency := uint32(min(max(a.LatencyMS, 0), 1<<32-1))
	return []any{a.DeliveryID, a.EndpointID, a.Publisher, a.Kind, a.EventID, a.AppID, a.CampaignID, a.MediaSource,
		c.time("converted_at", a.ConvertedAt), uint16(a.Attempt), c.time("attempted_at", a.AttemptedAt), latency,
		a.Method, a.Host, uint16(a.Status), a.Error, a.Response, a.Outcome, b2u(a.Final),
		c.timePtr("next_attempt_at", a.NextAt), c.amount("payout", a.Payout), a.Currency}, c.err
}

var rejectedColumns = []string{"source", "kind", "received_at", "field", "reason", "event_id",
	"raw_method", "raw_path", "raw_query", "raw_content_type", "raw_body", "remote_ip"}

func rejectedRow(value []byte) ([]any, error) {
	var r event.Rejected
	if err := decode(value, &r); err != nil {
		return nil, err
	}
	var c conv
	return rejectedValues(r, c.time("received_at", r.ReceivedAt)), c.err
}

func rejectedValues(r event.Rejected, recv time.Time) []any {
	return []any{r.Source, r.Kind, recv, r.Field, r.Reason, r.EventID,
		r.Raw.Method, r.Raw.Path, r.Raw.Query, r.Raw.ContentType, r.Raw.Body, r.Raw.RemoteIP}
}

var skanColumns = []string{"postback_id", "framework", "version", "received_at", "ad_network_id", "skan_campaign_id",
	"source_identifier", "app_id", "transaction_id", "redownload", "source_app_id", "source_domain", "fidelity_type",
	"conversion_value", "coarse_conversion_value", "did_win", "postback_sequence_index", "country_code", "conversion_type",
	"impression_type", "marketplace_id", "ad_interaction_type", "key_id", "signature", "campaign_id", "media_source",
	"campaign_match", "raw_body", "remote_ip"}

var skanEnums = map[string]map[string]bool{
	"framework":               {"skadnetwork": true, "adattributionkit": true},
	"coarse_conversion_value": {"": true, "low": true, "medium": true, "high": true},
	"campaign_match":          {"exact": true, "partial": true, "ambiguous": true, "none": true},
}

func skanRow(value []byte) ([]any, error) {
	var p event.SKANPostback
	if err := decode(value, &p); err != nil {
		return nil, err
	}
	var c conv
	c.check(p.PostbackID != "" && p.AppID != "" && p.TransactionID != "", "postback_id, app_id and transaction_id are required")
	for col, v := range map[string]string{"framework": p.Framework, "coarse_conversion_value": p.CoarseConversionValue, "campaign_match": p.CampaignMatch} {
		c.check(skanEnums[col][v], "%s %q is not in the enum", col, v)
	}
	c.check(p.PostbackSequenceIndex >= 0 && p.PostbackSequenceIndex <= 2, "postback_sequence_index %d is not 0, 1 or 2", p.PostbackSequenceIndex)
	u8 := func(name string, v *int64, max int64) *uint8 {
		if v == nil {
			return nil
		}
		c.check(*v >= 0 && *v <= max, "%s %d out of range", name, *v)
		x := uint8(*v)
		return &x
	}
	u64 := func(v *int64) *uint64 {
		if v == nil {
			return nil
		}
		c.check(*v >= 0, "negative id %d", *v)
		x := uint64(*v)
		return &x
	}
	row := []any{p.PostbackID, p.Framework, p.Version, c.time("received_at", p.ReceivedAt), p.AdNetworkID, u64(p.SKANCampaignID),
		p.SourceIdentifier, p.AppID, p.TransactionID, b2u(p.Redownload), u64(p.SourceAppID), p.SourceDomain, u8("fidelity_type", p.FidelityType, 1),
		u8("conversion_value", p.ConversionValue, 63), p.CoarseConversionValue, b2u(p.DidWin), uint8(p.PostbackSequenceIndex), p.CountryCode,
		p.ConversionType, p.ImpressionType, p.MarketplaceID, p.AdInteractionType, p.KeyID, p.Signature, p.CampaignID, p.MediaSource,
		p.CampaignMatch, p.Raw.Body, p.Raw.RemoteIP}
	return row, c.err
}

// sinkRejection is the rejected-table row for a record the sink could not
// load: the raw value is kept in raw_body so nothing is lost.
func sinkRejection(topic string, value []byte, cause error, now time.Time) []any {
	r := event.Rejected{Source: "sink", Kind: topic, Reason: cause.Error(), Raw: event.Raw{Method: "KAFKA", Path: topic, Body: string(value)}}
	return rejectedValues(r, now.UTC())
}

func cat[T any](parts ...[]T) []T {
	n := 0
	for _, p := range parts {
		n += len(p)
	}
	out := make([]T, 0, n)
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}
