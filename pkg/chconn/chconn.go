// Package chconn opens native-protocol ClickHouse connections the way every
// part of the pipeline needs them: the configured database, the session
// settings the schema relies on, and a ping that proves the server answers.
//
//	conn, err := chconn.Open(ctx, cfg.ClickHouse) // a chconn.Config
//	defer conn.Close()
//
// Only the native protocol is used (port 9000, 9440 over TLS): it is the one
// that works from ClickHouse 18.16 to current releases. Several addresses
// are tried in turn, so a replica that is down does not stop the
// connection.
package chconn

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/adtrack/postback/pkg/config"
	"github.com/adtrack/postback/pkg/tlsconf"
)

// Config configures the native-protocol connection to ClickHouse (the
// clickhouse section of the sink and of postbackctl).
type Config struct {
	Addr         []string       `mapstructure:"addr" desc:"ClickHouse native-protocol addresses, host:port (9000; 9440 for TLS); tried in turn, so list every replica."`
	Database     string         `mapstructure:"database" desc:"Database holding the pipeline's tables; created by migrate."`
	Username     string         `mapstructure:"username" desc:"ClickHouse user."`
	Password     string         `mapstructure:"password" desc:"ClickHouse password; prefer password_file or the env var over the YAML file."`
	PasswordFile string         `mapstructure:"password_file" desc:"File holding the ClickHouse password (a mounted secret); excludes password."`
	TLS          tlsconf.Config `mapstructure:"tls"`
	DialTimeout  time.Duration  `mapstructure:"dial_timeout" desc:"Timeout of one connection attempt."`
	ReadTimeout  time.Duration  `mapstructure:"read_timeout" desc:"Longest wait for the server's answer to one query or insert."`
	Cluster      string         `mapstructure:"cluster" desc:"Cluster name from the servers' remote_servers: migrations create Replicated local tables and Distributed tables ON CLUSTER, and the sink inserts through them (docs/sink.md). Empty: one server."`
}

// Defaults returns the defaults of the clickhouse section.
func Defaults() Config {
	return Config{
		Addr:        []string{"127.0.0.1:9000"},
		Database:    "postback",
		Username:    "default",
		DialTimeout: 5 * time.Second,
		ReadTimeout: 60 * time.Second,
	}
}

// Validate checks the section; keys are relative to clickhouse.
func (c *Config) Validate() error {
	if len(c.Addr) == 0 {
		return config.Errorf("addr", "must list at least one address")
	}
	for _, a := range c.Addr {
		if _, _, err := net.SplitHostPort(strings.TrimSpace(a)); err != nil {
			return config.Errorf("addr", "%q is not host:port: %v", a, err)
		}
	}
	if !identifier(c.Database) {
		return config.Errorf("database", "%q is not a plain identifier ([A-Za-z_][A-Za-z0-9_]*)", c.Database)
	}
	if c.Cluster != "" && !identifier(c.Cluster) {
		// It is spliced into DDL (ON CLUSTER, Distributed(...)) unquoted.
		return config.Errorf("cluster", "%q is not a plain identifier ([A-Za-z_][A-Za-z0-9_]*)", c.Cluster)
	}
	if err := config.Positive("dial_timeout", c.DialTimeout); err != nil {
		return err
	}
	if err := config.Positive("read_timeout", c.ReadTimeout); err != nil {
		return err
	}
	if err := c.TLS.Validate(); err != nil {
		return config.Errorf("tls", "%v", err)
	}
	return nil
}

func identifier(s string) bool {
	if s == "" {
		return false
	}
	for i, r := range s {
		ok := r == '_' || (r >= 'a' && r <= 'z') || (r >= 'A' && r <= 'Z') || (i > 0 && r >= '0' && r <= '9')
		if !ok {
			return false
		}
	}
	return true
}

// Settings are sent with every query. LowCardinality is still experimental
// on 18.16 and needs this flag; current servers accept it as obsolete.
func Settings() clickhouse.Settings {
	return clickhouse.Settings{"allow_experimental_low_cardinality_type": 1}
}

// Open connects to cfg's servers using cfg.Database as the default
// database, and pings. Use OpenServer when the database may not exist yet.
func Open(ctx context.Context, cfg Config) (driver.Conn, error) {
	return open(ctx, cfg, cfg.Database)
}

// OpenServer connects without selecting a database (it uses "default"), for
// creating the configured one.
func OpenServer(ctx context.Context, cfg Config) (driver.Conn, error) {
	return open(ctx, cfg, "default")
}

func open(ctx context.Context, cfg Config, database string) (driver.Conn, error) {
	tc, err := cfg.TLS.Build()
	if err != nil {
		return nil, fmt.Errorf("clickhouse: %w", err)
	}
	conn, err := clickhouse.Open(&clickhouse.Options{
		Addr:        cfg.Addr,
		Protocol:    clickhouse.Native,
		TLS:         tc,
		Auth:        clickhouse.Auth{Database: database, Username: cfg.Username, Password: cfg.Password},
		Settings:    Settings(),
		DialTimeout: cfg.DialTimeout,
		ReadTimeout: cfg.ReadTimeout,
		// Addresses in the order given: the first is preferred, the
		// others are replicas to fall back on.
		ConnOpenStrategy: clickhouse.ConnOpenInOrder,
	})
	if err != nil {
		return nil, fmt.Errorf("clickhouse %s: %w", strings.Join(cfg.Addr, ","), err)
	}
	if err := conn.Ping(ctx); err != nil {
		conn.Close()
		return nil, explain(ctx, cfg, database, err)
	}
	return conn, nil
}

// ErrMisconfigured marks a connection failure that no retry fixes (wrong
// credentials, TLS settings that do not match the server): services stop
// on it instead of waiting for ClickHouse.
var ErrMisconfigured = errors.New("misconfigured")

// explain wraps a failed ping with the setting that most likely causes it.
// A connection closed at the first request is a misconfiguration only when
// the server answers TLS there; otherwise it is a server going down or
// starting up, and retried like any outage.
func explain(ctx context.Context, cfg Config, database string, err error) error {
	where := fmt.Sprintf("clickhouse %s (database %s, user %s)", strings.Join(cfg.Addr, ","), database, cfg.Username)
	var ex *clickhouse.Exception
	switch {
	case errors.As(err, &ex) && (ex.Code == 516 || ex.Code == 192 || ex.Code == 193):
		// AUTHENTICATION_FAILED (516; 192/193 before 20.x: unknown user, wrong password)
		return fmt.Errorf("%s: %w: authentication failed: wrong clickhouse.username or clickhouse.password: %w", where, ErrMisconfigured, err)
	}
	if why := tlsconf.Explain(err, cfg.TLS.Enabled); why != "" {
		return fmt.Errorf("%s: %w: %s (clickhouse.tls.*): %w", where, ErrMisconfigured, why, err)
	}
	if !cfg.TLS.Enabled && tlsconf.ClosedEarly(err) {
		for _, addr := range cfg.Addr {
			if tlsconf.SpeaksTLS(ctx, addr) {
				return fmt.Errorf("%s: %w: %s (clickhouse.tls.enabled, or the plaintext native port): %w", where, ErrMisconfigured, tlsconf.ExpectsTLS, err)
			}
		}
	}
	return fmt.Errorf("%s: ping: %w", where, err)
}

// Version returns the server's version as reported by SELECT version().
func Version(ctx context.Context, conn driver.Conn) (string, error) {
	var v string
	if err := conn.QueryRow(ctx, "SELECT version()").Scan(&v); err != nil {
		return "", fmt.Errorf("clickhouse version: %w", err)
	}
	return v, nil
}
