package postback

import (
	"errors"
	"testing"

	"github.com/adtrack/postback/pkg/money"
)

func TestParseAmount(t *testing.T) {
	cases := []struct {
		in   string
		want string
		err  error
	}{
		{"4.99", "4.99", nil},
		{"-4.99", "-4.99", nil}, // refunds
		{"+3", "3", nil},
		{"0", "0", nil},
		{"4.990", "4.99", nil},
		{"0.000001", "0.000001", nil},
		{"0.30000000000000004", "0.3", nil}, // float noise rounded away
		{"4.990000000000001", "4.99", nil},
		{"1.9999995", "2", nil}, // half rounds away from zero...
		{"-1.9999995", "-2", nil},
		{"0.0000005", "0.000001", nil},
		{"0.0000004999", "0", nil}, // ...below half rounds down
		{"-0.0000005", "-0.000001", nil},
		{"1e3", "", money.ErrSyntax},
		{"4,99", "", money.ErrSyntax},
		{"", "", money.ErrSyntax},
		{"abc", "", money.ErrSyntax},
		{"1.2.3", "", money.ErrSyntax},
		{"10000000000000", "", money.ErrRange},
		{"NaN", "", money.ErrSyntax},
	}
	for _, c := range cases {
		got, err := ParseAmount(c.in)
		if c.err != nil {
			if !errors.Is(err, c.err) {
				t.Errorf("ParseAmount(%q) = %v, %v; want error %v", c.in, got, err, c.err)
			}
			continue
		}
		if err != nil || got.String() != c.want {
			t.Errorf("ParseAmount(%q) = %v, %v; want %s", c.in, got, err, c.want)
		}
	}
	if _, err := ParseAmount("4,99"); err == nil || err.Error() != "not a decimal number" {
		t.Errorf("error text %q, want money's plain problem", err)
	}
}

func TestParseCents(t *testing.T) {
	for in, want := range map[string]string{"499": "4.99", "-499": "-4.99", "0": "0", "499.00": "4.99", "+1": "0.01", "100": "1"} {
		if got, err := ParseCents(in); err != nil || got.String() != want {
			t.Errorf("ParseCents(%q) = %v, %v; want %s", in, got, err, want)
		}
	}
	for in, want := range map[string]error{
		"4.99": money.ErrSyntax, "abc": money.ErrSyntax, "": money.ErrSyntax, "1e2": money.ErrSyntax,
		"99999999999999999999": money.ErrRange, "100000000000001": money.ErrRange,
	} {
		if _, err := ParseCents(in); !errors.Is(err, want) {
			t.Errorf("ParseCents(%q) error %v, want %v", in, err, want)
		}
	}
}

func TestNormalizeCurrency(t *testing.T) {
	for in, want := range map[string]string{"usd": "USD", "EUR": "EUR", "jPy": "JPY"} {
		if got, err := NormalizeCurrency(in); err != nil || got != want {
			t.Errorf("NormalizeCurrency(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, in := range []string{"EUX", "US", "USDD", "", "€"} {
		if _, err := NormalizeCurrency(in); !errors.Is(err, money.ErrCurrency) {
			t.Errorf("NormalizeCurrency(%q) error %v, want money.ErrCurrency", in, err)
		}
	}
}
