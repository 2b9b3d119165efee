package postback

import (
	"errors"
	"strconv"
	"strings"

	"github.com/adtrack/postback/pkg/money"
)

// ParseAmount reads a decimal amount in currency units ("4.99", "-0.5",
// "+3"). MMPs that serialize binary floats send noise such as
// "0.30000000000000004": digits beyond the sixth decimal place (money.Scale)
// are rounded half away from zero by decimal arithmetic on the string (no
// float is involved), instead of refusing the postback for them.
func ParseAmount(s string) (money.Amount, error) {
	a, err := money.Parse(s)
	if err == nil || !errors.Is(err, money.ErrPrecision) {
		return a, amountErr(s, err)
	}
	// Only reached for more than six fractional digits, all of them digits.
	intPart, frac, _ := strings.Cut(s, ".")
	a, err = money.Parse(intPart + "." + frac[:money.Scale])
	if err != nil {
		return 0, amountErr(s, err)
	}
	if frac[money.Scale] >= '5' {
		if strings.HasPrefix(s, "-") {
			a--
		} else {
			a++
		}
	}
	return a, nil
}

// ParseCents reads an integer count of hundredths (Adjust's {revenue});
// a zero fraction ("199.0") is tolerated, any other is an error.
func ParseCents(s string) (money.Amount, error) {
	whole, frac, _ := strings.Cut(s, ".")
	if strings.Trim(frac, "0") != "" {
		return 0, &valueError{msg: "not a whole number of cents", kind: money.ErrSyntax}
	}
	c, err := strconv.ParseInt(whole, 10, 64)
	if err != nil {
		if errors.Is(err, strconv.ErrRange) {
			return 0, &valueError{msg: money.ErrRange.Error(), kind: money.ErrRange}
		}
		return 0, &valueError{msg: "not a whole number of cents", kind: money.ErrSyntax}
	}
	a, err := money.FromCents(c)
	if err != nil {
		return 0, &valueError{msg: money.ErrRange.Error(), kind: money.ErrRange}
	}
	return a, nil
}

// amountErr turns money's errors (which quote the value) into the plain
// problem of a FieldError: `field "revenue": not a decimal number`.
func amountErr(s string, err error) error {
	if err == nil {
		return nil
	}
	for _, kind := range []error{money.ErrSyntax, money.ErrRange, money.ErrPrecision} {
		if errors.Is(err, kind) {
			return &valueError{msg: kind.Error(), kind: kind}
		}
	}
	return &valueError{msg: quoteShort(s) + ": " + err.Error(), kind: err}
}

// NormalizeCurrency upper-cases and checks an ISO-4217 code (money's list);
// unknown codes are refused so revenue in a typo'd currency never reaches an
// aggregate.
func NormalizeCurrency(s string) (string, error) {
	c, err := money.NormalizeCurrency(s)
	if err != nil {
		return "", &valueError{msg: "unknown ISO-4217 currency " + quoteShort(s), kind: money.ErrCurrency}
	}
	return c, nil
}
