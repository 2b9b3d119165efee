package event_test

import (
	"fmt"
	"io/fs"
	"reflect"
	"testing"
	"time"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"github.com/segmentio/encoding/json"

	"github.com/adtrack/postback/pkg/event"
	"github.com/adtrack/postback/pkg/forward"
	"github.com/adtrack/postback/pkg/money"
	"github.com/adtrack/postback/schemas"
	"github.com/adtrack/postback/schemas/schematest"
)

// compile returns the topic's schema or fails the test.
func compile(t *testing.T, topic string) *jsonschema.Schema {
	t.Helper()
	s, err := schematest.Compile(topic)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

var (
	t0  = time.Date(2026, 11, 28, 10, 0, 0, 123_000_000, time.UTC)
	t1  = t0.Add(-90 * time.Second)
	ctt = int64(90)
)

func device() event.Device {
	return event.Device{IDFA: "6d92078a-8246-4ba4-ae5b-76104861e7dc", GAID: "38400000-8cf0-11bd-b23e-10b96e40000d",
		IDFV: "IDFV-1", AndroidID: "9774d56d682e549c", IP: "203.0.113.7", UA: "Mozilla/5.0 (iPhone)"}
}

func placement() event.Placement {
	return event.Placement{CampaignID: "c1", AdsetID: "as1", CreativeID: "cr1", SiteID: "s1", SubSiteID: "ss1"}
}

func touch() event.Touch {
	return event.Touch{Time: t1, AppID: "id123", Platform: event.PlatformIOS, MediaSource: "net_int", Placement: placement(),
		PublisherSubs: event.PublisherSubs{Sub1: "p1", Sub2: "p2", Sub3: "p3", Sub4: "p4", Sub5: "p5"},
		Country:       "DE", Device: device(), Cost: money.Amount(2500), Currency: "USD"}
}

func postback() event.Postback {
	return event.Postback{EventID: "e1", MMP: "appsflyer", ReceivedAt: t0, AppID: "id123", Platform: event.PlatformIOS,
		ClickID: "k1", Device: device(), Country: "DE", MediaSource: "net_int", CampaignName: "Spring", Placement: placement(),
		IsRetargeting: true, MatchType: "srn", Cost: &event.Cost{Model: "CPI", Amount: 1_500_000, Currency: "USD"},
		Raw: event.Raw{Method: "GET", Path: "/v1/postbacks/appsflyer/install", Query: "clickid=k1", ContentType: "application/json",
			Body: "{}", RemoteIP: "45.92.116.1"}}
}

func attribution() event.Attribution {
	return event.Attribution{MatchType: event.MatchClickID, TouchID: "k1", TouchTime: &t1, CTITSeconds: &ctt,
		CampaignID: "c1", MediaSource: "net_int", AdsetID: "as1", CreativeID: "cr1", SiteID: "s1", SubSiteID: "ss1",
		Sub1: "p1", Sub2: "p2", Sub3: "p3", Sub4: "p4", Sub5: "p5",
		Cost: 1_500_000, CostCurrency: "USD", FraudFlags: []string{event.FraudClickFlooding}, MMPDisagrees: true,
		Reinstall: true, AttributedAt: t0}
}

func install() event.Install {
	return event.Install{Postback: postback(), InstallTime: t0, ClickTime: &t1, Rejected: true,
		RejectReason: "click_flood", IsReinstall: true}
}

func inApp() event.InAppEvent {
	return event.InAppEvent{Postback: postback(), EventTime: t0, InstallTime: &t1, Name: event.NamePurchase,
		OriginalName: "af_purchase", Revenue: 4_990_000, Currency: "EUR", Value: `{"sku":"x"}`}
}

// examples holds one fully populated value per topic. fullyPopulated checks
// that every field is set, so a new field cannot escape the schema check.
var examples = map[string]any{
	"clicks.v1":              event.Click{ClickID: "k1", S2S: true, Touch: touch()},
	"impressions.v1":         event.Impression{ImpressionID: "i1", Touch: touch()},
	"installs.raw.v1":        install(),
	"events.raw.v1":          inApp(),
	"installs.attributed.v1": event.AttributedInstall{Install: install(), Attribution: attribution()},
	"events.attributed.v1": event.AttributedEvent{InAppEvent: inApp(), Attribution: attribution(), InstallEventID: "e0",
		RevenueReporting: 5_400_000, ReportingCurrency: "USD"},
	"postbacks.rejected.v1": event.Rejected{Source: "adjust", Kind: "install", ReceivedAt: t0, Field: "revenue",
		Reason: "not a number", EventID: "e9", Raw: postback().Raw},
	"campaigns.v1": event.Campaign{ID: "c1", AppID: "id123", Platform: event.PlatformIOS, MediaSource: "net_int", MMP: "appsflyer",
		TrackingLink: "https://app.appsflyer.com/id123?clickid={click_id}", CostModel: "CPI", Bid: 1_500_000, Currency: "USD",
		MMPIDs: map[string]event.MMPIDs{"kochava": {CampaignID: "ko-c1", MediaSource: "Net"}},
		SKAN:   &event.SKANIDs{AdNetworkID: "example123.skadnetwork", CampaignIDs: []int{42}, SourceIdentifiers: []string{"5239"}}},
	"skan.v1": event.SKANPostback{PostbackID: "6aafb7a5-0170-41b5-bbe4-fe71dedf1e28/1", Framework: "adattributionkit", Version: "4.0",
		ReceivedAt: t0, AdNetworkID: "example123.skadnetwork", SKANCampaignID: &ctt, SourceIdentifier: "5239", AppID: "id525463029",
		TransactionID: "6aafb7a5-0170-41b5-bbe4-fe71dedf1e28", Redownload: true, SourceAppID: &ctt, SourceDomain: "example.com",
		FidelityType: &one, ConversionValue: &cv, CoarseConversionValue: "high", DidWin: true, PostbackSequenceIndex: 1,
		CountryCode: "US", ConversionType: "redownload", ImpressionType: "app-impression", MarketplaceID: "com.apple.AppStore",
		AdInteractionType: "click", KeyID: "apple-cas-identifier/0", Signature: "MEUCIQ==", CampaignID: "c1", MediaSource: "net_int",
		CampaignMatch: "exact", Raw: event.Raw{Method: "POST", Path: "/v1/skan", Body: "{}", ContentType: "application/json", Query: "x=1", RemoteIP: "203.0.113.9"}},
	"endpoints.v1": forward.Endpoint{ID: "pub42", Publisher: "Pub 42", URL: "https://cb.pub42.example/?c={click_id}", Method: "POST", Body: "json",
		Match: forward.Match{MediaSources: []string{"pub42_int"}, Campaigns: []string{"c1"}, SiteIDs: []string{"s1"}, Apps: []string{"id123"},
			Kinds: []string{"install", "event"}, EventNames: []string{"purchase"}},
		Fields: map[string]string{"event": "{event_name}"}, DeviceIDs: "hashed", KeyID: "pub42-2026",
		Payout: forward.Payout{Model: "cpa", Amount: 200_000, Currency: "USD", Share: 300_000}},
	"deliveries.v1": forward.Attempt{Meta: forward.Meta{DeliveryID: "d1", EndpointID: "pub42", Publisher: "Pub 42", Kind: "install",
		EventID: "e1", AppID: "id123", CampaignID: "c1", MediaSource: "pub42_int", ConvertedAt: t0},
		Attempt: 2, AttemptedAt: t0, LatencyMS: 41, Method: "GET", Host: "cb.pub42.example", Status: 503, Error: "timeout",
		Response: "busy", Outcome: "retrying", Final: true, NextAt: &t0, Payout: 1_500_000, Currency: "USD"},
}

var one, cv = int64(1), int64(42)

func TestExamplesValidate(t *testing.T) {
	files, _ := fs.Glob(schemas.Events, "events/*.v1.schema.json")
	if len(files) != len(examples) {
		t.Fatalf("%d topic schemas but %d examples: every topic needs both", len(files), len(examples))
	}
	for topic, v := range examples {
		t.Run(topic, func(t *testing.T) {
			if err := fullyPopulated(reflect.ValueOf(v), topic); err != nil {
				t.Fatalf("example is not fully populated: %v", err)
			}
			if err := schematest.Validate(compile(t, topic), v); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// TestSchemasRejectDrift proves the schemas are strict: an unknown field or a
// wrongly typed known one fails validation.
func TestSchemasRejectDrift(t *testing.T) {
	s := compile(t, "installs.raw.v1")
	b, _ := json.Marshal(install())
	for name, mutate := range map[string]func(m map[string]any){
		"unknown field":       func(m map[string]any) { m["surprise"] = 1 },
		"missing event_id":    func(m map[string]any) { delete(m, "event_id") },
		"float revenue":       func(m map[string]any) { m["cost"].(map[string]any)["amount"] = 1.5 },
		"lower-case currency": func(m map[string]any) { m["cost"].(map[string]any)["currency"] = "usd" },
		"upper-case idfa":     func(m map[string]any) { m["idfa"] = "6D92078A-8246-4BA4-AE5B-76104861E7DC" },
		"bad time":            func(m map[string]any) { m["install_time"] = "yesterday" },
	} {
		var m map[string]any
		if err := json.Unmarshal(b, &m); err != nil {
			t.Fatal(err)
		}
		mutate(m)
		if err := s.Validate(m); err == nil {
			t.Errorf("%s: validated, want an error", name)
		}
	}
}

func TestRoundTrip(t *testing.T) {
	in := event.AttributedEvent{InAppEvent: inApp(), Attribution: attribution(), RevenueReporting: 1, ReportingCurrency: "USD"}
	b, err := json.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	var out event.AttributedEvent
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(in, out) {
		t.Fatalf("round trip changed the value:\n in=%+v\nout=%+v", in, out)
	}
}

func fullyPopulated(v reflect.Value, path string) error {
	switch v.Kind() {
	case reflect.Pointer:
		if v.IsNil() {
			return fmt.Errorf("%s is nil", path)
		}
		return fullyPopulated(v.Elem(), path)
	case reflect.Struct:
		if v.Type() == reflect.TypeOf(time.Time{}) {
			if v.Interface().(time.Time).IsZero() {
				return fmt.Errorf("%s is zero", path)
			}
			return nil
		}
		for i := 0; i < v.NumField(); i++ {
			if err := fullyPopulated(v.Field(i), path+"."+v.Type().Field(i).Name); err != nil {
				return err
			}
		}
		return nil
	default:
		if v.IsZero() {
			return fmt.Errorf("%s is zero", path)
		}
		return nil
	}
}

func TestJoinKey(t *testing.T) {
	p := postback()
	if p.JoinKey() != "k1" {
		t.Fatalf("click id should win, got %q", p.JoinKey())
	}
	p.ClickID = ""
	if p.JoinKey() != p.IDFA {
		t.Fatalf("IDFA should be next, got %q", p.JoinKey())
	}
	p.IDFA = ""
	if p.JoinKey() != p.GAID {
		t.Fatalf("GAID should be next, got %q", p.JoinKey())
	}
	p.GAID = ""
	if p.JoinKey() != "IDFV-1" {
		t.Fatalf("IDFV should be next, got %q", p.JoinKey())
	}
	p.IDFV = ""
	if p.JoinKey() != p.AndroidID {
		t.Fatalf("android id should be last, got %q", p.JoinKey())
	}
}
