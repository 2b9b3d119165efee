// Package chconn opens native-protocol ClickHouse connections the way every
// part of the pipeline needs them: the configured database, the session
// settings the schema relies on, and a ping that proves the server answers.
//
//	conn, err := chconn.Open(ctx, cfg.ClickHouse)
//	defer conn.Close()
//
// Only the native protocol (port 9000) is used: it is the one that works
// from ClickHouse 18.16 to current releases.
package chconn

import (
	"context"
	"fmt"
	"strings"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/adtrack/postback/pkg/config"
)

// Settings are sent with every query. LowCardinality is still experimental
// on 18.16 and needs this flag; current servers accept it as obsolete.
func Settings() clickhouse.Settings {
	return clickhouse.Settings{"allow_experimental_low_cardinality_type": 1}
}

// Open connects to cfg's servers using cfg.Database as the default
// database, and pings. Use OpenServer when the database may not exist yet.
func Open(ctx context.Context, cfg config.ClickHouse) (driver.Conn, error) {
	return open(ctx, cfg, cfg.Database)
}

// OpenServer connects without selecting a database (it uses "default"), for
// creating the configured one.
func OpenServer(ctx context.Context, cfg config.ClickHouse) (driver.Conn, error) {
	return open(ctx, cfg, "default")
}

func open(ctx context.Context, cfg config.ClickHouse, database string) (driver.Conn, error) {
	conn, err := clickhouse.Open(&clickhouse.Options{
		Addr:        cfg.Addr,
		Protocol:    clickhouse.Native,
		Auth:        clickhouse.Auth{Database: database, Username: cfg.Username, Password: cfg.Password},
		Settings:    Settings(),
		DialTimeout: cfg.DialTimeout,
		ReadTimeout: cfg.ReadTimeout,
	})
	if err != nil {
		return nil, fmt.Errorf("clickhouse %s: %w", strings.Join(cfg.Addr, ","), err)
	}
	if err := conn.Ping(ctx); err != nil {
		conn.Close()
		return nil, fmt.Errorf("clickhouse %s (database %s): ping: %w", strings.Join(cfg.Addr, ","), database, err)
	}
	return conn, nil
}

// Version returns the server's version as reported by SELECT version().
func Version(ctx context.Context, conn driver.Conn) (string, error) {
	var v string
	if err := conn.QueryRow(ctx, "SELECT version()").Scan(&v); err != nil {
		return "", fmt.Errorf("clickhouse version: %w", err)
	}
	return v, nil
}
