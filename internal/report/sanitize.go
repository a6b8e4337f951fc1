package report

import (
	"strings"
	"unicode/utf8"
)

// validUTF8 replaces each invalid byte with U+FFFD. encoding/json would do
// the same, but doing it here keeps the contract (§4.4) visible and
// independent of the encoder's defaults.
func validUTF8(s string) string {
	if utf8.ValidString(s) {
		return s
	}
	var b strings.Builder
	b.Grow(len(s))
	for _, r := range s { // range yields U+FFFD for every invalid byte
		b.WriteRune(r)
	}
	return b.String()
}

// xmlSafe makes s representable in XML 1.0: invalid UTF-8 and characters the
// Char production excludes (control characters such as ANSI ESC, surrogates,
// U+FFFE/U+FFFF) become U+FFFD. Console tails are full of them.
func xmlSafe(s string) string {
	return strings.Map(func(r rune) rune {
		if isXMLChar(r) {
			return r
		}
		return utf8.RuneError
	}, validUTF8(s))
}

// isXMLChar implements the XML 1.0 Char production.
func isXMLChar(r rune) bool {
	switch {
	case r == 0x9 || r == 0xA || r == 0xD:
		return true
	case r >= 0x20 && r <= 0xD7FF:
		return true
	case r >= 0xE000 && r <= 0xFFFD:
		return true
	case r >= 0x10000 && r <= 0x10FFFF:
		return true
	}
	return false
}
