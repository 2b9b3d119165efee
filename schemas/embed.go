// Package schemas embeds the project's contracts: one JSON Schema per Kafka
// topic (events/) and the ordered ClickHouse migrations (clickhouse/).
package schemas

import "embed"

// Events holds events/<topic>.schema.json and the shared defs.schema.json.
//
//go:embed events/*.json
var Events embed.FS

// ClickHouse holds the migrations clickhouse/NNN_name.sql, applied in order
// by package migrate.
//
//go:embed clickhouse/*.sql
var ClickHouse embed.FS
