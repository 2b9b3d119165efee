package sink

import (
	"bytes"
	"errors"
	"fmt"
	"time"

	"github.com/segmentio/encoding/json"
	"github.com/shopspring/decimal"

	"github.com/adtrack/postback/pkg/event"
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
func Tables(clicks, impressions, installs, events, rejected string) map[string]*Table {
	return map[string]*Table{
		clicks:      {Name: "clicks", Columns: clickColumns, Row: clickRow},
		impressions: {Name: "impressions", Columns: impressionColumns, Row: impressionRow},
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

func dt(name string, t time.Time) (time.Time, error) {
	if t.Before(minTime) || t.After(maxTime) {
		return t, contentErr("%s %s outside ClickHouse DateTime range", name, t.Format(time.RFC3339))
	}
	return t.UTC(), nil
}

func dtPtr(name string, t *time.Time) (*time.Time, error) {
	if t == nil {
		return nil, nil
	}
	v, err := dt(name, *t)
	return &v, err
}

// maxDecimal is the largest magnitude Decimal(18, 6) holds, in micros.
const maxDecimal = 999_999_999_999_999_999

// dec converts an amount for a Decimal(18, 6) column; an amount beyond the
// column's range would make ClickHouse refuse the whole INSERT, so it is a
// content error of this record instead.
func dec(name string, a money.Amount) (decimal.Decimal, error) {
	if m := a.Micros(); m > maxDecimal || m < -maxDecimal {
		return decimal.Decimal{}, contentErr("%s %s outside Decimal(18, 6)", name, a)
	}
	return decimal.New(a.Micros(), -money.Scale), nil
}

func b2u(b bool) uint8 {
	if b {
		return 1
	}
	return 0
}

func platform(p event.Platform) (string, error) {
	if !p.Valid() {
		return "", contentErr("platform %q is not in the enum", p)
	}
	return string(p), nil
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
	"site_id", "sub_site_id", "country", "idfa", "gaid", "ip", "ua"}

func touchRow(t *event.Touch) ([]any, error) {
	tm, err := dt("time", t.Time)
	if err != nil {
		return nil, err
	}
	p, err := platform(t.Platform)
	if err != nil {
		return nil, err
	}
	if t.AppID == "" {
		return nil, contentErr("app_id is empty")
	}
	return []any{tm, t.AppID, p, t.MediaSource, t.CampaignID, t.AdsetID, t.CreativeID,
		t.SiteID, t.SubSiteID, t.Country, t.IDFA, t.GAID, t.IP, t.UA}, nil
}

var clickColumns = cat([]string{"click_id"}, touchColumns, []string{"s2s", "cost", "currency"})

func clickRow(value []byte) ([]any, error) {
	var c event.Click
	if err := decode(value, &c); err != nil {
		return nil, err
	}
	if c.ClickID == "" {
		return nil, contentErr("click_id is empty")
	}
	t, err := touchRow(&c.Touch)
	if err != nil {
		return nil, err
	}
	cost, err := dec("cost", c.Cost)
	if err != nil {
		return nil, err
	}
	return cat([]any{c.ClickID}, t, []any{b2u(c.S2S), cost, c.Currency}), nil
}

var impressionColumns = cat([]string{"impression_id"}, touchColumns, []string{"cost", "currency"})

func impressionRow(value []byte) ([]any, error) {
	var i event.Impression
	if err := decode(value, &i); err != nil {
		return nil, err
	}
	if i.ImpressionID == "" {
		return nil, contentErr("impression_id is empty")
	}
	t, err := touchRow(&i.Touch)
	if err != nil {
		return nil, err
	}
	cost, err := dec("cost", i.Cost)
	if err != nil {
		return nil, err
	}
	return cat([]any{i.ImpressionID}, t, []any{cost, i.Currency}), nil
}

var matchTypes = map[event.MatchType]bool{event.MatchOrganic: true, event.MatchClickID: true,
	event.MatchDeviceID: true, event.MatchProbabilistic: true, event.MatchViewThrough: true}

func flags(f []string) []string {
	if f == nil {
		return []string{}
	}
	return f
}

var installColumns = []string{"event_id", "mmp", "received_at", "install_time", "app_id", "platform", "click_id",
	"idfa", "gaid", "idfv", "android_id", "ip", "ua", "country",
	"mmp_media_source", "mmp_campaign_id", "mmp_campaign_name", "mmp_match_type", "is_retargeting", "rejected", "reject_reason",
	"match_type", "touch_id", "touch_time", "ctit_seconds", "media_source", "campaign_id", "adset_id", "creative_id",
	"site_id", "sub_site_id", "cost", "cost_currency", "fraud_flags", "mmp_disagrees", "reinstall", "attributed_at"}

func installRow(value []byte) ([]any, error) {
	var a event.AttributedInstall
	if err := decode(value, &a); err != nil {
		return nil, err
	}
	if a.EventID == "" || a.AppID == "" {
		return nil, contentErr("event_id and app_id are required")
	}
	if !matchTypes[a.Attribution.MatchType] {
		return nil, contentErr("match_type %q is not in the enum", a.Attribution.MatchType)
	}
	p, err := platform(a.Platform)
	if err != nil {
		return nil, err
	}
	recv, err := dt("received_at", a.ReceivedAt)
	if err != nil {
		return nil, err
	}
	inst, err := dt("install_time", a.InstallTime)
	if err != nil {
		return nil, err
	}
	touch, err := dtPtr("touch_time", a.TouchTime)
	if err != nil {
		return nil, err
	}
	attr, err := dt("attributed_at", a.AttributedAt)
	if err != nil {
		return nil, err
	}
	cost, err := dec("attributed_cost", a.Attribution.Cost)
	if err != nil {
		return nil, err
	}
	pb := &a.Install.Postback
	return []any{a.EventID, pb.MMP, recv, inst, pb.AppID, p, pb.ClickID,
		pb.IDFA, pb.GAID, pb.IDFV, pb.AndroidID, pb.IP, pb.UA, pb.Country,
		pb.MediaSource, pb.Placement.CampaignID, pb.CampaignName, pb.MatchType, b2u(pb.IsRetargeting), b2u(a.Rejected), a.RejectReason,
		string(a.Attribution.MatchType), a.TouchID, touch, a.CTITSeconds, a.Attribution.MediaSource, a.Attribution.CampaignID,
		a.Attribution.AdsetID, a.Attribution.CreativeID, a.Attribution.SiteID, a.Attribution.SubSiteID,
		cost, a.CostCurrency, flags(a.FraudFlags), b2u(a.MMPDisagrees), b2u(a.Reinstall || a.IsReinstall), attr}, nil
}

var taxonomy = map[event.Taxonomy]bool{event.NameCustom: true, event.NameInstall: true, event.NameAppOpen: true,
	event.NamePurchase: true, event.NameLevelAchieved: true, event.NameScreenView: true, event.NameClick: true, event.NameFormSubmit: true}

var eventColumns = []string{"event_id", "mmp", "received_at", "event_time", "install_time", "install_event_id", "app_id", "platform",
	"click_id", "idfa", "gaid", "idfv", "android_id", "country", "event_name", "original_event_name", "event_value",
	"revenue", "currency", "revenue_reporting", "reporting_currency", "match_type", "touch_id", "media_source", "campaign_id",
	"adset_id", "creative_id", "site_id", "sub_site_id", "fraud_flags", "attributed_at"}

func eventRow(value []byte) ([]any, error) {
	var a event.AttributedEvent
	if err := decode(value, &a); err != nil {
		return nil, err
	}
	if a.EventID == "" || a.AppID == "" {
		return nil, contentErr("event_id and app_id are required")
	}
	if !taxonomy[a.Name] {
		return nil, contentErr("event_name %q is not in the taxonomy", a.Name)
	}
	if !matchTypes[a.Attribution.MatchType] {
		return nil, contentErr("match_type %q is not in the enum", a.Attribution.MatchType)
	}
	p, err := platform(a.Platform)
	if err != nil {
		return nil, err
	}
	recv, err := dt("received_at", a.ReceivedAt)
	if err != nil {
		return nil, err
	}
	evt, err := dt("event_time", a.EventTime)
	if err != nil {
		return nil, err
	}
	inst, err := dtPtr("install_time", a.InAppEvent.InstallTime)
	if err != nil {
		return nil, err
	}
	attr, err := dt("attributed_at", a.AttributedAt)
	if err != nil {
		return nil, err
	}
	rev, err := dec("revenue", a.Revenue)
	if err != nil {
		return nil, err
	}
	revRep, err := dec("revenue_reporting", a.RevenueReporting)
	if err != nil {
		return nil, err
	}
	pb := &a.InAppEvent.Postback
	return []any{a.EventID, pb.MMP, recv, evt, inst, a.InstallEventID, pb.AppID, p,
		pb.ClickID, pb.IDFA, pb.GAID, pb.IDFV, pb.AndroidID, pb.Country, string(a.Name), a.OriginalName, a.Value,
		rev, a.Currency, revRep, a.ReportingCurrency, string(a.Attribution.MatchType), a.TouchID,
		a.Attribution.MediaSource, a.Attribution.CampaignID, a.Attribution.AdsetID, a.Attribution.CreativeID,
		a.Attribution.SiteID, a.Attribution.SubSiteID, flags(a.FraudFlags), attr}, nil
}

var rejectedColumns = []string{"source", "kind", "received_at", "field", "reason", "event_id",
	"raw_method", "raw_path", "raw_query", "raw_content_type", "raw_body", "remote_ip"}

func rejectedRow(value []byte) ([]any, error) {
	var r event.Rejected
	if err := decode(value, &r); err != nil {
		return nil, err
	}
	recv, err := dt("received_at", r.ReceivedAt)
	if err != nil {
		return nil, err
	}
	return rejectedValues(r, recv), nil
}

func rejectedValues(r event.Rejected, recv time.Time) []any {
	return []any{r.Source, r.Kind, recv, r.Field, r.Reason, r.EventID,
		r.Raw.Method, r.Raw.Path, r.Raw.Query, r.Raw.ContentType, r.Raw.Body, r.Raw.RemoteIP}
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
