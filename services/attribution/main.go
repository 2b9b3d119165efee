// Command attribution joins installs to the clicks, impressions, campaigns
// and media sources that caused them, and in-app events to their installs,
// exactly once (see pkg/join and docs/attribution.md). It only wires
// config, telemetry and the campaign registry to the joins. SIGTERM aborts
// the open transactions and exits; the next owner resumes from the last
// commit.
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

	"github.com/adtrack/postback/pkg/campaign"
	"github.com/adtrack/postback/pkg/campaigntopic"
	"github.com/adtrack/postback/pkg/config"
	"github.com/adtrack/postback/pkg/join"
	"github.com/adtrack/postback/pkg/kafkaconn"
	"github.com/adtrack/postback/pkg/servicecfg"
	"github.com/adtrack/postback/pkg/statestore"
	"github.com/adtrack/postback/pkg/telemetry"
)

func main() {
	cfg := servicecfg.DefaultAttribution()
	if err := config.Load(&cfg, "attribution", os.Args[1:], os.Stderr); err != nil {
		if errors.Is(err, config.ErrHelp) {
			os.Exit(0)
		}
		fmt.Fprintln(os.Stderr, "attribution:", err)
		os.Exit(2)
	}
	log := telemetry.Logger(os.Stderr, cfg.Telemetry)
	if err := run(cfg, log); err != nil {
		log.Error("attribution stopped", "err", err)
		os.Exit(1)
	}
}

func run(cfg servicecfg.Attribution, log *slog.Logger) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	tel := telemetry.New()
	go func() {
		if err := tel.Serve(ctx, cfg.Telemetry.Addr, log); err != nil {
			log.Error("telemetry server", "err", err)
		}
	}()

	rates, err := cfg.ParsedRates()
	if err != nil {
		return err
	}
	conn, err := kafkaconn.Open(ctx, cfg.Kafka.Config, log, kafkaconn.WithMetrics(tel.Registry, "attribution"))
	if err != nil {
		return err
	}
	t := cfg.Kafka.Topics
	reg := campaign.NewRegistry()
	follower := campaigntopic.NewFollower(reg, t.Campaigns, log)
	tel.AddReadiness("campaigns", follower.Ready)
	go func() {
		if err := follower.Run(ctx, conn.Opts("campaigns")); err != nil {
			log.Error("campaigns follower", "err", err)
		}
	}()
	// Installs decided before the registry is loaded would miss their
	// campaign's bid and media source: wait for it.
	for !follower.Synced() {
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(100 * time.Millisecond):
		}
	}

	cache := statestore.NewCache(cfg.Join.CacheSize)
	defer cache.Close()
	j, err := join.New(join.Config{
		Kafka: conn, Group: cfg.Group, StateDir: cfg.StateDir,
		Topics: join.Topics{
			Clicks: t.Clicks, Impressions: t.Impressions, InstallsRaw: t.InstallsRaw, EventsRaw: t.EventsRaw,
			InstallsAttributed: t.InstallsAttributed, EventsAttributed: t.EventsAttributed, Rejected: t.Rejected,
		},
		RepartitionReplication: int16(t.ReplicationFactor),
		Rules:                  cfg.RuleSet(), Rates: rates, Campaigns: reg,
		Settings: cfg.Join, Cache: cache,
		Registerer: tel.Registry, Logger: log,
	})
	if err != nil {
		return err
	}
	tel.AddReadiness("attribution", func(context.Context) error { return j.Ready() })
	return j.Run(ctx)
}
