package postback

import (
	"errors"
	"testing"
)

func TestCountryList(t *testing.T) {
	if n := len(countryCodes) / 2; n != 249 || len(countryCodes)%2 != 0 {
		t.Fatalf("%d codes, want the 249 of ISO 3166-1", n)
	}
	for i := 2; i < len(countryCodes); i += 2 {
		if countryCodes[i-2:i] >= countryCodes[i:i+2] {
			t.Fatalf("codes not sorted at %s, %s", countryCodes[i-2:i], countryCodes[i:i+2])
		}
	}
	for i := 0; i < len(countryCodes); i += 2 {
		code := countryCodes[i : i+2]
		lower := string([]byte{code[0] + 32, code[1] + 32})
		if got, err := NormalizeCountry(lower); err != nil || got != code {
			t.Errorf("NormalizeCountry(%q) = %q, %v", lower, got, err)
		}
	}
}

func TestNormalizeCountry(t *testing.T) {
	for in, want := range map[string]string{
		"US": "US", "us": "US", "De": "DE", "UK": "GB", "uk": "GB", "XK": "XK", "ZZ": "", "zz": "", "XX": "", "--": "",
	} {
		if got, err := NormalizeCountry(in); err != nil || got != want {
			t.Errorf("NormalizeCountry(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, in := range []string{"", "U", "USA", "XY", "AA", "ZY", "00", "U1", "É"} {
		if _, err := NormalizeCountry(in); !errors.Is(err, ErrCountry) {
			t.Errorf("NormalizeCountry(%q) error %v, want ErrCountry", in, err)
		}
	}
}
