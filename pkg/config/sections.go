package config

import (
	"log/slog"
	"net"
	"strings"
	"time"
)

// Kafka configures the brokers every service talks to and the topic names.
type Kafka struct {
	Brokers  []string `mapstructure:"brokers" desc:"Kafka bootstrap brokers, host:port, comma-separated in env and flags."`
	ClientID string   `mapstructure:"client_id" desc:"Kafka client id, shown in broker logs and quotas."`
	Topics   Topics   `mapstructure:"topics"`
}

// Topics names the pipeline's topics and how bootstrap creates them.
type Topics struct {
	Clicks             string        `mapstructure:"clicks" desc:"Topic of clicks, keyed by click_id."`
	Impressions        string        `mapstructure:"impressions" desc:"Topic of impressions, keyed by impression_id."`
	InstallsRaw        string        `mapstructure:"installs_raw" desc:"Topic of parsed install postbacks, keyed by join key."`
	EventsRaw          string        `mapstructure:"events_raw" desc:"Topic of parsed in-app event postbacks, keyed by join key."`
	InstallsAttributed string        `mapstructure:"installs_attributed" desc:"Topic of attributed installs, keyed by event_id."`
	EventsAttributed   string        `mapstructure:"events_attributed" desc:"Topic of attributed in-app events, keyed by event_id."`
	Campaigns          string        `mapstructure:"campaigns" desc:"Compacted topic of campaigns, keyed by campaign_id."`
	Rejected           string        `mapstructure:"rejected" desc:"Topic of authenticated postbacks that were rejected, keyed by source."`
	Partitions         int           `mapstructure:"partitions" desc:"Partitions of every topic created by bootstrap (joined topics must share a count)."`
	ReplicationFactor  int           `mapstructure:"replication_factor" desc:"Replication factor of topics created by bootstrap."`
	MinInsyncReplicas  int           `mapstructure:"min_insync_replicas" desc:"min.insync.replicas of topics created by bootstrap: an acks=all write fails unless this many replicas have it. 0: 2 with a replication factor of 3 or more, else 1."`
	Retention          time.Duration `mapstructure:"retention" desc:"retention.ms of the non-compacted topics created by bootstrap; long enough to re-attribute from Kafka."`
}

// DefaultKafka returns the defaults of the kafka section.
func DefaultKafka(clientID string) Kafka {
	return Kafka{
		Brokers:  []string{"127.0.0.1:9092"},
		ClientID: clientID,
		Topics: Topics{
			Clicks:             "clicks.v1",
			Impressions:        "impressions.v1",
			InstallsRaw:        "installs.raw.v1",
			EventsRaw:          "events.raw.v1",
			InstallsAttributed: "installs.attributed.v1",
			EventsAttributed:   "events.attributed.v1",
			Campaigns:          "campaigns.v1",
			Rejected:           "postbacks.rejected.v1",
			Partitions:         6,
			ReplicationFactor:  1,
			Retention:          14 * 24 * time.Hour,
		},
	}
}

// Validate checks the kafka section.
func (k *Kafka) Validate() error {
	if len(k.Brokers) == 0 {
		return Errorf("kafka.brokers", "must list at least one broker")
	}
	for _, b := range k.Brokers {
		if _, _, err := net.SplitHostPort(strings.TrimSpace(b)); err != nil {
			return Errorf("kafka.brokers", "%q is not host:port: %v", b, err)
		}
	}
	if k.ClientID == "" {
		return Errorf("kafka.client_id", "must not be empty")
	}
	t := k.Topics
	for key, name := range map[string]string{
		"clicks": t.Clicks, "impressions": t.Impressions, "installs_raw": t.InstallsRaw, "events_raw": t.EventsRaw,
		"installs_attributed": t.InstallsAttributed, "events_attributed": t.EventsAttributed,
		"campaigns": t.Campaigns, "rejected": t.Rejected,
	} {
		if name == "" {
			return Errorf("kafka.topics."+key, "must not be empty")
		}
	}
	if t.Partitions < 1 {
		return Errorf("kafka.topics.partitions", "must be at least 1, got %d", t.Partitions)
	}
	if t.ReplicationFactor < 1 {
		return Errorf("kafka.topics.replication_factor", "must be at least 1, got %d", t.ReplicationFactor)
	}
	if t.MinInsyncReplicas < 0 || t.MinInsyncReplicas > t.ReplicationFactor {
		return Errorf("kafka.topics.min_insync_replicas", "must be 0 (derived) or 1..replication_factor (%d), got %d", t.ReplicationFactor, t.MinInsyncReplicas)
	}
	if t.Retention < time.Hour {
		return Errorf("kafka.topics.retention", "must be at least 1h, got %s", t.Retention)
	}
	return nil
}

// ClickHouse configures the native-protocol connection to ClickHouse.
type ClickHouse struct {
	Addr        []string      `mapstructure:"addr" desc:"ClickHouse native-protocol addresses, host:port (port 9000)."`
	Database    string        `mapstructure:"database" desc:"Database holding the pipeline's tables; created by migrate."`
	Username    string        `mapstructure:"username" desc:"ClickHouse user."`
	Password    string        `mapstructure:"password" desc:"ClickHouse password; prefer the env var over a file."`
	DialTimeout time.Duration `mapstructure:"dial_timeout" desc:"Timeout of one connection attempt."`
	ReadTimeout time.Duration `mapstructure:"read_timeout" desc:"Longest wait for the server's answer to one query or insert."`
	Cluster     string        `mapstructure:"cluster" desc:"Cluster name from the servers' remote_servers: migrations create Replicated local tables and Distributed tables ON CLUSTER, and the sink inserts through them (docs/sink.md). Empty: one server."`
}

// DefaultClickHouse returns the defaults of the clickhouse section.
func DefaultClickHouse() ClickHouse {
	return ClickHouse{
		Addr:        []string{"127.0.0.1:9000"},
		Database:    "postback",
		Username:    "default",
		DialTimeout: 5 * time.Second,
		ReadTimeout: 60 * time.Second,
	}
}

// Validate checks the clickhouse section.
func (c *ClickHouse) Validate() error {
	if len(c.Addr) == 0 {
		return Errorf("clickhouse.addr", "must list at least one address")
	}
	for _, a := range c.Addr {
		if _, _, err := net.SplitHostPort(strings.TrimSpace(a)); err != nil {
			return Errorf("clickhouse.addr", "%q is not host:port: %v", a, err)
		}
	}
	if !identifier(c.Database) {
		return Errorf("clickhouse.database", "%q is not a plain identifier ([A-Za-z_][A-Za-z0-9_]*)", c.Database)
	}
	if c.Cluster != "" && !identifier(c.Cluster) {
		// It is spliced into DDL (ON CLUSTER, Distributed(...)) unquoted.
		return Errorf("clickhouse.cluster", "%q is not a plain identifier ([A-Za-z_][A-Za-z0-9_]*)", c.Cluster)
	}
	if err := positive("clickhouse.dial_timeout", c.DialTimeout); err != nil {
		return err
	}
	if err := positive("clickhouse.read_timeout", c.ReadTimeout); err != nil {
		return err
	}
	return nil
}

func identifier(s string) bool {
	if s == "" {
		return false
	}
	for i, r := range s {
		ok := r == '_' || (r >= 'a' && r <= 'z') || (r >= 'A' && r <= 'Z') || (i > 0 && r >= '0' && r <= '9')
		if !ok {
			return false
		}
	}
	return true
}

// Telemetry configures logs and the /metrics, /healthz and /readyz listener.
type Telemetry struct {
	Addr      string `mapstructure:"addr" desc:"Listen address of /metrics, /healthz and /readyz (empty: off; ingest serves them on its own port too)."`
	LogLevel  string `mapstructure:"log_level" desc:"Minimum log level: debug, info, warn or error."`
	LogFormat string `mapstructure:"log_format" desc:"Log format: json or text."`
}

// Validate checks the telemetry section.
func (t *Telemetry) Validate() error {
	if t.Addr != "" {
		if _, _, err := net.SplitHostPort(t.Addr); err != nil {
			return Errorf("telemetry.addr", "%q is not host:port: %v", t.Addr, err)
		}
	}
	var l slog.Level
	if err := l.UnmarshalText([]byte(t.LogLevel)); err != nil {
		return Errorf("telemetry.log_level", "%q is not one of debug, info, warn, error", t.LogLevel)
	}
	if t.LogFormat != "json" && t.LogFormat != "text" {
		return Errorf("telemetry.log_format", "%q is not json or text", t.LogFormat)
	}
	return nil
}

// Level returns the configured slog level (Validate has checked it).
func (t *Telemetry) Level() slog.Level {
	var l slog.Level
	_ = l.UnmarshalText([]byte(t.LogLevel))
	return l
}

func validateAll(vs ...Validator) error {
	for _, v := range vs {
		if err := v.Validate(); err != nil {
			return err
		}
	}
	return nil
}

func positive(key string, d time.Duration) error {
	if d <= 0 {
		return Errorf(key, "must be positive, got %s", d)
	}
	return nil
}
