// Command forwarder sends the callbacks publishers and partners earned
// (see pkg/forwarder and docs/forwarder.md). It only wires config,
// telemetry, the endpoints registry and the engine. SIGTERM lets the
// attempts in flight finish and records them before it exits.
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

	"github.com/adtrack/postback/pkg/campaigntopic"
	"github.com/adtrack/postback/pkg/config"
	"github.com/adtrack/postback/pkg/forward"
	"github.com/adtrack/postback/pkg/forwarder"
	"github.com/adtrack/postback/pkg/kafkaconn"
	"github.com/adtrack/postback/pkg/servicecfg"
	"github.com/adtrack/postback/pkg/telemetry"
)

func main() {
	cfg := servicecfg.DefaultForwarder()
	if err := config.Load(&cfg, "forwarder", os.Args[1:], os.Stderr); err != nil {
		if errors.Is(err, config.ErrHelp) {
			os.Exit(0)
		}
		fmt.Fprintln(os.Stderr, "forwarder:", err)
		os.Exit(2)
	}
	log := telemetry.Logger(os.Stderr, cfg.Telemetry)
	if err := run(cfg, log); err != nil {
		log.Error("forwarder stopped", "err", err)
		os.Exit(1)
	}
}

func run(cfg servicecfg.Forwarder, log *slog.Logger) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	tel := telemetry.New()
	go func() {
		if err := tel.Serve(ctx, cfg.Telemetry.Addr, log); err != nil {
			log.Error("telemetry server", "err", err)
		}
	}()
	kafka, err := kafkaconn.Open(ctx, cfg.Kafka.Config, log, kafkaconn.WithMetrics(tel.Registry, "forwarder"))
	if err != nil {
		return err
	}
	endpoints := forward.NewRegistry(&cfg.Egress)
	follower := campaigntopic.NewTableFollower(endpoints, cfg.Kafka.Topics.Endpoints, "endpoints", log)
	go func() { _ = follower.Run(ctx, kafka.Opts("endpoints")) }()
	tel.AddReadiness("endpoints", follower.Ready)
	f, err := forwarder.New(cfg.Engine(kafka, endpoints), tel, log)
	if err != nil {
		return err
	}
	// Deliveries start once every endpoint is known: a record read before
	// would miss the endpoints not loaded yet.
	for !follower.Synced() {
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(100 * time.Millisecond):
		}
	}
	return f.Run(ctx)
}
