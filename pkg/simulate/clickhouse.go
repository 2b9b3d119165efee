package simulate

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/adtrack/postback/pkg/event"
	"github.com/adtrack/postback/pkg/money"
	"github.com/adtrack/postback/pkg/traffic"
)

// ReadFound reads what ClickHouse holds for truth's apps: the analyst view
// stats_daily summed per day, app and campaign, every installs row, and
// each table's rows and distinct ids.
func ReadFound(ctx context.Context, conn driver.Conn, truth *traffic.GroundTruth) (*traffic.Found, error) {
	f := &traffic.Found{Rows: map[traffic.Key]*traffic.Measures{}, Installs: map[string][]traffic.InstallTruth{},
		Tables: map[string]uint64{}, Distinct: map[string]uint64{}}
	apps := quoteList(truth.Apps)
	if err := readRows(ctx, conn, apps, f); err != nil {
		return nil, err
	}
	if err := readInstalls(ctx, conn, apps, f); err != nil {
		return nil, err
	}
	for table, id := range map[string]string{"impressions": "impression_id", "clicks": "click_id", "installs": "event_id", "events": "event_id"} {
		var n, d uint64
		q := fmt.Sprintf("SELECT count(), uniqExact(%s) FROM %s WHERE app_id IN (%s)", id, table, apps)
		if err := conn.QueryRow(ctx, q).Scan(&n, &d); err != nil {
			return nil, fmt.Errorf("count %s: %w", table, err)
		}
		f.Tables[table], f.Distinct[table] = n, d
	}
	// Malformed postbacks are found by their device's IP (each has its
	// own): an app id may be the very field that is broken.
	var n uint64
	marks := make([]string, len(truth.MalformedIPs))
	for i, ip := range truth.MalformedIPs {
		marks[i] = "=" + ip + "&"
	}
	q := fmt.Sprintf("SELECT count() FROM rejected WHERE %s", anyPosition("raw_query", marks))
	if err := conn.QueryRow(ctx, q).Scan(&n); err != nil {
		return nil, fmt.Errorf("count rejected: %w", err)
	}
	f.Tables["rejected"], f.Distinct["rejected"] = n, n
	if len(truth.UnauthDevices) > 0 { // IN ('') would match every row without an advertising id
		devs := quoteList(truth.UnauthDevices)
		for _, q := range []string{
			fmt.Sprintf("SELECT count() FROM installs WHERE idfa IN (%[1]s) OR gaid IN (%[1]s)", devs),
			fmt.Sprintf("SELECT count() FROM events WHERE idfa IN (%[1]s) OR gaid IN (%[1]s)", devs),
			fmt.Sprintf("SELECT count() FROM rejected WHERE %s", anyPosition("raw_query", truth.UnauthDevices)),
		} {
			if err := conn.QueryRow(ctx, q).Scan(&n); err != nil {
				return nil, fmt.Errorf("rows of unauthenticated requests: %w", err)
			}
			f.Unauthenticated += n
		}
	}
	return f, nil
}

func readRows(ctx context.Context, conn driver.Conn, apps string, f *traffic.Found) error {
	rows, err := conn.Query(ctx, fmt.Sprintf(`
		SELECT toString(day), app_id, campaign_id,
		       sum(impressions), sum(clicks), sum(install_postbacks), sum(installs), sum(reinstalls), sum(rejected_installs),
		       sum(installs_click_id), sum(installs_device_id), sum(installs_probabilistic), sum(installs_view_through), sum(installs_organic),
		       sum(fraud_installs), sum(fraud_click_injection), sum(fraud_click_flooding), sum(fraud_mmp_rejected), sum(events),
		       toString(sum(ifNull(spend, toDecimal128(0, 6)))), toString(sum(ifNull(revenue, toDecimal128(0, 6))))
		FROM stats_daily WHERE app_id IN (%s)
		GROUP BY day, app_id, campaign_id`, apps))
	if err != nil {
		return fmt.Errorf("query stats_daily: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var k traffic.Key
		var m traffic.Measures
		var spend, revenue string
		if err := rows.Scan(&k.Day, &k.AppID, &k.CampaignID,
			&m.Impressions, &m.Clicks, &m.InstallPostbacks, &m.Installs, &m.Reinstalls, &m.RejectedInstalls,
			&m.InstallsClickID, &m.InstallsDeviceID, &m.InstallsProbabilistic, &m.InstallsViewThrough, &m.InstallsOrganic,
			&m.FraudInstalls, &m.FraudClickInjection, &m.FraudClickFlooding, &m.FraudMMPRejected, &m.Events, &spend, &revenue); err != nil {
			return fmt.Errorf("read stats_daily: %w", err)
		}
		if m.Spend, err = money.Parse(spend); err != nil {
			return fmt.Errorf("stats_daily spend %q: %w", spend, err)
		}
		if m.Revenue, err = money.Parse(revenue); err != nil {
			return fmt.Errorf("stats_daily revenue %q: %w", revenue, err)
		}
		f.Rows[k] = &m
	}
	return rows.Err()
}

func readInstalls(ctx context.Context, conn driver.Conn, apps string, f *traffic.Found) error {
	rows, err := conn.Query(ctx, fmt.Sprintf(`SELECT event_id, mmp, toString(match_type), campaign_id, reinstall, rejected, fraud_flags
		FROM installs WHERE app_id IN (%s)`, apps))
	if err != nil {
		return fmt.Errorf("query installs: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var id, mmp, match string
		var it traffic.InstallTruth
		var reinstall, rejected uint8
		if err := rows.Scan(&id, &mmp, &match, &it.CampaignID, &reinstall, &rejected, &it.Flags); err != nil {
			return fmt.Errorf("read installs: %w", err)
		}
		it.MMP, it.Match, it.Reinstall, it.Rejected, it.Seq = mmp, event.MatchType(match), reinstall != 0, rejected != 0, -1
		slices.Sort(it.Flags)
		f.Installs[id] = append(f.Installs[id], it)
	}
	return rows.Err()
}

// anyPosition is a condition true when column contains any of subs (a
// chain of position(): ClickHouse 18.16's lambdas cannot read a column).
func anyPosition(column string, subs []string) string {
	if len(subs) == 0 {
		return "0"
	}
	conds := make([]string, len(subs))
	for i, s := range subs {
		conds[i] = fmt.Sprintf("position(%s, %s) > 0", column, quoteList([]string{s}))
	}
	return strings.Join(conds, " OR ")
}

// quoteList renders vs as a ClickHouse list of string literals (” when
// empty, so IN () stays valid).
func quoteList(vs []string) string {
	if len(vs) == 0 {
		return "''"
	}
	q := make([]string, len(vs))
	for i, v := range vs {
		q[i] = "'" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(v) + "'"
	}
	return strings.Join(q, ",")
}

// Check reads ClickHouse every poll until what it holds equals truth or
// within has passed, and returns the last comparison.
func Check(ctx context.Context, conn driver.Conn, truth *traffic.GroundTruth, within, poll time.Duration) (*traffic.Report, error) {
	deadline := time.Now().Add(within)
	for {
		found, err := ReadFound(ctx, conn, truth)
		if err != nil {
			return nil, err
		}
		rep := traffic.Compare(truth, found)
		if rep.Equal() || time.Now().After(deadline) {
			return rep, nil
		}
		if err := sleepUntil(ctx, time.Now().Add(poll)); err != nil {
			return rep, err
		}
	}
}
