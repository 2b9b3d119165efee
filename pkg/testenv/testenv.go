// Package testenv connects integration tests to the real Kafka broker and
// ClickHouse server that `make test` starts (deploy/local), and gives each
// test its own topics and database so tests never see each other's data.
//
//	brokers := testenv.Kafka(t)                 // fails the test if no broker answers
//	topic := testenv.Topic(t, brokers, 3)       // fresh topic, deleted at cleanup
//	ch := testenv.ClickHouse(t)                 // fresh database, dropped at cleanup
//
// Addresses come from POSTBACK_TEST_KAFKA_BROKERS and
// POSTBACK_TEST_CLICKHOUSE_ADDR, defaulting to the local scripts' ports.
// An unreachable server fails the test loudly: integration tests never skip.
package testenv

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	mathrand "math/rand/v2"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/adtrack/postback/pkg/chconn"
	"github.com/adtrack/postback/pkg/migrate"
	"github.com/adtrack/postback/pkg/topics"
	"github.com/adtrack/postback/schemas"
)

// KafkaBrokers returns the configured test brokers without checking them.
func KafkaBrokers() []string {
	if v := os.Getenv("POSTBACK_TEST_KAFKA_BROKERS"); v != "" {
		return strings.Split(v, ",")
	}
	return []string{"127.0.0.1:9092"}
}

// Kafka returns the brokers after checking that one answers metadata.
func Kafka(t testing.TB) []string {
	t.Helper()
	brokers := KafkaBrokers()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		t.Fatalf("kafka client for %v: %v", brokers, err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	if err := cl.Ping(ctx); err != nil {
		t.Fatalf("no Kafka broker answers at %v (start it with `deploy/local/kafka.sh start` or `make test`): %v", brokers, err)
	}
	return brokers
}

// Name returns prefix plus a random suffix, for topics, groups and databases.
func Name(prefix string) string {
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	return prefix + "_" + hex.EncodeToString(b)
}

// Topic creates a fresh topic with the given partitions and deletes it when
// the test ends.
func Topic(t testing.TB, brokers []string, partitions int32) string {
	t.Helper()
	return TopicWithConfigs(t, brokers, partitions, nil)
}

// TopicWithConfigs is Topic with topic-level configs (cleanup.policy, ...).
func TopicWithConfigs(t testing.TB, brokers []string, partitions int32, configs map[string]string) string {
	t.Helper()
	name := Name("test_" + strings.NewReplacer("/", "_", " ", "_").Replace(t.Name()))
	if len(name) > 200 {
		name = name[len(name)-200:]
	}
	NamedTopic(t, brokers, name, partitions, configs)
	return name
}

// NamedTopic creates topic name with the given partitions and configs, and
// deletes it when the test ends.
func NamedTopic(t testing.TB, brokers []string, name string, partitions int32, configs map[string]string) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		t.Fatal(err)
	}
	adm := kadm.NewClient(cl)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cfgs := make(map[string]*string, len(configs))
	for k, v := range configs {
		cfgs[k] = kadm.StringPtr(v)
	}
	resp, err := adm.CreateTopic(ctx, partitions, 1, cfgs, name)
	if err == nil {
		err = resp.Err
	}
	if err != nil {
		cl.Close()
		t.Fatalf("create topic %s: %v", name, err)
	}
	if _, err := topics.WaitVisible(ctx, adm, []string{name}); err != nil {
		cl.Close()
		t.Fatalf("create topic %s: %v", name, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_, _ = adm.DeleteTopics(ctx, name)
		cl.Close()
	})
}

// ClickHouseConfig returns the configured test server with database db.
func ClickHouseConfig(db string) chconn.Config {
	cfg := chconn.Defaults()
	if v := os.Getenv("POSTBACK_TEST_CLICKHOUSE_ADDR"); v != "" {
		cfg.Addr = strings.Split(v, ",")
	}
	cfg.Database = db
	return cfg
}

// ClickHouse creates a fresh database on the test server and drops it when
// the test ends; the returned config points at it.
func ClickHouse(t testing.TB) chconn.Config {
	t.Helper()
	cfg := ClickHouseConfig(Name("test"))
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	srv, err := chconn.OpenServer(ctx, cfg)
	if err != nil {
		t.Fatalf("no ClickHouse answers at %v (start it with `deploy/local/clickhouse.sh start` or `make test`): %v", cfg.Addr, err)
	}
	if err := srv.Exec(ctx, "CREATE DATABASE "+cfg.Database); err != nil {
		srv.Close()
		t.Fatalf("create database %s: %v", cfg.Database, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_ = srv.Exec(ctx, "DROP DATABASE IF EXISTS "+cfg.Database)
		srv.Close()
	})
	return cfg
}

// Topics returns a topic config whose every name is fresh (prefixed for this
// test), creates the topics with partitions each, and deletes them when the
// test ends.
func Topics(t testing.TB, brokers []string, partitions int) topics.Config {
	t.Helper()
	prefix := Name("t") + "."
	tc := topics.Defaults()
	for _, p := range []*string{&tc.Clicks, &tc.Impressions, &tc.InstallsRaw, &tc.EventsRaw,
		&tc.InstallsAttributed, &tc.EventsAttributed, &tc.Campaigns, &tc.Rejected, &tc.SKAN,
		&tc.Endpoints, &tc.Deliveries, &tc.ForwarderState} {
		*p = prefix + *p
	}
	tc.Partitions = partitions
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		t.Fatal(err)
	}
	adm := kadm.NewClient(cl)
	names := []string{tc.Clicks, tc.Impressions, tc.InstallsRaw, tc.EventsRaw, tc.InstallsAttributed, tc.EventsAttributed, tc.Campaigns, tc.Rejected, tc.SKAN,
		tc.Endpoints, tc.Deliveries, tc.ForwarderState}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	resp, err := adm.CreateTopics(ctx, int32(partitions), 1, nil, names...)
	if err == nil {
		err = resp.Error()
	}
	if err != nil {
		cl.Close()
		t.Fatalf("create topics: %v", err)
	}
	if _, err := topics.WaitVisible(ctx, adm, names); err != nil {
		cl.Close()
		t.Fatalf("create topics: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_, _ = adm.DeleteTopics(ctx, names...)
		cl.Close()
	})
	return tc
}

// ReadAll returns every committed record of topic, in each partition's
// offset order. It lists the last stable offsets (read_committed) first and
// consumes until every partition has reached its own, counting transaction
// markers as progress, so neither a slow broker nor a partition that answers
// late can make it return early, and a finished read waits for nothing.
//
// One case cannot be seen to end: aborted records just below a stable offset
// that an open transaction holds back (their marker lies above it). A
// partition stuck like that for readAllStuck is taken as read.
func ReadAll(t testing.TB, brokers []string, topic string) []*kgo.Record {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.KeepControlRecords())
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	ends, err := kadm.NewClient(cl).ListCommittedOffsets(ctx, topic)
	if err == nil {
		err = ends.Error()
	}
	if err != nil {
		t.Fatalf("list stable offsets of %s: %v", topic, err)
	}
	pending := map[int32]int64{}
	ends.Each(func(o kadm.ListedOffset) {
		if o.Offset > 0 {
			pending[o.Partition] = o.Offset
		}
	})
	var out []*kgo.Record
	last := time.Now()
	for len(pending) > 0 && time.Since(last) < readAllStuck {
		pctx, pcancel := context.WithTimeout(ctx, time.Second)
		fs := cl.PollFetches(pctx)
		pcancel()
		if ctx.Err() != nil {
			t.Fatalf("read %s: %d partitions short of their stable offsets after a minute: %v", topic, len(pending), pending)
		}
		fs.EachRecord(func(r *kgo.Record) {
			last = time.Now()
			if end, ok := pending[r.Partition]; ok && r.Offset+1 >= end {
				delete(pending, r.Partition)
			}
			if r.Offset < ends[topic][r.Partition].Offset && !r.Attrs.IsControl() {
				out = append(out, r)
			}
		})
	}
	return out
}

// readAllStuck is how long ReadAll waits on partitions that make no
// progress before it takes them as read (see ReadAll).
const readAllStuck = 15 * time.Second

// FreePort returns a TCP port on 127.0.0.1 that was free a moment ago, for
// dedicated servers a test starts (a second broker, a second ClickHouse).
// It is below Linux's ephemeral range (32768-60999): a server the test
// stops and starts again would otherwise find its port taken by the local
// end of some outgoing connection made meanwhile.
func FreePort(t testing.TB) int {
	t.Helper()
	for range 1000 {
		port := 20000 + mathrand.IntN(12000)
		ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
		if err != nil {
			continue
		}
		ln.Close()
		return port
	}
	t.Fatal("no free port in 20000-31999")
	return 0
}

// MigratedClickHouse is ClickHouse with every project migration applied to
// the fresh database, and an open connection to it, closed at cleanup.
func MigratedClickHouse(t testing.TB) (chconn.Config, driver.Conn) {
	t.Helper()
	cfg := ClickHouse(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	conn, err := chconn.Open(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	if _, err := migrate.Up(ctx, conn, schemas.ClickHouse, "clickhouse", migrate.Options{}); err != nil {
		t.Fatalf("migrations: %v", err)
	}
	return cfg, conn
}
