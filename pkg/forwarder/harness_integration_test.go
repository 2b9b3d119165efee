//go:build integration

package forwarder_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/segmentio/encoding/json"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/adtrack/postback/pkg/forward"
	"github.com/adtrack/postback/pkg/forwarder"
	"github.com/adtrack/postback/pkg/kafkaconn"
	"github.com/adtrack/postback/pkg/telemetry"
	"github.com/adtrack/postback/pkg/testenv"
	"github.com/adtrack/postback/pkg/topics"
)

const secret = "test-secret-0123456789abcdef"

func quiet() *slog.Logger {
	if os.Getenv("FORWARDER_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, nil))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

// env is one test's topics, signing key and forwarder configuration.
type env struct {
	t       testing.TB
	brokers []string
	topics  topics.Config
	keysDir string
	prod    *kgo.Client
}

func newEnv(t testing.TB, partitions int) *env {
	t.Helper()
	brokers := testenv.Kafka(t)
	tc := testenv.Topics(t, brokers, partitions)
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "k1"), []byte(secret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	prod, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.RequiredAcks(kgo.AllISRAcks()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(prod.Close)
	return &env{t: t, brokers: brokers, topics: tc, keysDir: dir, prod: prod}
}

func (e *env) config(reg *forward.Registry, egress *forward.Egress) forwarder.Config {
	s := forwarder.DefaultSettings()
	s.AttemptTimeout = 500 * time.Millisecond
	s.CommitInterval = 100 * time.Millisecond
	s.KeysDir = e.keysDir
	s.StartAt = "earliest" // the tests produce before the group has joined
	return forwarder.Config{Kafka: kafkaconn.Plain(e.brokers), Topics: e.topics, Group: testenv.Name("fwd"),
		SessionTimeout: 6 * time.Second, Settings: s, Endpoints: reg, Egress: egress,
		Retry: forward.Retry{Initial: 200 * time.Millisecond, MaxBackoff: time.Second, Period: time.Hour, MaxAttempts: 3}}
}

// run starts a forwarder in process and returns its stop.
func (e *env) run(cfg forwarder.Config) (stop func()) {
	e.t.Helper()
	f, err := forwarder.New(cfg, telemetry.New(), quiet())
	if err != nil {
		e.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- f.Run(ctx) }()
	return func() {
		cancel()
		if err := <-done; err != nil {
			e.t.Errorf("forwarder: %v", err)
		}
	}
}

func (e *env) produceInstalls(from, n int) {
	e.t.Helper()
	recs := make([]*kgo.Record, 0, n)
	for i := from; i < from+n; i++ {
		a := forwarder.AttributedInstall(i)
		v, _ := json.Marshal(a)
		recs = append(recs, &kgo.Record{Topic: e.topics.InstallsAttributed, Key: []byte(a.EventID), Value: v})
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := e.prod.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		e.t.Fatal(err)
	}
}

// deliveries reads the delivery log.
func (e *env) deliveries() []forward.Attempt {
	e.t.Helper()
	var out []forward.Attempt
	for _, r := range testenv.ReadAll(e.t, e.brokers, e.topics.Deliveries) {
		var a forward.Attempt
		if err := json.Unmarshal(r.Value, &a); err != nil {
			e.t.Fatalf("delivery log record: %v", err)
		}
		out = append(out, a)
	}
	return out
}

// hit is one request a receiver got.
type hit struct {
	id      string
	attempt string
	at      time.Time
	method  string
	body    string
	target  string
	header  http.Header
	sigErr  error
}

// receiver is a local HTTP server answering with answer(n), n the number
// of requests it got before for the same Idempotency-Key.
type receiver struct {
	srv *httptest.Server
	mu  sync.Mutex
	got []hit
	per map[string]int
}

func newReceiver(t testing.TB, answer func(w http.ResponseWriter, n int)) *receiver {
	rc := &receiver{per: map[string]int{}}
	rc.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		id := r.Header.Get(forward.HeaderIdempotencyKey)
		// The documented snippet (snippet_test.go, docs/forwarder.md).
		var sigErr error
		if !verifyCallback(r, body, []byte(secret)) {
			sigErr = fmt.Errorf("signature refused by the documented snippet")
		}
		rc.mu.Lock()
		n := rc.per[id]
		rc.per[id]++
		rc.got = append(rc.got, hit{id: id, attempt: r.Header.Get(forward.HeaderAttempt), at: time.Now(), method: r.Method,
			body: string(body), target: r.RequestURI, header: r.Header.Clone(), sigErr: sigErr})
		rc.mu.Unlock()
		answer(w, n)
	}))
	t.Cleanup(rc.srv.Close)
	return rc
}

func (rc *receiver) hits() []hit {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]hit(nil), rc.got...)
}

// distinct returns the number of distinct Idempotency-Keys received.
func (rc *receiver) distinct() int {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return len(rc.per)
}

func waitFor(t testing.TB, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", within, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func endpoint(id, url string) forward.Endpoint {
	return forward.Endpoint{ID: id, Publisher: "pub", URL: url, KeyID: "k1"}
}

func registry(t testing.TB, egress *forward.Egress, eps ...forward.Endpoint) *forward.Registry {
	t.Helper()
	reg := forward.NewRegistry(egress)
	for _, ep := range eps {
		if err := forward.Validate(&ep, egress); err != nil {
			t.Fatal(err)
		}
		reg.Put(ep)
	}
	return reg
}

func localEgress(t testing.TB) *forward.Egress {
	e := &forward.Egress{AllowCIDRs: []string{"127.0.0.1/32"}}
	if err := e.Validate(); err != nil {
		t.Fatal(err)
	}
	return e
}
