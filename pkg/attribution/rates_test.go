package attribution

import (
	"errors"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/adtrack/postback/pkg/money"
)

func mustRate(t testing.TB, s string) Rate {
	t.Helper()
	r, err := ParseRate(s)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func amount(t testing.TB, s string) money.Amount {
	t.Helper()
	a, err := money.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func TestParseRate(t *testing.T) {
	good := map[string]string{
		"1": "1", "1.0": "1", "01.08": "1.08", ".5": "0.5", "0.0000393": "0.0000393",
		"25000": "25000", "0.000000000000000001": "0.000000000000000001", "1.100": "1.1",
		"18446744073.709551615": "18446744073.709551615",
	}
	for in, want := range good {
		r, err := ParseRate(in)
		if err != nil || r.String() != want {
			t.Errorf("ParseRate(%q) = %v, %v; want %s", in, r, err, want)
		}
	}
	for _, bad := range []string{"", ".", "0", "0.000", "-1", "+1", "1e3", "1,5", "abc", " 1",
		"0.0000000000000000001", "18446744073.709551616", "99999999999999999999"} {
		if _, err := ParseRate(bad); !errors.Is(err, ErrRate) {
			t.Errorf("ParseRate(%q) error = %v, want ErrRate", bad, err)
		}
	}
	if r, err := RateOf(1_080_000); err != nil || r.String() != "1.08" {
		t.Errorf("RateOf(1.08) = %v, %v", r, err)
	}
	if _, err := RateOf(0); !errors.Is(err, ErrRate) {
		t.Errorf("RateOf(0) error = %v", err)
	}
}

func TestParseRates(t *testing.T) {
	// viper lower-cases map keys: they must still work.
	r, err := ParseRates("usd", map[string]string{"eur": "1.08", "JPY": "0.0067", "usd": "1"})
	if err != nil {
		t.Fatal(err)
	}
	if r.Reporting != "USD" || r.PerUnit["EUR"].String() != "1.08" || r.PerUnit["JPY"].String() != "0.0067" {
		t.Fatalf("ParseRates = %+v", r)
	}
	bad := []struct {
		name, rep string
		rates     map[string]string
		is        error
	}{
		{"unknown reporting", "USX", nil, money.ErrCurrency},
		{"unknown key", "USD", map[string]string{"EUX": "1"}, money.ErrCurrency},
		{"bad rate", "USD", map[string]string{"EUR": "1,08"}, ErrRate},
		{"zero rate", "USD", map[string]string{"EUR": "0"}, ErrRate},
		{"twice", "USD", map[string]string{"eur": "1.08", "EUR": "1.09"}, nil},
		{"reporting not 1", "USD", map[string]string{"usd": "1.01"}, nil},
	}
	for _, tt := range bad {
		_, err := ParseRates(tt.rep, tt.rates)
		if err == nil || (tt.is != nil && !errors.Is(err, tt.is)) {
			t.Errorf("%s: error = %v, want %v", tt.name, err, tt.is)
		}
	}
	// A hand-built table must be canonical.
	if err := (Rates{Reporting: "usd"}).Validate(); err == nil {
		t.Error("lower-case reporting currency accepted")
	}
	if err := (Rates{Reporting: "USD", PerUnit: map[string]Rate{"eur": mustRate(t, "1")}}).Validate(); err == nil {
		t.Error("lower-case key accepted")
	}
	if err := (Rates{Reporting: "USD", PerUnit: map[string]Rate{"EUR": {}}}).Validate(); !errors.Is(err, ErrRate) {
		t.Errorf("zero Rate: %v", err)
	}
}

func TestConvert(t *testing.T) {
	rates := Rates{Reporting: "USD", PerUnit: map[string]Rate{
		"EUR": mustRate(t, "1.08"),
		"JPY": mustRate(t, "0.0067"),
		"VND": mustRate(t, "0.0000393"),
		"GBP": mustRate(t, "0.5"),                  // makes .5-micro results to test rounding
		"KWD": mustRate(t, "3.254123456789012345"), // 18 decimals
	}}
	if err := rates.Validate(); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		amount, cur, want string
	}{
		{"10", "EUR", "10.8"},
		{"19.99", "EUR", "21.5892"},
		{"-19.99", "EUR", "-21.5892"}, // refunds convert symmetrically
		{"1500", "JPY", "10.05"},
		{"1234567", "VND", "48.518483"}, // 48.5184831: 6 decimals of rate would give 48.148113
		{"0.000001", "GBP", "0.000001"}, // 0.5 micro rounds half away from zero
		{"-0.000001", "GBP", "-0.000001"},
		{"0.000003", "GBP", "0.000002"}, // 1.5 micro -> 2
		{"1", "KWD", "3.254123"},
		{"0.5", "KWD", "1.627062"}, // 1.6270617283945... -> 1.627062
		{"7.25", "USD", "7.25"},    // the reporting currency needs no entry
		{"0", "XXX", "0"},          // no revenue converts whatever its currency
		{"0", "", "0"},
		{"999999999999.999999", "USD", "999999999999.999999"},
	}
	for _, tt := range tests {
		got, err := rates.Convert(amount(t, tt.amount), tt.cur)
		if err != nil || got.String() != tt.want {
			t.Errorf("Convert(%s %s) = %s, %v; want %s", tt.amount, tt.cur, got, err, tt.want)
		}
	}
	for _, cur := range []string{"CHF", "eur", ""} {
		if _, err := rates.Convert(amount(t, "1"), cur); !errors.Is(err, ErrNoRate) {
			t.Errorf("Convert(1 %q) error = %v, want ErrNoRate", cur, err)
		}
	}
	// A non-zero amount without a currency is never passed through, not
	// even by a zero table whose reporting currency is empty too.
	if _, err := (Rates{}).Convert(amount(t, "1"), ""); !errors.Is(err, ErrNoRate) {
		t.Errorf("zero Rates: Convert(1 \"\") error = %v, want ErrNoRate", err)
	}
	// Beyond Decimal(18, 6): an error, not a wrapped or clipped number.
	two := Rates{Reporting: "USD", PerUnit: map[string]Rate{"EUR": mustRate(t, "2")}}
	if got, err := two.Convert(amount(t, "499999999999.999999"), "EUR"); err != nil || got.String() != "999999999999.999998" {
		t.Errorf("largest conversion = %s, %v", got, err)
	}
	if got, err := two.Convert(amount(t, "500000000000"), "EUR"); !errors.Is(err, money.ErrRange) {
		t.Errorf("Convert(5e11 * 2) = %s, %v; want money.ErrRange at 10^12", got, err)
	}
	big := Rates{Reporting: "USD", PerUnit: map[string]Rate{"IRR": mustRate(t, "600000"), "EUR": mustRate(t, "1.08")}}
	for _, a := range []money.Amount{amount(t, "1000000000000"), money.FromMicros(math.MaxInt64), money.FromMicros(math.MinInt64)} {
		for _, cur := range []string{"IRR", "EUR"} {
			if got, err := big.Convert(a, cur); !errors.Is(err, money.ErrRange) {
				t.Errorf("Convert(%s %s) = %s, %v; want money.ErrRange", a, cur, got, err)
			}
		}
	}
}

// TestConvertMatchesMulDiv: for rates with six decimals the conversion is
// exactly money.Amount.MulDiv with the rate in micros, the project's one
// rounding rule; the 128-bit product only adds range and precision.
func TestConvertMatchesMulDiv(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for i := 0; i < 100_000; i++ {
		a := money.FromMicros(rng.Int64N(2_000_000_000_000) - 1_000_000_000_000) // ±1M units
		micros := rng.Int64N(10_000_000) + 1                                     // 0.000001 .. 10
		rate, err := RateOf(money.FromMicros(micros))
		if err != nil {
			t.Fatal(err)
		}
		got, err := rate.apply(a)
		if want := a.MulDiv(micros, 1_000_000); err != nil || got != want {
			t.Fatalf("%s * %s = %s, %v; MulDiv says %s", a, rate, got, err, want)
		}
	}
}
