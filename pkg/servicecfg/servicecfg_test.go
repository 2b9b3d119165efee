package servicecfg

import (
	"bytes"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/adtrack/postback/pkg/config"
	"github.com/adtrack/postback/pkg/forward"
)

var update = flag.Bool("update", false, "rewrite docs/configuration.md and config.example.yaml")

func writeYAML(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "c.yaml")
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestDefaultsValidate(t *testing.T) {
	for _, s := range Services() {
		if err := s.Config.Validate(); err != nil {
			t.Errorf("%s defaults do not validate: %v", s.Name, err)
		}
		if len(config.Fields(s.Config)) == 0 {
			t.Errorf("%s has no keys", s.Name)
		}
		for _, f := range config.Fields(s.Config) {
			if f.Desc == "" {
				t.Errorf("%s: key %s has no desc tag", s.Name, f.Key)
			}
		}
	}
}

func TestPrecedence(t *testing.T) {
	file := writeYAML(t, `
kafka:
  brokers: ["file:1", "file:2"]
  topics:
    clicks: clicks.file
http:
  max_body_bytes: 2048
  write_timeout: 3s
`)
	t.Setenv("POSTBACK_KAFKA_TOPICS_CLICKS", "clicks.env")
	t.Setenv("POSTBACK_HTTP_ADDR", "127.0.0.1:1")
	t.Setenv("POSTBACK_TELEMETRY_LOG_LEVEL", "debug")
	cfg := DefaultIngest()
	err := config.Load(&cfg, "ingest", []string{"--config", file, "--http.addr", "127.0.0.1:2", "--kafka.client_id=flag"}, &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	checks := map[string][2]any{
		"file brokers":            {strings.Join(cfg.Kafka.Brokers, ","), "file:1,file:2"},
		"env beats file":          {cfg.Kafka.Topics.Clicks, "clicks.env"},
		"flag beats env":          {cfg.HTTP.Addr, "127.0.0.1:2"},
		"flag only":               {cfg.Kafka.ClientID, "flag"},
		"file int":                {cfg.HTTP.MaxBodyBytes, int64(2048)},
		"file duration":           {cfg.HTTP.WriteTimeout, 3 * time.Second},
		"env only":                {cfg.Telemetry.LogLevel, "debug"},
		"default kept":            {cfg.Kafka.Topics.Impressions, "impressions.v1"},
		"default duration kept":   {cfg.HTTP.ShutdownTimeout, 25 * time.Second},
		"default partitions kept": {cfg.Kafka.Topics.Partitions, 6},
	}
	for name, c := range checks {
		if c[0] != c[1] {
			t.Errorf("%s: got %v, want %v", name, c[0], c[1])
		}
	}
}

func TestEnvList(t *testing.T) {
	t.Setenv("POSTBACK_KAFKA_BROKERS", "a:9092,b:9092")
	cfg := DefaultSink()
	if err := config.Load(&cfg, "sink", nil, &bytes.Buffer{}); err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(cfg.Kafka.Brokers, "|"); got != "a:9092|b:9092" {
		t.Fatalf("brokers = %q", got)
	}
}

func TestErrorsNameTheKey(t *testing.T) {
	tests := []struct {
		name, yaml string
		env        map[string]string
		args       []string
		want       string
	}{
		{name: "unknown yaml key", yaml: "kafka:\n  brokerz: [x]\n", want: "brokerz"},
		{name: "bad duration", yaml: "http:\n  read_timeout: soon\n", want: "read_timeout"},
		{name: "bad int", env: map[string]string{"POSTBACK_HTTP_MAX_BODY_BYTES": "lots"}, want: "max_body_bytes"},
		{name: "empty brokers", args: []string{"--kafka.brokers="}, want: "kafka.brokers"},
		{name: "broker without port", args: []string{"--kafka.brokers=localhost"}, want: "kafka.brokers"},
		{name: "log level", args: []string{"--telemetry.log_level=loud"}, want: "telemetry.log_level"},
		{name: "small body limit", args: []string{"--http.max_body_bytes=10"}, want: "http.max_body_bytes"},
		{name: "negative timeout", args: []string{"--http.idle_timeout=-1s"}, want: "http.idle_timeout"},
		{name: "zero partitions", args: []string{"--kafka.topics.partitions=0"}, want: "kafka.topics.partitions"},
		{name: "min isr above rf", args: []string{"--kafka.topics.min_insync_replicas=2"}, want: "kafka.topics.min_insync_replicas"},
		{name: "unknown flag", args: []string{"--nope=1"}, want: "nope"},
		{name: "missing file", args: []string{"--config=/does/not/exist.yaml"}, want: "/does/not/exist.yaml"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for k, v := range tt.env {
				t.Setenv(k, v)
			}
			args := tt.args
			if tt.yaml != "" {
				args = append(args, "--config", writeYAML(t, tt.yaml))
			}
			cfg := DefaultIngest()
			err := config.Load(&cfg, "ingest", args, &bytes.Buffer{})
			if err == nil {
				t.Fatalf("Load succeeded, want an error naming %q", tt.want)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %q does not name %q", err, tt.want)
			}
		})
	}
}

func TestKeyErrorIsTyped(t *testing.T) {
	cfg := DefaultSink()
	err := config.Load(&cfg, "sink", []string{"--clickhouse.database=bad-name"}, &bytes.Buffer{})
	var ke *config.KeyError
	if !errors.As(err, &ke) || ke.Key != "clickhouse.database" {
		t.Fatalf("err = %v, want *config.KeyError for clickhouse.database", err)
	}
}

func TestClickHouseCluster(t *testing.T) {
	cfg := DefaultSink()
	if err := config.Load(&cfg, "sink", []string{"--clickhouse.cluster=postback_2x2"}, &bytes.Buffer{}); err != nil {
		t.Fatalf("plain cluster name: %v", err)
	}
	if cfg.ClickHouse.Cluster != "postback_2x2" {
		t.Fatalf("cluster = %q, want postback_2x2", cfg.ClickHouse.Cluster)
	}
	cfg = DefaultSink()
	err := config.Load(&cfg, "sink", []string{"--clickhouse.cluster=a b"}, &bytes.Buffer{})
	var ke *config.KeyError
	if !errors.As(err, &ke) || ke.Key != "clickhouse.cluster" {
		t.Fatalf("err = %v, want *config.KeyError for clickhouse.cluster", err)
	}
}

func TestHelp(t *testing.T) {
	var out bytes.Buffer
	cfg := DefaultAttribution()
	if err := config.Load(&cfg, "attribution", []string{"--help"}, &out); !errors.Is(err, config.ErrHelp) {
		t.Fatalf("err = %v, want config.ErrHelp", err)
	}
	for _, want := range []string{"--kafka.brokers", "POSTBACK_KAFKA_BROKERS", "--state_dir"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("usage lacks %q:\n%s", want, out.String())
		}
	}
}

const (
	beginMarker = "<!-- BEGIN GENERATED: make docs -->\n"
	endMarker   = "<!-- END GENERATED -->\n"
	// The keys of the forwarder's endpoints file (pkg/forward).
	beginEndpoints = "<!-- BEGIN ENDPOINTS FILE KEYS: generated by make docs -->\n"
	endEndpoints   = "<!-- END ENDPOINTS FILE KEYS -->\n"
)

// TestDocsCurrent keeps docs/configuration.md and config.example.yaml equal to
// what the code declares. Run `make docs` (go test -update) after changing keys.
func TestDocsCurrent(t *testing.T) {
	root := filepath.Join("..", "..")
	docPath := filepath.Join(root, "docs", "configuration.md")
	doc, err := os.ReadFile(docPath)
	if err != nil {
		t.Fatal(err)
	}
	before, rest, ok1 := strings.Cut(string(doc), beginMarker)
	_, after, ok2 := strings.Cut(rest, endMarker)
	if !ok1 || !ok2 {
		t.Fatalf("%s lacks the generated-section markers", docPath)
	}
	want := before + beginMarker + config.Reference(Services()) + endMarker + after
	eb, erest, ok3 := strings.Cut(want, beginEndpoints)
	_, eafter, ok4 := strings.Cut(erest, endEndpoints)
	if !ok3 || !ok4 {
		t.Fatalf("%s lacks the endpoints file's generated-section markers", docPath)
	}
	want = eb + beginEndpoints + forward.FileReference() + endEndpoints + eafter
	examplePath := filepath.Join(root, "config.example.yaml")
	example, _ := os.ReadFile(examplePath)
	if *update {
		if err := os.WriteFile(docPath, []byte(want), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(examplePath, []byte(config.Example(Services())), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	if string(doc) != want {
		t.Errorf("%s is out of date: run make docs", docPath)
	}
	if string(example) != config.Example(Services()) {
		t.Errorf("%s is out of date: run make docs", examplePath)
	}
}

// TestLocalConfigsLoad loads every config `make up` uses with its
// service's defaults: a key renamed in code must not break the local run.
func TestLocalConfigsLoad(t *testing.T) {
	for _, s := range Services() {
		p := filepath.Join("..", "..", "deploy", "local", "config", s.Name+".yaml")
		if _, err := os.Stat(p); err != nil {
			continue // postbackctl has none
		}
		var out bytes.Buffer
		if err := config.Load(s.Config, s.Name, []string{"--config", p}, &out); err != nil {
			t.Errorf("%s: %v", p, err)
		}
	}
	a := DefaultAttribution()
	if err := config.Load(&a, "attribution", []string{"--config", filepath.Join("..", "..", "deploy", "local", "config", "attribution.yaml")}, &bytes.Buffer{}); err != nil {
		t.Fatal(err)
	}
	r, err := a.ParsedRates()
	if err != nil {
		t.Fatal(err)
	}
	if len(r.PerUnit) != 6 || r.PerUnit["EUR"].String() != "1.08" {
		t.Errorf("local rate table: %v", r.PerUnit)
	}
}

// TestSecretsFromFiles reads a *_file key into its sibling, for a scalar
// (kafka.sasl.password) and for the tokens of a source (a map entry).
func TestSecretsFromFiles(t *testing.T) {
	dir := t.TempDir()
	pw := filepath.Join(dir, "pw")
	toks := filepath.Join(dir, "tokens")
	if err := os.WriteFile(pw, []byte("s3cret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(toks, []byte("# rotated monthly\nfirst-token-0123456789\n\nsecond-token-0123456789\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	file := writeYAML(t, `
kafka:
  sasl: {mechanism: SCRAM-SHA-512, username: ingest}
ingest:
  sources:
    appsflyer: {tokens_file: `+toks+`}
`)
	t.Setenv("POSTBACK_KAFKA_SASL_PASSWORD_FILE", pw)
	cfg := DefaultIngest()
	if err := config.Load(&cfg, "ingest", []string{"--config", file}, &bytes.Buffer{}); err != nil {
		t.Fatal(err)
	}
	if cfg.Kafka.SASL.Password != "s3cret" {
		t.Errorf("password = %q, want the file's content without its newline", cfg.Kafka.SASL.Password)
	}
	if got := strings.Join(cfg.Ingest.Sources["appsflyer"].Tokens, ","); got != "first-token-0123456789,second-token-0123456789" {
		t.Errorf("tokens = %q", got)
	}

	for name, tc := range map[string]struct {
		args []string
		want string
	}{
		"both":         {[]string{"--kafka.sasl.mechanism=PLAIN", "--kafka.sasl.username=u", "--kafka.sasl.password=x", "--kafka.sasl.password_file=" + pw}, "kafka.sasl.password_file"},
		"missing file": {[]string{"--clickhouse.password_file=" + filepath.Join(dir, "nope")}, "clickhouse.password_file"},
		"tls conflict": {[]string{"--kafka.tls.enabled=true", "--kafka.tls.insecure_skip_verify=true", "--kafka.tls.ca_file=" + pw}, "kafka.tls"},
		"tls keys off": {[]string{"--clickhouse.tls.ca_file=" + pw}, "clickhouse.tls"},
		"no user":      {[]string{"--kafka.sasl.mechanism=PLAIN"}, "kafka.sasl"},
		"bad mech":     {[]string{"--kafka.sasl.mechanism=GSSAPI"}, "kafka.sasl.mechanism"},
	} {
		t.Run(name, func(t *testing.T) {
			t.Setenv("POSTBACK_KAFKA_SASL_PASSWORD_FILE", "")
			cfg := DefaultSink()
			err := config.Load(&cfg, "sink", tc.args, &bytes.Buffer{})
			var ke *config.KeyError
			if !errors.As(err, &ke) || !strings.HasPrefix(ke.Key, tc.want) {
				t.Fatalf("err = %v, want a *KeyError for %s", err, tc.want)
			}
		})
	}
}
