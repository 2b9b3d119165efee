package kafkaconn

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/adtrack/postback/pkg/tlsconf"
)

// MisconfiguredError is a connection failure that no retry fixes: wrong
// credentials, an untrusted certificate, TLS against a plaintext listener
// or the reverse. Services stop at start on it, naming the cause.
type MisconfiguredError struct {
	Brokers []string
	Cause   string // what to fix, in terms of the kafka.* keys
	Err     error
}

func (e *MisconfiguredError) Error() string {
	return fmt.Sprintf("kafka %s: %s: %v", strings.Join(e.Brokers, ","), e.Cause, e.Err)
}

func (e *MisconfiguredError) Unwrap() error { return e.Err }

// IsMisconfigured reports whether err is a *MisconfiguredError.
func IsMisconfigured(err error) bool {
	var me *MisconfiguredError
	return errors.As(err, &me)
}

// Check connects to the brokers and asks one of them for the cluster's
// metadata, within ctx. It returns nil when that works, a
// *MisconfiguredError when the settings are wrong (fail fast), and another
// error when the brokers are merely unreachable (a broker down or
// restarting: the clients retry on their own, so callers log and go on).
func (c *Conn) Check(ctx context.Context) error {
	cl, err := kgo.NewClient(c.Opts("")...)
	if err != nil {
		return &MisconfiguredError{Brokers: c.cfg.Brokers, Cause: "invalid client options", Err: err}
	}
	defer cl.Close()
	_, err = kmsg.NewPtrMetadataRequest().RequestWith(ctx, cl)
	if err == nil {
		return nil
	}
	if cause := c.explain(ctx, err); cause != "" {
		return &MisconfiguredError{Brokers: c.cfg.Brokers, Cause: cause, Err: err}
	}
	return fmt.Errorf("kafka %s: not reachable yet: %w", strings.Join(c.cfg.Brokers, ","), err)
}

// explain names the setting behind a failed first request, or "".
func (c *Conn) explain(ctx context.Context, err error) string {
	s := c.cfg.SASL
	switch {
	case errors.Is(err, kerr.SaslAuthenticationFailed):
		return fmt.Sprintf("SASL authentication failed for user %q with %s: wrong kafka.sasl.password, unknown kafka.sasl.username, or a mechanism the user has no credentials for", s.Username, s.Mechanism)
	case errors.Is(err, kerr.UnsupportedSaslMechanism):
		return fmt.Sprintf("the broker does not accept kafka.sasl.mechanism %s on this listener", s.Mechanism)
	case errors.Is(err, kerr.IllegalSaslState):
		return "the listener does not expect SASL here: check kafka.sasl.mechanism against the listener's security protocol"
	case errors.Is(err, kerr.ClusterAuthorizationFailed), errors.Is(err, kerr.TopicAuthorizationFailed):
		return fmt.Sprintf("authenticated, but user %q is not authorized (broker ACLs)", s.Username)
	}
	var eof *kgo.ErrFirstReadEOF
	switch msg := err.Error(); {
	case strings.Contains(msg, "tls alert record"):
		return "the listener expects TLS but kafka.tls.enabled is false"
	case errors.As(err, &eof) && strings.Contains(msg, "SASL"):
		return "the broker closed the connection during SASL: the listener does not take SASL, or not kafka.sasl.mechanism " + s.Mechanism
	case errors.As(err, &eof) && c.cfg.TLS.Enabled:
		return "the broker closed the connection right after the TLS dial: kafka.tls.enabled is true but the listener answered in plaintext, or refused the TLS settings"
	}
	why := tlsconf.Explain(err, c.cfg.TLS.Enabled)
	if why == "" && !c.cfg.TLS.Enabled && tlsconf.ClosedEarly(err) {
		// Closed at the first request: a TLS listener, or a broker
		// restarting (only the first is a setting to fix).
		for _, addr := range c.cfg.Brokers {
			if tlsconf.SpeaksTLS(ctx, addr) {
				why = tlsconf.ExpectsTLS
				break
			}
		}
	}
	if why == "" {
		return ""
	}
	if !c.cfg.TLS.Enabled && s.Mechanism == "" {
		return why + " or SASL (kafka.tls.enabled, kafka.sasl.mechanism)"
	}
	if !c.cfg.TLS.Enabled {
		return why + " (kafka.tls.enabled)"
	}
	return strings.Replace(why, "tls.", "kafka.tls.", -1)
}

// Open is New followed by Check within checkTimeout: it fails on settings
// that cannot work, and returns the connection with a logged warning while
// the brokers are only unreachable (the clients keep retrying).
func Open(ctx context.Context, cfg Config, log *slog.Logger, opts ...Option) (*Conn, error) {
	c, err := New(cfg, append([]Option{WithLogger(log)}, opts...)...)
	if err != nil {
		return nil, err
	}
	cctx, cancel := context.WithTimeout(ctx, checkTimeout)
	defer cancel()
	if err := c.Check(cctx); err != nil {
		if IsMisconfigured(err) {
			return nil, err
		}
		log.Warn("kafka not reachable yet; clients keep retrying", "err", err)
	}
	return c, nil
}

// checkTimeout bounds Open's check: long enough for a TLS and SASL
// handshake on a loaded broker, short enough that a typo stops the
// service within seconds.
const checkTimeout = 10 * time.Second
