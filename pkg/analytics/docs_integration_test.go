//go:build integration

package analytics_test

import (
	"context"
	"os"
	"strings"
	"testing"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/adtrack/postback/pkg/analytics"
)

const docPath = "../../docs/analytics.md"

// docExpect is a row a documented query must return on the fixtures: the
// row whose key columns match, with the wanted values.
type docExpect struct {
	key  want
	want want
}

// docExpectations are hand-computed from recentFixture. Every heading
// listed here must exist in docs/analytics.md.
var docExpectations = map[string][]docExpect{
	"CPI by media source, yesterday": {
		// r_i1, r_i2 at 1.50 and r_i3 free, plus 4 clicks at 0.25.
		{want{"media_source": "net_r"}, want{"currency": "USD", "installs": 3, "spend": dec("4"), "cpi": dec("1.333333")}},
	},
	"CTR by creative, last hour": {
		{want{"creative_id": "r_cr_live"}, want{"app_id": "app.r", "impressions": 8, "clicks": 2, "ctr": 0.25}},
	},
	"Spend and CPI by media source and currency, last 7 days": {
		{want{"media_source": "net_r", "currency": "USD"}, want{"installs": 3, "spend": dec("4"), "cpi": dec("1.333333")}},
	},
	"D7 retention by campaign": {
		// Cohort of 10 days ago: r_old1 active on D7, r_old2 never.
		{want{"campaign_id": "r_cpi"}, want{"installs": 2, "active_d7": 1, "retention_d7": 0.5}},
	},
	"Installs flagged for click injection, by site": {
		{want{"site_id": "r_s1"}, want{"app_id": "app.r", "click_injection": 1, "install_postbacks": 2, "click_injection_share": 0.5}},
	},
	"ROAS by campaign, last 7 days": {
		// 6.00 of revenue over 3.00 of install cost.
		{want{"campaign_id": "r_cpi"}, want{"spend_currency": "USD", "revenue_currency": "USD", "spend": dec("3"), "revenue": dec("6"), "roas": 2.0}},
		// 1.00 of clicks, no revenue (and no revenue currency): ROAS 0.
		{want{"campaign_id": "r_cpc"}, want{"spend_currency": "USD", "revenue_currency": "", "spend": dec("1"), "revenue": dec("0"), "roas": 0.0}},
	},
	"SKAN installs by campaign, yesterday": {
		// r_sk1 (sent twice), r_sk2, r_sk3 win; r_sk4 does not.
		{want{"campaign_id": "r_cpi"}, want{"installs": 3, "redownloads": 0, "non_winning": 1, "resends": 1}},
	},
	"SKAN-side CPI beside the MMP-side CPI, yesterday": {
		{want{"campaign_id": "r_cpi"}, want{"spend_currency": "USD", "mmp_installs": 2, "skan_installs": 3,
			"spend": dec("3"), "mmp_cpi": dec("1.5"), "skan_cpi": dec("1")}},
	},
	"Installs by match type, yesterday": {
		{want{"media_source": "net_r"}, want{"installs": 3, "click_id": 2, "device_id": 1, "organic": 0}},
	},
}

// testDocs runs every ```sql block of docs/analytics.md on the fixtures:
// each must succeed and return rows, and the headline queries must return
// the hand-computed rows. It also checks that the page names every view and
// every column of the analytics objects.
func testDocs(ctx context.Context, t *testing.T, conn driver.Conn) {
	raw, err := os.ReadFile(docPath)
	if err != nil {
		t.Fatal(err)
	}
	doc := string(raw)
	queries, err := analytics.SQLQueries(doc)
	if err != nil {
		t.Fatalf("%s: %v", docPath, err)
	}
	if len(queries) < len(docExpectations) {
		t.Fatalf("%s has %d sql blocks", docPath, len(queries))
	}
	seen := map[string]bool{}
	for _, q := range queries {
		name := q.Heading
		t.Run(strings.ReplaceAll(name, " ", "_"), func(t *testing.T) {
			if seen[name] {
				t.Fatalf("two sql blocks under %q (line %d): give each its own heading", name, q.Line)
			}
			seen[name] = true
			rows := query(ctx, t, conn, q.SQL)
			if len(rows) == 0 {
				t.Fatalf("%s:%d returned no rows on the fixture", docPath, q.Line)
			}
			for _, e := range docExpectations[name] {
				var match row
				for _, r := range rows {
					ok := true
					for k, v := range e.key {
						ok = ok && same(r[k], v)
					}
					if ok {
						match = r
						break
					}
				}
				if match == nil {
					t.Errorf("%s:%d: no row with %v in %v", docPath, q.Line, e.key, rows)
					continue
				}
				check(t, name, match, e.want)
			}
		})
	}
	for h := range docExpectations {
		if !seen[h] {
			t.Errorf("%s: no sql block under the heading %q", docPath, h)
		}
	}

	// Every object and every column is documented.
	objects := append(append([]string{analytics.Table, analytics.SKANTable}, analytics.MaterializedViews...), analytics.Views...)
	for _, o := range objects {
		if !strings.Contains(doc, "`"+o+"`") {
			t.Errorf("%s does not name `%s`", docPath, o)
		}
	}
	for _, o := range append([]string{analytics.Table, analytics.SKANTable}, analytics.Views...) {
		for _, r := range query(ctx, t, conn, "SELECT name FROM system.columns WHERE database = currentDatabase() AND table = ?", o) {
			col := r["name"].(string)
			if !strings.Contains(doc, "`"+col+"`") {
				t.Errorf("%s does not document column `%s` of %s", docPath, col, o)
			}
		}
	}
}
