package units

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// Duration error texts (10-lua-api.md §1, 20-cli-config.md §3.6). The site
// prefix is added by DurationError.Error when a site is known.
const (
	errDurationSyntax = "duration: cannot parse `%s` (expected number or `Nms`/`Ns`/`Nm`/`Nh`)"
	errDurationRange  = "duration: must be a finite, non-negative number (got %s)"
	errTimeoutFlag    = "--timeout: cannot parse `%s` (try `300`, `30s`, `10m`, `2h`)"
)

// DurationError reports a duration that is malformed (Range false) or out of
// range (Range true: negative, NaN or infinite). Site is the API call site
// that received it ("vm:run", "meta.timeout"); callers that know the site set
// it with AtSite or construct the error with DurationSyntaxError /
// DurationRangeError.
type DurationError struct {
	Site  string
	Value string // the offending value as the user wrote it
	Range bool
}

func (e *DurationError) Error() string {
	var msg string
	if e.Range {
		msg = fmt.Sprintf(errDurationRange, e.Value)
	} else {
		msg = fmt.Sprintf(errDurationSyntax, e.Value)
	}
	if e.Site == "" {
		return msg
	}
	return e.Site + ": " + msg
}

// DurationSyntaxError builds the "cannot parse" error for a call site.
func DurationSyntaxError(site, x string) error {
	return &DurationError{Site: site, Value: x}
}

// DurationRangeError builds the "must be a finite, non-negative number" error for a call site.
func DurationRangeError(site, x string) error {
	return &DurationError{Site: site, Value: x, Range: true}
}

// AtSite returns err with its call site set when it is a *DurationError; any
// other error is returned unchanged. The original error is not modified.
func AtSite(err error, site string) error {
	de, ok := err.(*DurationError)
	if !ok {
		return err
	}
	c := *de
	c.Site = site
	return &c
}

// durationUnits maps a suffix to its length; "" means seconds. Longest
// suffixes are tried first so "ms" is not read as "m" + "s".
var durationUnits = []struct {
	suffix string
	unit   time.Duration
}{
	{"ms", time.Millisecond},
	{"s", time.Second},
	{"m", time.Minute},
	{"h", time.Hour},
}

// ParseDuration parses `<number><unit>` (unit ms, s, m or h) or a bare number
// of seconds, with surrounding whitespace ignored and decimals allowed
// ("1.5s", " 250ms ", "10"). A negative number is a range error; anything
// else that is not of that shape is a syntax error. Both are *DurationError
// without a site.
func ParseDuration(s string) (time.Duration, error) {
	t := strings.TrimSpace(s)
	num, unit := t, time.Second
	for _, u := range durationUnits {
		if strings.HasSuffix(t, u.suffix) {
			num, unit = strings.TrimSpace(strings.TrimSuffix(t, u.suffix)), u.unit
			break
		}
	}
	neg := false
	if rest, ok := strings.CutPrefix(num, "-"); ok {
		neg, num = true, rest
	} else {
		num = strings.TrimPrefix(num, "+")
	}
	if _, _, ok := splitDecimal(num); !ok {
		return 0, &DurationError{Value: s}
	}
	f, err := strconv.ParseFloat(num, 64)
	if err != nil {
		// Only an out-of-range literal gets here (splitDecimal vetted the
		// shape); such a value is infinite for our purposes.
		return 0, &DurationError{Value: s, Range: true}
	}
	if neg && f != 0 {
		return 0, &DurationError{Value: s, Range: true}
	}
	return scaleDuration(f, unit), nil
}

// SecondsToDuration converts a Lua number of seconds. Negative, NaN and
// infinite values are range errors whose Value is formatted as Lua's
// tostring would print the number.
func SecondsToDuration(f float64) (time.Duration, error) {
	if math.IsNaN(f) || math.IsInf(f, 0) || f < 0 {
		return 0, &DurationError{Value: FormatLuaFloat(f), Range: true}
	}
	return scaleDuration(f, time.Second), nil
}

// scaleDuration multiplies f by unit, saturating at the largest Duration
// (about 292 years) so that absurdly large timeouts mean "practically
// forever" instead of wrapping negative.
func scaleDuration(f float64, unit time.Duration) time.Duration {
	v := f * float64(unit)
	if v >= math.MaxInt64 {
		return time.Duration(math.MaxInt64)
	}
	return time.Duration(math.Round(v))
}

// FormatLuaFloat renders a float the way Lua 5.4's tostring does ("%.14g",
// with ".0" added when the result would otherwise read as an integer), so
// error messages quote numbers exactly as the test author sees them.
func FormatLuaFloat(f float64) string {
	switch {
	case math.IsNaN(f):
		// glibc prints the sign of a NaN; 0/0 in Lua yields "-nan" on x86.
		if math.Signbit(f) {
			return "-nan"
		}
		return "nan"
	case math.IsInf(f, 1):
		return "inf"
	case math.IsInf(f, -1):
		return "-inf"
	}
	s := strconv.FormatFloat(f, 'g', 14, 64)
	// Go's 'g' keeps trailing zeros with an explicit precision; %g in C drops them.
	if mant, exp, ok := strings.Cut(s, "e"); ok {
		s = trimFracZeros(mant) + "e" + normalizeExp(exp)
	} else {
		s = trimFracZeros(s)
	}
	if !strings.ContainsAny(s, ".en") {
		s += ".0"
	}
	return s
}

func trimFracZeros(s string) string {
	if !strings.Contains(s, ".") {
		return s
	}
	s = strings.TrimRight(s, "0")
	return strings.TrimSuffix(s, ".")
}

// normalizeExp renders an exponent like C's printf: sign and at least two digits.
func normalizeExp(exp string) string {
	sign := "+"
	if exp[0] == '-' || exp[0] == '+' {
		if exp[0] == '-' {
			sign = "-"
		}
		exp = exp[1:]
	}
	exp = strings.TrimLeft(exp, "0")
	for len(exp) < 2 {
		exp = "0" + exp
	}
	return sign + exp
}

// TimeoutFlagError is the CLI's `--timeout` parse failure.
type TimeoutFlagError struct{ Value string }

func (e *TimeoutFlagError) Error() string { return fmt.Sprintf(errTimeoutFlag, e.Value) }

// ParseTimeoutFlag parses the value of `--timeout`; 0 is valid and means
// "no per-file budget" (the caller interprets it).
func ParseTimeoutFlag(s string) (time.Duration, error) {
	d, err := ParseDuration(s)
	if err != nil {
		return 0, &TimeoutFlagError{Value: s}
	}
	return d, nil
}
