package attribution

import (
	"errors"
	"fmt"
	"math/bits"
	"strconv"
	"strings"

	"github.com/adtrack/postback/pkg/money"
)

// Errors of the currency conversion; match them with errors.Is.
var (
	// ErrNoRate: the rate table has no rate for the revenue's currency.
	ErrNoRate = errors.New("no exchange rate for currency")
	// ErrRate: a rate is not a positive plain decimal with at most
	// maxRateScale fractional digits.
	ErrRate = errors.New("invalid exchange rate")
)

// maxRateScale is the most fractional digits a Rate keeps. Six (a
// money.Amount) is not enough: 1 VND is about 0.0000393 USD, and rounding
// that to 0.000039 would under-report Vietnamese revenue by almost 1 %.
const maxRateScale = 18

// maxConverted is the first amount ClickHouse's Decimal(18, 6) cannot hold
// (10^12 units); a conversion at or beyond it is an error rather than a row
// the sink would refuse.
const maxConverted = 1_000_000_000_000_000_000

var pow10 = func() (p [maxRateScale + 1]uint64) {
	p[0] = 1
	for i := 1; i < len(p); i++ {
		p[i] = p[i-1] * 10
	}
	return p
}()

// Rate is an exact exchange rate: how many units of the reporting currency
// one unit of another currency is worth, as a decimal with up to 18
// fractional digits (mantissa / 10^scale). The zero Rate is invalid.
type Rate struct {
	mant  uint64
	scale uint8
}

// ParseRate reads a positive plain decimal ("1.08", "0.0000393"). Signs,
// exponents and more than 18 fractional digits are refused rather than
// rounded, as money.Parse does for amounts.
func ParseRate(s string) (Rate, error) {
	intPart, frac, hasDot := strings.Cut(s, ".")
	if (intPart == "" && (!hasDot || frac == "")) || !digits(intPart) || !digits(frac) {
		return Rate{}, fmt.Errorf("%q: %w: not a plain decimal", s, ErrRate)
	}
	frac = strings.TrimRight(frac, "0")
	if len(frac) > maxRateScale {
		return Rate{}, fmt.Errorf("%q: %w: more than %d decimal places", s, ErrRate, maxRateScale)
	}
	num := strings.TrimLeft(intPart+frac, "0")
	if num == "" {
		return Rate{}, fmt.Errorf("%q: %w: must be positive", s, ErrRate)
	}
	m, err := strconv.ParseUint(num, 10, 64)
	if err != nil {
		return Rate{}, fmt.Errorf("%q: %w: too many digits", s, ErrRate)
	}
	return Rate{mant: m, scale: uint8(len(frac))}, nil
}

// RateOf returns the rate equal to a money amount (six decimals), for
// tables already held as amounts. a must be positive.
func RateOf(a money.Amount) (Rate, error) {
	if a <= 0 {
		return Rate{}, fmt.Errorf("%s: %w: must be positive", a, ErrRate)
	}
	return Rate{mant: uint64(a), scale: money.Scale}, nil
}

func digits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// String formats the rate as a plain decimal without trailing zeros.
func (r Rate) String() string {
	s := strconv.FormatUint(r.mant, 10)
	if r.scale == 0 {
		return s
	}
	if pad := int(r.scale) + 1 - len(s); pad > 0 {
		s = strings.Repeat("0", pad) + s
	}
	i := len(s) - int(r.scale)
	return strings.TrimRight(strings.TrimRight(s[:i]+"."+s[i:], "0"), ".")
}

// apply returns a * r rounded half away from zero (money.Amount.MulDiv's
// rounding). It is exact: the product is taken in 128 bits, so no amount
// that fits an Amount can overflow silently; a result beyond Decimal(18, 6)
// is an error.
func (r Rate) apply(a money.Amount) (money.Amount, error) {
	if r.mant == 0 {
		return 0, ErrRate
	}
	v := a.Micros()
	neg := v < 0
	u := uint64(v)
	if neg {
		u = -u // two's complement: correct for math.MinInt64 too
	}
	hi, lo := bits.Mul64(u, r.mant)
	den := pow10[r.scale]
	if hi >= den { // the quotient would not fit 64 bits
		return 0, fmt.Errorf("%s * %s: %w", a, r, money.ErrRange)
	}
	q, rem := bits.Div64(hi, lo, den)
	if rem >= den-rem { // 2*rem >= den, without overflowing
		q++
	}
	if q >= maxConverted {
		return 0, fmt.Errorf("%s * %s: %w", a, r, money.ErrRange)
	}
	if neg {
		return money.FromMicros(-int64(q)), nil
	}
	return money.FromMicros(int64(q)), nil
}

// Rates is a static exchange-rate table into one reporting currency (issue
// 4: "a static rate table in config is fine"). Rates are per unit: 1 unit
// of the key currency is worth PerUnit[key] units of Reporting. Keys and
// Reporting are upper-case ISO-4217 codes; build the table with
// [ParseRates] to get them normalized and checked.
type Rates struct {
	Reporting string
	PerUnit   map[string]Rate
}

// ParseRates builds a rate table from configuration strings. Currency codes
// are normalized (viper lower-cases map keys, so "eur" must work) and must be
// active ISO-4217 codes; two keys naming one currency are an error; a rate
// for the reporting currency itself must be 1.
func ParseRates(reporting string, perUnit map[string]string) (Rates, error) {
	rep, err := money.NormalizeCurrency(reporting)
	if err != nil {
		return Rates{}, fmt.Errorf("reporting currency: %w", err)
	}
	out := Rates{Reporting: rep, PerUnit: make(map[string]Rate, len(perUnit))}
	for code, s := range perUnit {
		cur, err := money.NormalizeCurrency(code)
		if err != nil {
			return Rates{}, fmt.Errorf("rates: %w", err)
		}
		if _, dup := out.PerUnit[cur]; dup {
			return Rates{}, fmt.Errorf("rates: %s listed twice", cur)
		}
		rate, err := ParseRate(strings.TrimSpace(s))
		if err != nil {
			return Rates{}, fmt.Errorf("rates: %s: %w", cur, err)
		}
		out.PerUnit[cur] = rate
	}
	return out, out.Validate()
}

// Validate checks a table built by hand: a known reporting currency, known
// upper-case keys, valid rates, and 1 for the reporting currency itself.
func (r Rates) Validate() error {
	if rep, err := money.NormalizeCurrency(r.Reporting); err != nil || rep != r.Reporting {
		return fmt.Errorf("reporting currency %q: %w", r.Reporting, money.ErrCurrency)
	}
	for cur, rate := range r.PerUnit {
		if c, err := money.NormalizeCurrency(cur); err != nil || c != cur {
			return fmt.Errorf("rates: currency %q: %w (upper-case ISO-4217 code expected)", cur, money.ErrCurrency)
		}
		if rate.mant == 0 {
			return fmt.Errorf("rates: %s: %w: zero", cur, ErrRate)
		}
		if cur == r.Reporting && rate.String() != "1" {
			return fmt.Errorf("rates: %s is the reporting currency, its rate must be 1, not %s", cur, rate)
		}
	}
	return nil
}

// Convert returns a, an amount in currency, in the reporting currency,
// rounded half away from zero to the micro. The reporting currency converts
// to itself without a table entry; zero converts to zero whatever its
// currency (an event without revenue has none). A missing rate, or a
// non-zero amount without a currency, is ErrNoRate, never a guess.
func (r Rates) Convert(a money.Amount, currency string) (money.Amount, error) {
	switch {
	case a == 0:
		return 0, nil
	case currency == "":
		return 0, fmt.Errorf("%s without a currency: %w", a, ErrNoRate)
	case currency == r.Reporting:
		return a, nil
	}
	rate, ok := r.PerUnit[currency]
	if !ok {
		return 0, fmt.Errorf("%s %q to %s: %w", a, currency, r.Reporting, ErrNoRate)
	}
	return rate.apply(a)
}
