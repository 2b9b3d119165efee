//go:build integration

package analytics_test

import (
	"context"
	"fmt"
	"math"
	"reflect"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/shopspring/decimal"

	"github.com/adtrack/postback/pkg/testenv"
)

// This file holds the hand-made fixture and the helpers that load it and
// read views back; analytics_integration_test.go holds the assertions.

// placement is every dimension a row carries.
type placement struct {
	app, platform, media, campaign, adset, creative, site, subSite, country string
}

type touch struct {
	id             string
	at             time.Time
	p              placement
	cost, currency string
}

type install struct {
	id                  string
	at                  time.Time
	p                   placement
	cost, currency      string
	match               string
	flags               []string
	reinstall, rejected bool
}

// inAppEvent's revenue is revenue_reporting in currency (the reporting
// currency); the original revenue column gets a different amount and
// currency so a view that read it would be caught.
type inAppEvent struct {
	id, install       string
	at                time.Time
	p                 placement
	name              string
	revenue, currency string
}

// batch is what one sink flush would insert: each non-empty slice is one
// INSERT, so the materialized views see several blocks and hourly_stats
// holds rows of one key that are not merged yet.
type batch struct {
	impressions, clicks []touch
	installs            []install
	events              []inAppEvent
	skan                []skanPostback
}

// skanPostback is one verified Apple postback of skan.v1, delivered
// deliveries times (a device or relay resending it: one postback_id).
type skanPostback struct {
	id         string // postback_id
	at         time.Time
	p          placement // app and campaign it was mapped to
	version    string    // "" for AdAttributionKit
	win        bool
	seq        uint8
	redownload bool
	convType   string // AdAttributionKit conversion-type
	fine       *uint8
	coarse     string
	deliveries int
}

func fine(v uint8) *uint8 { return &v }

// Day D of the fixed fixture: long past, so every retention day has ended.
var dayD = time.Date(2024, 3, 4, 0, 0, 0, 0, time.UTC)

// at returns day D plus days, at hh:mm:ss UTC.
func at(days, hh, mm, ss int) time.Time {
	return dayD.AddDate(0, 0, days).Add(time.Duration(hh)*time.Hour + time.Duration(mm)*time.Minute + time.Duration(ss)*time.Second)
}

var (
	pCPI = placement{"app.a", "ios", "net_a", "c_cpi", "ad1", "cr1", "s1", "ss1", "US"}
	pCPC = placement{"app.a", "ios", "net_a", "c_cpc", "ad2", "cr2", "s2", "ss2", "US"}
	pCPM = placement{"app.a", "android", "net_b", "c_cpm", "ad3", "cr3", "s3", "", "DE"}
	pMix = placement{"app.a", "android", "net_b", "c_mix", "ad4", "cr4", "s3", "", "DE"}
	pOrg = placement{"app.a", "ios", "organic", "", "", "", "", "", "US"}
)

func touches(prefix string, n int, p placement, start time.Time, step time.Duration, cost, currency string) []touch {
	out := make([]touch, n)
	for i := range out {
		out[i] = touch{fmt.Sprintf("%s%d", prefix, i), start.Add(time.Duration(i) * step), p, cost, currency}
	}
	return out
}

func concat[T any](parts ...[]T) []T {
	var out []T
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

// fixedFixture is day D (2024-03-04), hours 10 and 11, and the in-app
// events of the following days that retention reads. The expected numbers
// in analytics_integration_test.go are computed by hand from it.
//
//	c_cpi   net_a, USD, CPI 2.50. Hour 10: 4 impressions, 2 clicks, installs
//	        n1 (click_id) and n2 (device_id, click_injection). Hour 11: 6
//	        impressions (two inserts), 2 clicks, n3 (click_id, click_flooding +
//	        click_injection), n4 reinstall, n5 rejected by the MMP
//	        (mmp_rejected); events: n1 buys 4.99, n3 buys 10.00, n2 opens.
//	c_cpc   net_a, USD, CPC 0.40. Hour 10: 3 clicks, no impressions. Hour 11:
//	        install n6 costing 0.
//	c_cpm   net_b, EUR, CPM 5 (0.005 per impression). Hour 10: 400
//	        impressions, 8 clicks, n7 (device_id) and n8 (view_through);
//	        hour 11: n7 buys for 3.00 USD (reporting currency).
//	c_mix   net_b: 2 clicks at 0.10 EUR and install m1 whose postback cost
//	        1.00 USD, in one row: two currencies.
//	organic installs o1, o2 (no cost, no currency).
//	Retention: n1 is active on D+1 (00:00:00), D+3, D+7; n2 on D+1 (twice)
//	and D+2; n3 on D+7 (23:59:59) and D+8 (00:00:00); n4 (reinstall) on
//	D+1; o1 on D+1.
func fixedFixture() []batch {
	return []batch{
		{ // hour 10
			impressions: concat(
				touches("imp_cpi_a", 4, pCPI, at(0, 10, 0, 0), time.Minute, "0", "USD"),
				touches("imp_cpm", 400, pCPM, at(0, 10, 0, 0), 5*time.Second, "0.005", "EUR"),
			),
			clicks: concat(
				touches("clk_cpi_a", 2, pCPI, at(0, 10, 5, 0), time.Minute, "0", "USD"),
				touches("clk_cpc", 3, pCPC, at(0, 10, 10, 0), time.Minute, "0.4", "USD"),
				touches("clk_cpm", 8, pCPM, at(0, 10, 15, 0), time.Minute, "0", "EUR"),
				touches("clk_mix", 2, pMix, at(0, 10, 25, 0), time.Minute, "0.1", "EUR"),
			),
			installs: []install{
				{id: "n1", at: at(0, 10, 20, 0), p: pCPI, cost: "2.5", currency: "USD", match: "click_id"},
				{id: "n2", at: at(0, 10, 40, 0), p: pCPI, cost: "2.5", currency: "USD", match: "device_id", flags: []string{"click_injection"}},
				{id: "n7", at: at(0, 10, 30, 0), p: pCPM, cost: "0", currency: "EUR", match: "device_id"},
				{id: "n8", at: at(0, 10, 35, 0), p: pCPM, cost: "0", currency: "EUR", match: "view_through"},
				{id: "m1", at: at(0, 10, 45, 0), p: pMix, cost: "1", currency: "USD", match: "click_id"},
				{id: "o1", at: at(0, 10, 50, 0), p: pOrg, cost: "0", currency: "", match: "organic"},
				{id: "o2", at: at(0, 10, 55, 0), p: pOrg, cost: "0", currency: "", match: "organic"},
			},
		},
		{ // hour 11, first flush
			impressions: touches("imp_cpi_b", 3, pCPI, at(0, 11, 0, 0), time.Minute, "0", "USD"),
			clicks:      touches("clk_cpi_b", 2, pCPI, at(0, 11, 1, 0), time.Minute, "0", "USD"),
			installs: []install{
				{id: "n3", at: at(0, 11, 5, 0), p: pCPI, cost: "2.5", currency: "USD", match: "click_id", flags: []string{"click_flooding", "click_injection"}},
				{id: "n4", at: at(0, 11, 10, 0), p: pCPI, cost: "0", currency: "USD", match: "click_id", reinstall: true},
				{id: "n5", at: at(0, 11, 15, 0), p: pCPI, cost: "0", currency: "USD", match: "click_id", rejected: true, flags: []string{"mmp_rejected"}},
				{id: "n6", at: at(0, 11, 20, 0), p: pCPC, cost: "0", currency: "USD", match: "click_id"},
			},
			events: []inAppEvent{
				{id: "e1", install: "n1", at: at(0, 11, 30, 0), p: pCPI, name: "purchase", revenue: "4.99", currency: "USD"},
				{id: "e2", install: "n3", at: at(0, 11, 50, 0), p: pCPI, name: "purchase", revenue: "10", currency: "USD"},
				{id: "e3", install: "n2", at: at(0, 11, 55, 0), p: pCPI, name: "app_open", revenue: "0", currency: "USD"},
				{id: "e4", install: "n7", at: at(0, 11, 40, 0), p: pCPM, name: "purchase", revenue: "3", currency: "USD"},
			},
		},
		{ // hour 11, second flush: same keys as the first one
			impressions: touches("imp_cpi_c", 3, pCPI, at(0, 11, 30, 0), time.Minute, "0", "USD"),
		},
		{ // SKAN / AdAttributionKit postbacks of c_cpi (see skanFixedNote)
			skan: []skanPostback{
				{id: "tx-s1/0", at: at(0, 12, 0, 0), p: pCPI, version: "4.0", win: true, fine: fine(20), deliveries: 2},
				{id: "tx-s2/0", at: at(0, 13, 0, 0), p: pCPI, version: "4.0", win: true, coarse: "high", deliveries: 1},
				{id: "tx-s3/0", at: at(0, 14, 0, 0), p: pCPI, version: "3.0", win: true, redownload: true, fine: fine(5), deliveries: 1},
				{id: "tx-s4/0", at: at(0, 15, 0, 0), p: pCPI, version: "3.0", win: false, deliveries: 1},
				{id: "tx-s6/0", at: at(0, 16, 0, 0), p: pCPI, version: "", win: true, convType: "re-engagement", deliveries: 1},
				{id: "tx-s7/0", at: at(0, 17, 0, 0), p: placement{app: "app.a", platform: "ios"}, version: "4.0", win: true, fine: fine(1), deliveries: 1},
				{id: "tx-s1/1", at: at(4, 9, 0, 0), p: pCPI, version: "4.0", win: true, seq: 1, coarse: "low", deliveries: 1},
			},
		},
		{ // the following days
			events: []inAppEvent{
				{id: "r_n1_d1", install: "n1", at: at(1, 0, 0, 0), p: pCPI, name: "app_open", revenue: "0", currency: "USD"},
				{id: "r_n1_d3", install: "n1", at: at(3, 12, 0, 0), p: pCPI, name: "app_open", revenue: "0", currency: "USD"},
				{id: "r_n1_d7", install: "n1", at: at(7, 8, 0, 0), p: pCPI, name: "app_open", revenue: "0", currency: "USD"},
				{id: "r_n2_d1a", install: "n2", at: at(1, 9, 0, 0), p: pCPI, name: "app_open", revenue: "0", currency: "USD"},
				{id: "r_n2_d1b", install: "n2", at: at(1, 21, 0, 0), p: pCPI, name: "app_open", revenue: "0", currency: "USD"},
				{id: "r_n2_d2", install: "n2", at: at(2, 10, 0, 0), p: pCPI, name: "app_open", revenue: "0", currency: "USD"},
				{id: "r_n3_d7", install: "n3", at: at(7, 23, 59, 59), p: pCPI, name: "app_open", revenue: "0", currency: "USD"},
				{id: "r_n3_d8", install: "n3", at: at(8, 0, 0, 0), p: pCPI, name: "app_open", revenue: "0", currency: "USD"},
				{id: "r_n4_d1", install: "n4", at: at(1, 10, 0, 0), p: pCPI, name: "app_open", revenue: "0", currency: "USD"},
				{id: "r_o1_d1", install: "o1", at: at(1, 12, 0, 0), p: pOrg, name: "app_open", revenue: "0", currency: "USD"},
			},
		},
	}
}

var (
	pR1   = placement{"app.r", "android", "net_r", "r_cpi", "r_ad", "r_cr1", "r_s1", "", "US"}
	pR2   = placement{"app.r", "android", "net_r", "r_cpc", "r_ad", "r_cr2", "r_s2", "", "US"}
	pLive = placement{"app.r", "android", "net_live", "r_live", "r_ad", "r_cr_live", "r_s3", "", "US"}
)

// recentFixture is dated relative to now, for the queries of
// docs/analytics.md that say "yesterday", "last hour", "last 7 days":
//
//	yesterday 12:00 UTC  r_cpi (net_r, CPI 1.50 USD): 20 impressions, 4
//	                     clicks, installs r_i1 and r_i2 (click_injection,
//	                     site r_s1), r_i1 buys for 6.00 an hour later;
//	                     r_cpc (net_r, CPC 0.25 USD): 4 clicks, install r_i3.
//	30 minutes ago       r_live (net_live, creative r_cr_live): 8
//	                     impressions, 2 clicks; install r_now a minute ago.
//	10 days ago 12:00    r_cpi installs r_old1 and r_old2 (1.50 each);
//	                     r_old1 is active on D1 and D7 (3 days ago).
//
// SKAN (skanFixedNote), day D, c_cpi: tx-s1 (4.0 win, fine 20, sent twice),
// tx-s2 (4.0 win, coarse high), tx-s3 (3.0 win redownload, fine 5), tx-s4
// (3.0 non-winning), tx-s6 (AdAttributionKit re-engagement, no value):
// installs 2, redownloads 1, reengagements 1, winning 4, non_winning 1,
// postbacks 5, resends 1; tx-s7 maps to no campaign; tx-s1's second
// window (coarse low) arrives on D+4. SKAN CPI of c_cpi on D: spend 7.50
// over 2 SKAN installs = 3.75, beside the MMP-side 7.50 / 3 = 2.50.
//
// Recent SKAN: yesterday r_cpi has 3 SKAN installs (r_sk1 sent twice) and
// a non-winning postback: SKAN CPI 3.00 / 3 = 1.00 beside 3.00 / 2 = 1.50.
//
// The recent rows use their own app, media sources and campaigns, so the
// fixed fixture's numbers do not move, and vice versa.
func recentFixture(now time.Time) []batch {
	today := now.UTC().Truncate(24 * time.Hour)
	y := today.Add(-12 * time.Hour)
	live := now.UTC().Add(-30 * time.Minute)
	c := today.AddDate(0, 0, -10).Add(12 * time.Hour)
	return []batch{{
		impressions: concat(
			touches("r_imp1_", 20, pR1, y, time.Second, "0", "USD"),
			touches("r_imp_live_", 8, pLive, live, time.Second, "0", "USD"),
		),
		clicks: concat(
			touches("r_clk1_", 4, pR1, y, time.Second, "0", "USD"),
			touches("r_clk2_", 4, pR2, y, time.Second, "0.25", "USD"),
			touches("r_clk_live_", 2, pLive, live, time.Second, "0", "USD"),
		),
		installs: []install{
			{id: "r_i1", at: y.Add(10 * time.Minute), p: pR1, cost: "1.5", currency: "USD", match: "click_id"},
			{id: "r_i2", at: y.Add(20 * time.Minute), p: pR1, cost: "1.5", currency: "USD", match: "device_id", flags: []string{"click_injection"}},
			{id: "r_i3", at: y.Add(30 * time.Minute), p: pR2, cost: "0", currency: "USD", match: "click_id"},
			{id: "r_old1", at: c, p: pR1, cost: "1.5", currency: "USD", match: "click_id"},
			{id: "r_old2", at: c, p: pR1, cost: "1.5", currency: "USD", match: "click_id"},
			{id: "r_now", at: now.UTC().Add(-time.Minute), p: pLive, cost: "0", currency: "USD", match: "click_id"},
		},
		skan: []skanPostback{
			{id: "r_sk1/0", at: y.Add(2 * time.Hour), p: pR1, version: "4.0", win: true, fine: fine(12), deliveries: 2},
			{id: "r_sk2/0", at: y.Add(3 * time.Hour), p: pR1, version: "4.0", win: true, coarse: "medium", deliveries: 1},
			{id: "r_sk3/0", at: y.Add(4 * time.Hour), p: pR1, version: "", win: true, convType: "download", coarse: "low", deliveries: 1},
			{id: "r_sk4/0", at: y.Add(5 * time.Hour), p: pR1, version: "4.0", win: false, deliveries: 1},
		},
		events: []inAppEvent{
			{id: "r_e1", install: "r_i1", at: y.Add(time.Hour), p: pR1, name: "purchase", revenue: "6", currency: "USD"},
			{id: "r_e2", install: "r_old1", at: c.AddDate(0, 0, 1), p: pR1, name: "app_open", revenue: "0", currency: "USD"},
			{id: "r_e3", install: "r_old1", at: c.AddDate(0, 0, 7), p: pR1, name: "app_open", revenue: "0", currency: "USD"},
		},
	}}
}

// newDB migrates a fresh database on the test server and returns a
// connection to it.
func newDB(t *testing.T) (context.Context, driver.Conn) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	t.Cleanup(cancel)
	_, conn := testenv.MigratedClickHouse(t)
	return ctx, conn
}

// load inserts the batches the way the sink does: batch inserts that name
// their columns (18.16 refuses an INSERT without a column list).
func load(ctx context.Context, t *testing.T, conn driver.Conn, batches []batch) {
	t.Helper()
	var offset uint64
	next := func() uint64 { offset++; return offset }
	send := func(table string, b driver.Batch, n int) {
		if n == 0 {
			_ = b.Abort()
			return
		}
		if err := b.Send(); err != nil {
			t.Fatalf("insert %d rows into %s: %v", n, table, err)
		}
	}
	prepare := func(table, cols string) driver.Batch {
		b, err := conn.PrepareBatch(ctx, "INSERT INTO "+table+" ("+cols+")")
		if err != nil {
			t.Fatalf("prepare %s: %v", table, err)
		}
		return b
	}
	appendRow := func(table string, b driver.Batch, v ...any) {
		if err := b.Append(v...); err != nil {
			t.Fatalf("append to %s: %v", table, err)
		}
	}
	const touchCols = "time, app_id, platform, media_source, campaign_id, adset_id, creative_id, site_id, sub_site_id, country, cost, currency, src_topic, src_partition, src_offset"
	for _, bt := range batches {
		for _, tt := range []struct {
			table, id string
			rows      []touch
		}{{"impressions", "impression_id", bt.impressions}, {"clicks", "click_id", bt.clicks}} {
			b := prepare(tt.table, tt.id+", "+touchCols)
			for _, r := range tt.rows {
				p := r.p
				appendRow(tt.table, b, r.id, r.at, p.app, p.platform, p.media, p.campaign, p.adset, p.creative, p.site, p.subSite, p.country,
					r.cost, r.currency, tt.table+".v1", uint32(0), next())
			}
			send(tt.table, b, len(tt.rows))
		}

		b := prepare("installs", "event_id, mmp, received_at, install_time, app_id, platform, country, match_type, touch_id, "+
			"media_source, campaign_id, adset_id, creative_id, site_id, sub_site_id, cost, cost_currency, fraud_flags, "+
			"reinstall, rejected, attributed_at, src_topic, src_partition, src_offset")
		for _, r := range bt.installs {
			p := r.p
			flags := r.flags
			if flags == nil {
				flags = []string{}
			}
			appendRow("installs", b, r.id, "appsflyer", r.at, r.at, p.app, p.platform, p.country, r.match, "touch-"+r.id,
				p.media, p.campaign, p.adset, p.creative, p.site, p.subSite, r.cost, r.currency, flags,
				b2u(r.reinstall), b2u(r.rejected), r.at, "installs.attributed.v1", uint32(0), next())
		}
		send("installs", b, len(bt.installs))

		b = prepare("events", "event_id, mmp, received_at, event_time, install_event_id, app_id, platform, country, "+
			"event_name, original_event_name, revenue, currency, revenue_reporting, reporting_currency, match_type, "+
			"media_source, campaign_id, adset_id, creative_id, site_id, sub_site_id, attributed_at, src_topic, src_partition, src_offset")
		for _, r := range bt.events {
			p := r.p
			// revenue/currency: a decoy in another currency; revenue_reporting is what counts.
			appendRow("events", b, r.id, "appsflyer", r.at, r.at, r.install, p.app, p.platform, p.country,
				r.name, "af_"+r.name, "999", "JPY", r.revenue, r.currency, "click_id",
				p.media, p.campaign, p.adset, p.creative, p.site, p.subSite, r.at, "events.attributed.v1", uint32(0), next())
		}
		send("events", b, len(bt.events))

		b = prepare("skan_postbacks", "postback_id, framework, version, received_at, ad_network_id, source_identifier, app_id, "+
			"transaction_id, redownload, conversion_value, coarse_conversion_value, did_win, postback_sequence_index, conversion_type, "+
			"signature, campaign_id, media_source, campaign_match, src_topic, src_partition, src_offset")
		n := 0
		for _, r := range bt.skan {
			f := r.framework()
			match := "exact"
			if r.p.campaign == "" {
				match = "none"
			}
			for d := 0; d < r.deliveries; d++ {
				appendRow("skan_postbacks", b, r.id, f, r.version, r.at.Add(time.Duration(d)*time.Hour), "test123.skadnetwork", "5239", r.p.app,
					r.tx(), b2u(r.redownload), r.fine, r.coarse, b2u(r.win), r.seq, r.convType, "MEUC", r.p.campaign, r.p.media, match,
					"skan.v1", uint32(0), next())
				n++
			}
		}
		send("skan_postbacks", b, n)
	}
}

func (r skanPostback) framework() string {
	if r.version == "" {
		return "adattributionkit"
	}
	return "skadnetwork"
}

// tx is the transaction id of a postback id ("tx/seq").
func (r skanPostback) tx() string {
	tx, _, _ := strings.Cut(r.id, "/")
	return tx
}

func b2u(b bool) uint8 {
	if b {
		return 1
	}
	return 0
}

// row is one result row: column name to value, with pointers dereferenced
// (nil for NULL) and integers widened to int64.
type row map[string]any

// query runs q and returns every row.
func query(ctx context.Context, t *testing.T, conn driver.Conn, q string, args ...any) []row {
	t.Helper()
	rows, err := conn.Query(ctx, q, args...)
	if err != nil {
		t.Fatalf("%v\nquery: %s", err, q)
	}
	defer rows.Close()
	cols := rows.ColumnTypes()
	var out []row
	for rows.Next() {
		dest := make([]any, len(cols))
		for i, c := range cols {
			dest[i] = reflect.New(c.ScanType()).Interface()
		}
		if err := rows.Scan(dest...); err != nil {
			t.Fatalf("scan: %v\nquery: %s", err, q)
		}
		r := row{}
		for i, c := range cols {
			r[c.Name()] = normalize(reflect.ValueOf(dest[i]).Elem())
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		t.Fatalf("%v\nquery: %s", err, q)
	}
	return out
}

func normalize(v reflect.Value) any {
	for v.Kind() == reflect.Pointer {
		if v.IsNil() {
			return nil
		}
		v = v.Elem()
	}
	switch v.Kind() {
	case reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64, reflect.Int:
		return v.Int()
	case reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uint:
		return int64(v.Uint())
	}
	return v.Interface()
}

// one runs q and returns its only row.
func one(ctx context.Context, t *testing.T, conn driver.Conn, q string, args ...any) row {
	t.Helper()
	rows := query(ctx, t, conn, q, args...)
	if len(rows) != 1 {
		t.Fatalf("%d rows, want 1\nquery: %s %v", len(rows), q, args)
	}
	return rows[0]
}

// dec is an expected Decimal value; nil in a want is an expected NULL,
// an int a count, a float64 a ratio (compared to 1e-12), a string a string.
type dec string

type want map[string]any

// check compares the columns named in w, reporting every difference.
func check(t *testing.T, what string, got row, w want) {
	t.Helper()
	keys := make([]string, 0, len(w))
	for k := range w {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		exp := w[k]
		act, ok := got[k]
		if !ok {
			t.Errorf("%s: no column %s", what, k)
			continue
		}
		if !same(act, exp) {
			t.Errorf("%s: %s = %s, want %s", what, k, show(act), show(exp))
		}
	}
}

func same(act, exp any) bool {
	switch e := exp.(type) {
	case nil:
		return act == nil
	case int:
		a, ok := act.(int64)
		return ok && a == int64(e)
	case float64:
		a, ok := act.(float64)
		return ok && math.Abs(a-e) <= 1e-12*math.Max(1, math.Abs(e))
	case dec:
		a, ok := act.(decimal.Decimal)
		return ok && a.Equal(decimal.RequireFromString(string(e)))
	case string:
		a, ok := act.(string)
		return ok && a == e
	case time.Time:
		a, ok := act.(time.Time)
		return ok && a.Equal(e)
	}
	return reflect.DeepEqual(act, exp)
}

func show(v any) string {
	switch x := v.(type) {
	case nil:
		return "NULL"
	case decimal.Decimal:
		return "Decimal " + x.String()
	case dec:
		return "Decimal " + string(x)
	case string:
		return fmt.Sprintf("%q", x)
	}
	return fmt.Sprintf("%T %v", v, v)
}

// key renders the named columns of r, for maps keyed by dimensions.
func key(r row, cols ...string) string {
	parts := make([]string, len(cols))
	for i, c := range cols {
		v := r[c]
		if tm, ok := v.(time.Time); ok {
			v = tm.UTC().Format("2006-01-02")
		}
		parts[i] = fmt.Sprint(v)
	}
	return strings.Join(parts, "|")
}
