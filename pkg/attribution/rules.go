package attribution

import (
	"fmt"
	"time"

	"github.com/adtrack/postback/pkg/event"
)

// Rules are the per-app attribution windows and thresholds. The zero value is
// not usable; start from [DefaultRules] and call [Rules.Validate] once when
// the configuration is loaded (Decide does not re-check it on the hot path).
//
// The mapstructure tags let the config package embed Rules as a section.
type Rules struct {
	// ClickLookback bounds a deterministic click match (click_id, device id):
	// install time - click time <= ClickLookback.
	ClickLookback time.Duration `mapstructure:"click_lookback" desc:"Longest click-to-install time of a click_id or device-id match (industry default 7 days)."`
	// ProbabilisticWindow bounds an IP + user-agent match. It is short
	// because an IP and UA pair is shared by many devices over time.
	ProbabilisticWindow time.Duration `mapstructure:"probabilistic_window" desc:"Longest click-to-install time of a probabilistic IP + user-agent match."`
	// ViewLookback bounds a view-through match on an impression.
	ViewLookback time.Duration `mapstructure:"view_lookback" desc:"Longest impression-to-install time of a view-through match."`
	// InjectionCTIT: a click match with a CTIT below it is flagged
	// click_injection (installs 3-10 s after the click are a known sign of
	// injection; a human cannot download and open an app that fast). Zero
	// disables the flag.
	InjectionCTIT time.Duration `mapstructure:"injection_ctit" desc:"Click-to-install times below this are flagged click_injection; 0 disables the flag."`
	// ReattributionWindow: an install of a device whose previous install
	// of the app is at most this far away is a reinstall, not a new install.
	ReattributionWindow time.Duration `mapstructure:"reattribution_window" desc:"An install this close to the device's previous install of the app is a reinstall, not a new install."`
	// Grace is how long an install whose click_id is not in the store yet
	// waits for the click (clicks and postbacks race through different
	// topics and partitions) before the other rules settle it.
	Grace time.Duration `mapstructure:"grace" desc:"How long an install waits for a click_id not seen yet before the other rules decide; 0 disables waiting."`
	// FloodClicks: a click-attributed install whose device has more than
	// this many clicks for the app within the click lookback is flagged
	// click_flooding. 50 clicks on one app's ads in 7 days is far beyond
	// what a person produces and typical of click spamming. Zero disables.
	FloodClicks int `mapstructure:"flood_clicks" desc:"A device with more clicks than this on the app's ads within the click lookback gets click_flooding; 0 disables the flag."`
}

// DefaultRules returns the defaults of DESIGN.md "Attribution rules": click
// lookback 7 d, probabilistic 24 h, view-through 24 h, injection below 10 s,
// re-attribution 90 d, grace 10 min, and click flooding above 50 clicks.
func DefaultRules() Rules {
	return Rules{
		ClickLookback:       7 * 24 * time.Hour,
		ProbabilisticWindow: 24 * time.Hour,
		ViewLookback:        24 * time.Hour,
		InjectionCTIT:       10 * time.Second,
		ReattributionWindow: 90 * 24 * time.Hour,
		Grace:               10 * time.Minute,
		FloodClicks:         50,
	}
}

// Windows shorter than a second are refused: a bare "7" in YAML or an env
// var decodes to 7 ns, and such a window would silently make every install
// organic.
const minWindow = time.Second

// Validate checks the rules and names the offending key (the mapstructure
// name, as an operator writes it).
func (r Rules) Validate() error {
	for _, w := range []struct {
		key string
		d   time.Duration
	}{
		{"click_lookback", r.ClickLookback},
		{"probabilistic_window", r.ProbabilisticWindow},
		{"view_lookback", r.ViewLookback},
		{"reattribution_window", r.ReattributionWindow},
	} {
		if w.d < minWindow {
			return fmt.Errorf("attribution rules: %s: must be at least %v, got %v", w.key, minWindow, w.d)
		}
	}
	if r.InjectionCTIT < 0 {
		return fmt.Errorf("attribution rules: injection_ctit: must not be negative, got %v", r.InjectionCTIT)
	}
	if r.InjectionCTIT >= r.ClickLookback {
		return fmt.Errorf("attribution rules: injection_ctit (%v) must be shorter than click_lookback (%v), else every click match is flagged", r.InjectionCTIT, r.ClickLookback)
	}
	if r.Grace < 0 {
		return fmt.Errorf("attribution rules: grace: must not be negative, got %v", r.Grace)
	}
	if r.FloodClicks < 0 {
		return fmt.Errorf("attribution rules: flood_clicks: must not be negative, got %d", r.FloodClicks)
	}
	return nil
}

// GraceDeadline is when an install waiting for its click stops waiting:
// received_at + Grace. It is measured from our receipt rather than from the
// MMP's install time because the race it absorbs is between our own topics;
// an MMP that reports hours late must not lengthen the wait.
func (r Rules) GraceDeadline(in *event.Install) time.Time {
	return in.ReceivedAt.Add(r.Grace)
}

// Settle reports whether an install must wait (true) rather than be decided
// now. Only an install with a click_id that the store has not found waits,
// and only until [Rules.GraceDeadline] (exclusive: at the deadline it is
// decided). An install whose MMP-reported click time is already beyond the
// click lookback does not wait: its click could not win when it arrived, so
// waiting would only hold state.
//
// clickFound is whether the store holds a click with the install's click_id
// (whatever its app or age: Decide judges it). now should be the service's
// stream time (see "For the I/O layer" in the package documentation) so
// that a replay waits the same way.
func (r Rules) Settle(in *event.Install, clickFound bool, now time.Time) (wait bool) {
	if in.ClickID == "" || clickFound {
		return false
	}
	if in.ClickTime != nil && installTime(in).Sub(*in.ClickTime) > r.ClickLookback {
		return false
	}
	return now.Before(r.GraceDeadline(in))
}

// Retention says how long after its own time a stored record can still
// change a decision, so that the state store can expire it. The store should
// add its own allowance for late postbacks (MMPs retry for hours), since the
// windows are measured from the install time, not from arrival.
type Retention struct {
	// Clicks: the longer of the click lookback and the probabilistic window.
	Clicks time.Duration
	// Probabilistic: the probabilistic window, for a store that keeps
	// clicks for rule 3 only.
	Probabilistic time.Duration
	// Impressions: the view lookback.
	Impressions time.Duration
	// Installs: the re-attribution window, for reinstall detection only;
	// joining in-app events to installs needs its own (longer) horizon.
	Installs time.Duration
}

// Retention returns how long records stay relevant under r.
func (r Rules) Retention() Retention {
	return Retention{
		Clicks:        max(r.ClickLookback, r.ProbabilisticWindow),
		Probabilistic: r.ProbabilisticWindow,
		Impressions:   r.ViewLookback,
		Installs:      r.ReattributionWindow,
	}
}

// RuleSet holds the global rules and whole-Rules overrides per app id, as
// DESIGN.md asks ("all per-app configurable"). An override replaces every
// field, so each app's rules are validated as a unit.
type RuleSet struct {
	Default Rules
	Apps    map[string]Rules
}

// For returns the rules of appID: its override, else the default.
func (s RuleSet) For(appID string) Rules {
	if r, ok := s.Apps[appID]; ok {
		return r
	}
	return s.Default
}

// Validate checks the default and every override, naming the app.
func (s RuleSet) Validate() error {
	if err := s.Default.Validate(); err != nil {
		return err
	}
	for app, r := range s.Apps {
		if err := r.Validate(); err != nil {
			return fmt.Errorf("app %q: %w", app, err)
		}
	}
	return nil
}

// Retention is the longest retention of any app's rules: one store serves
// every app of a partition, so it must keep records for the most patient one.
func (s RuleSet) Retention() Retention {
	out := s.Default.Retention()
	for _, r := range s.Apps {
		rr := r.Retention()
		out.Clicks = max(out.Clicks, rr.Clicks)
		out.Probabilistic = max(out.Probabilistic, rr.Probabilistic)
		out.Impressions = max(out.Impressions, rr.Impressions)
		out.Installs = max(out.Installs, rr.Installs)
	}
	return out
}

// installTime is the time windows are measured to: the MMP's install time,
// else (never from the parser, but a hand-built install may lack it) our
// receipt time.
func installTime(in *event.Install) time.Time {
	if in.InstallTime.IsZero() {
		return in.ReceivedAt
	}
	return in.InstallTime
}

// InstallTime is the time the windows of an install are measured to: the
// MMP's install time, else our receipt time. Stores use it to bound their
// candidate scans the same way Decide bounds its matches.
func InstallTime(in *event.Install) time.Time { return installTime(in) }

// Reinstall reports whether Decide will mark in as a reinstall given the
// device's previous counted install time (nil when there is none). A store
// records in as the device's previous install only when this is false.
func (r Rules) Reinstall(in *event.Install, prior *time.Time) bool {
	return in.IsReinstall || r.reinstall(installTime(in), prior)
}

// ClickWins reports whether rule 1 (click id) or rule 2 (advertising id)
// credits one of c's clicks. Rules 3 and 4 then cannot change the decision,
// so a store may skip looking up probabilistic candidates and impressions
// (c.ByIPUA and c.Impressions are ignored here).
func (r Rules) ClickWins(in *event.Install, c Candidates) bool {
	c.ByIPUA, c.Impressions = nil, nil
	w, _, _ := r.match(in, installTime(in), &c)
	return w.match == event.MatchClickID || w.match == event.MatchDeviceID
}
