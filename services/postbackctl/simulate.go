package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/segmentio/encoding/json"

	"github.com/adtrack/postback/pkg/campaigntopic"
	"github.com/adtrack/postback/pkg/chconn"
	"github.com/adtrack/postback/pkg/config"
	"github.com/adtrack/postback/pkg/event"
	"github.com/adtrack/postback/pkg/servicecfg"
	"github.com/adtrack/postback/pkg/simulate"
	"github.com/adtrack/postback/pkg/traffic"
)

// simFlags are simulate's own options (not config keys: they shape one
// run). They are given as --name=value before the config flags.
type simFlags struct {
	opts          traffic.Options
	ingestConfig  string
	url           string
	truth         string
	check         bool
	checkWithin   time.Duration
	retryFor      time.Duration
	rates, tokens string
}

// takeSimFlags pulls simulate's flags out of args; the rest are config
// flags (--config, --kafka.brokers, ...).
func takeSimFlags(args []string, stderr io.Writer) (simFlags, []string, error) {
	d := traffic.Defaults()
	f := simFlags{opts: d}
	fs := flag.NewFlagSet("postbackctl simulate", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Uint64Var(&f.opts.Seed, "seed", d.Seed, "seed of the plan: one seed and run label, one plan")
	fs.StringVar(&f.opts.Run, "run", "", "label of this run's apps, campaigns and devices (default: from the clock, so each run is new)")
	fs.Float64Var(&f.opts.Rate, "rate", d.Rate, "planned requests per second")
	fs.DurationVar(&f.opts.Duration, "duration", d.Duration, "how long users keep arriving; postbacks follow for up to max-ctit + max-delay")
	fs.Float64Var(&f.opts.CTR, "ctr", d.CTR, "share of touched users who click")
	fs.Float64Var(&f.opts.CVR, "cvr", d.CVR, "share of clicking users who install")
	fs.Float64Var(&f.opts.VTR, "vtr", d.VTR, "share of users who only saw an impression and install (view-through)")
	fs.Float64Var(&f.opts.OrganicShare, "organic", d.OrganicShare, "organic installs per paid install")
	fs.Float64Var(&f.opts.MalformedShare, "malformed", d.MalformedShare, "malformed postbacks per install (answered 400, kept in rejected)")
	fs.Float64Var(&f.opts.UnauthShare, "unauthenticated", d.UnauthShare, "postbacks with a wrong token per install (401, stored nowhere)")
	fs.Float64Var(&f.opts.RetryShare, "retries", d.RetryShare, "share of postbacks the MMP sends more than once")
	fs.DurationVar(&f.opts.MinCTIT, "min-ctit", d.MinCTIT, "shortest honest click-to-install time (above the 10 s injection threshold)")
	fs.DurationVar(&f.opts.MaxCTIT, "max-ctit", d.MaxCTIT, "longest click-to-install time")
	fs.DurationVar(&f.opts.MaxDelay, "max-delay", d.MaxDelay, "longest MMP delay of a postback")
	fs.DurationVar(&f.opts.ReinstallAfter, "reinstall-after", d.ReinstallAfter, "how long after its first install a device reinstalls (longer than any stall of attribution, or the reinstall flag may land on the first)")
	fs.IntVar(&f.opts.FloodClicks, "flood-clicks", d.FloodClicks, "the attribution service's rules.flood_clicks")
	fs.StringVar(&f.rates, "rates", "EUR=1.08,GBP=1.27,USD=1", "the attribution service's rates.per_unit (CUR=rate,...)")
	fs.StringVar(&f.opts.ReportingCurrency, "reporting-currency", d.ReportingCurrency, "the attribution service's rates.reporting_currency")
	fs.StringVar(&f.ingestConfig, "ingest-config", "", "ingest's config file: its http.addr and the MMPs' tokens")
	fs.StringVar(&f.url, "url", "", "ingest's base URL (default: http://<http.addr of --ingest-config>)")
	fs.StringVar(&f.tokens, "tokens", "", "MMP tokens as mmp=token,... (default: the first token of each source in --ingest-config)")
	fs.StringVar(&f.truth, "truth", "", "write the ground truth here (JSON; default sim-truth-<run>.json in the temp dir)")
	fs.BoolVar(&f.check, "check", false, "after sending, compare ClickHouse's views with the ground truth (exit 1 unless all equal)")
	fs.DurationVar(&f.checkWithin, "check-within", 5*time.Minute, "how long --check waits for the pipeline to hold everything")
	fs.DurationVar(&f.retryFor, "retry-for", 10*time.Minute, "how long a request answered 503 or not at all is retried")
	var ours, rest []string
	for _, a := range args {
		name, _, _ := strings.Cut(strings.TrimLeft(a, "-"), "=")
		if strings.HasPrefix(a, "-") && fs.Lookup(name) != nil {
			ours = append(ours, a)
		} else {
			rest = append(rest, a)
		}
	}
	if err := fs.Parse(ours); err != nil {
		return f, nil, err
	}
	if f.opts.Run == "" {
		f.opts.Run = "r" + strconv.FormatInt(time.Now().Unix(), 36)
	}
	f.opts.Rates = map[string]string{}
	for _, kv := range strings.Split(f.rates, ",") {
		cur, rate, ok := strings.Cut(kv, "=")
		if !ok {
			return f, nil, fmt.Errorf("--rates: %q is not CUR=rate", kv)
		}
		f.opts.Rates[cur] = rate
	}
	if f.truth == "" {
		f.truth = fmt.Sprintf("%s/sim-truth-%s.json", os.TempDir(), f.opts.Run)
	}
	return f, rest, nil
}

// simulate publishes the plan's campaigns, plays the plan against ingest,
// writes the ground truth and, with --check, compares ClickHouse with it.
func simulateCmd(ctx context.Context, cfg servicecfg.Admin, f simFlags, log *slog.Logger, stdout, stderr io.Writer) error {
	plan, err := traffic.Generate(f.opts)
	if err != nil {
		return err
	}
	tokens, base, err := ingestTarget(f, stderr)
	if err != nil {
		return err
	}
	camps := make([]event.Campaign, len(plan.Campaigns))
	for i, c := range plan.Campaigns {
		camps[i] = c.Campaign
	}
	cl, err := producer(cfg)
	if err != nil {
		return err
	}
	pctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	err = campaigntopic.Publish(pctx, cl, cfg.Kafka.Topics.Campaigns, camps)
	cancel()
	cl.Close()
	if err != nil {
		return err
	}
	log.Info("simulation starting", "run", f.opts.Run, "seed", f.opts.Seed, "requests", len(plan.Requests),
		"campaigns", len(camps), "ingest", base)
	r := simulate.Runner{BaseURL: base, Tokens: tokens, Progress: stderr, RetryFor: f.retryFor}
	outs, err := r.Run(ctx, plan)
	if err != nil {
		return fmt.Errorf("simulate: %w", err)
	}
	truth := traffic.Truth(plan, outs)
	if err := writeTruth(f.truth, truth); err != nil {
		return err
	}
	q := truth.Requests
	fmt.Fprintf(stdout, "run %s: %d requests sent: %d accepted, %d answered 503 (retried), %d no answer, %d other (%d malformed answered 400, %d unauthenticated 401); ground truth in %s\n",
		f.opts.Run, q.Sent, q.OK, q.Unavailable, q.NoAnswer, q.Other, q.Malformed400, q.Unauthenticated401, f.truth)
	if !f.check {
		return nil
	}
	conn, err := chconn.Open(ctx, cfg.ClickHouse)
	if err != nil {
		return err
	}
	defer conn.Close()
	fmt.Fprintf(stdout, "waiting up to %v for the pipeline to hold it all...\n", f.checkWithin)
	rep, err := simulate.Check(ctx, conn, truth, f.checkWithin, 2*time.Second)
	if err != nil {
		return err
	}
	rep.Print(stdout)
	if !rep.Equal() {
		return fmt.Errorf("simulation %s: ClickHouse differs from the ground truth", f.opts.Run)
	}
	return nil
}

// ingestTarget is the tokens and base URL the simulation sends with.
func ingestTarget(f simFlags, stderr io.Writer) (map[string]string, string, error) {
	tokens := map[string]string{}
	base := f.url
	if f.ingestConfig != "" {
		icfg := servicecfg.DefaultIngest()
		if err := config.Load(&icfg, "ingest", []string{"--config", f.ingestConfig}, stderr); err != nil {
			return nil, "", fmt.Errorf("--ingest-config: %w", err)
		}
		for mmp, src := range icfg.Ingest.Sources {
			if len(src.Tokens) > 0 {
				tokens[mmp] = src.Tokens[0]
			}
		}
		if base == "" {
			base = "http://" + icfg.HTTP.Addr
		}
	}
	if f.tokens != "" {
		for _, kv := range strings.Split(f.tokens, ",") {
			mmp, tok, ok := strings.Cut(kv, "=")
			if !ok {
				return nil, "", fmt.Errorf("--tokens: %q is not mmp=token", kv)
			}
			tokens[mmp] = tok
		}
	}
	if base == "" {
		return nil, "", fmt.Errorf("simulate: give --ingest-config or --url")
	}
	var missing []string
	for _, mmp := range []string{"appsflyer", "adjust", "branch", "singular", "kochava", "tenjin", "generic"} {
		if tokens[mmp] == "" {
			missing = append(missing, mmp)
		}
	}
	if len(missing) > 0 {
		return nil, "", fmt.Errorf("simulate: no token for %v (have %v): give --ingest-config or --tokens", missing, slices.Sorted(maps.Keys(tokens)))
	}
	return tokens, base, nil
}

func writeTruth(path string, t *traffic.GroundTruth) error {
	b, err := json.MarshalIndent(t, "", "  ")
	if err != nil {
		return fmt.Errorf("ground truth: %w", err)
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		return fmt.Errorf("ground truth: %w", err)
	}
	return nil
}
