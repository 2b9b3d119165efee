//go:build integration

package deploy_test

import (
	"context"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/shopspring/decimal"

	"github.com/adtrack/postback/pkg/testenv"
)

// TestDashboardSQLIntegration runs the dashboard's ClickHouse queries on a
// migrated database holding two impressions and a click of one campaign
// this hour: each query runs on the project's ClickHouse and the CPI/CTR
// table shows that campaign's CTR.
func TestDashboardSQLIntegration(t *testing.T) {
	_, conn := testenv.MigratedClickHouse(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	now := time.Now().UTC().Truncate(time.Second)
	for table, ids := range map[string][]string{"impressions": {"m1", "m2"}, "clicks": {"k1"}} {
		b, err := conn.PrepareBatch(ctx, "INSERT INTO "+table+" ("+strings.TrimSuffix(table, "s")+"_id, time, app_id, campaign_id, cost, currency)")
		if err != nil {
			t.Fatal(err)
		}
		for _, id := range ids {
			if err := b.Append(id, now, "app", "c1", decimal.New(4000, -6), "USD"); err != nil {
				t.Fatal(err)
			}
		}
		if err := b.Send(); err != nil {
			t.Fatalf("insert into %s: %v", table, err)
		}
	}
	n := 0
	for _, p := range readDashboard(t).Panels {
		for _, tg := range p.Targets {
			if tg.RawSQL == "" {
				continue
			}
			n++
			rows, err := conn.Query(ctx, tg.RawSQL)
			if err != nil {
				t.Fatalf("panel %q: %v\n%s", p.Title, err, tg.RawSQL)
			}
			cols := rows.Columns()
			types := rows.ColumnTypes()
			found := false
			for rows.Next() {
				vals := make([]any, len(cols))
				for i, ct := range types {
					vals[i] = reflect.New(ct.ScanType()).Interface()
				}
				if err := rows.Scan(vals...); err != nil {
					t.Fatalf("panel %q: %v", p.Title, err)
				}
				row := map[string]any{}
				for i, c := range cols {
					row[c] = reflect.ValueOf(vals[i]).Elem().Interface()
				}
				if row["campaign_id"] == "c1" {
					found = true
					if ctr, ok := row["ctr"].(*float64); !ok || ctr == nil || *ctr != 0.5 {
						t.Errorf("panel %q: campaign c1's ctr = %#v, want 0.5", p.Title, row["ctr"])
					}
				}
			}
			rows.Close()
			if err := rows.Err(); err != nil {
				t.Fatalf("panel %q: %v", p.Title, err)
			}
			if !found {
				t.Errorf("panel %q: no row for campaign c1", p.Title)
			}
		}
	}
	if n == 0 {
		t.Fatal("the dashboard has no ClickHouse query")
	}
}
