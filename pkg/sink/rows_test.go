package sink

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/encoding/json"

	"github.com/adtrack/postback/pkg/event"
)

var (
	t0 = time.Date(2026, 11, 28, 10, 0, 0, 0, time.UTC)
	t1 = t0.Add(-time.Minute)
)

func touch() event.Touch {
	return event.Touch{Time: t0, AppID: "app", Platform: event.PlatformIOS, MediaSource: "net",
		Placement: event.Placement{CampaignID: "c1", SiteID: "s1"}, Cost: 2500, Currency: "USD"}
}

func attributedInstall() event.AttributedInstall {
	ctit := int64(60)
	return event.AttributedInstall{
		Install: event.Install{Postback: event.Postback{EventID: "e1", MMP: "appsflyer", ReceivedAt: t0, AppID: "app",
			Platform: event.PlatformIOS, Raw: event.Raw{Method: "GET", Path: "/"}}, InstallTime: t0},
		Attribution: event.Attribution{MatchType: event.MatchClickID, TouchID: "k1", TouchTime: &t1, CTITSeconds: &ctit,
			CampaignID: "c1", MediaSource: "net", Cost: 1_500_000, CostCurrency: "USD", AttributedAt: t0},
	}
}

func attributedEvent() event.AttributedEvent {
	return event.AttributedEvent{
		InAppEvent: event.InAppEvent{Postback: event.Postback{EventID: "v1", MMP: "adjust", ReceivedAt: t0, AppID: "app",
			Raw: event.Raw{Method: "GET", Path: "/"}}, EventTime: t0, Name: event.NamePurchase, OriginalName: "buy",
			Revenue: 4_990_000, Currency: "EUR"},
		Attribution:      event.Attribution{MatchType: event.MatchOrganic, FraudFlags: []string{"click_flooding"}, AttributedAt: t0},
		RevenueReporting: 5_400_000, ReportingCurrency: "USD",
	}
}

func skanPostback() event.SKANPostback {
	cv := int64(20)
	return event.SKANPostback{PostbackID: "tx-1/0", Framework: "skadnetwork", Version: "4.0", ReceivedAt: t0,
		AdNetworkID: "n.skadnetwork", SourceIdentifier: "5239", AppID: "id525463029", TransactionID: "tx-1",
		ConversionValue: &cv, DidWin: true, CampaignMatch: "exact", CampaignID: "c1", Signature: "MEUC",
		Raw: event.Raw{Method: "POST", Path: "/v1/skan"}}
}

func enc(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestRowsMatchColumns(t *testing.T) {
	tables := Tables("c", "i", "ia", "ea", "r", "s")
	values := map[string][]byte{
		"c":  enc(t, event.Click{ClickID: "k1", Touch: touch()}),
		"i":  enc(t, event.Impression{ImpressionID: "i1", Touch: touch()}),
		"ia": enc(t, attributedInstall()),
		"ea": enc(t, attributedEvent()),
		"r":  enc(t, event.Rejected{Source: "adjust", ReceivedAt: t0, Reason: "bad", Raw: event.Raw{Method: "GET", Path: "/"}}),
		"s":  enc(t, skanPostback()),
	}
	for topic, tab := range tables {
		vals, err := tab.Row(values[topic])
		if err != nil {
			t.Fatalf("%s: %v", tab.Name, err)
		}
		if len(vals) != len(tab.Columns) {
			t.Errorf("%s: %d values for %d columns", tab.Name, len(vals), len(tab.Columns))
		}
	}
	vals, _ := tables["ea"].Row(values["ea"])
	col := func(name string) any {
		for i, c := range tables["ea"].Columns {
			if c == name {
				return vals[i]
			}
		}
		t.Fatalf("no column %s", name)
		return nil
	}
	if col("revenue_reporting").(interface{ String() string }).String() != "5.4" || col("event_name") != "purchase" || col("match_type") != "organic" {
		t.Errorf("event row values wrong: %v", vals)
	}
	if fl := col("fraud_flags").([]string); len(fl) != 1 {
		t.Errorf("fraud flags %v", fl)
	}
}

func TestBadContentIsErrContent(t *testing.T) {
	tables := Tables("c", "i", "ia", "ea", "r", "s")
	badInstall := attributedInstall()
	badInstall.Attribution.MatchType = "telepathy"
	oldEvent := attributedEvent()
	oldEvent.EventTime = time.Date(1969, 1, 1, 0, 0, 0, 0, time.UTC)
	badName := attributedEvent()
	badName.Name = "dance"
	cases := map[string]struct {
		topic string
		value []byte
	}{
		"not json":                  {"c", []byte("{")},
		"empty click id":            {"c", enc(t, event.Click{Touch: touch()})},
		"bad platform":              {"i", []byte(`{"impression_id":"x","time":"2026-11-28T10:00:00Z","app_id":"a","platform":"symbian","media_source":"m","cost":"0"}`)},
		"unknown match":             {"ia", enc(t, badInstall)},
		"before 1970":               {"ea", enc(t, oldEvent)},
		"not in taxonomy":           {"ea", enc(t, badName)},
		"cost beyond Decimal(18,6)": {"c", []byte(`{"click_id":"k","time":"2026-11-28T10:00:00Z","app_id":"a","media_source":"m","cost":"1000000000000"}`)},
		"bad revenue":               {"ea", []byte(`{"event_id":"x","app_id":"a","revenue":"abc"}`)},
	}
	for name, c := range cases {
		_, err := tables[c.topic].Row(c.value)
		if !errors.Is(err, ErrContent) {
			t.Errorf("%s: err = %v, want ErrContent", name, err)
		}
	}
}

func TestSinkRejectionKeepsValue(t *testing.T) {
	vals := sinkRejection("clicks.v1", []byte("{broken"), errors.New("why"), t0)
	if len(vals) != len(rejectedColumns) {
		t.Fatalf("%d values for %d columns", len(vals), len(rejectedColumns))
	}
	if vals[0] != "sink" || vals[1] != "clicks.v1" || vals[4] != "why" || vals[10] != "{broken" {
		t.Fatalf("rejection row %v", vals)
	}
}

func FuzzRows(f *testing.F) {
	f.Add([]byte(`{"click_id":"k","time":"2026-11-28T10:00:00Z","app_id":"a","media_source":"m","cost":"1"}`))
	f.Add([]byte(`{"event_id":"e","app_id":"a","event_time":"2026-11-28T10:00:00Z","event_name":"purchase","match_type":"organic","revenue":"1.5"}`))
	f.Add([]byte(`null`))
	f.Add([]byte(`{"click_id":"` + event.KeyedClickID("c1", "k") + `","impression_id":"` + event.KeyedImpressionID("c1", "k") + `","time":"2026-11-28T10:00:00Z","app_id":"a","media_source":"m","cost":"1"}`))
	f.Add([]byte("{\"click_id\":\"k\\u0000\",\"time\":\"2026-11-28T10:00:00Z\",\"app_id\":\"a\xff\xfe\",\"media_source\":\"m\",\"cost\":\"1\"}"))
	f.Fuzz(func(t *testing.T, b []byte) {
		for _, tab := range Tables("c", "i", "ia", "ea", "r", "s") {
			vals, err := tab.Row(b)
			if err != nil {
				if !errors.Is(err, ErrContent) {
					t.Fatalf("%s: error not ErrContent: %v", tab.Name, err)
				}
				continue
			}
			if len(vals) != len(tab.Columns) {
				t.Fatalf("%s: %d values for %d columns", tab.Name, len(vals), len(tab.Columns))
			}
			// repeats.go reads a keyed table's id from its first column.
			if _, ok := vals[0].(string); tab.KeyedID && (!ok || !strings.HasSuffix(tab.Columns[0], "_id")) {
				t.Fatalf("%s: first column %s = %#v, want the touch id", tab.Name, tab.Columns[0], vals[0])
			}
		}
	})
}

// BenchmarkClickRow measures decoding one click into its column values, the
// sink's own per-record work, beside a plain json.Unmarshal of the same
// record into event.Click (the decode alone) in the same run.
func BenchmarkClickRow(b *testing.B) {
	v, _ := json.Marshal(event.Click{ClickID: "01a22293-324c-7895-a0fe-2156ad9cc812", Touch: touch()})
	tab := Tables("c", "i", "ia", "ea", "r", "s")["c"]
	b.Run("row", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := tab.Row(v); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("unmarshal_only", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			var c event.Click
			if err := json.Unmarshal(v, &c); err != nil {
				b.Fatal(err)
			}
		}
	})
}
