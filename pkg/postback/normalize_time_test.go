package postback

import (
	"errors"
	"testing"
	"time"
)

func TestParseTime(t *testing.T) {
	at := func(s string) time.Time {
		v, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	cases := []struct {
		in   string
		unit TimeUnit
		want string // RFC 3339; "" when an error is expected
		err  error
	}{
		// unix seconds and milliseconds, told apart by magnitude
		{"1795853553", UnitAuto, "2026-11-28T08:12:33Z", nil},
		{"1795853553120", UnitAuto, "2026-11-28T08:12:33.12Z", nil},
		{"1795853553.25", UnitAuto, "2026-11-28T08:12:33.25Z", nil},
		{"1795853553120.5", UnitAuto, "2026-11-28T08:12:33.1205Z", nil},
		{"946684800", UnitAuto, "2000-01-01T00:00:00Z", nil},  // first valid second
		{"946684799", UnitAuto, "", ErrTimeRange},             // 1999
		{"99999999999", UnitAuto, "", ErrTimeRange},           // 1e11-1: seconds, year 5138
		{"100000000000", UnitAuto, "", ErrTimeRange},          // 1e11: milliseconds, 1973
		{"99999999999999", UnitAuto, "", ErrTimeRange},        // 1e14-1 ms: year 5138
		{"100000000000000", UnitAuto, "", ErrTimeRange},       // 1e14: microseconds refused
		{"1795853553000000", UnitAuto, "", ErrTimeRange},      // microseconds
		{"1795946400", UnitAuto, "2026-11-29T10:00:00Z", nil}, // exactly a day ahead
		{"1795946401", UnitAuto, "", ErrTimeRange},            // a day and a second
		{"0", UnitAuto, "", ErrTimeRange},
		{"000001795853553", UnitAuto, "2026-11-28T08:12:33Z", nil}, // leading zeros
		{"1234567890123456789", UnitAuto, "", ErrTimeSyntax},       // 19 digits
		// documented units are not guessed
		{"1795853553120", UnitMillis, "2026-11-28T08:12:33.12Z", nil},
		{"1795853553", UnitMillis, "", ErrTimeRange},     // seconds read as ms: 1970
		{"1795853553120", UnitSeconds, "", ErrTimeRange}, // ms read as seconds: far future
		{"1795853553.9", UnitSeconds, "2026-11-28T08:12:33.9Z", nil},
		// date-times
		{"2026-11-28T08:12:33Z", UnitAuto, "2026-11-28T08:12:33Z", nil},
		{"2026-11-28T08:12:33.123456789Z", UnitAuto, "2026-11-28T08:12:33.123456789Z", nil},
		{"2026-11-28T09:12:33+01:00", UnitAuto, "2026-11-28T08:12:33Z", nil},
		{"2026-11-28T03:12:33-0500", UnitAuto, "2026-11-28T08:12:33Z", nil},
		{"2026-11-28 08:12:33", UnitAuto, "2026-11-28T08:12:33Z", nil},
		{"2026-11-28 08:12:33.120", UnitAuto, "2026-11-28T08:12:33.12Z", nil},
		{"2026-11-28 08:12:33 UTC", UnitAuto, "2026-11-28T08:12:33Z", nil},
		{"2026-11-28t08:12:33z", UnitAuto, "2026-11-28T08:12:33Z", nil},
		{"2026-02-30 08:12:33", UnitAuto, "", ErrTimeSyntax},
		{"2026-11-28 24:00:00", UnitAuto, "", ErrTimeSyntax},
		{"2026-11-28 08:12:60", UnitAuto, "", ErrTimeSyntax},
		{"2026-11-28T08:12:33+25:00", UnitAuto, "", ErrTimeSyntax},
		{"2026-11-28T08:12:33.Z", UnitAuto, "", ErrTimeSyntax},
		{"2026-11-28", UnitAuto, "", ErrTimeSyntax},
		{"1999-12-31T23:59:59Z", UnitAuto, "", ErrTimeRange},
		{"2026-11-30T00:00:00Z", UnitAuto, "", ErrTimeRange},
		// garbage
		{"", UnitAuto, "", ErrTimeSyntax},
		{"yesterday", UnitAuto, "", ErrTimeSyntax},
		{"-1795853553", UnitAuto, "", ErrTimeSyntax},
		{"1795853553.", UnitAuto, "2026-11-28T08:12:33Z", nil},
		{".5", UnitAuto, "", ErrTimeSyntax},
		{"1.2.3", UnitAuto, "", ErrTimeSyntax},
		{"1.7958e9", UnitAuto, "", ErrTimeSyntax},
	}
	for _, c := range cases {
		got, err := ParseTime(c.in, c.unit, receivedAt)
		if c.err != nil {
			if !errors.Is(err, c.err) {
				t.Errorf("ParseTime(%q, %v) = %v, %v; want error %v", c.in, c.unit, got, err, c.err)
			}
			continue
		}
		if err != nil || !got.Equal(at(c.want)) || got.Location() != time.UTC {
			t.Errorf("ParseTime(%q, %v) = %v, %v; want %s UTC", c.in, c.unit, got, err, c.want)
		}
	}
}

// TestParseTimeErrorsSayWhy checks that range errors name the bound and the
// unit the value was read in, so a wrong unit is obvious from the message.
func TestParseTimeErrorsSayWhy(t *testing.T) {
	for in, want := range map[string]string{
		"1795853553": "year 1970 is before 2000 (read as unix milliseconds)",
	} {
		_, err := ParseTime(in, UnitMillis, receivedAt)
		if err == nil || err.Error() != want {
			t.Errorf("ParseTime(%q) error %v, want %q", in, err, want)
		}
	}
	_, err := ParseTime("1795953553", UnitAuto, receivedAt)
	if err == nil || err.Error() != "2026-11-29T11:59:13Z is more than a day after the postback was received (read as unix seconds)" {
		t.Errorf("future error: %v", err)
	}
	if _, err := ParseTime("2200-01-01T00:00:00Z", UnitAuto, time.Time{}); err != nil {
		t.Errorf("zero receivedAt must skip the future check: %v", err)
	}
}
