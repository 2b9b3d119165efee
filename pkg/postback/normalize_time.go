package postback

import (
	"errors"
	"strconv"
	"time"
)

// TimeUnit says how a numeric timestamp is read.
type TimeUnit uint8

// Time units. UnitAuto reads values below 1e11 as unix seconds (that is up to
// the year 5138) and larger ones as unix milliseconds (1e11 ms is 1973, well
// before any valid time); it is used unless an MMP documents its unit.
const (
	UnitAuto TimeUnit = iota
	UnitSeconds
	UnitMillis
)

// String names the unit for error messages.
func (u TimeUnit) String() string {
	switch u {
	case UnitSeconds:
		return "unix seconds"
	case UnitMillis:
		return "unix milliseconds"
	}
	return "auto"
}

// Errors of ParseTime; match them with errors.Is.
var (
	ErrTimeSyntax = errors.New("not a unix timestamp, an RFC 3339 time or a \"YYYY-MM-DD HH:MM:SS\" UTC time")
	ErrTimeRange  = errors.New("time out of range")
)

// Bounds of a valid postback time. Nothing we attribute predates 2000, so an
// earlier year means a wrong unit (milliseconds read as seconds gives year
// 50000+, seconds read as milliseconds 1970); the MMPs' clocks are never a
// day ahead of ours, so later means a wrong unit or a forged request.
const (
	minUnix     = 946684800 // 2000-01-01T00:00:00Z
	maxAhead    = 24 * time.Hour
	secondsMax  = 1e11 // UnitAuto: below are seconds, above milliseconds
	millisMax   = 1e14 // UnitAuto: above are micro- or nanoseconds, refused
	maxIntDigit = 18   // keeps every product below in int64
)

// ParseTime reads a postback time and returns it in UTC: unix seconds or
// milliseconds (with an optional fraction, e.g. "1732788000.25"), RFC 3339
// with any offset, or "YYYY-MM-DD HH:MM:SS[.fff]" taken as UTC. Numbers are
// read in unit. The time must fall in the year 2000 or later and at most a
// day after receivedAt (unchecked when receivedAt is zero); the error says
// which bound it broke and how the value was read.
func ParseTime(s string, unit TimeUnit, receivedAt time.Time) (time.Time, error) {
	if s == "" {
		return time.Time{}, timeSyntax(s)
	}
	var (
		t    time.Time
		read TimeUnit
		err  error
	)
	if isDigit(s[0]) && (len(s) < 5 || s[4] != '-') {
		t, read, err = parseUnix(s, unit)
	} else {
		t, err = parseDateTime(s)
	}
	if err != nil {
		return time.Time{}, err
	}
	return t, checkTime(t, read, receivedAt)
}

func checkTime(t time.Time, read TimeUnit, receivedAt time.Time) error {
	switch {
	case t.Unix() < minUnix: // cheaper than t.Year(), which would run on every postback
		return &valueError{msg: "year " + strconv.Itoa(t.Year()) + " is before 2000" + readAs(read), kind: ErrTimeRange}
	case !receivedAt.IsZero() && t.After(receivedAt.Add(maxAhead)):
		return &valueError{
			msg:  t.Format(time.RFC3339) + " is more than a day after the postback was received" + readAs(read),
			kind: ErrTimeRange,
		}
	}
	return nil
}

// readAs tells, in an error, how a numeric time was read.
func readAs(u TimeUnit) string {
	if u == UnitAuto {
		return ""
	}
	return " (read as " + u.String() + ")"
}

// parseUnix reads "<digits>[.<digits>]" in unit, and says which unit it used.
func parseUnix(s string, unit TimeUnit) (time.Time, TimeUnit, error) {
	intPart, frac := s, ""
	for i := 0; i < len(s); i++ {
		if s[i] == '.' {
			intPart, frac = s[:i], s[i+1:]
			break
		}
	}
	if intPart == "" || len(intPart) > maxIntDigit || !allDigits(intPart) || !allDigits(frac) {
		return time.Time{}, UnitAuto, timeSyntax(s)
	}
	n, _ := strconv.ParseInt(intPart, 10, 64) // at most 18 digits: cannot fail
	if unit == UnitAuto {
		switch {
		case n < secondsMax:
			unit = UnitSeconds
		case n < millisMax:
			unit = UnitMillis
		default:
			return time.Time{}, UnitAuto, &valueError{
				msg:  "unix time " + quoteShort(s) + " is too large for seconds or milliseconds (micro- or nanoseconds are not accepted)",
				kind: ErrTimeRange,
			}
		}
	}
	if unit == UnitMillis {
		// The fraction is of a millisecond: up to 6 more digits matter.
		return time.Unix(n/1000, (n%1000)*1e6+fracNanos(frac, 6)).UTC(), unit, nil
	}
	return time.Unix(n, fracNanos(frac, 9)).UTC(), unit, nil
}

// fracNanos reads the leading digits of a decimal fraction as a count of
// 10^-digits units (digits beyond are dropped: sub-nanosecond precision).
func fracNanos(frac string, digits int) int64 {
	var v int64
	for i := 0; i < digits; i++ {
		v *= 10
		if i < len(frac) {
			v += int64(frac[i] - '0')
		}
	}
	return v
}

// parseDateTime reads "YYYY-MM-DD[T ]HH:MM:SS[.frac][Z|±HH:MM|±HHMM| UTC]";
// with no zone the time is UTC. Hand-written because it runs on every
// postback and time.Parse would need several layouts.
func parseDateTime(s string) (time.Time, error) {
	if len(s) < 19 || s[4] != '-' || s[7] != '-' || s[13] != ':' || s[16] != ':' {
		return time.Time{}, timeSyntax(s)
	}
	if c := s[10]; c != 'T' && c != 't' && c != ' ' {
		return time.Time{}, timeSyntax(s)
	}
	year, ok1 := num(s[0:4])
	month, ok2 := num(s[5:7])
	day, ok3 := num(s[8:10])
	hour, ok4 := num(s[11:13])
	minute, ok5 := num(s[14:16])
	sec, ok6 := num(s[17:19])
	if !(ok1 && ok2 && ok3 && ok4 && ok5 && ok6) {
		return time.Time{}, timeSyntax(s)
	}
	rest := s[19:]
	var nanos int64
	if len(rest) > 0 && rest[0] == '.' {
		i := 1
		for i < len(rest) && isDigit(rest[i]) {
			i++
		}
		if i == 1 {
			return time.Time{}, timeSyntax(s)
		}
		nanos = fracNanos(rest[1:i], 9)
		rest = rest[i:]
	}
	offset, ok := zoneOffset(rest)
	if !ok {
		return time.Time{}, timeSyntax(s)
	}
	// time.Date would quietly turn Feb 30 into Mar 2.
	if month < 1 || month > 12 || day < 1 || day > daysIn(month, year) || hour > 23 || minute > 59 || sec > 59 {
		return time.Time{}, &valueError{msg: "time " + quoteShort(s) + " is not a valid date and time", kind: ErrTimeSyntax}
	}
	t := time.Date(year, time.Month(month), day, hour, minute, sec, int(nanos), time.UTC)
	return t.Add(-time.Duration(offset) * time.Second), nil
}

func timeSyntax(s string) error {
	return &valueError{msg: "time " + quoteShort(s) + " is " + ErrTimeSyntax.Error(), kind: ErrTimeSyntax}
}

// daysIn is the number of days of a month in the proleptic Gregorian calendar.
func daysIn(month, year int) int {
	switch month {
	case 2:
		if year%4 == 0 && (year%100 != 0 || year%400 == 0) {
			return 29
		}
		return 28
	case 4, 6, 9, 11:
		return 30
	}
	return 31
}

// zoneOffset reads a zone suffix as seconds east of UTC.
func zoneOffset(z string) (int, bool) {
	switch z {
	case "", "Z", "z", " UTC", "UTC", " Z":
		return 0, true
	}
	if len(z) != 6 && len(z) != 5 {
		return 0, false
	}
	sign := 1
	switch z[0] {
	case '+':
	case '-':
		sign = -1
	default:
		return 0, false
	}
	hh, mm := z[1:3], z[3:]
	if len(z) == 6 {
		if z[3] != ':' {
			return 0, false
		}
		mm = z[4:]
	}
	h, ok1 := num(hh)
	m, ok2 := num(mm)
	if !ok1 || !ok2 || h > 23 || m > 59 {
		return 0, false
	}
	return sign * (h*3600 + m*60), true
}

// num reads a short run of ASCII digits.
func num(s string) (int, bool) {
	v := 0
	for i := 0; i < len(s); i++ {
		if !isDigit(s[i]) {
			return 0, false
		}
		v = v*10 + int(s[i]-'0')
	}
	return v, len(s) > 0
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if !isDigit(s[i]) {
			return false
		}
	}
	return true
}
