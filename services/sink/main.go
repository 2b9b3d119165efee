// Command sink loads the pipeline's topics into ClickHouse, exactly once
// (see pkg/sink). It only wires config, telemetry and the ClickHouse
// connection to the loader. SIGTERM flushes the open batch, then exits.
package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/adtrack/postback/pkg/chconn"
	"github.com/adtrack/postback/pkg/config"
	"github.com/adtrack/postback/pkg/kafkaconn"
	"github.com/adtrack/postback/pkg/servicecfg"
	"github.com/adtrack/postback/pkg/sink"
	"github.com/adtrack/postback/pkg/telemetry"
)

func main() {
	cfg := servicecfg.DefaultSink()
	if err := config.Load(&cfg, "sink", os.Args[1:], os.Stderr); err != nil {
		if errors.Is(err, config.ErrHelp) {
			os.Exit(0)
		}
		fmt.Fprintln(os.Stderr, "sink:", err)
		os.Exit(2)
	}
	log := telemetry.Logger(os.Stderr, cfg.Telemetry)
	if err := run(cfg, log); err != nil {
		log.Error("sink stopped", "err", err)
		os.Exit(1)
	}
}

func run(cfg servicecfg.Sink, log *slog.Logger) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	tel := telemetry.New()
	go func() {
		if err := tel.Serve(ctx, cfg.Telemetry.Addr, log); err != nil {
			log.Error("telemetry server", "err", err)
		}
	}()

	kafka, err := kafkaconn.Open(ctx, cfg.Kafka.Config, log, kafkaconn.WithMetrics(tel.Registry, "sink"))
	if err != nil {
		return err
	}
	// ClickHouse may still be starting: wait for it rather than crash-loop,
	// unless the settings themselves are wrong.
	for backoff := time.Second; ; backoff = min(2*backoff, 30*time.Second) {
		conn, err := chconn.Open(ctx, cfg.ClickHouse)
		if err == nil {
			defer conn.Close()
			l, err := sink.New(cfg.Loader(kafka), conn, tel, log)
			if err != nil {
				return err
			}
			tel.AddReadiness("clickhouse", conn.Ping)
			return l.Run(ctx)
		}
		if errors.Is(err, chconn.ErrMisconfigured) {
			return err
		}
		log.Warn("waiting for ClickHouse", "err", err, "backoff", backoff)
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(backoff):
		}
	}
}
