package sink

import (
	"context"
	"fmt"
	"net"
	"strconv"

	"github.com/ClickHouse/clickhouse-go/v2"

	"github.com/adtrack/postback/pkg/chconn"
	"github.com/adtrack/postback/pkg/migrate"
)

// Cluster mode (clickhouse.cluster set; docs/sink.md, "Cluster mode"):
//
//   - The sink inserts into the Distributed tables, synchronously: the INSERT
//     returns once one replica of every shard has committed its rows, and the
//     materialized views (sink_progress, hourly_stats) ran on that replica in
//     the same INSERT, as on one server. Rows of a Kafka partition go to one
//     shard (the tables are sharded by src_partition).
//   - Progress is read from every replica of every shard (the max over their
//     local sink_progress tables), never through the Distributed table, which
//     may pick a replica that has not fetched the latest parts yet.
//   - After an attempt with an unknown outcome, rows the progress shows are
//     dropped, as on one server. While a replica does not answer, progress is
//     not known: the same block is sent again (inserted_at is set by the
//     sink, not by DEFAULT now()), and a shard whose replica committed it
//     drops the repeat by its block id in ZooKeeper and skips its views,
//     whichever replica receives it. A dead replica does not stop loading.

// clusterInsertSettings are the settings of the sink's cluster INSERTs.
func clusterInsertSettings() clickhouse.Settings {
	return clickhouse.Settings{
		// Synchronous: with the default asynchronous insert the rows wait on
		// the receiving host's disk, and progress would not show them yet.
		"insert_distributed_sync": 1,
		// The default, stated: a retried block must be dropped by replicas
		// that already hold it.
		"insert_deduplicate": 1,
	}
}

// replica is one host of the cluster: its shard and host:port.
type replica struct {
	shard uint32
	addr  string
}

// replicaAddrs lists host:port of every replica of cluster, as the server's
// remote_servers names them.
func (l *Loader) replicaAddrs(ctx context.Context) ([]string, error) {
	reps, err := l.replicas(ctx)
	if err != nil {
		return nil, err
	}
	addrs := make([]string, len(reps))
	for i, r := range reps {
		addrs[i] = r.addr
	}
	return addrs, nil
}

// replicas lists every replica of cluster with its shard.
func (l *Loader) replicas(ctx context.Context) ([]replica, error) {
	rows, err := l.conn.Query(ctx, "SELECT shard_num, host_name, port FROM system.clusters WHERE cluster = ? ORDER BY shard_num, replica_num",
		l.cfg.ClickHouse.Cluster)
	if err != nil {
		return nil, fmt.Errorf("replicas of cluster %s: %w", l.cfg.ClickHouse.Cluster, err)
	}
	defer rows.Close()
	var reps []replica
	for rows.Next() {
		var (
			shard uint32
			host  string
			port  uint16
		)
		if err := rows.Scan(&shard, &host, &port); err != nil {
			return nil, fmt.Errorf("replicas of cluster %s: %w", l.cfg.ClickHouse.Cluster, err)
		}
		reps = append(reps, replica{shard: shard, addr: net.JoinHostPort(host, strconv.Itoa(int(port)))})
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("replicas of cluster %s: %w", l.cfg.ClickHouse.Cluster, err)
	}
	if len(reps) == 0 {
		return nil, fmt.Errorf("cluster %s is not in the server's remote_servers", l.cfg.ClickHouse.Cluster)
	}
	return reps, nil
}

// readClusterProgress reads every replica's local sink_progress and keeps
// the highest offset of each table and partition. A part committed anywhere
// is on at least the replica that wrote it, so the max is exact; while a
// replica does not answer it fails, and the caller retries.
func (l *Loader) readClusterProgress(ctx context.Context) (map[progressKey]int64, error) {
	addrs, err := l.replicaAddrs(ctx)
	if err != nil {
		return nil, err
	}
	out := map[progressKey]int64{}
	for _, addr := range addrs {
		cfg := l.cfg.ClickHouse
		cfg.Addr = []string{addr}
		conn, err := chconn.Open(ctx, cfg)
		if err != nil {
			return nil, fmt.Errorf("sink progress of replica %s: %w", addr, err)
		}
		progress, err := readProgress(ctx, conn, l.topics, "sink_progress"+migrate.LocalSuffix)
		conn.Close()
		if err != nil {
			return nil, fmt.Errorf("sink progress of replica %s: %w", addr, err)
		}
		for k, next := range progress {
			out[k] = max(out[k], next)
		}
	}
	return out, nil
}
