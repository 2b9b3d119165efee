package forward

import (
	"errors"
	"math/rand/v2"
	"net/http"
	"strconv"
	"time"

	"github.com/adtrack/postback/pkg/config"
)

// Retry is the retry policy of failed callbacks (the retry section of the
// forwarder).
type Retry struct {
	Initial     time.Duration `mapstructure:"initial" desc:"Backoff after the first failed attempt; doubles per attempt up to max_backoff, with jitter (each wait is drawn from [backoff/2, backoff])."`
	MaxBackoff  time.Duration `mapstructure:"max_backoff" desc:"Cap of the backoff between two attempts."`
	Period      time.Duration `mapstructure:"period" desc:"How long after its first attempt a delivery is retried at most; then it fails (outcome expired)."`
	MaxAttempts int           `mapstructure:"max_attempts" desc:"Attempts at most per delivery, the first included; 0: no limit but the period."`
}

// DefaultRetry returns the retry defaults: as MMPs do, up to 24 h.
func DefaultRetry() Retry {
	return Retry{Initial: 10 * time.Second, MaxBackoff: time.Hour, Period: 24 * time.Hour, MaxAttempts: 30}
}

// Validate checks the section; keys are relative to retry.
func (r *Retry) Validate() error {
	for key, d := range map[string]time.Duration{"initial": r.Initial, "max_backoff": r.MaxBackoff, "period": r.Period} {
		if err := config.Positive(key, d); err != nil {
			return err
		}
	}
	if r.MaxBackoff < r.Initial {
		return config.Errorf("max_backoff", "must not be below initial (%s)", r.Initial)
	}
	if r.MaxAttempts < 0 {
		return config.Errorf("max_attempts", "must not be negative")
	}
	return nil
}

// Outcomes of an attempt and of a delivery.
const (
	OutcomeDelivered = "delivered" // 2xx: final
	OutcomeRetrying  = "retrying"  // timeout, connection error, 408, 429, 5xx: tried again later
	OutcomeFailed    = "failed"    // other 3xx/4xx, or a refused destination: final
	OutcomeExpired   = "expired"   // retryable, but the period or the attempts are used up: final
	OutcomeDropped   = "dropped"   // not attempted: endpoint removed, or the backlog is full: final
)

// Result is what one attempt got.
type Result struct {
	Status     int           // HTTP status, 0 when no response
	Err        error         // transport error (timeout, refused, ...)
	RetryAfter time.Duration // from a Retry-After header, 0 when none
}

// Retryable reports whether the attempt may be tried again: timeouts and
// connection errors (not a refused destination), 408, 429 and 5xx.
func (r Result) Retryable() bool {
	if r.Err != nil {
		return !errors.Is(r.Err, ErrRefused)
	}
	return r.Status == http.StatusRequestTimeout || r.Status == http.StatusTooManyRequests || r.Status >= 500
}

// Decision is what happens after an attempt.
type Decision struct {
	Outcome string
	Next    time.Time // when to try again (OutcomeRetrying)
}

// Decide classifies attempt number attempt (1 for the first) of a
// delivery first tried at first, which got r at now. jitter in [0, 1)
// places the wait within [backoff/2, backoff].
func (p Retry) Decide(r Result, attempt int, first, now time.Time, jitter float64) Decision {
	if r.Err == nil && r.Status >= 200 && r.Status < 300 {
		return Decision{Outcome: OutcomeDelivered}
	}
	if !r.Retryable() {
		return Decision{Outcome: OutcomeFailed}
	}
	if p.MaxAttempts > 0 && attempt >= p.MaxAttempts {
		return Decision{Outcome: OutcomeExpired}
	}
	wait := p.Backoff(attempt, jitter)
	if r.RetryAfter > wait {
		wait = r.RetryAfter
	}
	next := now.Add(wait)
	if next.After(first.Add(p.Period)) {
		return Decision{Outcome: OutcomeExpired}
	}
	return Decision{Outcome: OutcomeRetrying, Next: next}
}

// Backoff is the wait after failed attempt number attempt: initial doubled
// per attempt, capped, then drawn from its upper half by jitter in [0, 1).
func (p Retry) Backoff(attempt int, jitter float64) time.Duration {
	d := p.Initial
	for i := 1; i < attempt && d < p.MaxBackoff; i++ {
		d *= 2
	}
	d = min(d, p.MaxBackoff)
	return d/2 + time.Duration(jitter*float64(d/2))
}

// Jitter returns a random jitter for Decide.
func Jitter() float64 { return rand.Float64() }

// ParseRetryAfter reads a Retry-After header: delay-seconds or an HTTP
// date; 0 when absent or unreadable.
func ParseRetryAfter(v string, now time.Time) time.Duration {
	if v == "" {
		return 0
	}
	if s, err := strconv.Atoi(v); err == nil && s >= 0 {
		return time.Duration(s) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return t.Sub(now)
	}
	return 0
}
