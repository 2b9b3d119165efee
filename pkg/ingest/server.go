// Package ingest is the pipeline's front door: an http.Handler that takes
// MMP postbacks, click redirects and impression pixels, and answers 2xx only
// once Kafka (acks=all, idempotent producer) has acknowledged the record.
//
//	srv, err := ingest.New(cfg, cl, reg, tel, log)  // cl: *kgo.Client, reg: *campaign.Registry
//	http.Server{Handler: srv.Handler()}
//	...
//	srv.Close()                                      // after http.Server.Shutdown drained
//
// Routes (docs/ingest.md, schemas/openapi.yaml):
//
//	GET|POST /v1/postbacks/{mmp}/{kind}   kind: install, event, rejected
//	GET      /v1/click/{campaign_id}      302 to the campaign's tracking link (?s2s=1: JSON)
//	GET      /v1/impression/{campaign_id} 204 (?pixel=1: 1x1 GIF)
//	POST     /v1/skan                     SKAdNetwork / AdAttributionKit postbacks (skan.go)
//	GET      /healthz /readyz /metrics
//
// Parsing lives in package postback; this package does HTTP, auth, limits
// and Kafka.
package ingest

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/adtrack/postback/pkg/campaign"
	"github.com/adtrack/postback/pkg/config"
	"github.com/adtrack/postback/pkg/kafkaconn"
	"github.com/adtrack/postback/pkg/postback"
	"github.com/adtrack/postback/pkg/skan"
	"github.com/adtrack/postback/pkg/telemetry"
)

// Server holds ingest's state. It is safe for concurrent use.
type Server struct {
	cfg     Config
	cl      *kgo.Client
	reg     *campaign.Registry
	tel     *telemetry.Telemetry
	log     *slog.Logger
	m       *metrics
	sources map[string]*source
	touches *bucket
	trusted []netip.Prefix
	skanv   *skan.Verifier // nil: POST /v1/skan is off
	now     func() time.Time
	bufs    sync.Pool // *[]byte record encoding buffers

	// life is the context records are produced with; Close cancels it
	// only after in-flight records were flushed.
	life   context.Context
	cancel context.CancelFunc
}

// ProducerOpts are the franz-go options ingest's producer needs for the
// durability contract: acks from all in-sync replicas, idempotence (the
// franz-go default), bounded buffering and record timeouts derived from p,
// over conn's connection.
func ProducerOpts(conn *kafkaconn.Conn, p Produce) []kgo.Opt {
	return conn.Opts("producer",
		kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.ProducerLinger(p.Linger),
		kgo.MaxBufferedRecords(p.MaxBufferedRecords),
		// A record not written within this bound fails instead of lingering
		// forever in the buffer while Kafka is down; the client got a 503.
		kgo.RecordDeliveryTimeout(p.Timeout+30*time.Second),
		kgo.ProducerBatchCompression(kgo.Lz4Compression(), kgo.NoCompression()),
	)
}

// New returns a Server producing with cl and reading campaigns from reg.
// Its metrics register in tel.Registry and it adds a "kafka" readiness check.
func New(cfg Config, cl *kgo.Client, reg *campaign.Registry, tel *telemetry.Telemetry, log *slog.Logger) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	s := &Server{
		cfg: cfg, cl: cl, reg: reg, tel: tel, log: log,
		m:       newMetrics(tel.Registry),
		sources: map[string]*source{},
		now:     func() time.Time { return time.Now().UTC() },
		bufs:    sync.Pool{New: func() any { b := make([]byte, 0, 2048); return &b }},
	}
	for name, src := range cfg.Ingest.Sources {
		if !postback.KnownMMP(name) {
			return nil, config.Errorf("ingest.sources."+name, "unknown MMP %q (known: %v)", name, postback.MMPs())
		}
		s.sources[name] = compileSource(name, src)
	}
	if cfg.Ingest.TouchRateLimit > 0 {
		s.touches = newBucket(cfg.Ingest.TouchRateLimit, cfg.Ingest.TouchBurst)
	}
	for _, c := range cfg.HTTP.TrustedProxies {
		p, _ := netip.ParsePrefix(c)
		s.trusted = append(s.trusted, p.Masked())
	}
	var err error
	if s.skanv, err = newSKANVerifier(cfg.Ingest.SKAN); err != nil {
		return nil, config.Errorf("ingest.skan", "%v", err)
	}
	s.life, s.cancel = context.WithCancel(context.Background())
	tel.AddReadiness("kafka", func(ctx context.Context) error { return cl.Ping(ctx) })
	// The same flag gates clicks and impressions (503 until loaded), so
	// /readyz and the answers agree.
	tel.AddReadiness("campaigns", func(context.Context) error {
		if !reg.Loaded() {
			return errors.New("campaign registry still loading")
		}
		return nil
	})
	return s, nil
}

// Handler returns the HTTP routes, telemetry endpoints included.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/postbacks/{mmp}/{kind}", s.instrument("postback", s.handlePostback))
	mux.HandleFunc("POST /v1/postbacks/{mmp}/{kind}", s.instrument("postback", s.handlePostback))
	mux.HandleFunc("GET /v1/click/{campaign_id}", s.instrument("click", s.handleClick))
	mux.HandleFunc("GET /v1/impression/{campaign_id}", s.instrument("impression", s.handleImpression))
	mux.HandleFunc("POST /v1/skan", s.instrument("skan", s.handleSKAN))
	s.tel.Register(mux)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) { noRoute(mux, w, r) })
	return s.limitURL(mux)
}

// probeMethods are the methods noRoute tries a path with.
var probeMethods = []string{http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut,
	http.MethodPatch, http.MethodDelete, http.MethodOptions}

// noRoute answers a request no route took: 405 with Allow when the path is
// a route's under another method, else 404. The mux is asked which methods
// would have matched, so a route added later needs nothing here.
func noRoute(mux *http.ServeMux, w http.ResponseWriter, r *http.Request) {
	var allow []string
	for _, m := range probeMethods {
		probe := &http.Request{Method: m, URL: r.URL, Host: r.Host, Header: http.Header{}}
		if _, pattern := mux.Handler(probe); pattern != "" && pattern != "/" {
			allow = append(allow, m)
		}
	}
	if len(allow) == 0 {
		writeError(w, http.StatusNotFound, "path", fmt.Sprintf("no route for %s %s", r.Method, r.URL.Path))
		return
	}
	w.Header().Set("Allow", strings.Join(allow, ", "))
	writeError(w, http.StatusMethodNotAllowed, "method",
		fmt.Sprintf("method %s not allowed on %s (allowed: %s)", r.Method, r.URL.Path, strings.Join(allow, ", ")))
}

// Flush waits until every buffered record was acknowledged or failed; call
// it after the HTTP server drained, before exit.
func (s *Server) Flush(ctx context.Context) error {
	if err := s.cl.Flush(ctx); err != nil {
		return fmt.Errorf("flush kafka producer: %w", err)
	}
	return nil
}

// Close ends the records' lifetime context; buffered records fail.
func (s *Server) Close() { s.cancel() }

// limitURL answers 414 for request URIs longer than http.max_url_bytes.
func (s *Server) limitURL(next http.Handler) http.Handler {
	max := s.cfg.HTTP.MaxURLBytes
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if len(r.RequestURI) > max {
			s.m.requests.WithLabelValues("any", "", "414").Inc()
			writeError(w, http.StatusRequestURITooLong, "url", fmt.Sprintf("request URI is %d bytes, limit %d", len(r.RequestURI), max))
			return
		}
		next.ServeHTTP(w, r)
	})
}

// statusWriter records the status code for metrics.
type statusWriter struct {
	http.ResponseWriter
	code int
}

func (w *statusWriter) WriteHeader(code int) {
	w.code = code
	w.ResponseWriter.WriteHeader(code)
}

type routeFunc func(w http.ResponseWriter, r *http.Request) (source string)

func (s *Server) instrument(route string, h routeFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		sw := &statusWriter{ResponseWriter: w, code: http.StatusOK}
		src := h(sw, r)
		s.m.duration.WithLabelValues(route).Observe(time.Since(start).Seconds())
		s.m.requests.WithLabelValues(route, src, strconv.Itoa(sw.code)).Inc()
	}
}

// kafkaUnavailable answers 503 for a failed produce.
func (s *Server) kafkaUnavailable(w http.ResponseWriter, err error) {
	msg := "kafka unavailable, retry later"
	if errors.Is(err, kgo.ErrMaxBuffered) {
		msg = "ingest overloaded (produce buffer full), retry later"
	}
	writeRetry(w, http.StatusServiceUnavailable, s.cfg.Ingest.Produce.RetryAfter, msg)
}
