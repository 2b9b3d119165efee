package migrate

import (
	"regexp"
	"strings"
	"testing"

	"github.com/adtrack/postback/schemas"
)

// TestClusterStatementsOfProject derives the cluster form of the real
// migrations and checks what cluster mode relies on.
func TestClusterStatementsOfProject(t *testing.T) {
	migs, err := Load(schemas.ClickHouse, "clickhouse")
	if err != nil {
		t.Fatal(err)
	}
	byVersion, err := clusterStatements(migs, "c1", "db1")
	if err != nil {
		t.Fatal(err)
	}
	var all []string
	for _, m := range migs {
		all = append(all, byVersion[m.Version]...)
	}
	unqualified := regexp.MustCompile(`(?i)\b(FROM|JOIN|TO)\s+(clicks|impressions|installs|events|rejected|hourly_stats|sink_progress)\b`)
	want := map[string]bool{
		"CREATE TABLE IF NOT EXISTS db1.clicks_local ON CLUSTER c1 (":                                                                        false,
		"ENGINE = ReplicatedMergeTree('/clickhouse/tables/{shard}/db1/clicks_local', '{replica}')":                                           false,
		"CREATE TABLE IF NOT EXISTS db1.clicks ON CLUSTER c1 AS db1.clicks_local ENGINE = Distributed(c1, db1, clicks_local, src_partition)": false,
		"ENGINE = ReplicatedAggregatingMergeTree('/clickhouse/tables/{shard}/db1/sink_progress_local', '{replica}')":                         false,
		"ENGINE = ReplicatedSummingMergeTree('/clickhouse/tables/{shard}/db1/hourly_stats_local', '{replica}')":                              false,
		"Distributed(c1, db1, hourly_stats_local, rand())":                                                                                   false,
		"CREATE MATERIALIZED VIEW IF NOT EXISTS db1.sink_progress_clicks ON CLUSTER c1 TO db1.sink_progress_local AS":                        false,
		"FROM db1.clicks_local":   false,
		"FROM db1.hourly_stats\n": false,
		"GLOBAL ANY LEFT JOIN":    false,
		"FROM db1.events\n":       false,
		"CREATE VIEW IF NOT EXISTS db1.stats_daily ON CLUSTER c1 AS": false,
	}
	for _, st := range all {
		if !strings.Contains(st, " ON CLUSTER c1 ") {
			t.Errorf("statement without ON CLUSTER: %.100s", st)
		}
		if m := unqualified.FindString(st); m != "" {
			t.Errorf("unqualified name %q in: %.100s", m, st)
		}
		if strings.Contains(st, "--") {
			t.Errorf("comment kept in: %.100s", st)
		}
		for w := range want {
			if strings.Contains(st, w) {
				want[w] = true
			}
		}
	}
	for w, seen := range want {
		if !seen {
			t.Errorf("no statement contains %q", w)
		}
	}
	if got, single := len(all), countStatements(migs); got <= single {
		t.Errorf("%d cluster statements for %d single-server ones; want a local and a Distributed table each", got, single)
	}
}

func countStatements(migs []Migration) int {
	n := 0
	for _, m := range migs {
		n += len(m.Statements)
	}
	return n
}

func TestClusterRefusals(t *testing.T) {
	tests := []struct {
		name, sql, want string
	}{
		{"alter", "ALTER TABLE t ADD COLUMN x UInt8", "no cluster form"},
		{"insert", "INSERT INTO t (x) SELECT 1", "no cluster form"},
		{"unknown source", "CREATE VIEW IF NOT EXISTS v AS SELECT * FROM elsewhere", "reads elsewhere"},
		{"unknown target", "CREATE MATERIALIZED VIEW IF NOT EXISTS v TO nowhere AS SELECT 1", "writes to nowhere"},
		{"in subquery", "CREATE VIEW IF NOT EXISTS v AS SELECT * FROM t WHERE x IN (SELECT x FROM t)", "GLOBAL IN"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newClusterizer("c1", "db1")
			if _, err := c.rewrite("CREATE TABLE IF NOT EXISTS t (x UInt8) ENGINE = MergeTree() ORDER BY x"); err != nil {
				t.Fatal(err)
			}
			_, err := c.rewrite(tt.sql)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want it to say %q", err, tt.want)
			}
		})
	}
}

func TestStripComments(t *testing.T) {
	got, err := stripComments("SELECT '--not' AS a, -- gone\n 'x/*y*/' /* gone */ AS b")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(got, "gone") || !strings.Contains(got, "'--not'") || !strings.Contains(got, "'x/*y*/'") {
		t.Fatalf("stripComments = %q", got)
	}
}
