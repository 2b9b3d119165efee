package money

import (
	"errors"
	"testing"

	"github.com/segmentio/encoding/json"
)

func TestParse(t *testing.T) {
	tests := []struct {
		in   string
		want Amount
		err  error
	}{
		{"0", 0, nil},
		{"1", 1_000_000, nil},
		{"1.99", 1_990_000, nil},
		{"-0.5", -500_000, nil},
		{"+2.", 2_000_000, nil},
		{".25", 250_000, nil},
		{"0.000001", 1, nil},
		{"1.2300000000", 1_230_000, nil}, // trailing zeros are not precision
		{"0001.5", 1_500_000, nil},
		{"1000000000000", 1_000_000_000_000_000_000, nil},
		{"1000000000001", 0, ErrRange},
		{"99999999999999999999", 0, ErrRange},
		{"0.0000001", 0, ErrPrecision},
		{"", 0, ErrSyntax},
		{"-", 0, ErrSyntax},
		{".", 0, ErrSyntax},
		{"1e3", 0, ErrSyntax},
		{"1,5", 0, ErrSyntax},
		{"NaN", 0, ErrSyntax},
		{" 1", 0, ErrSyntax},
		{"1.2.3", 0, ErrSyntax},
	}
	for _, tt := range tests {
		got, err := Parse(tt.in)
		if !errors.Is(err, tt.err) {
			t.Errorf("Parse(%q) error = %v, want %v", tt.in, err, tt.err)
			continue
		}
		if got != tt.want {
			t.Errorf("Parse(%q) = %d, want %d", tt.in, got, tt.want)
		}
	}
}

func TestStringRoundTrip(t *testing.T) {
	for _, s := range []string{"0", "1", "1.99", "-0.5", "0.000001", "-123456.789012", "1000000000000"} {
		a, err := Parse(s)
		if err != nil {
			t.Fatalf("Parse(%q): %v", s, err)
		}
		if a.String() != s {
			t.Errorf("Parse(%q).String() = %q", s, a.String())
		}
	}
}

func TestFromCents(t *testing.T) {
	a, err := FromCents(199)
	if err != nil || a.String() != "1.99" {
		t.Fatalf("FromCents(199) = %v, %v; want 1.99", a, err)
	}
	if _, err := FromCents(1 << 62); !errors.Is(err, ErrRange) {
		t.Fatalf("FromCents(huge) error = %v, want ErrRange", err)
	}
}

func TestMulDiv(t *testing.T) {
	tests := []struct {
		a        string
		num, den int64
		want     string
	}{
		{"2.5", 1, 1000, "0.0025"},      // CPM 2.50 -> one impression
		{"0.001", 1, 1000, "0.000001"},  // rounds half up
		{"0.0014", 1, 1000, "0.000001"}, // 1.4 micros -> 1
		{"-0.0015", 1, 1000, "-0.000002"},
		{"10", 1_100_000, 1_000_000, "11"}, // rate 1.1 in micros
		{"3", 1, 0, "0"},
	}
	for _, tt := range tests {
		a, _ := Parse(tt.a)
		if got := a.MulDiv(tt.num, tt.den).String(); got != tt.want {
			t.Errorf("%s.MulDiv(%d,%d) = %s, want %s", tt.a, tt.num, tt.den, got, tt.want)
		}
	}
}

func TestJSON(t *testing.T) {
	type row struct {
		V Amount `json:"v"`
	}
	b, err := json.Marshal(row{V: 1_990_000})
	if err != nil || string(b) != `{"v":"1.99"}` {
		t.Fatalf("Marshal = %s, %v", b, err)
	}
	var r row
	if err := json.Unmarshal([]byte(`{"v":2.5}`), &r); err != nil || r.V != 2_500_000 {
		t.Fatalf("Unmarshal number = %v, %v", r.V, err)
	}
	if err := json.Unmarshal([]byte(`{"v":"x"}`), &r); !errors.Is(err, ErrSyntax) {
		t.Fatalf("Unmarshal bad = %v, want ErrSyntax", err)
	}
}

func TestNormalizeCurrency(t *testing.T) {
	if c, err := NormalizeCurrency("usd"); err != nil || c != "USD" {
		t.Fatalf("usd -> %q, %v", c, err)
	}
	for _, bad := range []string{"", "US", "USDX", "XYZ", "U$D"} {
		if _, err := NormalizeCurrency(bad); !errors.Is(err, ErrCurrency) {
			t.Errorf("NormalizeCurrency(%q) error = %v", bad, err)
		}
	}
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{"1.99", "-0.5", "1e3", "", ".", "1000000000000"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		a, err := Parse(s)
		if err != nil {
			return
		}
		b, err := Parse(a.String())
		if err != nil || b != a {
			t.Fatalf("round trip %q -> %q -> %v, %v", s, a.String(), b, err)
		}
	})
}
