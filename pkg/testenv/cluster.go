package testenv

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/adtrack/postback/pkg/chconn"
)

// ClickHouseCluster is a ClickHouse cluster of the test's own: ZooKeeper and
// 2 shards x 2 replicas on free ports and a temporary state directory,
// started with the project's deploy/local/clickhouse-cluster.sh and stopped
// at cleanup. Nodes are numbered 1..4, shard by shard: 1 and 2 replicate
// shard 1, 3 and 4 shard 2.
//
//	c := testenv.StartClickHouseCluster(t)
//	cfg := c.Database(t)   // fresh database on every node; cfg.Cluster is set
//	c.StopReplica(1); c.StartReplica(1)
type ClickHouseCluster struct {
	t      testing.TB
	script string
	env    []string
	name   string
	addrs  []string
}

// Cluster shape of StartClickHouseCluster.
const (
	ClusterShards   = 2
	ClusterReplicas = 2
)

// StartClickHouseCluster starts the cluster and fails the test if it cannot.
func StartClickHouseCluster(t testing.TB) *ClickHouseCluster {
	t.Helper()
	root, err := repoRoot()
	if err != nil {
		t.Fatal(err)
	}
	nodes := ClusterShards * ClusterReplicas
	base := freePortBlock(t, nodes)
	zk := base + zkOffset
	c := &ClickHouseCluster{t: t, script: filepath.Join(root, "deploy", "local", "clickhouse-cluster.sh"), name: "postback_test",
		env: append(os.Environ(), "POSTBACK_LOCAL_STATE_DIR="+t.TempDir(),
			"POSTBACK_CHCLUSTER_NAME=postback_test",
			fmt.Sprintf("POSTBACK_CHCLUSTER_SHARDS=%d", ClusterShards),
			fmt.Sprintf("POSTBACK_CHCLUSTER_REPLICAS=%d", ClusterReplicas),
			fmt.Sprintf("POSTBACK_CHCLUSTER_BASE_PORT=%d", base),
			fmt.Sprintf("POSTBACK_ZOOKEEPER_PORT=%d", zk))}
	for n := 1; n <= nodes; n++ {
		c.addrs = append(c.addrs, fmt.Sprintf("127.0.0.1:%d", base+n))
	}
	c.run("start")
	t.Cleanup(func() { c.run("stop") })
	return c
}

// zkOffset places ZooKeeper's client port in the cluster's block: a port
// picked on its own could be one of the nodes' ports, free until they bind
// it.
const zkOffset = 300

// freePortBlock finds a base port whose node ports (base+n, base+100+n and
// base+200+n for n in 1..nodes) and ZooKeeper's (base+zkOffset) were all
// free a moment ago. The block stays below 32768, where Linux's ephemeral
// range starts: a node restarted by a test would otherwise find its port
// taken by some client connection's local end.
func freePortBlock(t testing.TB, nodes int) int {
	t.Helper()
	for range 50 {
		base := 20000 + rand.IntN(12000-zkOffset)
		ports := []int{base + zkOffset}
		for n := 1; n <= nodes; n++ {
			ports = append(ports, base+n, base+100+n, base+200+n)
		}
		free := true
		for _, p := range ports {
			ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", p))
			if err != nil {
				free = false
				break
			}
			ln.Close()
		}
		if free {
			return base
		}
	}
	t.Fatal("no block of free ports for a ClickHouse cluster")
	return 0
}

// Name returns the cluster's name (clickhouse.cluster).
func (c *ClickHouseCluster) Name() string { return c.name }

// Addrs returns the native addresses of the nodes, in node order.
func (c *ClickHouseCluster) Addrs() []string { return append([]string(nil), c.addrs...) }

// NodeConfig returns a config that connects to node n (1-based) only.
func (c *ClickHouseCluster) NodeConfig(n int, db string) chconn.Config {
	cfg := ClickHouseConfig(db)
	cfg.Addr = []string{c.addrs[n-1]}
	cfg.Cluster = c.name
	return cfg
}

// Database creates a fresh database on every node and returns a config
// with every node's address and the cluster set.
func (c *ClickHouseCluster) Database(t testing.TB) chconn.Config {
	t.Helper()
	cfg := ClickHouseConfig(Name("test"))
	cfg.Addr = c.Addrs()
	cfg.Cluster = c.name
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	srv, err := chconn.OpenServer(ctx, cfg)
	if err != nil {
		t.Fatalf("cluster %s at %v: %v", c.name, cfg.Addr, err)
	}
	defer srv.Close()
	if err := srv.Exec(ctx, "CREATE DATABASE "+cfg.Database+" ON CLUSTER "+c.name); err != nil {
		t.Fatalf("create database %s on cluster %s: %v", cfg.Database, c.name, err)
	}
	return cfg
}

// StopReplica stops node n (SIGTERM, as the script does).
func (c *ClickHouseCluster) StopReplica(n int) { c.t.Helper(); c.run("stop-replica", fmt.Sprint(n)) }

// StartReplica starts node n again and waits until it answers.
func (c *ClickHouseCluster) StartReplica(n int) { c.t.Helper(); c.run("start-replica", fmt.Sprint(n)) }

// run calls the script and fails the test when it fails: call it from the
// test's goroutine.
func (c *ClickHouseCluster) run(args ...string) {
	c.t.Helper()
	cmd := exec.Command("bash", append([]string{c.script}, args...)...)
	cmd.Env = c.env
	out, err := cmd.CombinedOutput()
	if err != nil {
		c.t.Fatalf("clickhouse-cluster.sh %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}
