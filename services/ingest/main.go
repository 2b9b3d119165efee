// Command ingest runs the HTTP front door of the pipeline: MMP postbacks,
// click redirects and impression pixels into Kafka. It only wires config,
// telemetry, the Kafka producer and the campaign registry to pkg/ingest.
//
// On SIGTERM or SIGINT it stops accepting connections, lets in-flight
// requests finish (http.shutdown_timeout), flushes the producer and exits.
package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/adtrack/postback/pkg/campaign"
	"github.com/adtrack/postback/pkg/campaigntopic"
	"github.com/adtrack/postback/pkg/config"
	"github.com/adtrack/postback/pkg/ingest"
	"github.com/adtrack/postback/pkg/kafkaconn"
	"github.com/adtrack/postback/pkg/servicecfg"
	"github.com/adtrack/postback/pkg/telemetry"
)

func main() {
	cfg := servicecfg.DefaultIngest()
	if err := config.Load(&cfg, "ingest", os.Args[1:], os.Stderr); err != nil {
		if errors.Is(err, config.ErrHelp) {
			os.Exit(0)
		}
		fmt.Fprintln(os.Stderr, "ingest:", err)
		os.Exit(2)
	}
	log := telemetry.Logger(os.Stderr, cfg.Telemetry)
	if err := run(cfg, log); err != nil {
		log.Error("ingest stopped", "err", err)
		os.Exit(1)
	}
}

func run(cfg servicecfg.Ingest, log *slog.Logger) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	tel := telemetry.New()
	conn, err := kafkaconn.Open(ctx, cfg.Kafka.Config, log, kafkaconn.WithMetrics(tel.Registry, "ingest"))
	if err != nil {
		return err
	}
	cl, err := kgo.NewClient(ingest.ProducerOpts(conn, cfg.Ingest.Produce)...)
	if err != nil {
		return fmt.Errorf("kafka producer: %w", err)
	}
	defer cl.Close()

	// Until the follower has loaded the topic, the registry is not loaded:
	// ingest answers clicks and impressions 503 and /readyz fails
	// ("campaigns"), never 404 for a campaign still on its way.
	reg := campaign.NewRegistry()
	follower := campaigntopic.NewFollower(reg, cfg.Kafka.Topics.Campaigns, log)
	followCtx, stopFollow := context.WithCancel(context.Background())
	defer stopFollow()
	go func() {
		if err := follower.Run(followCtx, conn.Opts("campaigns", kgo.ClientID(cfg.Kafka.ClientID+"-campaigns"))); err != nil {
			log.Error("campaign follower stopped", "err", err)
		}
	}()

	srv, err := ingest.New(cfg.Server(), cl, reg, tel, log)
	if err != nil {
		return err
	}
	go func() {
		if err := tel.Serve(ctx, cfg.Telemetry.Addr, log); err != nil {
			log.Error("telemetry server", "err", err)
		}
	}()

	ln, err := net.Listen("tcp", cfg.HTTP.Addr)
	if err != nil {
		return fmt.Errorf("listen %s: %w", cfg.HTTP.Addr, err)
	}
	hs := &http.Server{
		Handler:           srv.Handler(),
		ReadHeaderTimeout: cfg.HTTP.ReadHeaderTimeout,
		ReadTimeout:       cfg.HTTP.ReadTimeout,
		WriteTimeout:      cfg.HTTP.WriteTimeout,
		IdleTimeout:       cfg.HTTP.IdleTimeout,
		MaxHeaderBytes:    cfg.HTTP.MaxURLBytes + 64<<10,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()
	log.Info("ingest listening", "addr", ln.Addr().String(), "brokers", cfg.Kafka.Brokers, "sources", len(cfg.Ingest.Sources))

	select {
	case err := <-errc:
		return fmt.Errorf("http server: %w", err)
	case <-ctx.Done():
	}
	log.Info("shutting down: draining in-flight requests", "timeout", cfg.HTTP.ShutdownTimeout)
	sctx, cancel := context.WithTimeout(context.Background(), cfg.HTTP.ShutdownTimeout)
	defer cancel()
	if err := hs.Shutdown(sctx); err != nil {
		log.Warn("drain incomplete", "err", err)
	}
	fctx, cancelFlush := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancelFlush()
	if err := srv.Flush(fctx); err != nil {
		log.Warn("producer flush incomplete", "err", err)
	}
	srv.Close()
	log.Info("ingest stopped cleanly")
	return nil
}
