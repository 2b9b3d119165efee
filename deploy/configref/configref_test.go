package configref

import (
	"slices"
	"strings"
	"testing"
)

// fixture is a reference in the generated format, small and fixed so the
// checker's behaviour is tested apart from what the services document today.
const fixture = `# Configuration

<!-- BEGIN GENERATED: make docs -->
### ingest (HTTP front door)

| key | env | type | default | meaning |
|---|---|---|---|---|
| ` + "`kafka.brokers`" + ` | ` + "`POSTBACK_KAFKA_BROKERS`" + ` | list of string | ` + "`127.0.0.1:9092`" + ` | Kafka bootstrap brokers. |
| ` + "`http.addr`" + ` | ` + "`POSTBACK_HTTP_ADDR`" + ` | string | ` + "`127.0.0.1:8080`" + ` | Listen address. |
| ` + "`ingest.sources`" + ` | ` + "`POSTBACK_INGEST_SOURCES`" + ` | map of object |   | Per-MMP auth, keyed by MMP (appsflyer, adjust): tokens (or tokens_file, one token per line), rate_limit. YAML only. |
| ` + "`telemetry.addr`" + ` | ` + "`POSTBACK_TELEMETRY_ADDR`" + ` | string |   | Listen address of /metrics. |

### attribution (joins)

| key | env | type | default | meaning |
|---|---|---|---|---|
| ` + "`kafka.brokers`" + ` | ` + "`POSTBACK_KAFKA_BROKERS`" + ` | list of string | ` + "`127.0.0.1:9092`" + ` | Kafka bootstrap brokers. |
| ` + "`state_dir`" + ` | ` + "`POSTBACK_STATE_DIR`" + ` | string | ` + "`/var/lib/postback/attribution`" + ` | State. |
| ` + "`rules.grace`" + ` | ` + "`POSTBACK_RULES_GRACE`" + ` | duration | ` + "`10m0s`" + ` | Grace. |
| ` + "`rules.flood_clicks`" + ` | ` + "`POSTBACK_RULES_FLOOD_CLICKS`" + ` | int | ` + "`50`" + ` | Flooding. |
| ` + "`apps`" + ` | ` + "`POSTBACK_APPS`" + ` | map of object |   | Per-app rules, keyed by app id; each entry replaces every rules.* key (give them all). YAML only. |
| ` + "`rates.per_unit`" + ` | ` + "`POSTBACK_RATES_PER_UNIT`" + ` | map of string |   | Rates. YAML only. |
| ` + "`join.cache_size`" + ` | ` + "`POSTBACK_JOIN_CACHE_SIZE`" + ` | int64 | ` + "`67108864`" + ` | Block cache bytes. |
<!-- END GENERATED -->
`

func mustParse(t *testing.T, doc string) *Reference {
	t.Helper()
	ref, err := Parse([]byte(doc))
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	return ref
}

func TestParseRejectsMalformedReferences(t *testing.T) {
	for name, doc := range map[string]string{
		"no generated section": "# Configuration\n| `a` | `POSTBACK_A` | string | | x |\n",
		"row before a heading": "<!-- BEGIN GENERATED -->\n| `a` | `POSTBACK_A` | string | | x |\n<!-- END GENERATED -->\n",
		"row without env":      "<!-- BEGIN GENERATED -->\n### s (x)\n| `a` | `A` | string | | x |\n<!-- END GENERATED -->\n",
		"short row":            "<!-- BEGIN GENERATED -->\n### s (x)\n| `a` | `POSTBACK_A` |\n<!-- END GENERATED -->\n",
		"service with no keys": "<!-- BEGIN GENERATED -->\n### s (x)\n<!-- END GENERATED -->\n",
		"two tables of one":    "<!-- BEGIN GENERATED -->\n### s (x)\n| `a` | `POSTBACK_A` | string | | x |\n### s (y)\n| `b` | `POSTBACK_B` | string | | x |\n<!-- END GENERATED -->\n",
	} {
		if _, err := Parse([]byte(doc)); err == nil {
			t.Errorf("%s: Parse succeeded, want an error", name)
		}
	}
}

// TestRealReference reads docs/configuration.md as the deployment tests do.
func TestRealReference(t *testing.T) {
	ref, err := Load("../../docs/configuration.md")
	if err != nil {
		t.Fatal(err)
	}
	if got, want := ref.Services(), []string{"attribution", "forwarder", "ingest", "postbackctl", "sink"}; !slices.Equal(got, want) {
		t.Errorf("services %v, want %v", got, want)
	}
	k, ok := ref.Key("sink", "clickhouse.addr")
	if !ok || k.Env != "POSTBACK_CLICKHOUSE_ADDR" || k.Type != "list of string" || k.Default != "127.0.0.1:9000" {
		t.Errorf("sink clickhouse.addr = %+v, %v", k, ok)
	}
	if _, ok := ref.Key("ingest", "clickhouse.addr"); ok {
		t.Error("ingest documents clickhouse.addr; the tables were mixed up")
	}
	if err := ref.CheckEnv("attribution", "POSTBACK_JOIN_INSTANCE_ID"); err != nil {
		t.Error(err)
	}
}

func TestCheckEnv(t *testing.T) {
	ref := mustParse(t, fixture)
	for _, c := range []struct {
		service, env string
		wantErr      string // "" for none
	}{
		{"ingest", "POSTBACK_HTTP_ADDR", ""},
		{"attribution", "POSTBACK_STATE_DIR", ""},
		{"attribution", "POSTBACK_HTTP_ADDR", "not the env var of any key of attribution"},
		{"ingest", "POSTBACK_HTTP_ADDRESS", "not the env var of any key of ingest"},
		{"ingest", "POSTBACK_INGEST_SOURCES", "set in the YAML file only"},
		{"attribution", "POSTBACK_RATES_PER_UNIT", "set in the YAML file only"},
		{"sink", "POSTBACK_KAFKA_BROKERS", `no service "sink"`},
	} {
		err := ref.CheckEnv(c.service, c.env)
		if c.wantErr == "" && err != nil {
			t.Errorf("%s %s: %v", c.service, c.env, err)
		}
		if c.wantErr != "" && (err == nil || !strings.Contains(err.Error(), c.wantErr)) {
			t.Errorf("%s %s: error %v, want one containing %q", c.service, c.env, err, c.wantErr)
		}
	}
}

func TestCheckYAML(t *testing.T) {
	ref := mustParse(t, fixture)
	for _, c := range []struct {
		name, service, doc string
		wantErrs           []string // each must appear; none means valid
	}{
		{name: "valid ingest", service: "ingest", doc: `
kafka: {brokers: ["kafka:9092"]}
http: {addr: "0.0.0.0:8080"}
ingest:
  sources:
    adjust: {tokens_file: /s/adjust, rate_limit: 10}
`},
		{name: "valid attribution", service: "attribution", doc: `
state_dir: /data
rules: {grace: 5m}
apps:
  com.example: {grace: 1m, flood_clicks: 10}
rates: {per_unit: {EUR: "1.08"}}
`},
		{name: "misspelt leaf", service: "ingest", doc: "kafka: {brokerz: [a]}",
			wantErrs: []string{"key kafka.brokerz is not in the config reference"}},
		{name: "unknown section", service: "ingest", doc: "kafak: {brokers: [a]}",
			wantErrs: []string{"key kafak is not in the config reference"}},
		{name: "key of another service", service: "ingest", doc: "state_dir: /data",
			wantErrs: []string{"ingest: key state_dir is not in the config reference"}},
		{name: "every error, not the first", service: "ingest", doc: "http: {adr: x}\ntelemetry: {adr: y}",
			wantErrs: []string{"http.adr", "telemetry.adr"}},
		{name: "leaf given a mapping", service: "ingest", doc: "http: {addr: {host: x}}",
			wantErrs: []string{"http.addr is a string, got a mapping"}},
		{name: "section given a scalar", service: "ingest", doc: "http: 8080",
			wantErrs: []string{"http is a section, want a mapping"}},
		{name: "source field not documented", service: "ingest", doc: "ingest: {sources: {adjust: {token: x}}}",
			wantErrs: []string{"key ingest.sources.adjust.token is not in the config reference (documented: tokens, tokens_file, rate_limit)"}},
		{name: "source field named as an alternative", service: "ingest", doc: "ingest: {sources: {adjust: {tokens_file: /s/a}}}"},
		{name: "source field of the alternative's explanation", service: "ingest", doc: "ingest: {sources: {adjust: {one: x}}}",
			wantErrs: []string{"key ingest.sources.adjust.one is not in the config reference"}},
		{name: "source entry not an object", service: "ingest", doc: "ingest: {sources: {adjust: [x]}}",
			wantErrs: []string{"ingest.sources.adjust is an object"}},
		{name: "app rule not a rules key", service: "attribution", doc: "apps: {com.example: {lookback: 1h}}",
			wantErrs: []string{"key apps.com.example.lookback is not in the config reference"}},
		{name: "map of string given objects", service: "attribution", doc: "rates: {per_unit: {EUR: {rate: 1}}}",
			wantErrs: []string{"rates.per_unit.EUR is a string entry, got a mapping"}},
		{name: "not YAML", service: "ingest", doc: "http: [",
			wantErrs: []string{"ingest config"}},
		{name: "unknown service", service: "sink", doc: "{}",
			wantErrs: []string{`no service "sink"`}},
	} {
		err := ref.CheckYAML(c.service, []byte(c.doc))
		if len(c.wantErrs) == 0 && err != nil {
			t.Errorf("%s: %v", c.name, err)
		}
		if len(c.wantErrs) > 0 && err == nil {
			t.Errorf("%s: no error, want %q", c.name, c.wantErrs)
		}
		for _, want := range c.wantErrs {
			if err != nil && !strings.Contains(err.Error(), want) {
				t.Errorf("%s: error %q, want it to contain %q", c.name, err, want)
			}
		}
	}
}

func TestEffectiveLayersDefaultsFileAndEnv(t *testing.T) {
	ref := mustParse(t, fixture)
	doc := []byte(`
kafka: {brokers: ["a:9092", "b:9092"]}
state_dir: /from/file
apps: {com.example: {grace: 1m}}
`)
	got, err := ref.Effective("attribution", doc, map[string]string{
		"POSTBACK_STATE_DIR": "/from/env",
		"POSTBACK_HTTP_ADDR": "0.0.0.0:1", // ingest's, not attribution's: left out
		"HOME":               "/root",     // not a POSTBACK_ var: ignored
	})
	if err != nil {
		t.Fatal(err)
	}
	for key, want := range map[string]string{
		"kafka.brokers":          "a:9092,b:9092", // file, a list as env writes it
		"state_dir":              "/from/env",     // env over file
		"rules.grace":            "10m0s",         // documented default
		"join.cache_size":        "67108864",      // an int, not a float's notation
		"apps.com.example.grace": "1m",            // map entries flattened
	} {
		if got[key] != want {
			t.Errorf("%s = %q, want %q", key, got[key], want)
		}
	}
	if _, ok := got["http.addr"]; ok {
		t.Error("an env var of another service's key reached the effective config")
	}
	if _, err := ref.Effective("attribution", []byte("state_dir: ["), nil); err == nil {
		t.Error("Effective accepted a file that is not YAML")
	}
}
