//go:build integration

package e2e

import (
	"bytes"
	"cmp"
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
	"syscall"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/adtrack/postback/pkg/chconn"
	"github.com/adtrack/postback/pkg/forward"
	"github.com/adtrack/postback/pkg/skan"
	"github.com/adtrack/postback/pkg/skan/skantest"
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

// pipeline is the three services running on their own topics, with
// postbackctl configured for them.
type pipeline struct {
	dir, bins, httpAddr, attrTel, sinkTel string
	token                                 string // the generic source's token
	env                                   map[string][]string
	procs                                 map[string]*proc
	signer                                *skantest.Signer // ingest.skan trusts its keys
	fwdTel                                string           // the forwarder's telemetry address
}

// signingSecret is the forwarder's callback signing key k1 in every
// pipeline the tests start.
const signingSecret = "e2e-signing-secret-0123456789"

// second starts a second instance of service name (attribution or sink):
// the same config with its own state directory and telemetry address. It
// returns the instance and its telemetry address.
func (p *pipeline) second(t testing.TB, name string) (*proc, string) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(p.dir, name+".yaml"))
	if err != nil {
		t.Fatal(err)
	}
	tel := map[string]string{"attribution": p.attrTel, "sink": p.sinkTel}[name]
	addr := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
	conf := strings.Replace(string(b), tel, addr, 1)
	conf = strings.Replace(conf, filepath.Join(p.dir, "state"), filepath.Join(p.dir, "state-2"), 1)
	write(t, filepath.Join(p.dir, name+"-2.yaml"), conf)
	pr := start(t, p.bins, p.dir, name+"-2", p.env[name])
	p.procs[name+"-2"] = pr
	return pr, addr
}

// ctl runs postbackctl with the pipeline's config and returns its output.
func (p *pipeline) ctl(t testing.TB, args ...string) string {
	t.Helper()
	cmd := exec.Command(filepath.Join(p.bins, "postbackctl"), append(args, "--config", filepath.Join(p.dir, "postbackctl.yaml"))...)
	cmd.Env = append(os.Environ(), p.env["postbackctl"]...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("postbackctl %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// startPipeline bootstraps topics and tables with postbackctl, applies
// campaigns (YAML, may be empty), and starts ingest (with a token per MMP),
// attribution (its YAML extended by attrExtra) and the sink, waiting until
// each is ready.
func startPipeline(t testing.TB, s setup, campaigns, attrExtra string) *pipeline {
	t.Helper()
	p := &pipeline{bins: binaries(t), dir: t.TempDir(), token: "e2e-generic-token-0123456789", env: s.env}
	dir := p.dir
	topics := testenv.Name("e2e")
	topicsSection := fmt.Sprintf("  topics: {clicks: %[1]s.clicks, impressions: %[1]s.impressions, installs_raw: %[1]s.installs-raw, events_raw: %[1]s.events-raw, installs_attributed: %[1]s.installs, events_attributed: %[1]s.events, rejected: %[1]s.rejected, campaigns: %[1]s.campaigns, skan: %[1]s.skan, endpoints: %[1]s.endpoints, deliveries: %[1]s.deliveries, forwarder_state: %[1]s.fwd-state, partitions: 3}\n", topics)
	tokens := filepath.Join(dir, "tokens")
	write(t, tokens, "# one per line\n"+p.token+"\n")
	sources := fmt.Sprintf("    generic: {tokens_file: %q}\n", tokens)
	for _, mmp := range []string{"appsflyer", "adjust", "branch", "singular", "kochava", "tenjin"} {
		sources += fmt.Sprintf("    %s: {tokens: [\"e2e-%s-token-0123456789\"]}\n", mmp, mmp)
	}
	p.httpAddr = fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
	p.attrTel, p.sinkTel = fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t)), fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
	// E2E_LOG_LEVEL=debug makes the services' logs (printed for a failed
	// test) say everything, franz-go's lines included.
	level := cmp.Or(os.Getenv("E2E_LOG_LEVEL"), "warn")
	quiet := fmt.Sprintf("telemetry: {log_format: text, log_level: %s}\n", level)
	// The forwarder signs callbacks with the key k1 (runPipeline's
	// publisher checks them) and may call the local receivers back.
	p.fwdTel = fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
	keys := filepath.Join(dir, "keys")
	if err := os.MkdirAll(keys, 0o700); err != nil {
		t.Fatal(err)
	}
	write(t, filepath.Join(keys, "k1"), signingSecret)
	egress := "egress: {allow_cidrs: [\"127.0.0.1/32\"]}\n"
	p.signer = skantest.New()
	sk := p.signer.Keys()
	skanConf := fmt.Sprintf("  skan: {ad_network_ids: [%q], p192_key: %q, p256_key: %q, aak_keys: {%q: %q}}\n",
		skantest.AdNetwork, sk.P192, sk.P256, skantest.KeyID, sk.AAK[skantest.KeyID])
	confs := map[string]string{
		"postbackctl": s.kafka["postbackctl"] + topicsSection + s.clickhouse + egress,
		"ingest":      s.kafka["ingest"] + topicsSection + fmt.Sprintf("http: {addr: %q}\ningest:\n  sources:\n%s", p.httpAddr, sources) + skanConf + quiet,
		"attribution": s.kafka["attribution"] + topicsSection + fmt.Sprintf("group: %q\nstate_dir: %q\nrates: {reporting_currency: USD, per_unit: {USD: \"1\", EUR: \"1.08\", GBP: \"1.27\"}}\ntelemetry: {addr: %q, log_format: text, log_level: %s}\n",
			testenv.Name("e2e-attr"), filepath.Join(dir, "state"), p.attrTel, level) + attrExtra,
		"sink": s.kafka["sink"] + topicsSection + s.clickhouse + fmt.Sprintf("group: %q\nsink: {flush_interval: 200ms}\ntelemetry: {addr: %q, log_format: text, log_level: %s}\n",
			testenv.Name("e2e-sink"), p.sinkTel, level),
		// The forwarder connects as ingest does (its kafka section).
		"forwarder": s.kafka["ingest"] + topicsSection + egress + fmt.Sprintf("group: %q\nforwarder: {keys_dir: %q, commit_interval: 200ms, start_at: earliest}\ntelemetry: {addr: %q, log_format: text, log_level: %s}\n",
			testenv.Name("e2e-fwd"), keys, p.fwdTel, level),
	}
	for name, c := range confs {
		write(t, filepath.Join(dir, name+".yaml"), c)
	}
	p.ctl(t, "bootstrap")
	if campaigns != "" {
		write(t, filepath.Join(dir, "campaigns.yaml"), campaigns)
		p.ctl(t, "campaigns", "apply", filepath.Join(dir, "campaigns.yaml"))
	}
	p.procs = map[string]*proc{}
	for _, name := range []string{"ingest", "attribution", "sink", "forwarder"} {
		p.procs[name] = start(t, p.bins, dir, name, s.env[name])
	}
	for _, url := range []string{"http://" + p.httpAddr + "/readyz", "http://" + p.attrTel + "/readyz", "http://" + p.sinkTel + "/readyz", "http://" + p.fwdTel + "/readyz"} {
		testenv.WaitHTTP(t, url, url)
	}
	return p
}

// runPipeline starts the pipeline, sends clicks, installs naming those
// clicks and in-app events through ingest, and checks that ClickHouse holds
// each of them once, attributed to the campaign by click id.
func runPipeline(t *testing.T, s setup) {
	t.Helper()
	const app, cmp = "id1234567890", "e2e-cpi"
	const skanApp, skanCmp = "id525463029", "e2e-skan"
	p := startPipeline(t, s, fmt.Sprintf("campaigns:\n  - {campaign_id: %s, app_id: %s, platform: ios, media_source: e2enet, cost_model: CPI, bid: \"1.5\", currency: USD}\n"+
		"  - {campaign_id: %s, app_id: %s, platform: ios, media_source: e2enet, cost_model: CPI, bid: \"1.5\", currency: USD, skan: {ad_network_id: %s, campaign_ids: [42], source_identifiers: [\"5239\"]}}\n",
		cmp, app, skanCmp, skanApp, skantest.AdNetwork), "")
	signer, fwdTel := p.signer, p.fwdTel
	// The publisher: a local receiver checking every callback's signature.
	pub := newPublisher(t, []byte(signingSecret))
	write(t, filepath.Join(p.dir, "endpoints.yaml"), fmt.Sprintf("endpoints:\n  - {endpoint_id: e2e-pub, match: {media_sources: [e2enet], kinds: [install, event]}, url: \"%s/cb?click={click_id}&site={site_id}&sub={sub1}&payout={payout}\", payout: {model: cpi, amount: \"0.8\", currency: USD}, signing_key_id: k1}\n", pub.srv.URL))
	p.ctl(t, "endpoints", "apply", filepath.Join(p.dir, "endpoints.yaml"))
	httpAddr, attrTel, sinkTel, token := p.httpAddr, p.attrTel, p.sinkTel, p.token
	testenv.WaitHTTP(t, "http://"+httpAddr+"/v1/click/"+cmp+"?s2s=1&ip=203.0.113.9&ua=warmup", "ingest's campaign registry")

	const installs, events = 40, 20
	base := "http://" + httpAddr
	var clicks []string
	for i := range installs {
		body := get(t, fmt.Sprintf("%s/v1/click/%s?s2s=1&site_id=s%d&sub1=pub-%d&ip=10.9.0.%d&ua=e2e-ua", base, cmp, i%5, i, i))
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

	// Apple's postbacks: one of every version and an AdAttributionKit one,
	// each with its own transaction, a resend of the 4.0 one, and a forgery.
	var skanBodies [][]byte
	for i, v := range skan.Versions {
		m := skantest.Example(v)
		m["transaction-id"] = fmt.Sprintf("e2e-%d", i)
		skanBodies = append(skanBodies, signer.SKAN(m))
	}
	skanBodies = append(skanBodies, signer.AAK(skantest.AAKPayload(), map[string]any{"coarse-conversion-value": "high"}))
	skanBodies = append(skanBodies, skanBodies[5])
	for _, b := range skanBodies {
		post(t, base+"/v1/skan", b, 200)
	}
	post(t, base+"/v1/skan", []byte(strings.Replace(string(skanBodies[4]), `"campaign-id":42`, `"campaign-id":41`, 1)), 401)
	skanUnique := uint64(len(skan.Versions) + 1)

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
		"SELECT count() FROM rejected WHERE source != 'skan'":                                                              0,
		"SELECT count() FROM rejected WHERE source = 'skan' AND startsWith(reason, 'invalid_signature')":                   1,
		"SELECT count() FROM skan_postbacks":                                                                               skanUnique + 1,
		"SELECT count() FROM skan_postbacks_unique WHERE campaign_id = '" + skanCmp + "'":                                  skanUnique,
		"SELECT sum(installs) FROM skan_installs_daily WHERE campaign_id = '" + skanCmp + "'":                              skanUnique,
		"SELECT sum(resends) FROM skan_installs_daily":                                                                     1,
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
	// The publisher's own sub id on the click comes back in every callback.
	for i, click := range clicks {
		if got, want := pub.sub(click), fmt.Sprintf("pub-%d", i); got != want {
			t.Errorf("callbacks for click %d carried sub1 %q, want %q", i, got, want)
		}
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

// post sends body as JSON and checks the status.
func post(t *testing.T, url string, body []byte, code int) {
	t.Helper()
	resp, err := http.Post(url, "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != code {
		t.Fatalf("POST %s: %d %s, want %d", url, resp.StatusCode, b, code)
	}
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
func binaries(t testing.TB) string {
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

// proc is a service process the test can kill and start again; it is
// stopped with SIGTERM when the test ends, and its log (appended across
// restarts) printed if the test failed.
type proc struct {
	t                     testing.TB
	name, bin, conf, logf string
	env                   []string
	mu                    sync.Mutex
	cmd                   *exec.Cmd
	exited                chan struct{}
}

// start runs a service until the test ends.
func start(t testing.TB, bins, dir, name string, env []string) *proc {
	t.Helper()
	bin := name
	if i := strings.IndexByte(name, '-'); i > 0 {
		bin = name[:i] // attribution-2 runs the attribution binary
	}
	p := &proc{t: t, name: name, bin: filepath.Join(bins, bin), conf: filepath.Join(dir, name+".yaml"), logf: filepath.Join(dir, name+".log"), env: env}
	p.start()
	t.Cleanup(func() {
		p.signal(os.Interrupt)
		if t.Failed() {
			out, _ := os.ReadFile(p.logf)
			t.Logf("%s log:\n%s", name, out)
		}
	})
	return p
}

// start starts the process (again).
func (p *proc) start() {
	p.t.Helper()
	log, err := os.OpenFile(p.logf, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		p.t.Fatal(err)
	}
	cmd := exec.Command(p.bin, "--config", p.conf)
	cmd.Env = append(os.Environ(), p.env...)
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		p.t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); log.Close(); close(exited) }()
	p.mu.Lock()
	p.cmd, p.exited = cmd, exited
	p.mu.Unlock()
}

// signal sends sig and waits for the process to exit.
func (p *proc) signal(sig os.Signal) {
	p.mu.Lock()
	cmd, exited := p.cmd, p.exited
	p.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Signal(sig)
	<-exited
}

// exitedEarly reports whether the process has exited although the test
// did not stop it.
func (p *proc) exitedEarly() bool {
	p.mu.Lock()
	exited := p.exited
	p.mu.Unlock()
	select {
	case <-exited:
		return true
	default:
		return false
	}
}

// kill SIGKILLs the process.
func (p *proc) kill() { p.signal(syscall.SIGKILL) }

func write(t testing.TB, path, body string) {
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
	// subs is the sub query value per click query value; a click whose
	// callbacks disagree gets "conflict".
	subs map[string]string
}

func newPublisher(t *testing.T, secret []byte) *publisher {
	p := &publisher{seen: map[string]bool{}, subs: map[string]string{}}
	p.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		err := forward.Verify(secret, r.Header.Get(forward.HeaderSignature), r.Header.Get(forward.HeaderTimestamp),
			r.Method, r.RequestURI, body, time.Now(), 5*time.Minute)
		p.mu.Lock()
		p.seen[r.Header.Get(forward.HeaderIdempotencyKey)] = true
		if err != nil {
			p.badSig++
		}
		q := r.URL.Query()
		if old, ok := p.subs[q.Get("click")]; ok && old != q.Get("sub") {
			p.subs[q.Get("click")] = "conflict"
		} else {
			p.subs[q.Get("click")] = q.Get("sub")
		}
		p.mu.Unlock()
		w.WriteHeader(http.StatusOK)
	}))
	t.Cleanup(p.srv.Close)
	return p
}

func (p *publisher) sub(click string) string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.subs[click]
}

func (p *publisher) counts() (deliveries, badSig int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.seen), p.badSig
}
