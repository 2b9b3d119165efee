// Package money holds exact monetary amounts and ISO-4217 currency codes.
//
// Amounts are fixed-point integers in millionths of a currency unit, so that
// revenue and cost sums in Kafka, in Go and in ClickHouse (Decimal(18, 6))
// agree to the last digit; floats never touch money in this project.
package money

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
)

// Scale is the number of fractional decimal digits an Amount keeps.
const Scale = 6

const unit = 1_000_000 // 10^Scale

// Amount is a signed amount in millionths of a currency unit (micros).
// Its JSON form is a decimal string such as "1.99", never a float.
type Amount int64

// Errors returned by Parse; match them with errors.Is.
var (
	ErrSyntax    = errors.New("not a decimal number")
	ErrRange     = errors.New("amount out of range")
	ErrPrecision = errors.New("more than 6 decimal places")
)

// maxUnits keeps |amount| * 10^6 inside int64 with room for sums.
const maxUnits = 1_000_000_000_000 // one trillion units

// Parse reads a plain decimal ("12", "-0.5", "1.990") into an Amount.
// Exponents, thousands separators and more than six fractional digits
// (other than trailing zeros) are refused rather than rounded.
func Parse(s string) (Amount, error) {
	if s == "" {
		return 0, fmt.Errorf("%q: %w", s, ErrSyntax)
	}
	neg := false
	body := s
	switch body[0] {
	case '-':
		neg, body = true, body[1:]
	case '+':
		body = body[1:]
	}
	intPart, frac, hasDot := strings.Cut(body, ".")
	if intPart == "" && (!hasDot || frac == "") {
		return 0, fmt.Errorf("%q: %w", s, ErrSyntax)
	}
	if !digits(intPart) || !digits(frac) {
		return 0, fmt.Errorf("%q: %w", s, ErrSyntax)
	}
	frac = strings.TrimRight(frac, "0")
	if len(frac) > Scale {
		return 0, fmt.Errorf("%q: %w", s, ErrPrecision)
	}
	intPart = strings.TrimLeft(intPart, "0")
	if len(intPart) > 13 {
		return 0, fmt.Errorf("%q: %w", s, ErrRange)
	}
	var units int64
	if intPart != "" {
		u, err := strconv.ParseInt(intPart, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("%q: %w", s, ErrSyntax)
		}
		units = u
	}
	if units > maxUnits {
		return 0, fmt.Errorf("%q: %w", s, ErrRange)
	}
	var micros int64
	if frac != "" {
		f, _ := strconv.ParseInt(frac+strings.Repeat("0", Scale-len(frac)), 10, 64)
		micros = f
	}
	v := units*unit + micros
	if neg {
		v = -v
	}
	return Amount(v), nil
}

func digits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// FromCents converts an amount in hundredths (Adjust's {revenue}) to an Amount.
func FromCents(cents int64) (Amount, error) {
	if cents > maxUnits*100 || cents < -maxUnits*100 {
		return 0, fmt.Errorf("%d cents: %w", cents, ErrRange)
	}
	return Amount(cents * (unit / 100)), nil
}

// FromMicros returns the Amount of m millionths.
func FromMicros(m int64) Amount { return Amount(m) }

// Micros returns the amount in millionths of a unit.
func (a Amount) Micros() int64 { return int64(a) }

// MulDiv returns a*num/den rounded half away from zero; it is how a CPM bid
// becomes the cost of one impression (num=1, den=1000) and how exchange
// rates (expressed as micros) apply. den must be positive.
func (a Amount) MulDiv(num, den int64) Amount {
	if den <= 0 {
		return 0
	}
	// float-free: split to avoid overflow for the ranges money allows.
	q, r := int64(a)/den, int64(a)%den
	res := q*num + (r*num)/den
	rem := (r * num) % den
	if 2*abs(rem) >= den {
		if (int64(a) < 0) != (num < 0) {
			res--
		} else {
			res++
		}
	}
	return Amount(res)
}

func abs(v int64) int64 {
	if v < 0 {
		if v == math.MinInt64 {
			return math.MaxInt64
		}
		return -v
	}
	return v
}

// String formats the amount as a plain decimal with no trailing zeros
// ("1.99", "0", "-0.000001").
func (a Amount) String() string {
	v := int64(a)
	neg := v < 0
	if neg {
		v = -v
	}
	s := strconv.FormatInt(v/unit, 10)
	if f := v % unit; f != 0 {
		fs := strconv.FormatInt(f+unit, 10)[1:] // zero-padded to 6 digits
		s += "." + strings.TrimRight(fs, "0")
	}
	if neg {
		s = "-" + s
	}
	return s
}

// MarshalJSON encodes the amount as a JSON string holding its decimal form.
func (a Amount) MarshalJSON() ([]byte, error) {
	return strconv.AppendQuote(nil, a.String()), nil
}

// UnmarshalJSON accepts a JSON string or number holding a plain decimal.
func (a *Amount) UnmarshalJSON(b []byte) error {
	s := string(b)
	if len(s) >= 2 && s[0] == '"' {
		u, err := strconv.Unquote(s)
		if err != nil {
			return fmt.Errorf("amount %s: %w", s, ErrSyntax)
		}
		s = u
	}
	v, err := Parse(s)
	if err != nil {
		return err
	}
	*a = v
	return nil
}
