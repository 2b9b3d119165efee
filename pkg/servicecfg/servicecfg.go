// Package servicecfg composes each service's configuration from the
// sections that the packages it runs declare (kafkaconn, topics, chconn,
// telemetry, ingest, join, sink), with the service's defaults, and
// generates docs/configuration.md and config.example.yaml from them.
// Only the commands under services/ import it: the libraries take their
// own section, never a whole service's configuration.
//
//	cfg := servicecfg.DefaultSink()
//	if err := config.Load(&cfg, "sink", os.Args[1:], os.Stderr); err != nil { ... }
//	conn, err := kafkaconn.New(cfg.Kafka.Config, ...)
//	l, err := sink.New(cfg.Loader(conn), ...)
package servicecfg

import (
	"github.com/adtrack/postback/pkg/config"
	"github.com/adtrack/postback/pkg/kafkaconn"
	"github.com/adtrack/postback/pkg/telemetry"
	"github.com/adtrack/postback/pkg/topics"
)

// Kafka is the kafka section of every service: the connection and the
// topic names.
type Kafka struct {
	kafkaconn.Config `mapstructure:",squash"`
	Topics           topics.Config `mapstructure:"topics"`
}

// DefaultKafka returns the kafka section's defaults for a client id.
func DefaultKafka(clientID string) Kafka {
	return Kafka{Config: kafkaconn.Defaults(clientID), Topics: topics.Defaults()}
}

// Validate checks the section.
func (k *Kafka) Validate() error {
	if err := config.Within("kafka", k.Config.Validate()); err != nil {
		return err
	}
	return config.Within("kafka.topics", k.Topics.Validate())
}

// Services returns every service's default config, in documentation order.
func Services() []config.Service {
	ingest, attribution, sink, admin := DefaultIngest(), DefaultAttribution(), DefaultSink(), DefaultAdmin()
	fwd := DefaultForwarder()
	return []config.Service{
		{Name: "ingest", Summary: "HTTP front door: postbacks, clicks, impressions -> Kafka", Config: &ingest},
		{Name: "attribution", Summary: "joins installs and events to their touches", Config: &attribution},
		{Name: "sink", Summary: "loads topics into ClickHouse", Config: &sink},
		{Name: "forwarder", Summary: "sends signed callbacks to the publishers and partners that won installs and events", Config: &fwd},
		{Name: "postbackctl", Summary: "operator command: topics, migrations, campaigns, endpoints", Config: &admin},
	}
}

func validateAll(vs ...config.Validator) error {
	for _, v := range vs {
		if err := v.Validate(); err != nil {
			return err
		}
	}
	return nil
}

// telemetrySection validates a telemetry section under its key.
type telemetrySection struct{ c *telemetry.Config }

func (t telemetrySection) Validate() error { return config.Within("telemetry", t.c.Validate()) }
