package postback

import (
	"errors"
	"strings"
	"testing"
)

func TestNormalizeAdID(t *testing.T) {
	cases := []struct {
		in, want string
		bad      bool
	}{
		{sGAID, sGAID, false},
		{sIDFA, sIDFAOut, false},
		{"6d92078a82464ba4ae5b76104861e7dc", sIDFAOut, false}, // no hyphens (Tenjin)
		{"6D92078A82464BA4AE5B76104861E7DC", sIDFAOut, false},
		{zeroUUID, "", false},
		{"00000000000000000000000000000000", "", false},
		{"00000000-0000-0000-0000-000000000001", "00000000-0000-0000-0000-000000000001", false},
		{"6d92078a-8246-4ba4-ae5b-76104861e7d", "", true},   // 35 characters
		{"6d92078a-8246-4ba4-ae5b-76104861e7dcc", "", true}, // 37
		{"6d92078a-8246-4ba4-ae5b-76104861e7dg", "", true},  // not hex
		{"6d92078a8-246-4ba4-ae5b-76104861e7dc", "", true},  // hyphen misplaced
		{"{6d92078a-8246-4ba4-ae5b-76104861e7}", "", true},
		{"6d92078a-8246-4ba4-ae5b-76104861e7d\x00", "", true},
		{"", "", true},
	}
	for _, c := range cases {
		got, err := NormalizeAdID(c.in)
		if c.bad != (err != nil) || got != c.want {
			t.Errorf("NormalizeAdID(%q) = %q, %v; want %q (error %v)", c.in, got, err, c.want, c.bad)
		}
		if c.bad && !errors.Is(err, ErrNotUUID) {
			t.Errorf("NormalizeAdID(%q) error %v is not ErrNotUUID", c.in, err)
		}
	}
	if n := testing.AllocsPerRun(100, func() { _, _ = NormalizeAdID(sGAID) }); n != 0 {
		t.Errorf("canonical id allocates %v times", n)
	}
}

func TestNormalizeVendorID(t *testing.T) {
	for in, want := range map[string]string{
		sIDFV:                  sIDFVOut,
		zeroUUID:               "",
		"vendor-7":             "vendor-7", // not a UUID: kept as sent
		"":                     "",
		strings.ToLower(sIDFV): sIDFVOut,
	} {
		if got := NormalizeVendorID(in); got != want {
			t.Errorf("NormalizeVendorID(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestNormalizeAppID(t *testing.T) {
	for in, want := range map[string]string{
		"com.example.game": "com.example.game",
		"id1234567890":     "id1234567890",
		"1234567890":       "id1234567890",
		"ID1234567890":     "id1234567890",
		"Id42":             "id42",
		"idea":             "idea",
		"My App":           "My App",
		"":                 "",
	} {
		if got, err := NormalizeAppID(in); err != nil || got != want {
			t.Errorf("NormalizeAppID(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	if _, err := NormalizeAppID(strings.Repeat("a", 257)); !errors.Is(err, ErrTooLong) {
		t.Errorf("257-byte app id: %v, want ErrTooLong", err)
	}
	if got, err := NormalizeAppID(strings.Repeat("a", 256)); err != nil || len(got) != 256 {
		t.Errorf("256-byte app id refused: %v", err)
	}
	if _, err := NormalizeAppID(strings.Repeat("1", 255)); !errors.Is(err, ErrTooLong) {
		t.Errorf("255 digits make a 257-byte app id: %v, want ErrTooLong", err)
	}
	if got, err := NormalizeAppID(strings.Repeat("1", 254)); err != nil || len(got) != 256 {
		t.Errorf("254 digits: %q, %v", got, err)
	}
}
