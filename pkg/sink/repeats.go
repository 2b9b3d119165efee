package sink

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/adtrack/postback/pkg/chconn"
	"github.com/adtrack/postback/pkg/event"
	"github.com/adtrack/postback/pkg/migrate"
)

// Repeated touch ids (docs/sink.md, "Repeated touch ids").
//
// A click or impression sent with an idempotency key has an id derived from
// it (event.IsKeyedTouchID), so a client's retry after a 503 carries the id
// of the first attempt, which may have reached Kafka after all. Such an id
// is loaded once: before the first attempt to insert a batch of clicks or
// impressions, rows whose keyed id an earlier row of the batch has, or that
// ClickHouse's touch_keys already holds, are dropped. touch_keys is fed by
// the same INSERT as the rows (006_touch_keys.sql), and the same id always
// lands on the same partition (it is the record key), so at most one loader
// owns it; its batches are inserted one at a time, each after the previous
// one returned, so the lookup sees every earlier row. The first record in
// partition order wins; a replay after a crash or rebalance drops the same
// rows again, because the winner is in touch_keys by then.

// lookupChunk bounds the ids of one touch_keys query (~80 KB of SQL, well
// under the default max_query_size of 256 KiB).
const lookupChunk = 2000

// dropRepeats returns the rows of b to insert: without keyed ids that an
// earlier row of b has or that table already holds. dropped are the others.
// Only clicks and impressions have keyed ids (Table.KeyedID).
func (l *Loader) dropRepeats(ctx context.Context, t *Table, rows []row) (kept, dropped []row, err error) {
	if !t.KeyedID {
		return rows, nil, nil
	}
	var ids []string
	first := map[string]bool{}
	for _, r := range rows {
		if id, ok := keyedID(r); ok && !first[id] {
			first[id] = true
			ids = append(ids, id)
		}
	}
	if len(ids) == 0 {
		return rows, nil, nil
	}
	loaded, err := l.loadedKeys(ctx, t.Name, ids)
	if err != nil {
		return nil, nil, fmt.Errorf("look up keyed ids of %s in touch_keys: %w", t.Name, err)
	}
	kept = rows[:0:0]
	seen := make(map[string]bool, len(ids))
	for _, r := range rows {
		if id, ok := keyedID(r); ok {
			if loaded[id] || seen[id] {
				dropped = append(dropped, r)
				continue
			}
			seen[id] = true
		}
		kept = append(kept, r)
	}
	return kept, dropped, nil
}

// keyedID returns the row's id (its first column) when it is keyed.
func keyedID(r row) (string, bool) {
	id, _ := r.vals[0].(string)
	return id, event.IsKeyedTouchID(id)
}

// loadedKeys returns which of ids table holds per touch_keys: on one server
// from it; in cluster mode from every replica's local table, since a
// Distributed read may pick a replica that has not fetched the latest part
// (as for the progress, cluster.go).
//
// While a replica does not answer, its shard is read from a live replica
// of the shard after SYSTEM SYNC REPLICA: that returns once the replica has
// every part the shard's log held when it started, so its answer is the
// shard's. A part committed only on the dead replica cannot be fetched and
// the sync times out: then the answer is not known, and the insert waits.
func (l *Loader) loadedKeys(ctx context.Context, table string, ids []string) (map[string]bool, error) {
	out := map[string]bool{}
	if !l.cluster {
		return out, queryKeys(ctx, l.conn, "touch_keys", table, ids, out)
	}
	reps, err := l.replicas(ctx)
	if err != nil {
		return nil, err
	}
	local := "touch_keys" + migrate.LocalSuffix
	alive := map[string]bool{}
	down := map[uint32]error{}
	for _, r := range reps {
		if err := l.onReplica(ctx, r.addr, func(conn driver.Conn) error {
			return queryKeys(ctx, conn, local, table, ids, out)
		}); err != nil {
			down[r.shard] = fmt.Errorf("replica %s: %w", r.addr, err)
			continue
		}
		alive[r.addr] = true
	}
	for shard, cause := range down {
		covered := false
		for _, r := range reps {
			if r.shard != shard || !alive[r.addr] || covered {
				continue
			}
			err := l.onReplica(ctx, r.addr, func(conn driver.Conn) error {
				sctx, cancel := context.WithTimeout(ctx, syncReplicaTimeout)
				defer cancel()
				if err := conn.Exec(sctx, "SYSTEM SYNC REPLICA "+local); err != nil {
					return fmt.Errorf("sync replica %s: %w", local, err)
				}
				return queryKeys(ctx, conn, local, table, ids, out)
			})
			covered = err == nil
		}
		if !covered {
			return nil, fmt.Errorf("shard %d: no replica holds every keyed id it committed: %w", shard, cause)
		}
	}
	return out, nil
}

// syncReplicaTimeout bounds the wait for a live replica to fetch the parts
// of touch_keys its shard committed, while another replica is down.
const syncReplicaTimeout = 5 * time.Second

// onReplica runs fn on a connection of its own to the replica at addr.
func (l *Loader) onReplica(ctx context.Context, addr string, fn func(driver.Conn) error) error {
	cfg := l.cfg.ClickHouse
	cfg.Addr = []string{addr}
	conn, err := chconn.Open(ctx, cfg)
	if err != nil {
		return err
	}
	defer conn.Close()
	return fn(conn)
}

// queryKeys adds to out the ids of table that keys (touch_keys or a
// replica's local one) holds. The ids are inlined: they are canonical UUIDs
// (event.IsKeyedTouchID), so they need no escaping, and a bound IN list is
// typed differently by 18.16.
func queryKeys(ctx context.Context, conn driver.Conn, keys, table string, ids []string, out map[string]bool) error {
	for len(ids) > 0 {
		n := min(len(ids), lookupChunk)
		var q strings.Builder
		q.WriteString("SELECT DISTINCT id FROM " + keys + " WHERE table_name = '" + table + "' AND id IN (")
		for i, id := range ids[:n] {
			if i > 0 {
				q.WriteByte(',')
			}
			q.WriteString("'" + id + "'")
		}
		q.WriteString(")")
		ids = ids[n:]
		rows, err := conn.Query(ctx, q.String())
		if err != nil {
			return err
		}
		for rows.Next() {
			var id string
			if err := rows.Scan(&id); err != nil {
				rows.Close()
				return err
			}
			out[id] = true
		}
		err = rows.Err()
		rows.Close()
		if err != nil {
			return err
		}
	}
	return nil
}
