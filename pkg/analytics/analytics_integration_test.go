//go:build integration

package analytics_test

import (
	"context"
	"fmt"
	"reflect"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/shopspring/decimal"

	"github.com/adtrack/postback/pkg/analytics"
	"github.com/adtrack/postback/pkg/chconn"
	"github.com/adtrack/postback/pkg/migrate"
	"github.com/adtrack/postback/pkg/testenv"
	"github.com/adtrack/postback/schemas"
)

// TestMigrationsTwice applies every project migration to a fresh database
// with the project's runner: the first run applies all files (or defers the
// version-gated ones), the second is a no-op, and every analytics object
// exists with its engine.
func TestMigrationsTwice(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cfg := testenv.ClickHouse(t)
	conn, err := chconn.Open(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	files, err := migrate.Load(schemas.ClickHouse, "clickhouse")
	if err != nil {
		t.Fatal(err)
	}
	first, err := migrate.Up(ctx, conn, schemas.ClickHouse, "clickhouse", migrate.Options{})
	if err != nil {
		t.Fatalf("first run: %v", err)
	}
	if len(first.Applied)+len(first.Deferred) != len(files) {
		t.Fatalf("first run applied %v deferred %v, want all %d files", first.Applied, first.Deferred, len(files))
	}
	for _, name := range []string{"003_hourly_stats.sql", "004_analyst_views.sql", "005_retention.sql", "007_skan.sql"} {
		if !contains(first.Applied, name) {
			t.Errorf("%s not applied on server %s: applied %v", name, first.ServerVersion, first.Applied)
		}
	}
	second, err := migrate.Up(ctx, conn, schemas.ClickHouse, "clickhouse", migrate.Options{})
	if err != nil {
		t.Fatalf("second run: %v", err)
	}
	if len(second.Applied) != 0 || len(second.Skipped) != len(first.Applied) {
		t.Fatalf("second run applied %v skipped %v: want a no-op", second.Applied, second.Skipped)
	}
	engines := map[string]string{analytics.Table: "SummingMergeTree", analytics.SKANTable: "MergeTree"}
	for _, mv := range analytics.MaterializedViews {
		engines[mv] = "MaterializedView"
	}
	for _, v := range analytics.Views {
		engines[v] = "View"
	}
	for name, engine := range engines {
		rows := query(ctx, t, conn, "SELECT engine FROM system.tables WHERE database = ? AND name = ?", cfg.Database, name)
		if len(rows) != 1 || rows[0]["engine"] != engine {
			t.Errorf("%s: %v, want engine %s", name, rows, engine)
		}
	}
	// Every statement is idempotent too: running the files' statements
	// again by hand (a run interrupted before it recorded a file) is harmless.
	migs, _ := migrate.Load(schemas.ClickHouse, "clickhouse")
	for _, m := range migs {
		if m.Version < 3 {
			continue
		}
		for i, st := range m.Statements {
			if err := conn.Exec(ctx, st); err != nil {
				t.Errorf("%s statement %d again: %v", m.Name, i+1, err)
			}
		}
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// TestAnalytics loads the hand-made fixtures into a fresh, migrated
// database and checks every view against numbers computed by hand.
func TestAnalytics(t *testing.T) {
	ctx, conn := newDB(t)
	now := time.Now()
	load(ctx, t, conn, fixedFixture())
	load(ctx, t, conn, recentFixture(now))

	checkViews(ctx, t, conn)
	t.Run("merged_equals_unmerged", func(t *testing.T) { testMergeInvariant(ctx, t, conn) })
}

// checkViews runs every view assertion against the loaded fixtures; both
// loading paths (direct inserts, Kafka + sink) must pass all of them.
func checkViews(ctx context.Context, t *testing.T, conn driver.Conn) {
	t.Run("stats_hourly", func(t *testing.T) { testStatsHourly(ctx, t, conn) })
	t.Run("stats_daily", func(t *testing.T) { testStatsDaily(ctx, t, conn) })
	t.Run("spend_by_currency", func(t *testing.T) { testSpendByCurrency(ctx, t, conn) })
	t.Run("retention", func(t *testing.T) { testRetention(ctx, t, conn) })
	t.Run("skan", func(t *testing.T) { testSKAN(ctx, t, conn) })
	t.Run("hourly_rolls_up_to_daily", func(t *testing.T) { testHourlyRollsUp(ctx, t, conn) })
	t.Run("views_match_base_tables", func(t *testing.T) { testMatchesBaseTables(ctx, t, conn) })
	t.Run("docs", func(t *testing.T) { testDocs(ctx, t, conn) })
}

// merge combines wants; later ones win.
func merge(parts ...want) want {
	out := want{}
	for _, p := range parts {
		for k, v := range p {
			out[k] = v
		}
	}
	return out
}

// noFraud is the part of a want saying no install was flagged.
var noFraud = want{"fraud_installs": 0, "fraud_click_injection": 0, "fraud_ctit_beyond_window": 0,
	"fraud_click_flooding": 0, "fraud_mmp_rejected": 0}

func dims(p placement) want {
	return want{"app_id": p.app, "platform": p.platform, "media_source": p.media, "campaign_id": p.campaign,
		"adset_id": p.adset, "creative_id": p.creative, "site_id": p.site, "sub_site_id": p.subSite, "country": p.country}
}

func testStatsHourly(ctx context.Context, t *testing.T, conn driver.Conn) {
	hourly := func(campaign, hour string) row {
		return one(ctx, t, conn, "SELECT * FROM stats_hourly WHERE app_id = 'app.a' AND campaign_id = ? AND hour = toDateTime(?, 'UTC')", campaign, hour)
	}
	check(t, "c_cpi 10:00", hourly("c_cpi", "2024-03-04 10:00:00"), merge(dims(pCPI), want{
		"impressions": 4, "clicks": 2, "installs": 2, "reinstalls": 0, "rejected_installs": 0, "install_postbacks": 2,
		"installs_click_id": 1, "installs_device_id": 1, "installs_probabilistic": 0, "installs_view_through": 0, "installs_organic": 0,
		"fraud_installs": 1, "fraud_click_injection": 1, "fraud_ctit_beyond_window": 0, "fraud_click_flooding": 0, "fraud_mmp_rejected": 0,
		"events": 0, "revenue": dec("0"), "revenue_currency": "", "spend": dec("5"), "spend_currency": "USD",
		"ctr": 2.0 / 4, "cvr": 2.0 / 2, "cpi": dec("2.5"), "roas": 0.0, "arpu": dec("0"), "fraud_share": 1.0 / 2,
	}))
	// Two impression inserts in this hour: the sums see both.
	check(t, "c_cpi 11:00", hourly("c_cpi", "2024-03-04 11:00:00"), want{
		"impressions": 6, "clicks": 2, "installs": 1, "reinstalls": 1, "rejected_installs": 1, "install_postbacks": 3,
		"installs_click_id": 1, "installs_device_id": 0,
		"fraud_installs": 2, "fraud_click_injection": 1, "fraud_ctit_beyond_window": 0, "fraud_click_flooding": 1, "fraud_mmp_rejected": 1,
		"events": 3, "revenue": dec("14.99"), "revenue_currency": "USD", "spend": dec("2.5"), "spend_currency": "USD",
		"ctr": 2.0 / 6, "cvr": 1.0 / 2, "cpi": dec("2.5"), "roas": 14.99 / 2.5, "arpu": dec("14.99"), "fraud_share": 2.0 / 3,
	})
	// Clicks without impressions: CTR NULL; no installs: CPI, ARPU, fraud share NULL.
	check(t, "c_cpc 10:00", hourly("c_cpc", "2024-03-04 10:00:00"), merge(noFraud, want{
		"impressions": 0, "clicks": 3, "installs": 0, "install_postbacks": 0, "events": 0,
		"spend": dec("1.2"), "spend_currency": "USD", "revenue": dec("0"), "revenue_currency": "",
		"ctr": nil, "cvr": 0.0, "cpi": nil, "roas": 0.0, "arpu": nil, "fraud_share": nil,
	}))
	// An install without clicks and without cost: CVR NULL, CPI 0, ROAS NULL.
	check(t, "c_cpc 11:00", hourly("c_cpc", "2024-03-04 11:00:00"), merge(noFraud, want{
		"impressions": 0, "clicks": 0, "installs": 1, "install_postbacks": 1, "installs_click_id": 1,
		"spend": dec("0"), "spend_currency": "USD",
		"ctr": nil, "cvr": nil, "cpi": dec("0"), "roas": nil, "arpu": dec("0"), "fraud_share": 0.0,
	}))
}

func testStatsDaily(ctx context.Context, t *testing.T, conn driver.Conn) {
	daily := func(media, campaign string, day string) row {
		return one(ctx, t, conn, "SELECT * FROM stats_daily WHERE app_id = 'app.a' AND media_source = ? AND campaign_id = ? AND day = toDate(?)", media, campaign, day)
	}
	check(t, "c_cpi D", daily("net_a", "c_cpi", "2024-03-04"), merge(dims(pCPI), want{
		"impressions": 10, "clicks": 4, "installs": 3, "reinstalls": 1, "rejected_installs": 1, "install_postbacks": 5,
		"installs_click_id": 2, "installs_device_id": 1, "installs_probabilistic": 0, "installs_view_through": 0, "installs_organic": 0,
		"fraud_installs": 3, "fraud_click_injection": 2, "fraud_ctit_beyond_window": 0, "fraud_click_flooding": 1, "fraud_mmp_rejected": 1,
		"events": 3, "revenue": dec("14.99"), "revenue_currency": "USD", "spend": dec("7.5"), "spend_currency": "USD",
		"ctr": 4.0 / 10, "cvr": 3.0 / 4, "cpi": dec("2.5"), "roas": 14.99 / 7.5,
		"arpu":        dec("4.996666"), // 14.99 / 3, truncated to 6 places
		"fraud_share": 3.0 / 5,
	}))
	check(t, "c_cpc D", daily("net_a", "c_cpc", "2024-03-04"), merge(noFraud, want{
		"impressions": 0, "clicks": 3, "installs": 1, "install_postbacks": 1,
		"spend": dec("1.2"), "spend_currency": "USD", "revenue": dec("0"), "revenue_currency": "",
		"ctr": nil, "cvr": 1.0 / 3, "cpi": dec("1.2"), "roas": 0.0, "arpu": dec("0"), "fraud_share": 0.0,
	}))
	// CPM in EUR, revenue reported in USD: ROAS cannot be computed (NULL);
	// CPI is in EUR and ARPU in USD, each in its own currency.
	check(t, "c_cpm D", daily("net_b", "c_cpm", "2024-03-04"), merge(dims(pCPM), noFraud, want{
		"impressions": 400, "clicks": 8, "installs": 2, "installs_device_id": 1, "installs_view_through": 1, "installs_click_id": 0,
		"events": 1, "revenue": dec("3"), "revenue_currency": "USD", "spend": dec("2"), "spend_currency": "EUR",
		"ctr": 8.0 / 400, "cvr": 2.0 / 8, "cpi": dec("1"), "roas": nil, "arpu": dec("1.5"), "fraud_share": 0.0,
	}))
	// EUR clicks and a USD install cost in one row: never summed.
	check(t, "c_mix D", daily("net_b", "c_mix", "2024-03-04"), want{
		"impressions": 0, "clicks": 2, "installs": 1,
		"spend": nil, "spend_currency": "EUR,USD", "cpi": nil, "roas": nil,
		"ctr": nil, "cvr": 1.0 / 2, "arpu": dec("0"), "revenue": dec("0"), "revenue_currency": "",
	})
	check(t, "organic D", daily("organic", "", "2024-03-04"), merge(dims(pOrg), noFraud, want{
		"impressions": 0, "clicks": 0, "installs": 2, "installs_organic": 2, "install_postbacks": 2,
		"spend": dec("0"), "spend_currency": "", "cpi": dec("0"), "roas": nil, "ctr": nil, "cvr": nil,
		"arpu": dec("0"), "fraud_share": 0.0,
	}))
	// The day after: only events (n1, n2 twice, the reinstall n4).
	check(t, "c_cpi D+1", daily("net_a", "c_cpi", "2024-03-05"), want{
		"impressions": 0, "clicks": 0, "installs": 0, "install_postbacks": 0, "events": 4,
		"revenue": dec("0"), "revenue_currency": "USD", "spend": dec("0"), "spend_currency": "",
		"ctr": nil, "cvr": nil, "cpi": nil, "roas": nil, "arpu": nil, "fraud_share": nil,
	})
	check(t, "organic D+1", daily("organic", "", "2024-03-05"), want{
		"installs": 0, "events": 1, "revenue_currency": "USD", "arpu": nil, "cpi": nil,
	})
	// The recent fixture's yesterday, through the same view.
	y := time.Now().UTC().Truncate(24*time.Hour).AddDate(0, 0, -1).Format("2006-01-02")
	check(t, "r_cpi yesterday", one(ctx, t, conn, "SELECT * FROM stats_daily WHERE campaign_id = 'r_cpi' AND day = toDate(?)", y), want{
		"impressions": 20, "clicks": 4, "installs": 2, "fraud_click_injection": 1, "events": 1,
		"spend": dec("3"), "revenue": dec("6"), "cpi": dec("1.5"), "roas": 2.0, "arpu": dec("3"), "ctr": 0.2, "cvr": 0.5,
	})
}

func testSpendByCurrency(ctx context.Context, t *testing.T, conn driver.Conn) {
	rows := query(ctx, t, conn, "SELECT * FROM spend_by_currency_daily WHERE campaign_id = 'c_mix' ORDER BY currency")
	if len(rows) != 2 {
		t.Fatalf("c_mix: %d rows, want EUR and USD", len(rows))
	}
	check(t, "c_mix EUR", rows[0], want{"day": time.Date(2024, 3, 4, 0, 0, 0, 0, time.UTC), "currency": "EUR",
		"impressions": 0, "clicks": 2, "installs": 0, "install_postbacks": 0,
		"spend_impressions": dec("0"), "spend_clicks": dec("0.2"), "spend_installs": dec("0"), "spend": dec("0.2"), "cpi": nil})
	check(t, "c_mix USD", rows[1], want{"currency": "USD",
		"impressions": 0, "clicks": 0, "installs": 1, "install_postbacks": 1,
		"spend_clicks": dec("0"), "spend_installs": dec("1"), "spend": dec("1"), "cpi": dec("1")})
	check(t, "organic", one(ctx, t, conn, "SELECT * FROM spend_by_currency_daily WHERE media_source = 'organic'"),
		want{"currency": "", "installs": 2, "spend": dec("0"), "cpi": dec("0")})
	check(t, "c_cpm 10:00", one(ctx, t, conn, "SELECT * FROM spend_by_currency_hourly WHERE campaign_id = 'c_cpm'"), want{
		"hour": time.Date(2024, 3, 4, 10, 0, 0, 0, time.UTC), "currency": "EUR",
		"impressions": 400, "clicks": 8, "installs": 2, "spend_impressions": dec("2"), "spend": dec("2"), "cpi": dec("1")})
	// Days with events only have no spend rows.
	if n := one(ctx, t, conn, "SELECT count() AS n FROM spend_by_currency_daily WHERE campaign_id = 'c_cpi' AND day > '2024-03-04'")["n"]; n != int64(0) {
		t.Errorf("c_cpi after D: %v spend rows, want 0", n)
	}
}

func testRetention(ctx context.Context, t *testing.T, conn driver.Conn) {
	rows := query(ctx, t, conn, "SELECT * FROM retention_daily WHERE app_id = 'app.a' ORDER BY media_source, campaign_id")
	got := map[string]row{}
	for _, r := range rows {
		if r["cohort_day"].(time.Time).Format("2006-01-02") != "2024-03-04" {
			t.Errorf("unexpected cohort %v", r)
		}
		got[r["campaign_id"].(string)] = r
	}
	if len(rows) != 5 {
		t.Fatalf("%d cohort rows for app.a, want 5: %v", len(rows), rows)
	}
	// n1: D1 (00:00:00 sharp), D3, D7; n2: D1 twice, D2; n3: D7 at
	// 23:59:59 and D8; the reinstall n4 and the rejected n5 are not in it.
	check(t, "c_cpi", got["c_cpi"], want{"media_source": "net_a", "installs": 3,
		"active_d1": 2, "active_d3": 1, "active_d7": 2,
		"retention_d1": 2.0 / 3, "retention_d3": 1.0 / 3, "retention_d7": 2.0 / 3})
	zero := want{"active_d1": 0, "active_d3": 0, "active_d7": 0, "retention_d1": 0.0, "retention_d3": 0.0, "retention_d7": 0.0}
	check(t, "c_cpc", got["c_cpc"], merge(zero, want{"installs": 1}))
	check(t, "c_cpm", got["c_cpm"], merge(zero, want{"installs": 2}))
	check(t, "c_mix", got["c_mix"], merge(zero, want{"installs": 1}))
	check(t, "organic", got[""], want{"media_source": "organic", "installs": 2,
		"active_d1": 1, "active_d3": 0, "active_d7": 0, "retention_d1": 0.5, "retention_d3": 0.0, "retention_d7": 0.0})

	// Days that have not ended yet are NULL, not 0.
	today := time.Now().UTC().Truncate(24 * time.Hour)
	old := one(ctx, t, conn, "SELECT * FROM retention_daily WHERE campaign_id = 'r_cpi' AND cohort_day = toDate(?)", today.AddDate(0, 0, -10).Format("2006-01-02"))
	check(t, "r_cpi 10 days ago", old, want{"installs": 2, "active_d1": 1, "active_d3": 0, "active_d7": 1,
		"retention_d1": 0.5, "retention_d3": 0.0, "retention_d7": 0.5})
	y := one(ctx, t, conn, "SELECT * FROM retention_daily WHERE campaign_id = 'r_cpi' AND cohort_day = toDate(?)", today.AddDate(0, 0, -1).Format("2006-01-02"))
	check(t, "r_cpi yesterday", y, want{"installs": 2, "retention_d1": nil, "retention_d3": nil, "retention_d7": nil})
	live := one(ctx, t, conn, "SELECT * FROM retention_daily WHERE campaign_id = 'r_live'")
	check(t, "r_live", live, want{"installs": 1, "active_d1": 0, "retention_d1": nil, "retention_d3": nil, "retention_d7": nil})
}

var dimCols = []string{"app_id", "platform", "media_source", "campaign_id", "adset_id", "creative_id", "site_id", "sub_site_id", "country"}

var countCols = []string{"impressions", "clicks", "installs", "reinstalls", "rejected_installs", "install_postbacks",
	"installs_click_id", "installs_device_id", "installs_probabilistic", "installs_view_through", "installs_organic",
	"fraud_installs", "fraud_click_injection", "fraud_ctit_beyond_window", "fraud_click_flooding", "fraud_mmp_rejected", "events"}

// testHourlyRollsUp sums every stats_hourly row into its day in Go and
// compares with stats_daily: the counts, the money (per currency), and the
// ratios recomputed from the summed counts.
func testHourlyRollsUp(ctx context.Context, t *testing.T, conn driver.Conn) {
	type acc struct {
		counts           map[string]int64
		spend, revenue   decimal.Decimal
		spendNull        bool
		spendCur, revCur map[string]bool
	}
	sums := map[string]*acc{}
	for _, r := range query(ctx, t, conn, "SELECT * FROM stats_hourly") {
		day := r["hour"].(time.Time).UTC().Format("2006-01-02")
		k := day + "|" + key(r, dimCols...)
		a := sums[k]
		if a == nil {
			a = &acc{counts: map[string]int64{}, spendCur: map[string]bool{}, revCur: map[string]bool{}}
			sums[k] = a
		}
		for _, c := range countCols {
			a.counts[c] += r[c].(int64)
		}
		if r["spend"] == nil {
			a.spendNull = true
		} else {
			a.spend = a.spend.Add(r["spend"].(decimal.Decimal))
		}
		a.revenue = a.revenue.Add(r["revenue"].(decimal.Decimal))
		for _, c := range strings.Split(r["spend_currency"].(string), ",") {
			if c != "" {
				a.spendCur[c] = true
			}
		}
		for _, c := range strings.Split(r["revenue_currency"].(string), ",") {
			if c != "" {
				a.revCur[c] = true
			}
		}
	}
	daily := query(ctx, t, conn, "SELECT * FROM stats_daily")
	if len(daily) != len(sums) {
		t.Errorf("%d daily rows, %d day/dimension groups in stats_hourly", len(daily), len(sums))
	}
	ratio := func(n, d int64) any {
		if d == 0 {
			return nil
		}
		return float64(n) / float64(d)
	}
	perInstall := func(m decimal.Decimal, n int64) any {
		if n == 0 {
			return nil
		}
		q, _ := m.QuoRem(decimal.NewFromInt(n), 6)
		return dec(q.String())
	}
	for _, r := range daily {
		k := r["day"].(time.Time).UTC().Format("2006-01-02") + "|" + key(r, dimCols...)
		a := sums[k]
		if a == nil {
			t.Errorf("daily row %s has no hourly rows", k)
			continue
		}
		w := want{}
		for _, c := range countCols {
			w[c] = int(a.counts[c])
		}
		w["spend_currency"] = strings.Join(sorted(a.spendCur), ",")
		w["revenue_currency"] = strings.Join(sorted(a.revCur), ",")
		w["revenue"] = dec(a.revenue.String())
		w["ctr"] = ratio(a.counts["clicks"], a.counts["impressions"])
		w["cvr"] = ratio(a.counts["installs"], a.counts["clicks"])
		w["fraud_share"] = ratio(a.counts["fraud_installs"], a.counts["install_postbacks"])
		w["arpu"] = perInstall(a.revenue, a.counts["installs"])
		if len(a.spendCur) > 1 || a.spendNull {
			w["spend"], w["cpi"] = nil, nil
		} else {
			w["spend"] = dec(a.spend.String())
			w["cpi"] = perInstall(a.spend, a.counts["installs"])
		}
		check(t, "daily "+k, r, w)
	}
}

func sorted(set map[string]bool) []string {
	out := make([]string, 0, len(set))
	for s := range set {
		out = append(out, s)
	}
	sort.Strings(out)
	return out
}

// testMatchesBaseTables compares the views' totals with the base tables
// read directly: nothing is lost or counted twice on the way.
func testMatchesBaseTables(ctx context.Context, t *testing.T, conn driver.Conn) {
	base := one(ctx, t, conn, `SELECT
		(SELECT count() FROM impressions) AS impressions,
		(SELECT count() FROM clicks) AS clicks,
		(SELECT countIf(reinstall = 0 AND rejected = 0) FROM installs) AS installs,
		(SELECT count() FROM installs) AS install_postbacks,
		(SELECT countIf(notEmpty(fraud_flags)) FROM installs) AS fraud_installs,
		(SELECT count() FROM events) AS events`)
	views := one(ctx, t, conn, `SELECT sum(impressions) AS impressions, sum(clicks) AS clicks, sum(installs) AS installs,
		sum(install_postbacks) AS install_postbacks, sum(fraud_installs) AS fraud_installs, sum(events) AS events FROM stats_daily`)
	hourly := one(ctx, t, conn, `SELECT sum(impressions) AS impressions, sum(clicks) AS clicks, sum(installs) AS installs,
		sum(install_postbacks) AS install_postbacks, sum(fraud_installs) AS fraud_installs, sum(events) AS events FROM stats_hourly`)
	w := want{}
	for k, v := range base {
		w[k] = int(v.(int64))
	}
	check(t, "stats_daily totals", views, w)
	check(t, "stats_hourly totals", hourly, w)
	if base["impressions"] != int64(4+6+400+20+8) {
		t.Errorf("fixture: %v impressions loaded", base["impressions"])
	}

	// Spend per currency: the three cost columns against spend_by_currency_daily.
	spendBase := map[string]string{}
	for _, r := range query(ctx, t, conn, `SELECT currency, toString(sum(cost)) AS spend FROM (
		SELECT currency, cost FROM impressions UNION ALL
		SELECT currency, cost FROM clicks UNION ALL
		SELECT cost_currency AS currency, cost FROM installs) GROUP BY currency ORDER BY currency`) {
		spendBase[r["currency"].(string)] = r["spend"].(string)
	}
	spendView := map[string]string{}
	for _, r := range query(ctx, t, conn, `SELECT currency, toString(sum(spend)) AS spend FROM spend_by_currency_daily GROUP BY currency ORDER BY currency`) {
		spendView[r["currency"].(string)] = r["spend"].(string)
	}
	if fmt.Sprint(spendBase) != fmt.Sprint(spendView) {
		t.Errorf("spend by currency: base tables %v, spend_by_currency_daily %v", spendBase, spendView)
	}
	// USD: c_cpi 7.50 + c_cpc 1.20 + m1 1.00 + r_cpi 3.00 + r_old 3.00 + r_cpc 1.00 + r_now 0;
	// EUR: c_cpm 400 x 0.005 + c_mix 2 x 0.10; '': the organic installs.
	wantSpend := map[string]string{"": "0.000000", "EUR": "2.200000", "USD": "16.700000"}
	if fmt.Sprint(spendBase) != fmt.Sprint(wantSpend) {
		t.Errorf("spend by currency %v, want %v (hand-computed)", spendBase, wantSpend)
	}

	// Revenue per reporting currency.
	revBase := one(ctx, t, conn, `SELECT toString(sum(revenue_reporting)) AS r FROM events WHERE reporting_currency = 'USD'`)["r"]
	revView := one(ctx, t, conn, `SELECT toString(sum(revenue)) AS r FROM stats_daily WHERE revenue_currency = 'USD'`)["r"]
	if revBase != "23.990000" || revView != revBase {
		t.Errorf("USD revenue: base %v, stats_daily %v, want 23.990000 (4.99 + 10 + 3 + 6)", revBase, revView)
	}
}

// testMergeInvariant: the views give the same answers before and after
// hourly_stats is fully merged, so they never depend on merge timing.
func testMergeInvariant(ctx context.Context, t *testing.T, conn driver.Conn) {
	const q = "SELECT * FROM stats_hourly ORDER BY hour, app_id, media_source, campaign_id, adset_id, creative_id, site_id, sub_site_id, country, platform"
	parts := func() int64 {
		return one(ctx, t, conn, "SELECT count() AS n FROM hourly_stats")["n"].(int64)
	}
	beforeRows := parts()
	before := fmt.Sprint(query(ctx, t, conn, q))
	if err := conn.Exec(ctx, "OPTIMIZE TABLE hourly_stats FINAL"); err != nil {
		t.Fatal(err)
	}
	afterRows := parts()
	after := fmt.Sprint(query(ctx, t, conn, q))
	t.Logf("hourly_stats rows: %d before OPTIMIZE FINAL, %d after", beforeRows, afterRows)
	if before != after {
		t.Errorf("stats_hourly changed after merging:\nbefore %s\nafter  %s", before, after)
	}
}

// testSKAN checks the skan_* views against the fixture's SKAN postbacks
// (fixture_integration_test.go, skanFixedNote): resends count once.
func testSKAN(ctx context.Context, t *testing.T, conn driver.Conn) {
	d := dayD.Format("2006-01-02")
	got := one(ctx, t, conn, `SELECT installs, redownloads, reengagements, winning, non_winning, later_postbacks, postbacks, resends
		FROM skan_installs_daily WHERE day = toDate(?) AND campaign_id = 'c_cpi'`, d)
	check(t, "skan_installs_daily c_cpi D", got, want{"installs": 2, "redownloads": 1, "reengagements": 1, "winning": 4,
		"non_winning": 1, "later_postbacks": 0, "postbacks": 5, "resends": 1})
	got = one(ctx, t, conn, `SELECT installs, later_postbacks, postbacks FROM skan_installs_daily
		WHERE day = toDate(?) + 4 AND campaign_id = 'c_cpi'`, d)
	check(t, "skan_installs_daily c_cpi D+4", got, want{"installs": 0, "later_postbacks": 1, "postbacks": 1})
	got = one(ctx, t, conn, `SELECT installs, campaign_id FROM skan_installs_daily WHERE day = toDate(?) AND app_id = 'app.a' AND campaign_id = ''`, d)
	check(t, "skan_installs_daily unmapped", got, want{"installs": 1})

	dist := map[string]int{}
	for _, r := range query(ctx, t, conn, `SELECT postback_sequence_index AS seq, value_kind, value, postbacks FROM skan_conversion_values
		WHERE app_id = 'app.a' AND campaign_id = 'c_cpi' AND day >= toDate(?) AND day <= toDate(?) + 7`, d, d) {
		dist[fmt.Sprintf("%v/%v/%v", r["seq"], r["value_kind"], r["value"])] = int(r["postbacks"].(int64))
	}
	wantDist := map[string]int{"0/fine/20": 1, "0/fine/5": 1, "0/coarse/high": 1, "0/none/": 1, "1/coarse/low": 1}
	if !reflect.DeepEqual(dist, wantDist) {
		t.Errorf("skan_conversion_values: %v, want %v", dist, wantDist)
	}

	got = one(ctx, t, conn, `SELECT mmp_installs, skan_installs, spend, spend_currency, mmp_cpi, skan_cpi FROM skan_cpi_daily
		WHERE day = toDate(?) AND app_id = 'app.a' AND campaign_id = 'c_cpi'`, d)
	check(t, "skan_cpi_daily c_cpi", got, want{"mmp_installs": 3, "skan_installs": 2, "spend": dec("7.5"), "spend_currency": "USD",
		"mmp_cpi": dec("2.5"), "skan_cpi": dec("3.75")})

	// Each delivery is a row; the unique view folds the resends.
	raw := one(ctx, t, conn, `SELECT count() AS rows, uniqExact(postback_id) AS ids FROM skan_postbacks`)
	uniq := one(ctx, t, conn, `SELECT count() AS rows, sum(deliveries) AS deliveries FROM skan_postbacks_unique`)
	if raw["rows"] != uniq["deliveries"] || raw["ids"] != uniq["rows"] || raw["rows"] == raw["ids"] {
		t.Errorf("skan_postbacks %v, skan_postbacks_unique %v: want the resends folded", raw, uniq)
	}
}
