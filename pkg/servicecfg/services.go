package servicecfg

import (
	"time"

	"github.com/adtrack/postback/pkg/attribution"
	"github.com/adtrack/postback/pkg/chconn"
	"github.com/adtrack/postback/pkg/config"
	"github.com/adtrack/postback/pkg/forward"
	"github.com/adtrack/postback/pkg/forwarder"
	"github.com/adtrack/postback/pkg/ingest"
	"github.com/adtrack/postback/pkg/join"
	"github.com/adtrack/postback/pkg/kafkaconn"
	"github.com/adtrack/postback/pkg/sink"
	"github.com/adtrack/postback/pkg/telemetry"
)

// Ingest is the configuration of services/ingest.
type Ingest struct {
	Kafka     Kafka            `mapstructure:"kafka"`
	HTTP      ingest.HTTP      `mapstructure:"http"`
	Ingest    ingest.Settings  `mapstructure:"ingest"`
	Telemetry telemetry.Config `mapstructure:"telemetry"`
}

// DefaultIngest returns ingest's defaults.
func DefaultIngest() Ingest {
	return Ingest{
		Kafka:     DefaultKafka("postback-ingest"),
		HTTP:      ingest.DefaultHTTP(),
		Ingest:    ingest.DefaultSettings(),
		Telemetry: telemetry.Config{LogLevel: "info", LogFormat: "json"},
	}
}

// Validate checks every section.
func (c *Ingest) Validate() error {
	return validateAll(&c.Kafka, &c.HTTP, &c.Ingest, telemetrySection{&c.Telemetry})
}

// Server returns the part of the configuration the HTTP server takes.
func (c *Ingest) Server() ingest.Config {
	return ingest.Config{Topics: c.Kafka.Topics, HTTP: c.HTTP, Ingest: c.Ingest}
}

// Attribution is the configuration of services/attribution.
type Attribution struct {
	Kafka     Kafka            `mapstructure:"kafka"`
	Telemetry telemetry.Config `mapstructure:"telemetry"`
	Group     string           `mapstructure:"group" desc:"Consumer group prefix (one group per stage: <group>.clickid, .device, .ipua, .events); also names the internal topics <group>.by-device-repartition, ... and changelogs <group>.<stage>-changelog."`
	StateDir  string           `mapstructure:"state_dir" desc:"Directory of the embedded per-partition state stores (<state_dir>/<stage>/<partition>); may be wiped: state is restored from the changelogs."`
	// Rules are the global attribution windows; Apps override them per app.
	Rules attribution.Rules            `mapstructure:"rules"`
	Apps  map[string]attribution.Rules `mapstructure:"apps" desc:"Per-app rules, keyed by app id; each entry replaces every rules.* key (give them all). YAML only."`
	Rates Rates                        `mapstructure:"rates"`
	Join  join.Settings                `mapstructure:"join"`
}

// Rates is the static exchange-rate table events' revenue is converted with.
type Rates struct {
	Reporting string            `mapstructure:"reporting_currency" desc:"ISO-4217 currency every event's revenue_reporting is expressed in."`
	PerUnit   map[string]string `mapstructure:"per_unit" desc:"Units of the reporting currency one unit of each currency is worth, e.g. {EUR: \"1.08\"}. Static: edit and restart to change. An event in a currency not listed goes to the rejected topic. YAML only."`
}

// DefaultAttribution returns attribution's defaults.
func DefaultAttribution() Attribution {
	return Attribution{
		Kafka:     DefaultKafka("postback-attribution"),
		Telemetry: telemetry.Config{Addr: "127.0.0.1:9101", LogLevel: "info", LogFormat: "json"},
		Group:     "postback-attribution",
		StateDir:  "/var/lib/postback/attribution",
		Rules:     attribution.DefaultRules(),
		Apps:      map[string]attribution.Rules{},
		Rates:     Rates{Reporting: "USD", PerUnit: map[string]string{}},
		Join:      join.DefaultSettings(),
	}
}

// RuleSet returns the validated global and per-app rules.
func (c *Attribution) RuleSet() attribution.RuleSet {
	return attribution.RuleSet{Default: c.Rules, Apps: c.Apps}
}

// ParsedRates returns the validated rate table.
func (c *Attribution) ParsedRates() (attribution.Rates, error) {
	r, err := attribution.ParseRates(c.Rates.Reporting, c.Rates.PerUnit)
	if err != nil {
		return r, config.Errorf("rates", "%v", err)
	}
	return r, nil
}

// Validate checks every section.
func (c *Attribution) Validate() error {
	if c.Group == "" {
		return config.Errorf("group", "must not be empty")
	}
	if c.StateDir == "" {
		return config.Errorf("state_dir", "must not be empty")
	}
	if err := c.Rules.Validate(); err != nil {
		return config.Errorf("rules", "%v", err)
	}
	for app, r := range c.Apps {
		if err := r.Validate(); err != nil {
			return config.Errorf("apps."+app, "%v (an app entry replaces every rules key)", err)
		}
	}
	if _, err := c.ParsedRates(); err != nil {
		return err
	}
	if err := c.Join.Validate(); err != nil {
		return err
	}
	return validateAll(&c.Kafka, telemetrySection{&c.Telemetry})
}

// Sink is the configuration of services/sink.
type Sink struct {
	Kafka      Kafka            `mapstructure:"kafka"`
	ClickHouse chconn.Config    `mapstructure:"clickhouse"`
	Telemetry  telemetry.Config `mapstructure:"telemetry"`
	Group      string           `mapstructure:"group" desc:"Consumer group of the sink."`
	// SessionTimeout bounds how long a dead member holds its partitions.
	SessionTimeout time.Duration `mapstructure:"session_timeout" desc:"Consumer-group session timeout: how long the partitions of a crashed instance wait before moving to another (6s..5m)."`
	Sink           sink.Settings `mapstructure:"sink"`
}

// DefaultSink returns the sink's defaults.
func DefaultSink() Sink {
	return Sink{
		Kafka:          DefaultKafka("postback-sink"),
		ClickHouse:     chconn.Defaults(),
		Telemetry:      telemetry.Config{Addr: "127.0.0.1:9102", LogLevel: "info", LogFormat: "json"},
		Group:          "postback-sink",
		SessionTimeout: 15 * time.Second,
		Sink:           sink.DefaultSettings(),
	}
}

// Loader returns the part of the configuration the sink's loader takes.
func (c *Sink) Loader(conn *kafkaconn.Conn) sink.Config {
	return sink.Config{Kafka: conn, Topics: c.Kafka.Topics, ClickHouse: c.ClickHouse, Group: c.Group, SessionTimeout: c.SessionTimeout, Sink: c.Sink}
}

// Validate checks every section.
func (c *Sink) Validate() error {
	if err := validateAll(&c.Kafka, telemetrySection{&c.Telemetry}); err != nil {
		return err
	}
	if err := config.Within("clickhouse", c.ClickHouse.Validate()); err != nil {
		return err
	}
	l := c.Loader(nil)
	return l.Validate()
}

// Admin is the configuration of postbackctl, the operator's command that
// creates topics, applies ClickHouse migrations and publishes campaigns
// and publisher endpoints.
type Admin struct {
	Kafka      Kafka            `mapstructure:"kafka"`
	ClickHouse chconn.Config    `mapstructure:"clickhouse"`
	Telemetry  telemetry.Config `mapstructure:"telemetry"`
	// Egress checks endpoint URLs at apply time; give it the forwarder's.
	Egress forward.Egress `mapstructure:"egress"`
}

// DefaultAdmin returns postbackctl's defaults.
func DefaultAdmin() Admin {
	return Admin{
		Kafka:      DefaultKafka("postbackctl"),
		ClickHouse: chconn.Defaults(),
		Telemetry:  telemetry.Config{LogLevel: "info", LogFormat: "text"},
	}
}

// Validate checks every section.
func (a *Admin) Validate() error {
	if err := validateAll(&a.Kafka, telemetrySection{&a.Telemetry}); err != nil {
		return err
	}
	if err := config.Within("egress", a.Egress.Validate()); err != nil {
		return err
	}
	return config.Within("clickhouse", a.ClickHouse.Validate())
}

// Forwarder is the configuration of services/forwarder.
type Forwarder struct {
	Kafka          Kafka              `mapstructure:"kafka"`
	Telemetry      telemetry.Config   `mapstructure:"telemetry"`
	Group          string             `mapstructure:"group" desc:"Consumer group of the forwarder (installs and events attributed)."`
	SessionTimeout time.Duration      `mapstructure:"session_timeout" desc:"Consumer-group session timeout: how long the partitions of a crashed instance wait before moving to another (6s..5m)."`
	Forwarder      forwarder.Settings `mapstructure:"forwarder"`
	Retry          forward.Retry      `mapstructure:"retry"`
	Egress         forward.Egress     `mapstructure:"egress"`
}

// DefaultForwarder returns the forwarder's defaults.
func DefaultForwarder() Forwarder {
	return Forwarder{
		Kafka:          DefaultKafka("postback-forwarder"),
		Telemetry:      telemetry.Config{Addr: "127.0.0.1:9103", LogLevel: "info", LogFormat: "json"},
		Group:          "postback-forwarder",
		SessionTimeout: 15 * time.Second,
		Forwarder:      forwarder.DefaultSettings(),
		Retry:          forward.DefaultRetry(),
	}
}

// Engine returns the part of the configuration the forwarder engine takes.
func (c *Forwarder) Engine(conn *kafkaconn.Conn, endpoints *forward.Registry) forwarder.Config {
	return forwarder.Config{Kafka: conn, Topics: c.Kafka.Topics, Group: c.Group, SessionTimeout: c.SessionTimeout,
		Settings: c.Forwarder, Retry: c.Retry, Egress: &c.Egress, Endpoints: endpoints}
}

// Validate checks every section.
func (c *Forwarder) Validate() error {
	if err := validateAll(&c.Kafka, telemetrySection{&c.Telemetry}); err != nil {
		return err
	}
	e := c.Engine(nil, nil)
	return e.Validate()
}
