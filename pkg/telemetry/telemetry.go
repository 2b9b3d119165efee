// Package telemetry gives every service the same operational surface:
// structured slog logs, a Prometheus registry, and /metrics, /healthz and
// /readyz handlers.
//
//	log := telemetry.Logger(os.Stderr, cfg.Telemetry)
//	tel := telemetry.New()
//	tel.AddReadiness("kafka", func(ctx context.Context) error { return cl.Ping(ctx) })
//	mux.Handle("/", tel.Handler()) // or: go tel.Serve(ctx, cfg.Telemetry.Addr, log)
//
// /healthz answers 200 while the process runs; /readyz answers 200 only when
// every readiness check passes, else 503 with the failing checks named.
package telemetry

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"sort"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	dto "github.com/prometheus/client_model/go"
	"github.com/segmentio/encoding/json"

	"github.com/adtrack/postback/pkg/config"
)

// Config configures logs and the /metrics, /healthz and /readyz listener
// (the telemetry section of every service).
type Config struct {
	Addr      string `mapstructure:"addr" desc:"Listen address of /metrics, /healthz and /readyz (empty: off; ingest serves them on its own port too)."`
	LogLevel  string `mapstructure:"log_level" desc:"Minimum log level: debug, info, warn or error."`
	LogFormat string `mapstructure:"log_format" desc:"Log format: json or text."`
}

// Validate checks the section; keys are relative to telemetry.
func (c *Config) Validate() error {
	if c.Addr != "" {
		if _, _, err := net.SplitHostPort(c.Addr); err != nil {
			return config.Errorf("addr", "%q is not host:port: %v", c.Addr, err)
		}
	}
	var l slog.Level
	if err := l.UnmarshalText([]byte(c.LogLevel)); err != nil {
		return config.Errorf("log_level", "%q is not one of debug, info, warn, error", c.LogLevel)
	}
	if c.LogFormat != "json" && c.LogFormat != "text" {
		return config.Errorf("log_format", "%q is not json or text", c.LogFormat)
	}
	return nil
}

// Level returns the configured slog level (Validate has checked it).
func (c *Config) Level() slog.Level {
	var l slog.Level
	_ = l.UnmarshalText([]byte(c.LogLevel))
	return l
}

// Logger returns a slog logger writing to w in the configured format and level.
func Logger(w io.Writer, cfg Config) *slog.Logger {
	opts := &slog.HandlerOptions{Level: cfg.Level()}
	if cfg.LogFormat == "text" {
		return slog.New(slog.NewTextHandler(w, opts))
	}
	return slog.New(slog.NewJSONHandler(w, opts))
}

// Check is a readiness probe; it returns nil when the dependency is usable.
type Check func(ctx context.Context) error

// Telemetry holds a service's metrics registry and readiness checks.
type Telemetry struct {
	// Registry is where the service registers its metrics. It already holds
	// the Go runtime and process collectors, and lists the names of every
	// metric registered (Registry.Names).
	Registry *Registry

	mu     sync.Mutex
	checks map[string]Check
}

// New returns a Telemetry with a fresh registry.
func New() *Telemetry {
	reg := NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return &Telemetry{Registry: reg, checks: map[string]Check{}}
}

// AddReadiness registers a named readiness check, replacing one of the same name.
func (t *Telemetry) AddReadiness(name string, c Check) {
	t.mu.Lock()
	t.checks[name] = c
	t.mu.Unlock()
}

// Ready runs every check (each bounded by 2 s) and returns the failures by name.
func (t *Telemetry) Ready(ctx context.Context) map[string]string {
	t.mu.Lock()
	checks := make(map[string]Check, len(t.checks))
	for k, v := range t.checks {
		checks[k] = v
	}
	t.mu.Unlock()
	failed := map[string]string{}
	for name, c := range checks {
		cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		if err := c(cctx); err != nil {
			failed[name] = err.Error()
		}
		cancel()
	}
	return failed
}

// Handler serves /metrics, /healthz and /readyz.
func (t *Telemetry) Handler() http.Handler {
	mux := http.NewServeMux()
	t.Register(mux)
	return mux
}

// Register adds /metrics, /healthz and /readyz to mux.
func (t *Telemetry) Register(mux *http.ServeMux) {
	mux.Handle("GET /metrics", promhttp.HandlerFor(t.Registry, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]any{"status": "ok"})
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		failed := t.Ready(r.Context())
		if len(failed) > 0 {
			names := make([]string, 0, len(failed))
			for k := range failed {
				names = append(names, k)
			}
			sort.Strings(names)
			writeJSON(w, http.StatusServiceUnavailable, map[string]any{"status": "not ready", "failing": names, "errors": failed})
			return
		}
		writeJSON(w, http.StatusOK, map[string]any{"status": "ready"})
	})
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

// Serve runs the telemetry handler on addr until ctx is done. An empty addr
// serves nothing and returns at once.
func (t *Telemetry) Serve(ctx context.Context, addr string, log *slog.Logger) error {
	if addr == "" {
		return nil
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: t.Handler(), ReadHeaderTimeout: 5 * time.Second}
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}()
	log.Info("telemetry listening", "addr", ln.Addr().String())
	if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// Series returns the series of metric name in g whose labels include
// labels (every series of name when labels is empty): how tests and tools
// read a value back from a registry.
func Series(g prometheus.Gatherer, name string, labels map[string]string) ([]*dto.Metric, error) {
	mfs, err := g.Gather()
	if err != nil {
		return nil, err
	}
	var out []*dto.Metric
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	next:
		for _, m := range mf.GetMetric() {
			have := map[string]string{}
			for _, l := range m.GetLabel() {
				have[l.GetName()] = l.GetValue()
			}
			for k, v := range labels {
				if have[k] != v {
					continue next
				}
			}
			out = append(out, m)
		}
	}
	return out, nil
}
