package traffic

import (
	"errors"
	"fmt"
	"regexp"
	"time"
)

// Options shape a simulated day. Start from Defaults and change fields.
type Options struct {
	// Seed makes the plan deterministic: one seed and run, one plan.
	Seed uint64
	// Run labels this run's apps, campaigns and devices (letters and
	// digits), so runs against one pipeline never share a device or a
	// campaign; a second run with the same label meets the first one's
	// devices and its installs become reinstalls.
	Run string
	// Rate is the planned requests per second, Duration how long touches
	// keep starting; postbacks follow their touches by up to MaxCTIT +
	// MaxDelay, so a run lasts about Duration + MaxCTIT + MaxDelay.
	Rate     float64
	Duration time.Duration
	// CTR is the share of touched users who click, CVR the share of
	// clicking users who install; VTR the share of users who only saw an
	// impression and install (view-through); OrganicShare organic installs
	// per paid install.
	CTR, CVR, VTR, OrganicShare float64
	// MalformedShare and UnauthShare: extra postbacks, per install, that
	// are malformed (answered 400, kept in rejected) or carry a wrong token
	// (401, stored nowhere).
	MalformedShare, UnauthShare float64
	// RetryShare is the share of postbacks the MMP sends more than once
	// (AppsFlyer up to 5 sends, Adjust up to 7, the others up to 3).
	RetryShare float64
	// MinCTIT..MaxCTIT is the click-to-install time of honest installs
	// (above the injection threshold, 10 s); MaxDelay the MMP's postback
	// delay after the install or event.
	MinCTIT, MaxCTIT, MaxDelay time.Duration
	// ReinstallAfter is how long after a device's first install its
	// reinstall happens. Attribution tells the reinstall by the order it
	// processes a device's installs in, so a fault that holds the first
	// one back for longer than this swaps the flag (docs/attribution.md,
	// Limits): the chaos run keeps it longer than its faults.
	ReinstallAfter time.Duration
	// FloodClicks is the attribution service's rules.flood_clicks: a flood
	// journey sends one click more than it.
	FloodClicks int
	// Rates is the attribution service's rates.per_unit (units of
	// ReportingCurrency per unit), for the currencies purchases use.
	Rates             map[string]string
	ReportingCurrency string
}

// Defaults returns the options `postbackctl simulate` starts from; Rates
// and FloodClicks match deploy/local/config/attribution.yaml and the
// attribution defaults.
func Defaults() Options {
	return Options{
		Seed: 1, Run: "sim", Rate: 200, Duration: time.Minute,
		CTR: 0.04, CVR: 0.05, VTR: 0.002, OrganicShare: 0.25,
		MalformedShare: 0.02, UnauthShare: 0.01, RetryShare: 0.15,
		MinCTIT: 12 * time.Second, MaxCTIT: 40 * time.Second, MaxDelay: 20 * time.Second, ReinstallAfter: time.Minute,
		FloodClicks:       50,
		Rates:             map[string]string{"USD": "1", "EUR": "1.08", "GBP": "1.27"},
		ReportingCurrency: "USD",
	}
}

var runLabel = regexp.MustCompile(`^[a-z0-9]{1,16}$`)

// Validate reports the first option that cannot make a plan.
func (o Options) Validate() error {
	switch {
	case !runLabel.MatchString(o.Run):
		return fmt.Errorf("run label %q: want 1-16 lower-case letters and digits", o.Run)
	case o.Rate <= 0:
		return errors.New("rate: must be positive")
	case o.Duration <= 0:
		return errors.New("duration: must be positive")
	case o.CTR <= 0 || o.CTR > 1, o.CVR <= 0 || o.CVR > 1, o.VTR < 0 || o.VTR > 1:
		return fmt.Errorf("ctr %v, cvr %v, vtr %v: want shares in (0, 1]", o.CTR, o.CVR, o.VTR)
	case o.OrganicShare < 0, o.MalformedShare < 0, o.UnauthShare < 0, o.RetryShare < 0 || o.RetryShare > 1:
		return errors.New("organic, malformed, unauthenticated and retry shares must not be negative (retry at most 1)")
	case o.MinCTIT <= 10*time.Second || o.MaxCTIT < o.MinCTIT:
		return fmt.Errorf("ctit %v..%v: the minimum must be above the 10 s injection threshold and below the maximum", o.MinCTIT, o.MaxCTIT)
	case o.MaxDelay < 0:
		return errors.New("max delay: must not be negative")
	case o.ReinstallAfter <= 0:
		return errors.New("reinstall after: must be positive")
	case o.FloodClicks < 1:
		return errors.New("flood clicks: must be at least 1 (the service's rules.flood_clicks)")
	}
	for _, c := range purchaseCurrencies {
		if _, ok := o.Rates[c]; !ok {
			return fmt.Errorf("rates: no rate for %s (purchases use %v)", c, purchaseCurrencies)
		}
	}
	if _, ok := o.Rates[o.ReportingCurrency]; !ok {
		return fmt.Errorf("rates: no rate for the reporting currency %s", o.ReportingCurrency)
	}
	return nil
}
