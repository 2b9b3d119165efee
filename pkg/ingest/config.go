package ingest

import (
	"net/netip"
	"time"

	"github.com/adtrack/postback/pkg/config"
	"github.com/adtrack/postback/pkg/topics"
)

// Config is what the server needs of ingest's configuration: the topics it
// writes, its HTTP listener and its own section.
type Config struct {
	Topics topics.Config
	HTTP   HTTP
	Ingest Settings
}

// HTTP configures ingest's public listener.
type HTTP struct {
	Addr              string        `mapstructure:"addr" desc:"Listen address of the public HTTP server (postbacks, clicks, impressions, health, metrics)."`
	ReadHeaderTimeout time.Duration `mapstructure:"read_header_timeout" desc:"Time allowed to read request headers."`
	ReadTimeout       time.Duration `mapstructure:"read_timeout" desc:"Time allowed to read a whole request, body included."`
	WriteTimeout      time.Duration `mapstructure:"write_timeout" desc:"Time allowed to write a response; bounds a produce wait as well."`
	IdleTimeout       time.Duration `mapstructure:"idle_timeout" desc:"Keep-alive idle timeout."`
	ShutdownTimeout   time.Duration `mapstructure:"shutdown_timeout" desc:"On SIGTERM, how long in-flight requests may take to drain before exit."`
	MaxBodyBytes      int64         `mapstructure:"max_body_bytes" desc:"Largest accepted request body; larger gets 413."`
	MaxURLBytes       int           `mapstructure:"max_url_bytes" desc:"Longest accepted request URI; longer gets 414."`
	TrustedProxies    []string      `mapstructure:"trusted_proxies" desc:"CIDRs of load balancers whose X-Forwarded-For is believed for the client IP (allow-lists, click IP)."`
}

// Validate checks the http section.
func (h *HTTP) Validate() error {
	if h.Addr == "" {
		return config.Errorf("http.addr", "must not be empty")
	}
	for key, d := range map[string]time.Duration{
		"http.read_header_timeout": h.ReadHeaderTimeout, "http.read_timeout": h.ReadTimeout,
		"http.write_timeout": h.WriteTimeout, "http.idle_timeout": h.IdleTimeout, "http.shutdown_timeout": h.ShutdownTimeout,
	} {
		if err := config.Positive(key, d); err != nil {
			return err
		}
	}
	if h.MaxBodyBytes < 1024 {
		return config.Errorf("http.max_body_bytes", "must be at least 1024, got %d", h.MaxBodyBytes)
	}
	if h.MaxURLBytes < 256 {
		return config.Errorf("http.max_url_bytes", "must be at least 256, got %d", h.MaxURLBytes)
	}
	for _, c := range h.TrustedProxies {
		if _, err := netip.ParsePrefix(c); err != nil {
			return config.Errorf("http.trusted_proxies", "%q is not a CIDR: %v", c, err)
		}
	}
	return nil
}

// Source authenticates and limits one MMP's postbacks (ingest.sources.<mmp>).
type Source struct {
	// Tokens are accepted for every app of the source; several allow rotation.
	Tokens []string `mapstructure:"tokens"`
	// TokensFile names a file of tokens, one per line (a mounted secret);
	// it excludes Tokens.
	TokensFile string `mapstructure:"tokens_file"`
	// AppTokens are accepted only for postbacks of the app they are listed under.
	AppTokens map[string][]string `mapstructure:"app_tokens"`
	// AllowCIDRs, when set, are the only client networks accepted (403 otherwise).
	AllowCIDRs []string `mapstructure:"allow_cidrs"`
	// RateLimit is the sustained postbacks per second accepted (0: unlimited),
	// Burst the bucket size; beyond it the answer is 429 with Retry-After.
	RateLimit float64 `mapstructure:"rate_limit"`
	Burst     int     `mapstructure:"burst"`
}

// Produce tunes how ingest writes to Kafka.
type Produce struct {
	Timeout            time.Duration `mapstructure:"timeout" desc:"Longest wait for Kafka's acknowledgement before answering 503 (keep under the MMPs' timeouts: Branch waits 2s)."`
	Linger             time.Duration `mapstructure:"linger" desc:"How long a partition's batch may wait for more records; trades latency for throughput."`
	MaxBufferedRecords int           `mapstructure:"max_buffered_records" desc:"Records buffered awaiting Kafka; when full, requests get 503 at once instead of queueing."`
	RetryAfter         time.Duration `mapstructure:"retry_after" desc:"Retry-After sent with 503 and 429 answers."`
}

// Validate checks the produce section.
func (p *Produce) Validate() error {
	if err := config.Positive("ingest.produce.timeout", p.Timeout); err != nil {
		return err
	}
	if p.Linger < 0 {
		return config.Errorf("ingest.produce.linger", "must not be negative")
	}
	if p.MaxBufferedRecords < 1 {
		return config.Errorf("ingest.produce.max_buffered_records", "must be at least 1")
	}
	if p.RetryAfter < time.Second {
		return config.Errorf("ingest.produce.retry_after", "must be at least 1s")
	}
	return nil
}

// Settings are ingest's own keys (the ingest section).
type Settings struct {
	Sources        map[string]Source `mapstructure:"sources" desc:"Per-MMP auth and limits, keyed by MMP (appsflyer, adjust, branch, singular, kochava, tenjin, generic): tokens (or tokens_file, one token per line), app_tokens, allow_cidrs, rate_limit, burst. YAML only. An MMP with no entry is refused (401)."`
	Produce        Produce           `mapstructure:"produce"`
	TouchRateLimit float64           `mapstructure:"touch_rate_limit" desc:"Clicks plus impressions accepted per second (0: unlimited)."`
	TouchBurst     int               `mapstructure:"touch_burst" desc:"Burst size of touch_rate_limit."`
	SKAN           SKAN              `mapstructure:"skan"`
}

// Validate checks the ingest section.
func (s *Settings) Validate() error {
	for name, src := range s.Sources {
		key := "ingest.sources." + name
		if len(src.Tokens) == 0 && len(src.AppTokens) == 0 {
			return config.Errorf(key+".tokens", "a source needs at least one token (tokens or app_tokens)")
		}
		for _, tok := range src.Tokens {
			if len(tok) < 16 {
				return config.Errorf(key+".tokens", "tokens must be at least 16 characters")
			}
		}
		for app, toks := range src.AppTokens {
			for _, tok := range toks {
				if len(tok) < 16 {
					return config.Errorf(key+".app_tokens."+app, "tokens must be at least 16 characters")
				}
			}
		}
		for _, c := range src.AllowCIDRs {
			if _, err := netip.ParsePrefix(c); err != nil {
				return config.Errorf(key+".allow_cidrs", "%q is not a CIDR: %v", c, err)
			}
		}
		if src.RateLimit < 0 || (src.RateLimit > 0 && src.Burst < 1) {
			return config.Errorf(key+".rate_limit", "must be >= 0, with burst >= 1 when set")
		}
	}
	if s.TouchRateLimit < 0 || (s.TouchRateLimit > 0 && s.TouchBurst < 1) {
		return config.Errorf("ingest.touch_rate_limit", "must be >= 0, with touch_burst >= 1 when set")
	}
	if err := s.SKAN.Validate(); err != nil {
		return err
	}
	return s.Produce.Validate()
}

// DefaultHTTP returns the http section's defaults.
func DefaultHTTP() HTTP {
	return HTTP{
		Addr:              "127.0.0.1:8080",
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      15 * time.Second,
		IdleTimeout:       120 * time.Second,
		ShutdownTimeout:   25 * time.Second,
		MaxBodyBytes:      64 << 10,
		MaxURLBytes:       8 << 10,
	}
}

// DefaultSettings returns the ingest section's defaults: no source is
// accepted until configured.
func DefaultSettings() Settings {
	return Settings{
		Sources: map[string]Source{},
		SKAN:    DefaultSKAN(),
		Produce: Produce{
			Timeout:            1500 * time.Millisecond,
			Linger:             2 * time.Millisecond,
			MaxBufferedRecords: 100_000,
			RetryAfter:         5 * time.Second,
		},
	}
}

// DefaultConfig returns the defaults of every part of Config.
func DefaultConfig() Config {
	return Config{Topics: topics.Defaults(), HTTP: DefaultHTTP(), Ingest: DefaultSettings()}
}

// Validate checks every part.
func (c *Config) Validate() error {
	if err := config.Within("kafka.topics", c.Topics.Validate()); err != nil {
		return err
	}
	if err := c.HTTP.Validate(); err != nil {
		return err
	}
	return c.Ingest.Validate()
}
