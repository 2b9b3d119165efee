package sink

import (
	"time"

	"github.com/adtrack/postback/pkg/chconn"
	"github.com/adtrack/postback/pkg/config"
	"github.com/adtrack/postback/pkg/kafkaconn"
	"github.com/adtrack/postback/pkg/topics"
)

// Config is what a Loader needs: the Kafka connection, the topic names,
// its consumer group, the sink section, and the ClickHouse section (in
// cluster mode the loader reads progress from every replica it lists).
type Config struct {
	Kafka          *kafkaconn.Conn
	Topics         topics.Config
	ClickHouse     chconn.Config
	Group          string
	SessionTimeout time.Duration
	Sink           Settings
}

// Settings are the sink's batching and retry keys (the sink section of
// its configuration).
type Settings struct {
	BatchRows     int           `mapstructure:"batch_rows" desc:"Flush when this many rows are buffered (all tables together)."`
	BatchBytes    int           `mapstructure:"batch_bytes" desc:"Flush when this many bytes of record values are buffered; bounds memory."`
	FlushInterval time.Duration `mapstructure:"flush_interval" desc:"Flush at least this often while rows are buffered: the freshness bound."`
	InsertTimeout time.Duration `mapstructure:"insert_timeout" desc:"Longest one INSERT attempt may take before it is retried."`
	RetryMin      time.Duration `mapstructure:"retry_min" desc:"First backoff after a failed INSERT; doubles up to retry_max. Consumption pauses meanwhile."`
	RetryMax      time.Duration `mapstructure:"retry_max" desc:"Cap of the INSERT retry backoff. ClickHouse is pinged every second meanwhile: once it answers again after an outage, the insert is retried at once."`
	CommitOffsets bool          `mapstructure:"commit_offsets" desc:"Commit Kafka offsets after each insert (for lag monitoring; correctness never depends on it)."`
	Topics        []string      `mapstructure:"topics" desc:"Topics to load (names from kafka.topics); empty loads all seven: clicks, impressions, installs_attributed, events_attributed, rejected, skan, deliveries."`
}

// DefaultSettings returns the sink section's defaults.
func DefaultSettings() Settings {
	return Settings{
		BatchRows:     50_000,
		BatchBytes:    32 << 20,
		FlushInterval: time.Second,
		InsertTimeout: 30 * time.Second,
		RetryMin:      200 * time.Millisecond,
		RetryMax:      30 * time.Second,
		CommitOffsets: true,
	}
}

// Validate checks the settings; keys are named from the service's root.
func (s *Settings) Validate() error {
	if s.BatchRows < 1 {
		return config.Errorf("sink.batch_rows", "must be at least 1")
	}
	if s.BatchBytes < 1024 {
		return config.Errorf("sink.batch_bytes", "must be at least 1024")
	}
	for key, d := range map[string]time.Duration{"sink.flush_interval": s.FlushInterval, "sink.insert_timeout": s.InsertTimeout,
		"sink.retry_min": s.RetryMin, "sink.retry_max": s.RetryMax} {
		if err := config.Positive(key, d); err != nil {
			return err
		}
	}
	if s.RetryMax < s.RetryMin {
		return config.Errorf("sink.retry_max", "must not be below sink.retry_min")
	}
	return nil
}

// Validate checks the settings (not the connection, which New requires).
func (c *Config) Validate() error {
	if c.Group == "" {
		return config.Errorf("group", "must not be empty")
	}
	if c.SessionTimeout < 6*time.Second || c.SessionTimeout > 5*time.Minute {
		return config.Errorf("session_timeout", "must be between 6s and 5m (the broker's group.min/max.session.timeout.ms), got %s", c.SessionTimeout)
	}
	if err := config.Within("kafka.topics", c.Topics.Validate()); err != nil {
		return err
	}
	return c.Sink.Validate()
}
