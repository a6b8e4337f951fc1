package units

import (
	"errors"
	"math"
	"testing"
)

func TestParseSize(t *testing.T) {
	tests := []struct {
		in   string
		want uint64
	}{
		{"1", 1},
		{"1048576", 1 << 20},
		{"512B", 512},
		{"1K", 1024},
		{"1k", 1024},
		{"2KB", 2048},
		{"2kib", 2048},
		{"512M", 512 << 20},
		{"512MiB", 512 << 20},
		{"1.5G", 3 << 29},
		{"1.5g", 3 << 29},
		{"1T", 1 << 40},
		{" 20G ", 20 << 30},
		{".5K", 512},
		{"1.K", 1024},
	}
	for _, tc := range tests {
		got, err := ParseSize(tc.in)
		if err != nil {
			t.Errorf("ParseSize(%q): %v", tc.in, err)
			continue
		}
		if got != tc.want {
			t.Errorf("ParseSize(%q) = %d, want %d", tc.in, got, tc.want)
		}
	}
}

func TestParseSizeExactFraction(t *testing.T) {
	// 16383.999999 × 2^40 computed independently with integer arithmetic.
	want := uint64(16383)<<40 + uint64(999999)*(1<<40)/1000000
	got, err := ParseSize("16383.999999T")
	if err != nil || got != want {
		t.Fatalf("ParseSize = %d, %v; want %d", got, err, want)
	}
}

func TestParseSizeErrors(t *testing.T) {
	tests := []struct {
		in   string
		want string
	}{
		{"", "cannot parse size ``"},
		{"abc", "cannot parse size `abc`"},
		{"0", "cannot parse size `0`"},
		{"0K", "cannot parse size `0K`"},
		{"0.0001K", "cannot parse size `0.0001K`"}, // rounds down to zero bytes
		{"-1G", "cannot parse size `-1G`"},
		{"1.5", "cannot parse size `1.5`"}, // bare bytes must be whole
		{"1X", "cannot parse size `1X`"},
		{"1iB", "cannot parse size `1iB`"},
		{"G", "cannot parse size `G`"},
		{"1e3", "cannot parse size `1e3`"},
		{"1 2K", "cannot parse size `1 2K`"},
		{"16777216T", "size `16777216T` overflows u64"},
		{"18446744073709551616", "size `18446744073709551616` overflows u64"},
	}
	for _, tc := range tests {
		_, err := ParseSize(tc.in)
		if err == nil {
			t.Errorf("ParseSize(%q): no error", tc.in)
			continue
		}
		if err.Error() != tc.want {
			t.Errorf("ParseSize(%q) error = %q, want %q", tc.in, err, tc.want)
		}
		var se *SizeError
		if !errors.As(err, &se) {
			t.Errorf("ParseSize(%q) error is %T, want *SizeError", tc.in, err)
		}
	}
}

func TestParseSizeMaxU64(t *testing.T) {
	got, err := ParseSize("18446744073709551615")
	if err != nil || got != math.MaxUint64 {
		t.Fatalf("ParseSize(max) = %d, %v", got, err)
	}
}

func TestSizeFromInt(t *testing.T) {
	if n, err := SizeFromInt(4096); err != nil || n != 4096 {
		t.Fatalf("SizeFromInt(4096) = %d, %v", n, err)
	}
	for _, in := range []int64{0, -5} {
		_, err := SizeFromInt(in)
		if err == nil {
			t.Fatalf("SizeFromInt(%d): no error", in)
		}
	}
	_, err := SizeFromInt(-5)
	if want := "cannot parse size `-5`"; err.Error() != want {
		t.Fatalf("error = %q, want %q", err, want)
	}
}

func TestSizeFromFloat(t *testing.T) {
	if n, err := SizeFromFloat(1e9); err != nil || n != 1e9 {
		t.Fatalf("SizeFromFloat(1e9) = %d, %v", n, err)
	}
	bad := map[float64]string{
		1.5:          "cannot parse size `1.5`",
		0:            "cannot parse size `0`",
		math.NaN():   "cannot parse size `NaN`",
		math.Inf(1):  "cannot parse size `+Inf`",
		1e20:         "size `1e+20` overflows u64",
		-1024:        "cannot parse size `-1024`",
		math.Inf(-1): "cannot parse size `-Inf`",
	}
	for in, want := range bad {
		_, err := SizeFromFloat(in)
		if err == nil || err.Error() != want {
			t.Errorf("SizeFromFloat(%v) error = %v, want %q", in, err, want)
		}
	}
}

func TestRoundUpMiB(t *testing.T) {
	tests := []struct{ in, want uint64 }{
		{1, MiB},
		{MiB, MiB},
		{MiB + 1, 2 * MiB},
		{512 * MiB, 512 * MiB},
		{math.MaxUint64, math.MaxUint64 &^ (MiB - 1)},
	}
	for _, tc := range tests {
		if got := RoundUpMiB(tc.in); got != tc.want {
			t.Errorf("RoundUpMiB(%d) = %d, want %d", tc.in, got, tc.want)
		}
	}
}

func TestFormatBytes(t *testing.T) {
	tests := []struct {
		in   uint64
		want string
	}{
		{0, "0.00 B"},
		{1023, "1023.00 B"},
		{1024, "1.00 KiB"},
		{1536, "1.50 KiB"},
		{5 * MiB, "5.00 MiB"},
		{3 << 29, "1.50 GiB"},
		{2 << 40, "2.00 TiB"},
		{2048 << 40, "2048.00 TiB"}, // TiB is the largest unit
	}
	for _, tc := range tests {
		if got := FormatBytes(tc.in); got != tc.want {
			t.Errorf("FormatBytes(%d) = %q, want %q", tc.in, got, tc.want)
		}
	}
}
