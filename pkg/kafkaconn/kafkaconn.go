// Package kafkaconn is the one way the pipeline connects to Kafka: it turns
// the kafka section of a service's configuration (brokers, client id, TLS,
// SASL) into franz-go client options, with franz-go's slog logger and
// Prometheus plugins, and checks at start that the connection works,
// naming the setting at fault when it does not.
//
//	conn, err := kafkaconn.New(cfg.Kafka.Config, kafkaconn.WithLogger(log),
//		kafkaconn.WithMetrics(tel.Registry, "ingest"))
//	if err := conn.Check(ctx); kafkaconn.IsMisconfigured(err) { return err }
//	cl, err := kgo.NewClient(conn.Opts("producer", kgo.ProducerLinger(0))...)
//
// Every client of every service (the ingest producer, the join stages and
// their state restore, the sink, the campaign follower, postbackctl) starts
// from Conn.Opts.
package kafkaconn

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl"
	"github.com/twmb/franz-go/pkg/sasl/oauth"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"
	"github.com/twmb/franz-go/plugin/kprom"
	"github.com/twmb/franz-go/plugin/kslog"

	"github.com/adtrack/postback/pkg/config"
	"github.com/adtrack/postback/pkg/tlsconf"
)

// SASL mechanisms accepted in kafka.sasl.mechanism.
const (
	MechanismPlain       = "PLAIN"
	MechanismScramSHA256 = "SCRAM-SHA-256"
	MechanismScramSHA512 = "SCRAM-SHA-512"
	MechanismOAuthBearer = "OAUTHBEARER"
)

// Config is the connection part of the kafka section of every service.
type Config struct {
	Brokers  []string       `mapstructure:"brokers" desc:"Kafka bootstrap brokers, host:port, comma-separated in env and flags."`
	ClientID string         `mapstructure:"client_id" desc:"Kafka client id, shown in broker logs and quotas."`
	TLS      tlsconf.Config `mapstructure:"tls"`
	SASL     SASL           `mapstructure:"sasl"`
}

// SASL configures authentication to the brokers.
type SASL struct {
	Mechanism    string `mapstructure:"mechanism" desc:"SASL mechanism: empty (none), PLAIN, SCRAM-SHA-256, SCRAM-SHA-512 or OAUTHBEARER (the token comes from code: kafkaconn.WithOAuthToken). Use TLS with PLAIN: it sends the password as is."`
	Username     string `mapstructure:"username" desc:"SASL user name."`
	Password     string `mapstructure:"password" desc:"SASL password; prefer password_file or the env var over the YAML file."`
	PasswordFile string `mapstructure:"password_file" desc:"File holding the SASL password (a mounted secret); excludes password."`
}

// Defaults returns the connection defaults: one local broker, no TLS, no
// SASL.
func Defaults(clientID string) Config {
	return Config{Brokers: []string{"127.0.0.1:9092"}, ClientID: clientID}
}

// Validate checks the section without reading files; keys are relative to
// kafka.
func (c *Config) Validate() error {
	if len(c.Brokers) == 0 {
		return config.Errorf("brokers", "must list at least one broker")
	}
	for _, b := range c.Brokers {
		if _, _, err := net.SplitHostPort(strings.TrimSpace(b)); err != nil {
			return config.Errorf("brokers", "%q is not host:port: %v", b, err)
		}
	}
	if c.ClientID == "" {
		return config.Errorf("client_id", "must not be empty")
	}
	if err := c.TLS.Validate(); err != nil {
		return config.Errorf("tls", "%v", err)
	}
	switch s := c.SASL; s.Mechanism {
	case "":
		if s.Username != "" || s.Password != "" {
			return config.Errorf("sasl.mechanism", "is empty but sasl.username or sasl.password is set; name the mechanism")
		}
	case MechanismPlain, MechanismScramSHA256, MechanismScramSHA512:
		if s.Username == "" || s.Password == "" {
			return config.Errorf("sasl", "%s needs sasl.username and sasl.password (or sasl.password_file)", s.Mechanism)
		}
	case MechanismOAuthBearer:
	default:
		return config.Errorf("sasl.mechanism", "%q is not one of PLAIN, SCRAM-SHA-256, SCRAM-SHA-512, OAUTHBEARER", s.Mechanism)
	}
	return nil
}

// Option customises a Conn.
type Option func(*Conn)

// WithLogger sends franz-go's own logs to log, one level quieter than log
// (franz-go logs every connection at info): at info only its warnings
// and errors show.
func WithLogger(log *slog.Logger) Option {
	return func(c *Conn) { c.log = log }
}

// WithMetrics adds franz-go's Prometheus plugin to the clients that Opts
// names, registered with reg under namespace (<namespace>_read_bytes_total,
// ..., with a client label naming the client).
func WithMetrics(reg prometheus.Registerer, namespace string) Option {
	return func(c *Conn) { c.reg, c.namespace = reg, namespace }
}

// WithOAuthToken supplies the OAUTHBEARER token of each authentication
// (the mechanism needs it: a token is fetched, not configured).
func WithOAuthToken(fn func(context.Context) (oauth.Auth, error)) Option {
	return func(c *Conn) { c.oauth = fn }
}

// Conn is a validated connection configuration.
type Conn struct {
	cfg       Config
	base      []kgo.Opt
	log       *slog.Logger
	reg       prometheus.Registerer
	namespace string
	oauth     func(context.Context) (oauth.Auth, error)
}

// New validates cfg, reads its TLS files and returns the connection. The
// error names the key at fault.
func New(cfg Config, opts ...Option) (*Conn, error) {
	if err := cfg.Validate(); err != nil {
		return nil, config.Within("kafka", err)
	}
	c := &Conn{cfg: cfg}
	for _, o := range opts {
		o(c)
	}
	c.base = []kgo.Opt{kgo.SeedBrokers(cfg.Brokers...), kgo.ClientID(cfg.ClientID)}
	tc, err := cfg.TLS.Build()
	if err != nil {
		return nil, config.Within("kafka", err)
	}
	if tc != nil {
		c.base = append(c.base, kgo.DialTLSConfig(tc))
	}
	m, err := c.mechanism()
	if err != nil {
		return nil, err
	}
	if m != nil {
		c.base = append(c.base, kgo.SASL(m))
	}
	if c.log != nil {
		c.base = append(c.base, kgo.WithLogger(quieter{kslog.New(c.log.With("component", "kafka"))}))
	}
	return c, nil
}

func (c *Conn) mechanism() (sasl.Mechanism, error) {
	s := c.cfg.SASL
	switch s.Mechanism {
	case MechanismPlain:
		return plain.Auth{User: s.Username, Pass: s.Password}.AsMechanism(), nil
	case MechanismScramSHA256:
		return scram.Auth{User: s.Username, Pass: s.Password}.AsSha256Mechanism(), nil
	case MechanismScramSHA512:
		return scram.Auth{User: s.Username, Pass: s.Password}.AsSha512Mechanism(), nil
	case MechanismOAuthBearer:
		if c.oauth == nil {
			return nil, config.Errorf("kafka.sasl.mechanism", "OAUTHBEARER needs a token source: build the connection with kafkaconn.WithOAuthToken")
		}
		return oauth.Oauth(c.oauth), nil
	}
	return nil, nil
}

// Brokers returns the configured bootstrap brokers (for logs and errors).
func (c *Conn) Brokers() []string { return c.cfg.Brokers }

// Opts returns the options of one client: the connection (brokers, client
// id, TLS, SASL, logger), franz-go's metrics labelled client=name when the
// Conn has metrics and name is not empty, then extra. Give each long-lived
// client its own name (a second client under a live name would take over
// its series); short-lived clients (restore, probes, admin calls) pass "".
func (c *Conn) Opts(name string, extra ...kgo.Opt) []kgo.Opt {
	opts := append([]kgo.Opt{}, c.base...)
	if c.reg != nil && name != "" {
		reg := prometheus.WrapRegistererWith(prometheus.Labels{"client": name}, replacing{c.reg})
		opts = append(opts, kgo.WithHooks(kprom.NewMetrics(c.namespace, kprom.Registerer(reg))))
	}
	return append(opts, extra...)
}

// Plain returns a connection to brokers without TLS, SASL, logs or metrics,
// with opts added to every client: for tests and tools on a local broker.
// Unlike New it does not validate the addresses.
func Plain(brokers []string, opts ...kgo.Opt) *Conn {
	base := append([]kgo.Opt{kgo.SeedBrokers(brokers...), kgo.ClientID("postback")}, opts...)
	return &Conn{cfg: Config{Brokers: brokers, ClientID: "postback"}, base: base}
}

// quieter logs franz-go one level below the service: its info lines
// (every dial, every metadata refresh) are debug detail for an operator.
type quieter struct{ *kslog.Logger }

func (q quieter) Level() kgo.LogLevel {
	l := q.Logger.Level()
	if l == kgo.LogLevelInfo {
		return kgo.LogLevelWarn
	}
	return l
}

// replacing registers a collector even when one with the same descriptors
// is registered (a client recreated under the same name after a session
// failure), instead of the panic kprom's registration would cause.
type replacing struct{ prometheus.Registerer }

func (r replacing) Register(c prometheus.Collector) error {
	err := r.Registerer.Register(c)
	var are prometheus.AlreadyRegisteredError
	if errors.As(err, &are) {
		r.Registerer.Unregister(are.ExistingCollector)
		err = r.Registerer.Register(c)
	}
	if err != nil {
		return fmt.Errorf("kafkaconn: register client metrics: %w", err)
	}
	return nil
}

func (r replacing) MustRegister(cs ...prometheus.Collector) {
	for _, c := range cs {
		if err := r.Register(c); err != nil {
			panic(err)
		}
	}
}
