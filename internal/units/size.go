// Package units parses and formats the size and duration values that appear
// in provium.toml, on the command line and in the Lua API, so that every
// entry point accepts exactly the same syntax and reports the same errors.
package units

import (
	"fmt"
	"math"
	"math/big"
	"strconv"
	"strings"
)

// Size error texts (20-cli-config.md §3.9). The placeholder is the input as
// the user wrote it.
const (
	errSizeSyntax   = "cannot parse size `%s`"
	errSizeOverflow = "size `%s` overflows u64"
)

// MiB is one mebibyte in bytes.
const MiB = 1 << 20

// SizeError reports a size that could not be parsed or does not fit a u64.
type SizeError struct {
	Input    string // the value as written
	Overflow bool   // true: well-formed but larger than a u64
}

func (e *SizeError) Error() string {
	if e.Overflow {
		return fmt.Sprintf(errSizeOverflow, e.Input)
	}
	return fmt.Sprintf(errSizeSyntax, e.Input)
}

// sizeShift maps a unit letter to its power of 1024.
var sizeShift = map[byte]uint{'k': 10, 'm': 20, 'g': 30, 't': 40}

// ParseSize parses integer bytes ("1048576") or a number with a binary unit
// ("512M", "1.5GiB", "2kb"; K/M/G/T, optional B or iB, any case). The result
// must be greater than zero. Fractions are computed exactly and rounded down
// to whole bytes, so "1.5G" is exactly 1610612736.
func ParseSize(s string) (uint64, error) {
	t := strings.TrimSpace(s)
	num, shift, ok := splitSizeUnit(t)
	if !ok {
		return 0, &SizeError{Input: s}
	}
	intPart, fracPart, ok := splitDecimal(num)
	if !ok || (shift == 0 && fracPart != "") {
		// Bare byte counts must be whole numbers.
		return 0, &SizeError{Input: s}
	}
	// Exact arithmetic: (int.frac × 2^shift) = digits × 2^shift / 10^len(frac).
	digits, ok := new(big.Int).SetString(intPart+fracPart, 10)
	if !ok {
		return 0, &SizeError{Input: s}
	}
	digits.Lsh(digits, shift)
	if fracPart != "" {
		den := new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(len(fracPart))), nil)
		digits.Quo(digits, den)
	}
	if !digits.IsUint64() {
		return 0, &SizeError{Input: s, Overflow: true}
	}
	n := digits.Uint64()
	if n == 0 {
		return 0, &SizeError{Input: s}
	}
	return n, nil
}

// splitSizeUnit separates the numeric part from an optional unit suffix and
// returns the unit's power-of-two shift.
func splitSizeUnit(t string) (num string, shift uint, ok bool) {
	lower := strings.ToLower(t)
	switch {
	case strings.HasSuffix(lower, "ib"):
		lower = lower[:len(lower)-2]
		if lower == "" {
			return "", 0, false
		}
		sh, found := sizeShift[lower[len(lower)-1]]
		if !found {
			return "", 0, false // "iB" needs a unit letter before it
		}
		return lower[:len(lower)-1], sh, true
	case strings.HasSuffix(lower, "b"):
		lower = lower[:len(lower)-1]
		if lower == "" {
			return "", 0, false
		}
		if sh, found := sizeShift[lower[len(lower)-1]]; found {
			return lower[:len(lower)-1], sh, true
		}
		return lower, 0, true // "512B": plain bytes
	case lower == "":
		return "", 0, false
	}
	if sh, found := sizeShift[lower[len(lower)-1]]; found {
		return lower[:len(lower)-1], sh, true
	}
	return lower, 0, true
}

// splitDecimal accepts "12", "12.5", "12." and ".5" (digits only, no sign or
// exponent) and returns the integer and fraction digits.
func splitDecimal(num string) (intPart, fracPart string, ok bool) {
	intPart, fracPart, hasDot := strings.Cut(num, ".")
	if intPart == "" && fracPart == "" {
		return "", "", false
	}
	if !allDigits(intPart) || !allDigits(fracPart) {
		return "", "", false
	}
	if intPart == "" {
		intPart = "0"
	}
	if hasDot {
		fracPart = strings.TrimRight(fracPart, "0")
	}
	return intPart, fracPart, true
}

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// SizeFromInt validates a size given as an integer (a Lua or TOML integer
// byte count). Non-positive values fail with the same text ParseSize uses.
func SizeFromInt(n int64) (uint64, error) {
	if n <= 0 {
		return 0, &SizeError{Input: strconv.FormatInt(n, 10)}
	}
	return uint64(n), nil
}

// SizeFromFloat validates a size given as a float that must hold a whole,
// positive number of bytes (Lua numbers such as 1e9 are floats).
func SizeFromFloat(f float64) (uint64, error) {
	in := strconv.FormatFloat(f, 'g', -1, 64)
	if math.IsNaN(f) || math.IsInf(f, 0) || f <= 0 || f != math.Trunc(f) {
		return 0, &SizeError{Input: in}
	}
	if f >= 1<<64 {
		return 0, &SizeError{Input: in, Overflow: true}
	}
	return uint64(f), nil
}

// RoundUpMiB rounds n up to a whole number of MiB (VM memory is sized in
// MiB). Values within a MiB of the u64 limit saturate to the largest
// representable MiB multiple instead of wrapping.
func RoundUpMiB(n uint64) uint64 {
	const mask = MiB - 1
	if n > math.MaxUint64-mask {
		return math.MaxUint64 &^ mask
	}
	return (n + mask) &^ mask
}

// byteUnits are the suffixes FormatBytes chooses from, smallest first.
var byteUnits = []string{"B", "KiB", "MiB", "GiB", "TiB"}

// FormatBytes renders n as "%.2f <unit>" using the largest binary unit
// (up to TiB) that keeps the number at or above 1, e.g. "1.50 GiB".
func FormatBytes(n uint64) string {
	v := float64(n)
	i := 0
	for v >= 1024 && i < len(byteUnits)-1 {
		v /= 1024
		i++
	}
	return fmt.Sprintf("%.2f %s", v, byteUnits[i])
}
