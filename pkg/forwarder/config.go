package forwarder

import (
	"time"

	"github.com/adtrack/postback/pkg/config"
	"github.com/adtrack/postback/pkg/forward"
	"github.com/adtrack/postback/pkg/kafkaconn"
	"github.com/adtrack/postback/pkg/topics"
)

// Settings are the forwarder's delivery keys (the forwarder section).
type Settings struct {
	AttemptTimeout   time.Duration `mapstructure:"attempt_timeout" desc:"Longest one callback attempt may take (connect, TLS, response); then it counts as a timeout and is retried."`
	HostConcurrency  int           `mapstructure:"host_concurrency" desc:"Callbacks in flight at most per destination host (host:port)."`
	HostRate         int           `mapstructure:"host_rate" desc:"Callback attempts per second at most per destination host; 0: unlimited."`
	HostQueue        int           `mapstructure:"host_queue" desc:"Deliveries waiting at most per host. When full, the consumer waits up to 100ms for room for a round of the host's workers (host_concurrency deliveries, at most half the queue); a host that does not free that much within 100ms is slow, and its new deliveries go to the retry queue (due after retry.initial) until its queue is half empty, so it never holds up the consumer or other hosts."`
	MaxBacklog       int           `mapstructure:"max_backlog" desc:"Deliveries in the retry queue at most per instance; a delivery that would go beyond is dropped (outcome dropped, logged). Bounds memory: each holds its rendered request."`
	MaxResponseBytes int           `mapstructure:"max_response_bytes" desc:"Bytes of a response body read at most; the first 256 go to the delivery log."`
	MaxRedirects     int           `mapstructure:"max_redirects" desc:"Redirects followed at most per attempt, each target checked like the first (egress)."`
	CommitInterval   time.Duration `mapstructure:"commit_interval" desc:"How often settled input offsets are committed; a restart re-reads at most this much, skipping what the delivery state holds."`
	StartAt          string        `mapstructure:"start_at" desc:"Where a new consumer group starts: latest (only conversions attributed from now on get callbacks; deploying the forwarder does not call back the topics' history) or earliest. A group with committed offsets resumes from them either way."`
	KeysDir          string        `mapstructure:"keys_dir" desc:"Directory of the HMAC signing keys: one file per key id (the endpoints' signing_key_id), holding the shared secret (at least 16 bytes). Re-read every 30 s: add a file to rotate."`
}

// DefaultSettings returns the forwarder section's defaults.
func DefaultSettings() Settings {
	return Settings{
		AttemptTimeout: 10 * time.Second, HostConcurrency: 16, HostRate: 0, HostQueue: 1000, MaxBacklog: 100_000,
		MaxResponseBytes: 4096, MaxRedirects: 3, CommitInterval: 500 * time.Millisecond, StartAt: "latest", KeysDir: "/etc/postback/signing-keys",
	}
}

// Validate checks the settings; keys are relative to forwarder.
func (s *Settings) Validate() error {
	for key, d := range map[string]time.Duration{"attempt_timeout": s.AttemptTimeout, "commit_interval": s.CommitInterval} {
		if err := config.Positive(key, d); err != nil {
			return err
		}
	}
	for key, v := range map[string]int{"host_concurrency": s.HostConcurrency, "host_queue": s.HostQueue,
		"max_backlog": s.MaxBacklog, "max_response_bytes": s.MaxResponseBytes} {
		if v < 1 {
			return config.Errorf(key, "must be at least 1, got %d", v)
		}
	}
	if s.HostRate < 0 {
		return config.Errorf("host_rate", "must not be negative")
	}
	if s.MaxRedirects < 0 {
		return config.Errorf("max_redirects", "must not be negative")
	}
	if s.StartAt != "latest" && s.StartAt != "earliest" {
		return config.Errorf("start_at", "%q is not latest or earliest", s.StartAt)
	}
	if s.KeysDir == "" {
		return config.Errorf("keys_dir", "must not be empty")
	}
	return nil
}

// Config is what a Forwarder needs.
type Config struct {
	Kafka          *kafkaconn.Conn
	Topics         topics.Config
	Group          string
	SessionTimeout time.Duration
	Settings       Settings
	Retry          forward.Retry
	Egress         *forward.Egress
	// Endpoints is kept current by a follower of the endpoints topic.
	Endpoints *forward.Registry
}

// Validate checks the configuration (not the connection).
func (c *Config) Validate() error {
	if c.Group == "" {
		return config.Errorf("group", "must not be empty")
	}
	if c.SessionTimeout < 6*time.Second || c.SessionTimeout > 5*time.Minute {
		return config.Errorf("session_timeout", "must be between 6s and 5m, got %s", c.SessionTimeout)
	}
	if err := config.Within("forwarder", c.Settings.Validate()); err != nil {
		return err
	}
	if err := config.Within("retry", c.Retry.Validate()); err != nil {
		return err
	}
	if c.Egress == nil {
		c.Egress = &forward.Egress{}
	}
	return config.Within("egress", c.Egress.Validate())
}
