//go:build integration

package migrate_test

import (
	"context"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"github.com/adtrack/postback/pkg/chconn"
	"github.com/adtrack/postback/pkg/migrate"
	"github.com/adtrack/postback/pkg/testenv"
	"github.com/adtrack/postback/schemas"
)

// TestProjectMigrationsTwice applies the real schemas/clickhouse files to a
// fresh database on the real server: the first run applies every file, the
// second is a no-op, and the base tables exist.
func TestProjectMigrationsTwice(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cfg := testenv.ClickHouse(t)
	conn, err := chconn.Open(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()

	files, err := migrate.Load(schemas.ClickHouse, "clickhouse")
	if err != nil || len(files) == 0 {
		t.Fatalf("load project migrations: %d files, %v", len(files), err)
	}
	first, err := migrate.Up(ctx, conn, schemas.ClickHouse, "clickhouse", migrate.Options{})
	if err != nil {
		t.Fatalf("first run: %v", err)
	}
	t.Logf("server %s: applied %v, deferred %v", first.ServerVersion, first.Applied, first.Deferred)
	if len(first.Applied)+len(first.Deferred) != len(files) || len(first.Skipped) != 0 {
		t.Fatalf("first run applied %v deferred %v skipped %v; want all %d files", first.Applied, first.Deferred, first.Skipped, len(files))
	}
	second, err := migrate.Up(ctx, conn, schemas.ClickHouse, "clickhouse", migrate.Options{})
	if err != nil {
		t.Fatalf("second run: %v", err)
	}
	if len(second.Applied) != 0 || len(second.Skipped) != len(first.Applied) {
		t.Fatalf("second run applied %v, skipped %d; want a no-op", second.Applied, len(second.Skipped))
	}
	var recorded uint64
	if err := conn.QueryRow(ctx, "SELECT count() FROM "+migrate.Table).Scan(&recorded); err != nil {
		t.Fatal(err)
	}
	if int(recorded) != len(first.Applied) {
		t.Fatalf("%d rows in %s, want %d (one per applied file)", recorded, migrate.Table, len(first.Applied))
	}
	for _, table := range []string{"impressions", "clicks", "installs", "events", "rejected"} {
		var n uint64
		if err := conn.QueryRow(ctx, "SELECT count() FROM system.tables WHERE database = ? AND name = ?", cfg.Database, table).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n != 1 {
			t.Errorf("table %s.%s missing after migrations", cfg.Database, table)
		}
	}
}

// TestRunnerRules exercises the runner's refusals and deferrals on the real
// server with a synthetic migration set.
func TestRunnerRules(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cfg := testenv.ClickHouse(t)
	conn, err := chconn.Open(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()

	fsys := fstest.MapFS{
		"m/001_a.sql":      {Data: []byte("CREATE TABLE IF NOT EXISTS a (x UInt8) ENGINE = MergeTree() ORDER BY x;\nINSERT INTO a (x) SELECT 1;")},
		"m/002_future.sql": {Data: []byte("-- requires: clickhouse >= 999.1\nCREATE TABLE IF NOT EXISTS f (x UInt8) ENGINE = Memory")},
	}
	res, err := migrate.Up(ctx, conn, fsys, "m", migrate.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(res.Applied, ",") != "001_a.sql" || strings.Join(res.Deferred, ",") != "002_future.sql" {
		t.Fatalf("applied %v deferred %v", res.Applied, res.Deferred)
	}
	var rows uint64
	if err := conn.QueryRow(ctx, "SELECT count() FROM a").Scan(&rows); err != nil || rows != 1 {
		t.Fatalf("a has %d rows (%v), want 1: the INSERT ran once", rows, err)
	}
	// Re-run: nothing applied, the INSERT is not repeated.
	if res, err = migrate.Up(ctx, conn, fsys, "m", migrate.Options{}); err != nil || len(res.Applied) != 0 {
		t.Fatalf("re-run applied %v, %v", res.Applied, err)
	}
	if err := conn.QueryRow(ctx, "SELECT count() FROM a").Scan(&rows); err != nil || rows != 1 {
		t.Fatalf("a has %d rows after re-run, want 1", rows)
	}
	// A changed applied file is refused, naming it.
	fsys["m/001_a.sql"] = &fstest.MapFile{Data: []byte("CREATE TABLE IF NOT EXISTS a (x UInt16) ENGINE = MergeTree() ORDER BY x")}
	if _, err := migrate.Up(ctx, conn, fsys, "m", migrate.Options{}); err == nil || !strings.Contains(err.Error(), "001_a.sql was changed") {
		t.Fatalf("changed file: err = %v", err)
	}
	// A failing statement stops the run and names the file and statement.
	delete(fsys, "m/001_a.sql")
	fsys["m/001_a.sql"] = &fstest.MapFile{Data: []byte("CREATE TABLE IF NOT EXISTS a (x UInt8) ENGINE = MergeTree() ORDER BY x;\nINSERT INTO a (x) SELECT 1;")}
	fsys["m/003_bad.sql"] = &fstest.MapFile{Data: []byte("SELECT 1;\nCREATE TABLE broken (x NoSuchType) ENGINE = Memory")}
	_, err = migrate.Up(ctx, conn, fsys, "m", migrate.Options{})
	if err == nil || !strings.Contains(err.Error(), "003_bad.sql statement 2 of 2") {
		t.Fatalf("bad statement: err = %v", err)
	}
}

// TestClusterMigrations applies the project migrations in cluster mode to a
// cluster of the test's own (2 shards x 2 replicas): every node gets the
// Replicated local tables, the Distributed tables and the views, a second
// run from another node is a no-op, and every view answers through the
// Distributed tables.
func TestClusterMigrations(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cl := testenv.StartClickHouseCluster(t)
	cfg := cl.Database(t)
	files, err := migrate.Load(schemas.ClickHouse, "clickhouse")
	if err != nil {
		t.Fatal(err)
	}
	first := migrateNode(ctx, t, cl, 1, cfg.Database)
	if len(first.Applied)+len(first.Deferred) != len(files) {
		t.Fatalf("first run applied %v deferred %v; want all %d files", first.Applied, first.Deferred, len(files))
	}
	second := migrateNode(ctx, t, cl, 4, cfg.Database)
	if len(second.Applied) != 0 || len(second.Skipped) != len(first.Applied) {
		t.Fatalf("second run from node 4 applied %v, skipped %v; want a no-op", second.Applied, second.Skipped)
	}
	for n := 1; n <= len(cl.Addrs()); n++ {
		conn, err := chconn.Open(ctx, cl.NodeConfig(n, cfg.Database))
		if err != nil {
			t.Fatal(err)
		}
		for table, engine := range map[string]string{
			"clicks_local": "ReplicatedMergeTree", "clicks": "Distributed",
			"hourly_stats_local": "ReplicatedSummingMergeTree", "sink_progress_local": "ReplicatedAggregatingMergeTree",
			"sink_progress_clicks": "MaterializedView", "retention_daily": "View", migrate.Table: "ReplicatedMergeTree",
		} {
			var got string
			if err := conn.QueryRow(ctx, "SELECT engine FROM system.tables WHERE database = ? AND name = ?", cfg.Database, table).Scan(&got); err != nil || got != engine {
				t.Errorf("node %d: %s engine %q (%v), want %s", n, table, got, err, engine)
			}
		}
		for _, view := range []string{"stats_hourly", "stats_daily", "spend_by_currency_hourly", "spend_by_currency_daily", "retention_daily"} {
			var rows uint64
			if err := conn.QueryRow(ctx, "SELECT count() FROM "+view).Scan(&rows); err != nil {
				t.Errorf("node %d: view %s: %v", n, view, err)
			}
		}
		conn.Close()
	}
}

func migrateNode(ctx context.Context, t *testing.T, cl *testenv.ClickHouseCluster, node int, db string) migrate.Result {
	t.Helper()
	conn, err := chconn.Open(ctx, cl.NodeConfig(node, db))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	res, err := migrate.Up(ctx, conn, schemas.ClickHouse, "clickhouse", migrate.Options{Cluster: cl.Name()})
	if err != nil {
		t.Fatalf("cluster migrations from node %d: %v", node, err)
	}
	return res
}
