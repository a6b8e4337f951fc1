package units

import (
	"errors"
	"math"
	"testing"
	"time"
)

func TestParseDuration(t *testing.T) {
	tests := []struct {
		in   string
		want time.Duration
	}{
		{"10", 10 * time.Second},
		{"0", 0},
		{"1.5", 1500 * time.Millisecond},
		{"250ms", 250 * time.Millisecond},
		{"30s", 30 * time.Second},
		{"10m", 10 * time.Minute},
		{"2h", 2 * time.Hour},
		{"0.5h", 30 * time.Minute},
		{"  7s\t", 7 * time.Second},
		{"5 s", 5 * time.Second},
		{".25s", 250 * time.Millisecond},
		{"+3", 3 * time.Second},
		{"-0", 0},
		{"1.5ms", 1500 * time.Microsecond},
		{"99999999999999999999h", time.Duration(math.MaxInt64)}, // saturates
	}
	for _, tc := range tests {
		got, err := ParseDuration(tc.in)
		if err != nil {
			t.Errorf("ParseDuration(%q): %v", tc.in, err)
			continue
		}
		if got != tc.want {
			t.Errorf("ParseDuration(%q) = %v, want %v", tc.in, got, tc.want)
		}
	}
}

func TestParseDurationSyntaxErrors(t *testing.T) {
	for _, in := range []string{"", "   ", "abc", "10x", "s", "ms", "1e3", "1.2.3s", "10 minutes", "nan", "inf", "--1", "5S"} {
		_, err := ParseDuration(in)
		var de *DurationError
		if !errors.As(err, &de) {
			t.Errorf("ParseDuration(%q) error = %v, want *DurationError", in, err)
			continue
		}
		if de.Range {
			t.Errorf("ParseDuration(%q): got range error, want syntax error", in)
		}
		want := "duration: cannot parse `" + in + "` (expected number or `Nms`/`Ns`/`Nm`/`Nh`)"
		if err.Error() != want {
			t.Errorf("ParseDuration(%q) error = %q, want %q", in, err, want)
		}
	}
}

func TestParseDurationRangeErrors(t *testing.T) {
	for _, in := range []string{"-1", "-5s", " -0.5m "} {
		_, err := ParseDuration(in)
		var de *DurationError
		if !errors.As(err, &de) || !de.Range {
			t.Errorf("ParseDuration(%q) error = %v, want range error", in, err)
			continue
		}
		want := "duration: must be a finite, non-negative number (got " + in + ")"
		if err.Error() != want {
			t.Errorf("ParseDuration(%q) error = %q, want %q", in, err, want)
		}
	}
}

func TestDurationErrorSites(t *testing.T) {
	if got, want := DurationSyntaxError("vm:run", "x").Error(),
		"vm:run: duration: cannot parse `x` (expected number or `Nms`/`Ns`/`Nm`/`Nh`)"; got != want {
		t.Errorf("syntax = %q, want %q", got, want)
	}
	if got, want := DurationRangeError("proc:wait", "-1").Error(),
		"proc:wait: duration: must be a finite, non-negative number (got -1)"; got != want {
		t.Errorf("range = %q, want %q", got, want)
	}
	_, err := ParseDuration("oops")
	sited := AtSite(err, "meta.timeout")
	if want := "meta.timeout: duration: cannot parse `oops` (expected number or `Nms`/`Ns`/`Nm`/`Nh`)"; sited.Error() != want {
		t.Errorf("AtSite = %q, want %q", sited, want)
	}
	if err.Error() == sited.Error() {
		t.Error("AtSite modified the original error")
	}
	other := errors.New("boom")
	if AtSite(other, "x") != other {
		t.Error("AtSite changed a non-duration error")
	}
}

func TestSecondsToDuration(t *testing.T) {
	d, err := SecondsToDuration(2.5)
	if err != nil || d != 2500*time.Millisecond {
		t.Fatalf("SecondsToDuration(2.5) = %v, %v", d, err)
	}
	if d, err := SecondsToDuration(0); err != nil || d != 0 {
		t.Fatalf("SecondsToDuration(0) = %v, %v", d, err)
	}
	bad := []struct {
		in  float64
		got string
	}{
		{-1, "-1.0"},
		{-0.5, "-0.5"},
		{math.NaN(), "nan"},
		{math.Copysign(math.NaN(), -1), "-nan"},
		{math.Inf(1), "inf"},
		{math.Inf(-1), "-inf"},
	}
	for _, tc := range bad {
		_, err := SecondsToDuration(tc.in)
		want := "duration: must be a finite, non-negative number (got " + tc.got + ")"
		if err == nil || err.Error() != want {
			t.Errorf("SecondsToDuration(%v) error = %v, want %q", tc.in, err, want)
		}
	}
}

func TestFormatLuaFloat(t *testing.T) {
	tests := map[float64]string{
		1:          "1.0",
		-3:         "-3.0",
		0.1:        "0.1",
		2.5:        "2.5",
		1e20:       "1e+20",
		1e-5:       "1e-05",
		1.0 / 3:    "0.33333333333333",
		123456.789: "123456.789",
		1e15:       "1e+15",
		1e14:       "1e+14",
		1e13:       "10000000000000.0",
	}
	for in, want := range tests {
		if got := FormatLuaFloat(in); got != want {
			t.Errorf("FormatLuaFloat(%v) = %q, want %q", in, got, want)
		}
	}
}

func TestParseTimeoutFlag(t *testing.T) {
	d, err := ParseTimeoutFlag("10m")
	if err != nil || d != 10*time.Minute {
		t.Fatalf("ParseTimeoutFlag(10m) = %v, %v", d, err)
	}
	if d, err := ParseTimeoutFlag("0"); err != nil || d != 0 {
		t.Fatalf("ParseTimeoutFlag(0) = %v, %v", d, err)
	}
	for _, in := range []string{"soon", "-5"} {
		_, err := ParseTimeoutFlag(in)
		want := "--timeout: cannot parse `" + in + "` (try `300`, `30s`, `10m`, `2h`)"
		if err == nil || err.Error() != want {
			t.Errorf("ParseTimeoutFlag(%q) error = %v, want %q", in, err, want)
		}
	}
}
