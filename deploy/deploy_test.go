// Package deploy_test checks the monitoring files under deploy/ against the
// services: every metric the Grafana dashboard and the Prometheus alert
// rules name is exported by a service, the rules pass promtool and their
// unit tests, and every runbook points to a section of docs/operations.md.
package deploy_test

import (
	"bytes"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/segmentio/encoding/json"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.yaml.in/yaml/v3"

	"github.com/adtrack/postback/pkg/attribution"
	"github.com/adtrack/postback/pkg/campaign"
	"github.com/adtrack/postback/pkg/forward"
	"github.com/adtrack/postback/pkg/forwarder"
	"github.com/adtrack/postback/pkg/ingest"
	"github.com/adtrack/postback/pkg/join"
	"github.com/adtrack/postback/pkg/kafkaconn"
	"github.com/adtrack/postback/pkg/servicecfg"
	"github.com/adtrack/postback/pkg/sink"
	"github.com/adtrack/postback/pkg/telemetry"
)

// exported returns every metric name a service exports, by service: its
// engine's metrics (registered when the engine is created, before any is
// observed), the Go runtime and process metrics, and the metrics of
// franz-go's kprom plugin, which pkg/kafkaconn registers under the
// service's name when a named client is created.
func exported(t *testing.T) map[string][]string {
	t.Helper()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	out := map[string][]string{}

	tel := telemetry.New()
	icfg := servicecfg.DefaultIngest()
	// A client that never dials: ingest.New only keeps it.
	cl, err := kgo.NewClient(kgo.SeedBrokers("127.0.0.1:1"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	srv, err := ingest.New(icfg.Server(), cl, campaign.NewRegistry(), tel, log)
	if err != nil {
		t.Fatalf("ingest: %v", err)
	}
	t.Cleanup(srv.Close)
	out["ingest"] = withKprom(t, tel, "ingest")

	tel = telemetry.New()
	scfg := servicecfg.DefaultSink()
	if _, err := sink.New(scfg.Loader(kafkaconn.Plain([]string{"127.0.0.1:1"})), nil, tel, log); err != nil {
		t.Fatalf("sink: %v", err)
	}
	out["sink"] = withKprom(t, tel, "sink")

	tel = telemetry.New()
	if _, err := join.New(joinConfig(t, tel)); err != nil {
		t.Fatalf("attribution: %v", err)
	}
	out["attribution"] = withKprom(t, tel, "attribution")

	tel = telemetry.New()
	fcfg := servicecfg.DefaultForwarder()
	if _, err := forwarder.New(fcfg.Engine(kafkaconn.Plain([]string{"127.0.0.1:1"}), forward.NewRegistry(&fcfg.Egress)), tel, log); err != nil {
		t.Fatalf("forwarder: %v", err)
	}
	out["forwarder"] = withKprom(t, tel, "forwarder")
	return out
}

// withKprom returns the names registered in tel plus those that kprom
// registers for a named client of a connection with the service's metrics.
// A kprom name equal to one of the service's own is an error: the client's
// registration would replace the service's metric.
func withKprom(t *testing.T, tel *telemetry.Telemetry, service string) []string {
	t.Helper()
	own := tel.Registry.Names()
	kprom := kpromNames(t, telemetry.New(), service)
	for _, name := range kprom {
		if slices.Contains(own, name) {
			t.Errorf("kprom's %s is also one of %s's own metrics: the names collide", name, service)
		}
	}
	return append(own, kprom...)
}

// kpromNames returns the metrics a named client of a connection with
// metrics registers in tel, an empty registry.
func kpromNames(t *testing.T, tel *telemetry.Telemetry, service string) []string {
	t.Helper()
	before := tel.Registry.Names()
	conn, err := kafkaconn.New(kafkaconn.Config{Brokers: []string{"127.0.0.1:1"}, ClientID: service}, kafkaconn.WithMetrics(tel.Registry, service))
	if err != nil {
		t.Fatal(err)
	}
	cl, err := kgo.NewClient(conn.Opts("probe")...)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close() // after the names are read: closing unregisters them
	var added []string
	for _, name := range tel.Registry.Names() {
		if !slices.Contains(before, name) {
			added = append(added, name)
		}
	}
	if len(added) == 0 {
		t.Fatalf("%s: a client of a connection with metrics registered no kprom metric", service)
	}
	return added
}

// joinConfig is the attribution service's join configuration with its
// defaults.
func joinConfig(t *testing.T, tel *telemetry.Telemetry) join.Config {
	t.Helper()
	d := servicecfg.DefaultAttribution()
	rates, err := attribution.ParseRates("USD", map[string]string{"USD": "1"})
	if err != nil {
		t.Fatal(err)
	}
	tp := d.Kafka.Topics
	return join.Config{
		Kafka: kafkaconn.Plain([]string{"127.0.0.1:1"}), Group: "postback-attribution", StateDir: t.TempDir(),
		Topics: join.Topics{Clicks: tp.Clicks, Impressions: tp.Impressions, InstallsRaw: tp.InstallsRaw, EventsRaw: tp.EventsRaw,
			InstallsAttributed: tp.InstallsAttributed, EventsAttributed: tp.EventsAttributed, Rejected: tp.Rejected},
		Rules: attribution.RuleSet{Default: attribution.DefaultRules()}, Rates: rates,
		Settings:   d.Join,
		Registerer: tel.Registry, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	}
}

// family maps a series name to its metric family: a histogram's _bucket,
// _sum and _count series belong to the histogram.
func family(name string, known func(string) bool) string {
	for _, suffix := range []string{"_bucket", "_sum", "_count"} {
		if base, ok := strings.CutSuffix(name, suffix); ok && known(base) {
			return base
		}
	}
	return name
}

// dashboard is the part of a Grafana dashboard the tests read.
type dashboard struct {
	SchemaVersion int `json:"schemaVersion"`
	Templating    struct {
		List []struct {
			Name  string `json:"name"`
			Type  string `json:"type"`
			Query any    `json:"query"`
		} `json:"list"`
	} `json:"templating"`
	Panels []panel `json:"panels"`
}

type panel struct {
	Title      string     `json:"title"`
	Type       string     `json:"type"`
	Datasource datasource `json:"datasource"`
	Targets    []struct {
		Expr       string     `json:"expr"`
		RawSQL     string     `json:"rawSql"`
		Datasource datasource `json:"datasource"`
	} `json:"targets"`
	Panels []panel `json:"panels"` // of a collapsed row
}

type datasource struct {
	Type string `json:"type"`
	UID  string `json:"uid"`
}

func readDashboard(t *testing.T) dashboard {
	t.Helper()
	b, err := os.ReadFile("grafana/postback.json")
	if err != nil {
		t.Fatal(err)
	}
	var d dashboard
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatalf("grafana/postback.json: %v", err)
	}
	return d
}

// queries returns the dashboard's PromQL expressions by where they are.
func (d dashboard) queries(t *testing.T) map[string]string {
	t.Helper()
	out := map[string]string{}
	var walk func(ps []panel)
	walk = func(ps []panel) {
		for _, p := range ps {
			walk(p.Panels)
			for i, tg := range p.Targets {
				ds := tg.Datasource
				if ds.Type == "" {
					ds = p.Datasource
				}
				switch ds.Type {
				case "prometheus":
					if ds.UID != "${datasource}" {
						t.Errorf("panel %q: Prometheus target with data source %q, want the variable ${datasource}", p.Title, ds.UID)
					}
					out[p.Title+"/"+string(rune('A'+i))] = tg.Expr
				case "grafana-clickhouse-datasource":
					if ds.UID != "${clickhouse}" || tg.RawSQL == "" {
						t.Errorf("panel %q: ClickHouse target with data source %q and SQL %q", p.Title, ds.UID, tg.RawSQL)
					}
				default:
					t.Errorf("panel %q: target with data source type %q", p.Title, ds.Type)
				}
			}
		}
	}
	walk(d.Panels)
	for _, v := range d.Templating.List {
		if q, ok := v.Query.(map[string]any); ok && v.Type == "query" {
			out["variable "+v.Name], _ = q["query"].(string)
		}
	}
	return out
}

// rules is the part of a Prometheus rule file the tests read.
type rules struct {
	Groups []struct {
		Name  string `yaml:"name"`
		Rules []struct {
			Alert       string            `yaml:"alert"`
			Expr        string            `yaml:"expr"`
			For         string            `yaml:"for"`
			Labels      map[string]string `yaml:"labels"`
			Annotations map[string]string `yaml:"annotations"`
		} `yaml:"rules"`
	} `yaml:"groups"`
}

func readRules(t *testing.T) rules {
	t.Helper()
	b, err := os.ReadFile("prometheus/alerts.yml")
	if err != nil {
		t.Fatal(err)
	}
	var r rules
	if err := yaml.Unmarshal(b, &r); err != nil {
		t.Fatalf("prometheus/alerts.yml: %v", err)
	}
	return r
}

// TestQueriesUseExportedMetrics: every metric the dashboard and the alert
// rules read is exported by one of the services.
func TestQueriesUseExportedMetrics(t *testing.T) {
	all := map[string]string{} // metric -> a service exporting it
	for svc, names := range exported(t) {
		for _, n := range names {
			all[n] = svc
		}
	}
	known := func(n string) bool { _, ok := all[n]; return ok }
	exprs := readDashboard(t).queries(t)
	for _, g := range readRules(t).Groups {
		for _, r := range g.Rules {
			exprs["alert "+r.Alert] = r.Expr
		}
	}
	if len(exprs) < 40 {
		t.Fatalf("only %d queries found in the dashboard and rules: the files were not read as expected", len(exprs))
	}
	used := 0
	for where, expr := range exprs {
		names := metricNames(expr)
		if len(names) == 0 {
			t.Errorf("%s: no metric found in %q", where, expr)
		}
		for _, n := range names {
			used++
			if !known(family(n, known)) {
				t.Errorf("%s: %s is exported by no service (%q)", where, n, expr)
			}
		}
	}
	t.Logf("%d metric references in %d queries", used, len(exprs))
}

// TestDashboardShape: a current Grafana schema, the data sources as
// variables, and the panels the operators asked for.
func TestDashboardShape(t *testing.T) {
	d := readDashboard(t)
	if d.SchemaVersion < 39 {
		t.Errorf("schemaVersion %d, want 39 (Grafana 10.4/11) or later", d.SchemaVersion)
	}
	vars := map[string]string{}
	for _, v := range d.Templating.List {
		q, _ := v.Query.(string)
		vars[v.Name] = v.Type + ":" + q
	}
	if vars["datasource"] != "datasource:prometheus" || vars["clickhouse"] != "datasource:grafana-clickhouse-datasource" {
		t.Errorf("data source variables %v, want datasource (prometheus) and clickhouse", vars)
	}
	var titles []string
	for _, p := range d.Panels {
		titles = append(titles, p.Title)
	}
	text := strings.ToLower(strings.Join(titles, "\n"))
	for _, want := range []string{"by mmp", "lag", "freshness", "attribution mix", "fraud share", "rows inserted", "sink failures",
		"transactions not committed", "ctr now", "cpi"} {
		if !strings.Contains(text, want) {
			t.Errorf("no panel title mentions %q; titles:\n%s", want, text)
		}
	}
}

// TestAlertRules: every alert has a severity, a summary, a description and
// a runbook pointing to a section of docs/operations.md under "## Alerts".
func TestAlertRules(t *testing.T) {
	doc, err := os.ReadFile("../docs/operations.md")
	if err != nil {
		t.Fatal(err)
	}
	_, alertsDoc, ok := strings.Cut(string(doc), "\n## Alerts\n")
	if !ok {
		t.Fatal(`docs/operations.md has no "## Alerts" section`)
	}
	alertsDoc, _, _ = strings.Cut(alertsDoc, "\n## ")
	anchors := map[string]bool{}
	for _, m := range regexp.MustCompile(`(?m)^### (.+)$`).FindAllStringSubmatch(alertsDoc, -1) {
		anchors[githubAnchor(m[1])] = true
	}
	n := 0
	for _, g := range readRules(t).Groups {
		for _, r := range g.Rules {
			n++
			if r.Alert == "" || r.Labels["severity"] == "" || r.Annotations["summary"] == "" || r.Annotations["description"] == "" {
				t.Errorf("rule %q lacks an alert name, a severity, a summary or a description", r.Alert)
			}
			anchor, ok := strings.CutPrefix(r.Annotations["runbook"], "docs/operations.md#")
			if !ok || !anchors[anchor] {
				t.Errorf("alert %s: runbook %q is not a section under \"## Alerts\" of docs/operations.md (sections: %v)", r.Alert, r.Annotations["runbook"], anchors)
			}
		}
	}
	if n < 7 {
		t.Errorf("%d alert rules, want at least 7", n)
	}
}

// githubAnchor is the fragment GitHub gives a Markdown heading.
func githubAnchor(heading string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(strings.TrimSpace(heading)) {
		switch {
		case r == ' ':
			b.WriteByte('-')
		case r == '-' || r == '_' || r >= 'a' && r <= 'z' || r >= '0' && r <= '9':
			b.WriteRune(r)
		}
	}
	return b.String()
}

// TestPromtool: the rules pass `promtool check rules` and their unit tests
// (prometheus/alerts_test.yml).
func TestPromtool(t *testing.T) {
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		t.Fatal("promtool is not installed: run `deploy/local/tools.sh promtool` (Debian's prometheus package; `make test` does)")
	}
	for _, args := range [][]string{{"check", "rules", "alerts.yml"}, {"test", "rules", "alerts_test.yml"}} {
		cmd := exec.Command(promtool, args...)
		cmd.Dir = "prometheus"
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Run(); err != nil {
			t.Errorf("promtool %s: %v\n%s", strings.Join(args, " "), err, out.String())
		}
	}
}
