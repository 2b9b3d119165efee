package migrate

import (
	"context"
	"fmt"
	"io/fs"
	"log/slog"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
)

// Table is the name of the table recording applied migrations.
const Table = "schema_migrations"

// Result says what a run did.
type Result struct {
	ServerVersion string
	Applied       []string // file names applied by this run
	Skipped       []string // already applied
	Deferred      []string // optional layers the server is too old for
}

// Options tune Up. The zero value is ready to use.
type Options struct {
	// Logger receives one line per applied migration; nil discards.
	Logger *slog.Logger
	// Cluster, when set, names the cluster (remote_servers) to lay the
	// schema out on: the database and every table ON CLUSTER, each table as
	// a Replicated local table and a Distributed table (cluster.go). Empty:
	// one server, the statements as written.
	Cluster string
}

// Up applies the pending migrations under dir of fsys to conn's current
// database, in version order, and records each one after its statements
// succeed. Concurrent runs against one database are not coordinated (run it
// from one place: postbackctl migrate or make up); idempotent statements
// make a repeated statement harmless.
func Up(ctx context.Context, conn driver.Conn, fsys fs.FS, dir string, opts Options) (Result, error) {
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	migs, err := Load(fsys, dir)
	if err != nil {
		return Result{}, err
	}
	var res Result
	if err := conn.QueryRow(ctx, "SELECT version()").Scan(&res.ServerVersion); err != nil {
		return res, fmt.Errorf("clickhouse version: %w", err)
	}
	server, err := ParseVersion(res.ServerVersion)
	if err != nil {
		return res, err
	}
	stmts := func(m Migration) []string { return m.Statements }
	if opts.Cluster != "" {
		byVersion, err := prepareCluster(ctx, conn, migs, opts.Cluster)
		if err != nil {
			return res, err
		}
		stmts = func(m Migration) []string { return byVersion[m.Version] }
	} else if err := conn.Exec(ctx, `CREATE TABLE IF NOT EXISTS `+Table+` (`+tableColumns+`) ENGINE = MergeTree() ORDER BY version`); err != nil {
		return res, fmt.Errorf("create %s: %w", Table, err)
	}
	applied, err := readApplied(ctx, conn)
	if err != nil {
		return res, err
	}
	steps, err := Plan(migs, applied, server)
	if err != nil {
		return res, err
	}
	for _, s := range steps {
		m := s.Migration
		switch s.Action {
		case Skip:
			res.Skipped = append(res.Skipped, m.Name)
			continue
		case TooOld:
			log.Info("migration deferred: server too old", "migration", m.Name,
				"requires", fmt.Sprintf("%d.%d", m.Requires[0], m.Requires[1]), "server", res.ServerVersion)
			res.Deferred = append(res.Deferred, m.Name)
			continue
		}
		for i, stmt := range stmts(m) {
			if err := conn.Exec(ctx, stmt); err != nil {
				return res, fmt.Errorf("migration %s statement %d of %d: %w", m.Name, i+1, len(stmts(m)), err)
			}
		}
		if err := record(ctx, conn, m); err != nil {
			return res, err
		}
		log.Info("migration applied", "migration", m.Name, "statements", len(m.Statements))
		res.Applied = append(res.Applied, m.Name)
	}
	return res, nil
}

const tableColumns = `
		version UInt32,
		name String,
		checksum String,
		applied_at DateTime('UTC')
	`

// prepareCluster derives the cluster statements of migs, then creates the
// connection's database and the migrations table on every host of cluster.
// The table is one Replicated table with every host as a replica, so a run
// from any host sees what earlier runs applied.
func prepareCluster(ctx context.Context, conn driver.Conn, migs []Migration, cluster string) (map[uint32][]string, error) {
	var db string
	if err := conn.QueryRow(ctx, "SELECT currentDatabase()").Scan(&db); err != nil {
		return nil, fmt.Errorf("current database: %w", err)
	}
	byVersion, err := clusterStatements(migs, cluster, db)
	if err != nil {
		return nil, err
	}
	if err := conn.Exec(ctx, "CREATE DATABASE IF NOT EXISTS "+db+" ON CLUSTER "+cluster); err != nil {
		return nil, fmt.Errorf("create database %s on cluster %s: %w", db, cluster, err)
	}
	err = conn.Exec(ctx, fmt.Sprintf(`CREATE TABLE IF NOT EXISTS %s.%s ON CLUSTER %s (%s)
		ENGINE = ReplicatedMergeTree('/clickhouse/tables/all/%s/%s', '{shard}-{replica}') ORDER BY version`,
		db, Table, cluster, tableColumns, db, Table))
	if err != nil {
		return nil, fmt.Errorf("create %s on cluster %s: %w", Table, cluster, err)
	}
	return byVersion, nil
}

func readApplied(ctx context.Context, conn driver.Conn) ([]Applied, error) {
	// any() collapses a version recorded twice by two racing runs.
	rows, err := conn.Query(ctx, `SELECT version, any(name), any(checksum) FROM `+Table+` GROUP BY version ORDER BY version`)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", Table, err)
	}
	defer rows.Close()
	var out []Applied
	for rows.Next() {
		var a Applied
		if err := rows.Scan(&a.Version, &a.Name, &a.Checksum); err != nil {
			return nil, fmt.Errorf("read %s: %w", Table, err)
		}
		out = append(out, a)
	}
	return out, rows.Err()
}

// record inserts m's row with the batch API: on 18.16 an INSERT ... VALUES
// sent through Exec waits forever for a data block.
func record(ctx context.Context, conn driver.Conn, m Migration) error {
	batch, err := conn.PrepareBatch(ctx, "INSERT INTO "+Table+" (version, name, checksum, applied_at)")
	if err != nil {
		return fmt.Errorf("record migration %s: %w", m.Name, err)
	}
	if err := batch.Append(m.Version, m.Name, m.Checksum, time.Now().UTC()); err != nil {
		return fmt.Errorf("record migration %s: %w", m.Name, err)
	}
	if err := batch.Send(); err != nil {
		return fmt.Errorf("record migration %s: %w", m.Name, err)
	}
	return nil
}
