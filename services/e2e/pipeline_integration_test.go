//go:build integration

package e2e

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/adtrack/postback/pkg/chconn"
	"github.com/adtrack/postback/pkg/forward"
	"github.com/adtrack/postback/pkg/testenv"
	"github.com/adtrack/postback/pkg/tlsconf"
)

// setup is how one run connects: the kafka and clickhouse sections of each
// service's YAML (services may authenticate differently), extra
// environment, and the ClickHouse connection the test reads with.
type setup struct {
	kafka      map[string]string   // service -> kafka section (without topics)
	clickhouse string              // clickhouse section, for sink and postbackctl
	env        map[string][]string // service -> extra environment
	read       chconn.Config
}

// TestPipelinePlaintext runs the three services and postbackctl against the
// shared plaintext broker and ClickHouse.
func TestPipelinePlaintext(t *testing.T) {
	brokers := testenv.Kafka(t)
	ch := testenv.ClickHouse(t)
	k := fmt.Sprintf("kafka:\n  brokers: [%q]\n", brokers[0])
	runPipeline(t, setup{
		kafka:      map[string]string{"ingest": k, "attribution": k, "sink": k, "postbackctl": k},
		clickhouse: fmt.Sprintf("clickhouse: {addr: [%q], database: %q}\n", ch.Addr[0], ch.Database),
		read:       ch,
	})
}

// TestPipelineSecured runs the same pipeline, with the same assertions,
// against a broker that only takes SASL_SSL and mutual TLS and a ClickHouse
// reached over its TLS port as a password user: ingest authenticates with
// SCRAM-SHA-512 (password from a file), attribution with a client
// certificate, the sink with SCRAM-SHA-256 (password from the environment),
// postbackctl with PLAIN. Then a service given a wrong password stops at
// start naming the cause.
func TestPipelineSecured(t *testing.T) {
	b := testenv.StartSecureBroker(t)
	c := testenv.StartSecureClickHouse(t)
	tlsCA := fmt.Sprintf("  tls: {enabled: true, ca_file: %q}\n", b.CAFile)
	saslSection := func(mech, pwKey string) string {
		return fmt.Sprintf("kafka:\n  brokers: [%q]\n%s  sasl: {mechanism: %s, username: %s%s}\n", b.SASLAddr, tlsCA, mech, b.User, pwKey)
	}
	db := testenv.Name("secure")
	s := setup{
		kafka: map[string]string{
			"ingest": saslSection("SCRAM-SHA-512", fmt.Sprintf(", password_file: %q", b.PasswordFile)),
			"attribution": fmt.Sprintf("kafka:\n  brokers: [%q]\n  tls: {enabled: true, ca_file: %q, cert_file: %q, key_file: %q}\n",
				b.TLSAddr, b.CAFile, b.ClientCert, b.ClientKey),
			"sink":        saslSection("SCRAM-SHA-256", ""),
			"postbackctl": saslSection("PLAIN", fmt.Sprintf(", password_file: %q", b.PasswordFile)),
		},
		clickhouse: fmt.Sprintf("clickhouse:\n  addr: [%q]\n  database: %q\n  username: %s\n  password_file: %q\n  tls: {enabled: true, ca_file: %q}\n",
			c.SecureAddr, db, c.User, c.PasswordFile, c.CAFile),
		env: map[string][]string{"sink": {"POSTBACK_KAFKA_SASL_PASSWORD=" + b.Password}},
		read: func() chconn.Config {
			cfg := chconn.Defaults()
			cfg.Addr, cfg.Database, cfg.Username, cfg.Password = []string{c.SecureAddr}, db, c.User, c.Password
			cfg.TLS = tlsconf.Config{Enabled: true, CAFile: c.CAFile}
			return cfg
		}(),
	}
	runPipeline(t, s)

	t.Run("wrong password stops the service", func(t *testing.T) {
		bins := binaries(t)
		conf := filepath.Join(t.TempDir(), "ingest.yaml")
		bad := saslSection("SCRAM-SHA-512", ", password: not-the-password") +
			fmt.Sprintf("http: {addr: \"127.0.0.1:%d\"}\ntelemetry: {log_format: text}\n", testenv.FreePort(t))
		if err := os.WriteFile(conf, []byte(bad), 0o600); err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command(filepath.Join(bins, "ingest"), "--config", conf)
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		done := make(chan error, 1)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		go func() { done <- cmd.Wait() }()
		select {
		case err := <-done:
			if err == nil || !strings.Contains(out.String(), "SASL authentication failed") {
				t.Fatalf("ingest exited with %v, want a failure naming the SASL authentication:\n%s", err, out.String())
			}
		case <-time.After(time.Minute):
			_ = cmd.Process.Kill()
			t.Fatalf("ingest with a wrong password still runs after a minute:\n%s", out.String())
		}
	})
}

// runPipeline bootstraps topics and tables with postbackctl, starts ingest,
// attribution and the sink, sends clicks, installs naming those clicks and
// in-app events through ingest, and checks that ClickHouse holds each of
// them once, attributed to the campaign by click id.
func runPipeline(t *testing.T, s setup) {
	t.Helper()
	bins := binaries(t)
	dir := t.TempDir()
	topics := testenv.Name("e2e")
	topicsSection := fmt.Sprintf("  topics: {clicks: %[1]s.clicks, impressions: %[1]s.impressions, installs_raw: %[1]s.installs-raw, events_raw: %[1]s.events-raw, installs_attributed: %[1]s.installs, events_attributed: %[1]s.events, rejected: %[1]s.rejected, campaigns: %[1]s.campaigns, endpoints: %[1]s.endpoints, deliveries: %[1]s.deliveries, forwarder_state: %[1]s.fwd-state, partitions: 3}\n", topics)
	tokens := filepath.Join(dir, "tokens")
	const token = "e2e-generic-token-0123456789"
	write(t, tokens, "# one per line\n"+token+"\n")
	httpAddr := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
	attrTel, sinkTel := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t)), fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
	fwdTel := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
	// The publisher: a local receiver checking every callback's signature.
	keys := filepath.Join(dir, "keys")
	if err := os.MkdirAll(keys, 0o700); err != nil {
		t.Fatal(err)
	}
	const secret = "e2e-signing-secret-0123456789"
	write(t, filepath.Join(keys, "k1"), secret)
	pub := newPublisher(t, []byte(secret))
	egress := "egress: {allow_cidrs: [\"127.0.0.1/32\"]}\n"
	quiet := "telemetry: {log_format: text, log_level: warn}\n"
	confs := map[string]string{
		"postbackctl": s.kafka["postbackctl"] + topicsSection + s.clickhouse + egress,
		"ingest":      s.kafka["ingest"] + topicsSection + fmt.Sprintf("http: {addr: %q}\ningest:\n  sources:\n    generic: {tokens_file: %q}\n", httpAddr, tokens) + quiet,
		"attribution": s.kafka["attribution"] + topicsSection + fmt.Sprintf("group: %q\nstate_dir: %q\nrates: {reporting_currency: USD, per_unit: {USD: \"1\", EUR: \"1.08\"}}\ntelemetry: {addr: %q, log_format: text, log_level: warn}\n",
			testenv.Name("e2e-attr"), filepath.Join(dir, "state"), attrTel),
		"sink": s.kafka["sink"] + topicsSection + s.clickhouse + fmt.Sprintf("group: %q\nsink: {flush_interval: 200ms}\ntelemetry: {addr: %q, log_format: text, log_level: warn}\n",
			testenv.Name("e2e-sink"), sinkTel),
		// The forwarder connects as ingest does (its kafka section).
		"forwarder": s.kafka["ingest"] + topicsSection + egress + fmt.Sprintf("group: %q\nforwarder: {keys_dir: %q, commit_interval: 200ms, start_at: earliest}\ntelemetry: {addr: %q, log_format: text, log_level: warn}\n",
			testenv.Name("e2e-fwd"), keys, fwdTel),
	}
	for name, c := range confs {
		write(t, filepath.Join(dir, name+".yaml"), c)
	}
	const app, cmp = "id1234567890", "e2e-cpi"
	write(t, filepath.Join(dir, "campaigns.yaml"), fmt.Sprintf("campaigns:\n  - {campaign_id: %s, app_id: %s, platform: ios, media_source: e2enet, cost_model: CPI, bid: \"1.5\", currency: USD}\n", cmp, app))
	ctl := func(args ...string) {
		t.Helper()
		cmd := exec.Command(filepath.Join(bins, "postbackctl"), append(args, "--config", filepath.Join(dir, "postbackctl.yaml"))...)
		cmd.Env = append(os.Environ(), s.env["postbackctl"]...)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("postbackctl %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	ctl("bootstrap")
	ctl("campaigns", "apply", filepath.Join(dir, "campaigns.yaml"))
	write(t, filepath.Join(dir, "endpoints.yaml"), fmt.Sprintf("endpoints:\n  - {endpoint_id: e2e-pub, match: {media_sources: [e2enet], kinds: [install, event]}, url: \"%s/cb?click={click_id}&site={site_id}&payout={payout}\", payout: {model: cpi, amount: \"0.8\", currency: USD}, signing_key_id: k1}\n", pub.srv.URL))
	ctl("endpoints", "apply", filepath.Join(dir, "endpoints.yaml"))
	for _, name := range []string{"ingest", "attribution", "sink", "forwarder"} {
		start(t, bins, dir, name, s.env[name])
	}
	for _, url := range []string{"http://" + httpAddr + "/readyz", "http://" + attrTel + "/readyz", "http://" + sinkTel + "/readyz", "http://" + fwdTel + "/readyz"} {
		testenv.WaitHTTP(t, url, url)
	}
	testenv.WaitHTTP(t, "http://"+httpAddr+"/v1/click/"+cmp+"?s2s=1&ip=203.0.113.9&ua=warmup", "ingest's campaign registry")

	const installs, events = 40, 20
	base := "http://" + httpAddr
	var clicks []string
	for i := range installs {
		body := get(t, fmt.Sprintf("%s/v1/click/%s?s2s=1&site_id=s%d&ip=10.9.0.%d&ua=e2e-ua", base, cmp, i%5, i))
		_, rest, ok := strings.Cut(body, `"click_id":"`)
		if !ok {
			t.Fatalf("click answer without click_id: %s", body)
		}
		clicks = append(clicks, rest[:strings.IndexByte(rest, '"')])
	}
	// Installs 30 s after their clicks: a click-to-install time under 10 s
	// is flagged as click injection and wins nothing.
	now := time.Now().Unix() + 30
	for i, click := range clicks {
		dev := fmt.Sprintf("6d92078a-8246-4ba4-ae5b-%012d", i)
		get(t, fmt.Sprintf("%s/v1/postbacks/generic/install?token=%s&event_id=i%d&click_id=%s&app_id=%s&idfa=%s&install_time=%d", base, token, i, click, app, dev, now))
		if i < events {
			get(t, fmt.Sprintf("%s/v1/postbacks/generic/event?token=%s&event_id=e%d&app_id=%s&idfa=%s&event_name=purchase&event_time=%d&revenue=4.99&currency=USD",
				base, token, i, app, dev, now+60))
		}
	}

	conn, err := chconn.Open(t.Context(), s.read)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	want := map[string]uint64{
		"SELECT count() FROM clicks WHERE campaign_id = '" + cmp + "' AND ua = 'e2e-ua'": installs,
		"SELECT count() FROM installs":             installs,
		"SELECT uniqExact(event_id) FROM installs": installs,
		"SELECT count() FROM installs WHERE match_type = 'click_id' AND campaign_id = '" + cmp + "'": installs,
		"SELECT count() FROM events": events,
		"SELECT count() FROM events WHERE campaign_id = '" + cmp + "' AND abs(toFloat64(revenue_reporting) - 4.99) < 1e-9": events,
		"SELECT count() FROM rejected": 0,
		// Every attributed install and event was called back once, and the
		// delivery log says so.
		"SELECT count() FROM postback_deliveries WHERE outcome = 'delivered' AND endpoint_id = 'e2e-pub'":                    installs + events,
		"SELECT uniqExact(event_id) FROM postback_deliveries WHERE kind = 'install' AND abs(toFloat64(payout) - 0.8) < 1e-9": installs,
	}
	deadline := time.Now().Add(2 * time.Minute)
	for {
		got := counts(t, conn, want)
		if equal(got, want) {
			break
		}
		if time.Now().After(deadline) {
			for q, n := range want {
				t.Errorf("%s = %d, want %d", q, got[q], n)
			}
			var mix string
			_ = conn.QueryRow(t.Context(), "SELECT toString(groupArray((toString(match_type), campaign_id, arrayStringConcat(fraud_flags, ", ")))) FROM installs").Scan(&mix)
			t.Fatalf("installs (match type, campaign, fraud): %s", mix)
		}
		time.Sleep(250 * time.Millisecond)
	}
	// Settled: nothing more arrives (no duplicate from a retry or a replay).
	time.Sleep(2 * time.Second)
	if got := counts(t, conn, want); !equal(got, want) {
		t.Fatalf("counts moved after settling: %v", got)
	}
	if n, bad := pub.counts(); n != installs+events || bad != 0 {
		t.Errorf("the publisher got %d callbacks (%d badly signed), want %d", n, bad, installs+events)
	}
	// The operator's view moved too: franz-go's client metrics (through
	// pkg/kafkaconn) and each service's freshness.
	for addr, series := range map[string][]string{
		httpAddr: {`ingest_write_bytes_total{client="producer"`, `ingest_requests_total{code="200",route="postback"`},
		attrTel:  {`attribution_read_bytes_total{client="stage-clickid"`, `attribution_freshness_seconds_count{stage="ipua"}`},
		sinkTel:  {`sink_read_bytes_total{client="sink"`, `sink_freshness_seconds_count{table="installs"}`},
		fwdTel:   {`forwarder_read_bytes_total{client="forwarder"`, `forwarder_callbacks_succeeded_total{endpoint="e2e-pub"}`},
	} {
		metrics := get(t, "http://"+addr+"/metrics")
		for _, name := range series {
			if !movedSeries(metrics, name) {
				t.Errorf("%s: no series %s... with a positive value", addr, name)
			}
		}
	}
}

// movedSeries reports whether the Prometheus text exposition holds a
// series starting with prefix whose value is above zero.
func movedSeries(exposition, prefix string) bool {
	for _, line := range strings.Split(exposition, "\n") {
		if !strings.HasPrefix(line, prefix) {
			continue
		}
		fields := strings.Fields(line)
		if v, err := strconv.ParseFloat(fields[len(fields)-1], 64); err == nil && v > 0 {
			return true
		}
	}
	return false
}

func counts(t *testing.T, conn driver.Conn, queries map[string]uint64) map[string]uint64 {
	t.Helper()
	got := map[string]uint64{}
	for q := range queries {
		var n uint64
		if err := conn.QueryRow(t.Context(), q).Scan(&n); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
		got[q] = n
	}
	return got
}

func equal(a, b map[string]uint64) bool {
	for k, v := range b {
		if a[k] != v {
			return false
		}
	}
	return true
}

var (
	buildOnce sync.Once
	buildDir  string
	buildErr  error
)

// TestMain removes the binaries the tests built.
func TestMain(m *testing.M) {
	code := m.Run()
	if buildDir != "" {
		_ = os.RemoveAll(buildDir)
	}
	os.Exit(code)
}

// binaries builds the five commands once per test binary.
func binaries(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		buildDir, buildErr = os.MkdirTemp("", "postback-e2e-bin")
		if buildErr != nil {
			return
		}
		out, err := exec.Command("go", "build", "-o", buildDir+"/", "../ingest", "../attribution", "../sink", "../forwarder", "../postbackctl").CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return buildDir
}

// start runs a service until the test ends (SIGTERM, then its log if the
// test failed).
func start(t *testing.T, bins, dir, name string, env []string) {
	t.Helper()
	log, err := os.Create(filepath.Join(dir, name+".log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(filepath.Join(bins, name), "--config", filepath.Join(dir, name+".yaml"))
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Signal(os.Interrupt)
		_ = cmd.Wait()
		if t.Failed() {
			out, _ := os.ReadFile(log.Name())
			t.Logf("%s log:\n%s", name, out)
		}
	})
}

func write(t *testing.T, path, body string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
}

// get requests url and fails the test unless it answers 2xx.
func get(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode/100 != 2 {
		t.Fatalf("GET %s: %d %s", url, resp.StatusCode, body)
	}
	return string(body)
}

// publisher is a local callback receiver: it counts distinct deliveries
// (by Idempotency-Key) and callbacks whose signature does not verify.
type publisher struct {
	srv    *httptest.Server
	mu     sync.Mutex
	seen   map[string]bool
	badSig int
}

func newPublisher(t *testing.T, secret []byte) *publisher {
	p := &publisher{seen: map[string]bool{}}
	p.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		err := forward.Verify(secret, r.Header.Get(forward.HeaderSignature), r.Header.Get(forward.HeaderTimestamp),
			r.Method, r.RequestURI, body, time.Now(), 5*time.Minute)
		p.mu.Lock()
		p.seen[r.Header.Get(forward.HeaderIdempotencyKey)] = true
		if err != nil {
			p.badSig++
		}
		p.mu.Unlock()
		w.WriteHeader(http.StatusOK)
	}))
	t.Cleanup(p.srv.Close)
	return p
}

func (p *publisher) counts() (deliveries, badSig int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.seen), p.badSig
}
