package config

import (
	"github.com/adtrack/postback/pkg/attribution"
	"net/netip"
	"time"
)

// Admin is the configuration of postbackctl, the operator's command that
// creates topics, applies ClickHouse migrations and publishes campaigns.
type Admin struct {
	Kafka      Kafka      `mapstructure:"kafka"`
	ClickHouse ClickHouse `mapstructure:"clickhouse"`
	Telemetry  Telemetry  `mapstructure:"telemetry"`
}

// DefaultAdmin returns postbackctl's defaults.
func DefaultAdmin() Admin {
	return Admin{
		Kafka:      DefaultKafka("postbackctl"),
		ClickHouse: DefaultClickHouse(),
		Telemetry:  Telemetry{LogLevel: "info", LogFormat: "text"},
	}
}

// Validate checks every section.
func (a *Admin) Validate() error { return validateAll(&a.Kafka, &a.ClickHouse, &a.Telemetry) }

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
		return Errorf("http.addr", "must not be empty")
	}
	for key, d := range map[string]time.Duration{
		"http.read_header_timeout": h.ReadHeaderTimeout, "http.read_timeout": h.ReadTimeout,
		"http.write_timeout": h.WriteTimeout, "http.idle_timeout": h.IdleTimeout, "http.shutdown_timeout": h.ShutdownTimeout,
	} {
		if err := positive(key, d); err != nil {
			return err
		}
	}
	if h.MaxBodyBytes < 1024 {
		return Errorf("http.max_body_bytes", "must be at least 1024, got %d", h.MaxBodyBytes)
	}
	if h.MaxURLBytes < 256 {
		return Errorf("http.max_url_bytes", "must be at least 256, got %d", h.MaxURLBytes)
	}
	for _, c := range h.TrustedProxies {
		if _, err := netip.ParsePrefix(c); err != nil {
			return Errorf("http.trusted_proxies", "%q is not a CIDR: %v", c, err)
		}
	}
	return nil
}

// Source authenticates and limits one MMP's postbacks (ingest.sources.<mmp>).
type Source struct {
	// Tokens are accepted for every app of the source; several allow rotation.
	Tokens []string `mapstructure:"tokens"`
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
	if err := positive("ingest.produce.timeout", p.Timeout); err != nil {
		return err
	}
	if p.Linger < 0 {
		return Errorf("ingest.produce.linger", "must not be negative")
	}
	if p.MaxBufferedRecords < 1 {
		return Errorf("ingest.produce.max_buffered_records", "must be at least 1")
	}
	if p.RetryAfter < time.Second {
		return Errorf("ingest.produce.retry_after", "must be at least 1s")
	}
	return nil
}

// IngestSettings are ingest's own keys (the ingest section).
type IngestSettings struct {
	Sources        map[string]Source `mapstructure:"sources" desc:"Per-MMP auth and limits, keyed by MMP (appsflyer, adjust, branch, singular, kochava, tenjin, generic): tokens, app_tokens, allow_cidrs, rate_limit, burst. YAML only. An MMP with no entry is refused (401)."`
	Produce        Produce           `mapstructure:"produce"`
	TouchRateLimit float64           `mapstructure:"touch_rate_limit" desc:"Clicks plus impressions accepted per second (0: unlimited)."`
	TouchBurst     int               `mapstructure:"touch_burst" desc:"Burst size of touch_rate_limit."`
}

// Validate checks the ingest section.
func (s *IngestSettings) Validate() error {
	for name, src := range s.Sources {
		key := "ingest.sources." + name
		if len(src.Tokens) == 0 && len(src.AppTokens) == 0 {
			return Errorf(key+".tokens", "a source needs at least one token (tokens or app_tokens)")
		}
		for _, tok := range src.Tokens {
			if len(tok) < 16 {
				return Errorf(key+".tokens", "tokens must be at least 16 characters")
			}
		}
		for app, toks := range src.AppTokens {
			for _, tok := range toks {
				if len(tok) < 16 {
					return Errorf(key+".app_tokens."+app, "tokens must be at least 16 characters")
				}
			}
		}
		for _, c := range src.AllowCIDRs {
			if _, err := netip.ParsePrefix(c); err != nil {
				return Errorf(key+".allow_cidrs", "%q is not a CIDR: %v", c, err)
			}
		}
		if src.RateLimit < 0 || (src.RateLimit > 0 && src.Burst < 1) {
			return Errorf(key+".rate_limit", "must be >= 0, with burst >= 1 when set")
		}
	}
	if s.TouchRateLimit < 0 || (s.TouchRateLimit > 0 && s.TouchBurst < 1) {
		return Errorf("ingest.touch_rate_limit", "must be >= 0, with touch_burst >= 1 when set")
	}
	return s.Produce.Validate()
}

// Ingest is the configuration of services/ingest.
type Ingest struct {
	Kafka     Kafka          `mapstructure:"kafka"`
	HTTP      HTTP           `mapstructure:"http"`
	Ingest    IngestSettings `mapstructure:"ingest"`
	Telemetry Telemetry      `mapstructure:"telemetry"`
}

// DefaultIngest returns ingest's defaults.
func DefaultIngest() Ingest {
	return Ingest{
		Kafka: DefaultKafka("postback-ingest"),
		HTTP: HTTP{
			Addr:              "127.0.0.1:8080",
			ReadHeaderTimeout: 5 * time.Second,
			ReadTimeout:       10 * time.Second,
			WriteTimeout:      15 * time.Second,
			IdleTimeout:       120 * time.Second,
			ShutdownTimeout:   25 * time.Second,
			MaxBodyBytes:      64 << 10,
			MaxURLBytes:       8 << 10,
		},
		Ingest: IngestSettings{
			Sources: map[string]Source{},
			Produce: Produce{
				Timeout:            1500 * time.Millisecond,
				Linger:             2 * time.Millisecond,
				MaxBufferedRecords: 100_000,
				RetryAfter:         5 * time.Second,
			},
		},
		Telemetry: Telemetry{LogLevel: "info", LogFormat: "json"},
	}
}

// Validate checks every section.
func (c *Ingest) Validate() error { return validateAll(&c.Kafka, &c.HTTP, &c.Ingest, &c.Telemetry) }

// Attribution is the configuration of services/attribution.
type Attribution struct {
	Kafka     Kafka     `mapstructure:"kafka"`
	Telemetry Telemetry `mapstructure:"telemetry"`
	Group     string    `mapstructure:"group" desc:"Consumer group prefix (one group per stage: <group>.clickid, .device, .ipua, .events); also names the internal topics <group>.by-device-repartition, ... and changelogs <group>.<stage>-changelog."`
	StateDir  string    `mapstructure:"state_dir" desc:"Directory of the embedded per-partition state stores (<state_dir>/<stage>/<partition>); may be wiped: state is restored from the changelogs."`
	// Rules are the global attribution windows; Apps override them per app.
	Rules attribution.Rules            `mapstructure:"rules"`
	Apps  map[string]attribution.Rules `mapstructure:"apps" desc:"Per-app rules, keyed by app id; each entry replaces every rules.* key (give them all). YAML only."`
	Rates Rates                        `mapstructure:"rates"`
	Join  JoinSettings                 `mapstructure:"join"`
}

// Rates is the static exchange-rate table events' revenue is converted with.
type Rates struct {
	Reporting string            `mapstructure:"reporting_currency" desc:"ISO-4217 currency every event's revenue_reporting is expressed in."`
	PerUnit   map[string]string `mapstructure:"per_unit" desc:"Units of the reporting currency one unit of each currency is worth, e.g. {EUR: \"1.08\"}. Static: edit and restart to change. An event in a currency not listed goes to the rejected topic. YAML only."`
}

// JoinSettings are the state and transaction keys of the attribution joins.
type JoinSettings struct {
	DedupWindow          time.Duration `mapstructure:"dedup_window" desc:"How long an event_id is remembered to drop MMP retries of installs and events."`
	LateAllowance        time.Duration `mapstructure:"late_allowance" desc:"Added to every window before touches expire from state: postbacks arrive this late after the install at most."`
	EventJoinWindow      time.Duration `mapstructure:"event_join_window" desc:"How long after its install an in-app event can still be joined to it."`
	EventGrace           time.Duration `mapstructure:"event_grace" desc:"How long an in-app event that arrived before its install waits for it (stream time) before it is published organic."`
	MaxCandidates        int           `mapstructure:"max_candidates" desc:"Latest device, IP+UA and impression touches carried per install (click flooding still counts all)."`
	ExpiryInterval       time.Duration `mapstructure:"expiry_interval" desc:"Stream time between two expiry runs over a partition's state."`
	AlignSlack           time.Duration `mapstructure:"align_slack" desc:"While a stage reads a backlog, how far (record time) one input partition may run ahead of the least advanced one; keeps installs behind the clicks that precede them after an outage."`
	TickInterval         time.Duration `mapstructure:"tick_interval" desc:"How often, while every stage has caught up with its inputs, stream time on every partition moves to the wall clock minus tick_lag, so grace deadlines and expiry come on partitions that receive nothing (quiet hours, low-traffic apps). 0 disables it: stream time then moves only with records."`
	TickLag              time.Duration `mapstructure:"tick_lag" desc:"How far behind the wall clock ticks put stream time: a postback accepted by ingest reaches Kafka within it."`
	InstanceID           string        `mapstructure:"instance_id" desc:"Names this instance in the stages' transactional ids (<group>.<stage>.<instance_id>) and as their static group member: stable across restarts and unique per instance (e.g. the pod name of a StatefulSet), so a restarted instance takes its partitions back and fences its predecessor's open transactions at once. Empty: an id kept in <state_dir>/instance-id, created on first start."`
	TransactionTimeout   time.Duration `mapstructure:"transaction_timeout" desc:"Kafka transaction timeout: the broker aborts a stage's transaction left open this long (crashed instance with another instance id)."`
	CommitInterval       time.Duration `mapstructure:"commit_interval" desc:"Longest a stage's transaction collects records before it commits; it commits sooner when nothing more is waiting. Each of the four hops adds at most this to an install's latency; longer means fewer, larger transactions for the broker."`
	StallTimeout         time.Duration `mapstructure:"stall_timeout" desc:"How long a stage may go without progress while it has work (records waiting, a restore, a commit, a Kafka session to rebuild) before /readyz fails naming it and attribution_stage_ready drops to 0."`
	SessionTimeout       time.Duration `mapstructure:"session_timeout" desc:"Consumer-group session timeout: how long a dead instance keeps its partitions (6s..5m)."`
	MaxPollRecords       int           `mapstructure:"max_poll_records" desc:"Records per poll, hence per transaction, per stage."`
	CacheSize            int64         `mapstructure:"cache_size" desc:"Bytes of the block cache shared by every state store of the process: with the memtables, what the state costs in memory whatever the days of traffic held."`
	RepartitionRetention time.Duration `mapstructure:"repartition_retention" desc:"retention.ms of the internal repartition topics the service creates."`
}

// DefaultAttribution returns attribution's defaults.
func DefaultAttribution() Attribution {
	return Attribution{
		Kafka:     DefaultKafka("postback-attribution"),
		Telemetry: Telemetry{Addr: "127.0.0.1:9101", LogLevel: "info", LogFormat: "json"},
		Group:     "postback-attribution",
		StateDir:  "/var/lib/postback/attribution",
		Rules:     attribution.DefaultRules(),
		Apps:      map[string]attribution.Rules{},
		Rates:     Rates{Reporting: "USD", PerUnit: map[string]string{}},
		Join: JoinSettings{
			DedupWindow:          72 * time.Hour,
			LateAllowance:        24 * time.Hour,
			EventJoinWindow:      30 * 24 * time.Hour,
			EventGrace:           10 * time.Minute,
			MaxCandidates:        16,
			ExpiryInterval:       time.Minute,
			AlignSlack:           100 * time.Millisecond,
			TickInterval:         time.Second,
			TickLag:              5 * time.Second,
			TransactionTimeout:   30 * time.Second,
			CommitInterval:       100 * time.Millisecond,
			StallTimeout:         30 * time.Second,
			SessionTimeout:       15 * time.Second,
			MaxPollRecords:       2000,
			CacheSize:            64 << 20,
			RepartitionRetention: 7 * 24 * time.Hour,
		},
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
		return r, Errorf("rates", "%v", err)
	}
	return r, nil
}

// Validate checks every section.
func (c *Attribution) Validate() error {
	if c.Group == "" {
		return Errorf("group", "must not be empty")
	}
	if c.StateDir == "" {
		return Errorf("state_dir", "must not be empty")
	}
	if err := c.Rules.Validate(); err != nil {
		return Errorf("rules", "%v", err)
	}
	for app, r := range c.Apps {
		if err := r.Validate(); err != nil {
			return Errorf("apps."+app, "%v (an app entry replaces every rules key)", err)
		}
	}
	if _, err := c.ParsedRates(); err != nil {
		return err
	}
	j := c.Join
	for _, d := range []struct {
		key string
		v   time.Duration
	}{{"join.dedup_window", j.DedupWindow}, {"join.late_allowance", j.LateAllowance}, {"join.event_join_window", j.EventJoinWindow},
		{"join.event_grace", j.EventGrace}, {"join.expiry_interval", j.ExpiryInterval}, {"join.transaction_timeout", j.TransactionTimeout},
		{"join.repartition_retention", j.RepartitionRetention}} {
		if d.v < time.Second {
			return Errorf(d.key, "must be at least 1s, got %v", d.v)
		}
	}
	if j.AlignSlack < time.Millisecond || j.AlignSlack > time.Minute {
		return Errorf("join.align_slack", "must be within 1ms..1m, got %v", j.AlignSlack)
	}
	if j.CommitInterval < time.Millisecond || j.CommitInterval > 10*time.Second {
		return Errorf("join.commit_interval", "must be within 1ms..10s, got %v", j.CommitInterval)
	}
	if j.CommitInterval >= j.TransactionTimeout {
		return Errorf("join.commit_interval", "must be below join.transaction_timeout (%v), got %v", j.TransactionTimeout, j.CommitInterval)
	}
	if j.StallTimeout < 5*time.Second {
		return Errorf("join.stall_timeout", "must be at least 5s, got %v", j.StallTimeout)
	}
	if j.TickInterval < 0 || (j.TickInterval > 0 && (j.TickInterval < 100*time.Millisecond || j.TickLag < 0 || j.TickLag > time.Hour)) {
		return Errorf("join.tick_interval", "must be 0 (off) or at least 100ms, with tick_lag within 0..1h; got %v and %v", j.TickInterval, j.TickLag)
	}
	if j.TransactionTimeout > 80*time.Second {
		return Errorf("join.transaction_timeout", "must be at most 80s (state restore waits 90s for a crashed owner's transaction), got %v", j.TransactionTimeout)
	}
	if j.SessionTimeout < 6*time.Second || j.SessionTimeout > 5*time.Minute {
		return Errorf("join.session_timeout", "must be within 6s..5m, got %v", j.SessionTimeout)
	}
	if j.MaxCandidates < 1 || j.MaxPollRecords < 1 {
		return Errorf("join", "max_candidates and max_poll_records must be at least 1")
	}
	if j.CacheSize < 1<<20 {
		return Errorf("join.cache_size", "must be at least 1 MiB, got %d", j.CacheSize)
	}
	return validateAll(&c.Kafka, &c.Telemetry)
}

// Sink is the configuration of services/sink.
type Sink struct {
	Kafka      Kafka      `mapstructure:"kafka"`
	ClickHouse ClickHouse `mapstructure:"clickhouse"`
	Telemetry  Telemetry  `mapstructure:"telemetry"`
	Group      string     `mapstructure:"group" desc:"Consumer group of the sink."`
	// SessionTimeout bounds how long a dead member holds its partitions.
	SessionTimeout time.Duration `mapstructure:"session_timeout" desc:"Consumer-group session timeout: how long the partitions of a crashed instance wait before moving to another (6s..5m)."`
	Sink           SinkSettings  `mapstructure:"sink"`
}

// SinkSettings are the sink's batching and retry keys (the sink section).
type SinkSettings struct {
	BatchRows     int           `mapstructure:"batch_rows" desc:"Flush when this many rows are buffered (all tables together)."`
	BatchBytes    int           `mapstructure:"batch_bytes" desc:"Flush when this many bytes of record values are buffered; bounds memory."`
	FlushInterval time.Duration `mapstructure:"flush_interval" desc:"Flush at least this often while rows are buffered: the freshness bound."`
	InsertTimeout time.Duration `mapstructure:"insert_timeout" desc:"Longest one INSERT attempt may take before it is retried."`
	RetryMin      time.Duration `mapstructure:"retry_min" desc:"First backoff after a failed INSERT; doubles up to retry_max. Consumption pauses meanwhile."`
	RetryMax      time.Duration `mapstructure:"retry_max" desc:"Cap of the INSERT retry backoff."`
	CommitOffsets bool          `mapstructure:"commit_offsets" desc:"Commit Kafka offsets after each insert (for lag monitoring; correctness never depends on it)."`
	Topics        []string      `mapstructure:"topics" desc:"Topics to load (names from kafka.topics); empty loads all five: clicks, impressions, installs_attributed, events_attributed, rejected."`
}

// DefaultSink returns the sink's defaults.
func DefaultSink() Sink {
	return Sink{
		Kafka:          DefaultKafka("postback-sink"),
		ClickHouse:     DefaultClickHouse(),
		Telemetry:      Telemetry{Addr: "127.0.0.1:9102", LogLevel: "info", LogFormat: "json"},
		Group:          "postback-sink",
		SessionTimeout: 15 * time.Second,
		Sink: SinkSettings{
			BatchRows:     50_000,
			BatchBytes:    32 << 20,
			FlushInterval: time.Second,
			InsertTimeout: 30 * time.Second,
			RetryMin:      200 * time.Millisecond,
			RetryMax:      30 * time.Second,
			CommitOffsets: true,
		},
	}
}

// Validate checks every section.
func (c *Sink) Validate() error {
	if c.Group == "" {
		return Errorf("group", "must not be empty")
	}
	if c.SessionTimeout < 6*time.Second || c.SessionTimeout > 5*time.Minute {
		return Errorf("session_timeout", "must be between 6s and 5m (the broker's group.min/max.session.timeout.ms), got %s", c.SessionTimeout)
	}
	s := c.Sink
	if s.BatchRows < 1 {
		return Errorf("sink.batch_rows", "must be at least 1")
	}
	if s.BatchBytes < 1024 {
		return Errorf("sink.batch_bytes", "must be at least 1024")
	}
	for key, d := range map[string]time.Duration{"sink.flush_interval": s.FlushInterval, "sink.insert_timeout": s.InsertTimeout,
		"sink.retry_min": s.RetryMin, "sink.retry_max": s.RetryMax} {
		if err := positive(key, d); err != nil {
			return err
		}
	}
	if s.RetryMax < s.RetryMin {
		return Errorf("sink.retry_max", "must not be below sink.retry_min")
	}
	return validateAll(&c.Kafka, &c.ClickHouse, &c.Telemetry)
}
