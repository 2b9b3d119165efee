// Command postbackctl is the operator's tool: it creates the Kafka topics,
// applies the ClickHouse migrations and (with later subcommands) manages
// campaigns. It only wires config and telemetry to pkg/topics and pkg/migrate.
//
//	postbackctl topics     create missing topics, check existing ones
//	postbackctl migrate    apply pending ClickHouse migrations
//	postbackctl bootstrap  both, waiting for Kafka and ClickHouse to answer
//	postbackctl status     records per topic and rows per ClickHouse table
//	postbackctl campaigns apply FILE    publish a YAML file of campaigns
//	postbackctl campaigns delete ID...  remove campaigns (tombstones)
//	postbackctl simulate   play a seeded campaign day against ingest; --check compares ClickHouse
//	postbackctl endpoints apply FILE    publish a YAML file of publisher callback endpoints
//	postbackctl endpoints delete ID...  remove endpoints (tombstones)
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/adtrack/postback/pkg/campaign"
	"github.com/adtrack/postback/pkg/campaigntopic"
	"github.com/adtrack/postback/pkg/chconn"
	"github.com/adtrack/postback/pkg/config"
	"github.com/adtrack/postback/pkg/forward"
	"github.com/adtrack/postback/pkg/kafkaconn"
	"github.com/adtrack/postback/pkg/migrate"
	"github.com/adtrack/postback/pkg/servicecfg"
	"github.com/adtrack/postback/pkg/telemetry"
	"github.com/adtrack/postback/pkg/topics"
	"github.com/adtrack/postback/schemas"
)

const usage = `usage: postbackctl <command> [flags]

commands:
  topics     create the pipeline's Kafka topics (idempotent), check partition counts
  migrate    apply pending ClickHouse migrations from schemas/clickhouse (idempotent)
  bootstrap  topics + migrate, waiting up to --wait for both servers
  status     records per topic and rows per ClickHouse table: is data flowing?
  campaigns apply FILE     validate a YAML file of campaigns and publish it to the campaigns topic
  campaigns delete ID...   delete campaigns (compaction tombstones)
  simulate   play a realistic, seeded campaign day against ingest (every MMP's format, retries,
             fraud, malformed requests), write its ground truth; --check compares ClickHouse's
             views with it (docs/simulator.md)
  endpoints apply FILE     validate a YAML file of publisher callback endpoints (docs/forwarder.md)
                           and publish it to the endpoints topic
  endpoints delete ID...   delete endpoints (compaction tombstones)

Run "postbackctl <command> --help" for the configuration flags.
`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		if errors.Is(err, config.ErrHelp) {
			os.Exit(0)
		}
		fmt.Fprintln(os.Stderr, "postbackctl:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		fmt.Fprint(stdout, usage)
		return nil
	}
	cmd, rest := args[0], args[1:]
	var operands []string
	if cmd == "campaigns" || cmd == "endpoints" {
		if len(rest) == 0 {
			return fmt.Errorf("%s: want apply FILE or delete ID...\n%s", cmd, usage)
		}
		cmd, rest = cmd+" "+rest[0], rest[1:]
		for len(rest) > 0 && !strings.HasPrefix(rest[0], "-") {
			operands, rest = append(operands, rest[0]), rest[1:]
		}
	}
	var sim simFlags
	if cmd == "simulate" {
		var err error
		if sim, rest, err = takeSimFlags(rest, stderr); err != nil {
			return err
		}
	}
	wait := 60 * time.Second
	rest, wait = takeWait(rest, wait)
	cfg := servicecfg.DefaultAdmin()
	if err := config.Load(&cfg, "postbackctl "+cmd, rest, stderr); err != nil {
		return err
	}
	log := telemetry.Logger(stderr, cfg.Telemetry)
	switch cmd {
	case "topics":
		return ensureTopics(ctx, cfg, log, 0)
	case "migrate":
		return runMigrations(ctx, cfg, log, 0)
	case "bootstrap":
		if err := ensureTopics(ctx, cfg, log, wait); err != nil {
			return err
		}
		return runMigrations(ctx, cfg, log, wait)
	case "status":
		return status(ctx, cfg, stdout)
	case "simulate":
		return simulateCmd(ctx, cfg, sim, log, stdout, stderr)
	case "campaigns apply":
		if len(operands) != 1 {
			return fmt.Errorf("campaigns apply: want exactly one FILE, got %d", len(operands))
		}
		return applyCampaigns(ctx, cfg, log, operands[0])
	case "campaigns delete":
		if len(operands) == 0 {
			return fmt.Errorf("campaigns delete: want at least one campaign id")
		}
		return deleteFrom(ctx, cfg, log, cfg.Kafka.Topics.Campaigns, "campaigns", operands)
	case "endpoints apply":
		if len(operands) != 1 {
			return fmt.Errorf("endpoints apply: want exactly one FILE, got %d", len(operands))
		}
		return applyEndpoints(ctx, cfg, log, operands[0])
	case "endpoints delete":
		if len(operands) == 0 {
			return fmt.Errorf("endpoints delete: want at least one endpoint id")
		}
		return deleteFrom(ctx, cfg, log, cfg.Kafka.Topics.Endpoints, "endpoints", operands)
	default:
		return fmt.Errorf("unknown command %q\n%s", cmd, usage)
	}
}

// takeWait pulls --wait=DURATION out of args; it is not a config key because
// it only matters to this one command.
func takeWait(args []string, def time.Duration) ([]string, time.Duration) {
	out := args[:0:0]
	for _, a := range args {
		if v, ok := cutPrefix(a, "--wait="); ok {
			if d, err := time.ParseDuration(v); err == nil {
				def = d
				continue
			}
		}
		out = append(out, a)
	}
	return out, def
}

func cutPrefix(s, p string) (string, bool) {
	if len(s) >= len(p) && s[:len(p)] == p {
		return s[len(p):], true
	}
	return "", false
}

// retry calls fn until it succeeds or wait has passed, so bootstrap can run
// right after the servers were started.
func retry(ctx context.Context, wait time.Duration, log *slog.Logger, what string, fn func(context.Context) error) error {
	deadline := time.Now().Add(wait)
	for {
		err := fn(ctx)
		if err == nil || time.Now().After(deadline) || ctx.Err() != nil ||
			kafkaconn.IsMisconfigured(err) || errors.Is(err, chconn.ErrMisconfigured) {
			return err
		}
		log.Info("waiting", "for", what, "err", err)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Second):
		}
	}
}

func ensureTopics(ctx context.Context, cfg servicecfg.Admin, log *slog.Logger, wait time.Duration) error {
	conn, err := kafkaconn.New(cfg.Kafka.Config, kafkaconn.WithLogger(log))
	if err != nil {
		return err
	}
	cl, err := kgo.NewClient(conn.Opts("")...)
	if err != nil {
		return fmt.Errorf("kafka client: %w", err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	var res topics.Result
	err = retry(ctx, wait, log, "kafka", func(ctx context.Context) error {
		cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		// Check first: wrong credentials or TLS settings stop at once,
		// with the cause named, instead of after the whole wait.
		if err := conn.Check(cctx); err != nil {
			return err
		}
		var err error
		res, err = topics.Ensure(cctx, adm, topics.Specs(cfg.Kafka.Topics))
		return err
	})
	if err != nil {
		return fmt.Errorf("topics on %v: %w", cfg.Kafka.Brokers, err)
	}
	log.Info("topics ready", "created", res.Created, "existed", res.Existed)
	return nil
}

func runMigrations(ctx context.Context, cfg servicecfg.Admin, log *slog.Logger, wait time.Duration) error {
	err := retry(ctx, wait, log, "clickhouse", func(ctx context.Context) error {
		srv, err := chconn.OpenServer(ctx, cfg.ClickHouse)
		if err != nil {
			return err
		}
		defer srv.Close()
		create := "CREATE DATABASE IF NOT EXISTS " + cfg.ClickHouse.Database
		if cfg.ClickHouse.Cluster != "" {
			create += " ON CLUSTER " + cfg.ClickHouse.Cluster
		}
		return srv.Exec(ctx, create)
	})
	if err != nil {
		return fmt.Errorf("create database %s: %w", cfg.ClickHouse.Database, err)
	}
	conn, err := chconn.Open(ctx, cfg.ClickHouse)
	if err != nil {
		return err
	}
	defer conn.Close()
	res, err := migrate.Up(ctx, conn, schemas.ClickHouse, "clickhouse", migrate.Options{Logger: log, Cluster: cfg.ClickHouse.Cluster})
	if err != nil {
		return err
	}
	log.Info("migrations done", "server", res.ServerVersion, "database", cfg.ClickHouse.Database,
		"applied", res.Applied, "already_applied", len(res.Skipped), "deferred", res.Deferred)
	return nil
}

func producer(cfg servicecfg.Admin) (*kgo.Client, error) {
	conn, err := kafkaconn.New(cfg.Kafka.Config)
	if err != nil {
		return nil, err
	}
	cl, err := kgo.NewClient(conn.Opts("", kgo.RequiredAcks(kgo.AllISRAcks()))...)
	if err != nil {
		return nil, fmt.Errorf("kafka client: %w", err)
	}
	return cl, nil
}

// publish runs write with a producer of its own, bounded to 30 s: the
// registry commands write a few records and wait for their acknowledgement.
func publish(ctx context.Context, cfg servicecfg.Admin, write func(context.Context, *kgo.Client) error) error {
	cl, err := producer(cfg)
	if err != nil {
		return err
	}
	defer cl.Close()
	pctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	return write(pctx, cl)
}

func applyCampaigns(ctx context.Context, cfg servicecfg.Admin, log *slog.Logger, file string) error {
	data, err := os.ReadFile(file)
	if err != nil {
		return err
	}
	camps, err := campaign.ParseYAML(data)
	if err != nil {
		return fmt.Errorf("%s: %w", file, err)
	}
	if err := publish(ctx, cfg, func(ctx context.Context, cl *kgo.Client) error {
		return campaigntopic.Publish(ctx, cl, cfg.Kafka.Topics.Campaigns, camps)
	}); err != nil {
		return err
	}
	log.Info("campaigns published", "file", file, "count", len(camps), "topic", cfg.Kafka.Topics.Campaigns)
	return nil
}

// deleteFrom writes tombstones for ids to a compacted registry topic.
func deleteFrom(ctx context.Context, cfg servicecfg.Admin, log *slog.Logger, topic, what string, ids []string) error {
	if err := publish(ctx, cfg, func(ctx context.Context, cl *kgo.Client) error {
		return campaigntopic.Delete(ctx, cl, topic, ids...)
	}); err != nil {
		return err
	}
	log.Info(what+" deleted", "ids", ids, "topic", topic)
	return nil
}

// applyEndpoints validates an endpoints file, resolves every URL's host and
// refuses one that reaches an internal address (egress), then publishes
// the endpoints on the path campaigns take.
func applyEndpoints(ctx context.Context, cfg servicecfg.Admin, log *slog.Logger, file string) error {
	data, err := os.ReadFile(file)
	if err != nil {
		return err
	}
	eps, err := forward.ParseYAML(data, &cfg.Egress)
	if err != nil {
		return fmt.Errorf("%s: %w", file, err)
	}
	ids := make([]string, len(eps))
	values := make([]any, len(eps))
	for i, ep := range eps {
		lookup := func(host string) ([]net.IP, error) {
			lctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			defer cancel()
			return net.DefaultResolver.LookupIP(lctx, "ip", host)
		}
		if err := cfg.Egress.CheckHost(ep.URL, lookup); err != nil {
			return fmt.Errorf("%s: endpoint %q: url: %w", file, ep.ID, err)
		}
		ids[i], values[i] = ep.ID, ep
	}
	if err := publish(ctx, cfg, func(ctx context.Context, cl *kgo.Client) error {
		return campaigntopic.PublishJSON(ctx, cl, cfg.Kafka.Topics.Endpoints, "endpoints", ids, values)
	}); err != nil {
		return err
	}
	log.Info("endpoints published", "file", file, "count", len(eps), "topic", cfg.Kafka.Topics.Endpoints)
	return nil
}

// status prints how many records each topic holds and how many rows each
// ClickHouse table has; make demo uses it to show data flowing.
func status(ctx context.Context, cfg servicecfg.Admin, out io.Writer) error {
	cl, err := producer(cfg)
	if err != nil {
		return err
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	sctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	specs := topics.Specs(cfg.Kafka.Topics)
	names := make([]string, len(specs))
	for i, s := range specs {
		names[i] = s.Name
	}
	starts, err := adm.ListStartOffsets(sctx, names...)
	if err != nil {
		return fmt.Errorf("list start offsets: %w", err)
	}
	ends, err := adm.ListEndOffsets(sctx, names...)
	if err != nil {
		return fmt.Errorf("list end offsets: %w", err)
	}
	fmt.Fprintf(out, "%-28s %12s\n", "kafka topic", "records")
	for _, n := range names {
		var total int64
		ends.Each(func(o kadm.ListedOffset) {
			if o.Topic == n && o.Err == nil {
				total += o.Offset
			}
		})
		starts.Each(func(o kadm.ListedOffset) {
			if o.Topic == n && o.Err == nil {
				total -= o.Offset
			}
		})
		fmt.Fprintf(out, "%-28s %12d\n", n, total)
	}
	conn, err := chconn.Open(sctx, cfg.ClickHouse)
	if err != nil {
		return err
	}
	defer conn.Close()
	return countTables(sctx, conn, cfg.ClickHouse.Database, out)
}

func countTables(ctx context.Context, conn driver.Conn, db string, out io.Writer) error {
	rows, err := conn.Query(ctx, "SELECT name FROM system.tables WHERE database = ? AND engine LIKE '%MergeTree' ORDER BY name", db)
	if err != nil {
		return fmt.Errorf("list tables: %w", err)
	}
	var tables []string
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			rows.Close()
			return err
		}
		tables = append(tables, n)
	}
	rows.Close()
	fmt.Fprintf(out, "\n%-28s %12s\n", "clickhouse table ("+db+")", "rows")
	for _, t := range tables {
		var n uint64
		if err := conn.QueryRow(ctx, "SELECT count() FROM "+t).Scan(&n); err != nil {
			return fmt.Errorf("count %s: %w", t, err)
		}
		fmt.Fprintf(out, "%-28s %12d\n", t, n)
	}
	return nil
}
