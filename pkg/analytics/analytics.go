// Package analytics names the analyst-facing ClickHouse objects that
// schemas/clickhouse/003..005 create, and reads the SQL examples out of
// docs/analytics.md so tests can run every one of them against the real
// server (docs and schema cannot drift).
//
// The objects (see docs/analytics.md for every column):
//
//	hourly_stats                 SummingMergeTree, hourly sums by every dimension
//	hourly_stats_*_mv            one materialized view per base table feeding it
//	stats_hourly, stats_daily    analyst views: counts, money and ratios
//	spend_by_currency_hourly/_daily  spend split by its currency
//	retention_daily              D1/D3/D7 retention by install-day cohort
//	skan_postbacks               verified SKAdNetwork / AdAttributionKit postbacks (006)
//	skan_postbacks_unique        one row per postback_id (resends folded)
//	skan_installs_daily          SKAN installs, redownloads, winning vs non-winning
//	skan_conversion_values       fine / coarse value distribution per window
//	skan_cpi_daily               SKAN-side CPI beside the MMP-side one
package analytics

import (
	"fmt"
	"strings"
)

// Table is the aggregate table the materialized views write to.
const Table = "hourly_stats"

// MaterializedViews feed Table, one per base table.
var MaterializedViews = []string{
	"hourly_stats_impressions_mv",
	"hourly_stats_clicks_mv",
	"hourly_stats_installs_mv",
	"hourly_stats_events_mv",
}

// Views are the analyst-facing views.
var Views = []string{
	"stats_hourly",
	"stats_daily",
	"spend_by_currency_hourly",
	"spend_by_currency_daily",
	"retention_daily",
	"skan_postbacks_unique",
	"skan_installs_daily",
	"skan_conversion_values",
	"skan_cpi_daily",
}

// SKANTable is the base table of verified Apple postbacks (skan.v1) the
// skan_* views read.
const SKANTable = "skan_postbacks"

// Query is one fenced ```sql block of a Markdown document.
type Query struct {
	// Heading is the text of the nearest heading above the block, without
	// the leading #s; empty when there is none.
	Heading string
	// Line is the 1-based line of the opening fence.
	Line int
	// SQL is the block's text, trimmed, without a trailing semicolon.
	SQL string
}

// SQLQueries returns the fenced ```sql blocks of a Markdown document in
// order; other fenced blocks are skipped. An unterminated block is an error
// naming the line of its opening fence.
func SQLQueries(markdown string) ([]Query, error) {
	var (
		out     []Query
		heading string
		inFence bool
		isSQL   bool
		open    int
		body    []string
	)
	for i, line := range strings.Split(markdown, "\n") {
		trimmed := strings.TrimSpace(line)
		fence := strings.HasPrefix(trimmed, "```")
		switch {
		case inFence && fence:
			if isSQL {
				sql := strings.TrimSpace(strings.Join(body, "\n"))
				out = append(out, Query{Heading: heading, Line: open, SQL: strings.TrimSpace(strings.TrimSuffix(sql, ";"))})
			}
			inFence, body = false, nil
		case inFence:
			body = append(body, line)
		case fence:
			inFence, open = true, i+1
			isSQL = strings.EqualFold(strings.TrimSpace(strings.TrimPrefix(trimmed, "```")), "sql")
		case strings.HasPrefix(trimmed, "#"):
			heading = strings.TrimSpace(strings.TrimLeft(trimmed, "#"))
		}
	}
	if inFence {
		return nil, fmt.Errorf("line %d: unterminated ``` block", open)
	}
	return out, nil
}
