package luajson

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/provium/provium/internal/lua"
)

// decode is json.decode(s).
func decode(L *lua.Thread) (int, error) {
	L.SetTop(1)
	s, ok := L.ToString(1)
	if !ok {
		return 0, fmt.Errorf("json.decode: expected a string, got %s", L.TypeName(1))
	}
	d := &decoder{L: L, s: s}
	d.skipSpace()
	if err := d.value(1); err != nil {
		return 0, err
	}
	d.skipSpace()
	if d.pos < len(d.s) {
		return 0, d.errorf(d.pos, "unexpected %s after the value", d.describe(d.pos))
	}
	return 1, nil
}

// decoder is a recursive-descent parser that pushes Lua values as it goes.
// The container being filled is always on top of the stack (below the key
// and value being added to it).
type decoder struct {
	L   *lua.Thread
	s   string
	pos int
	// aux is the absolute stack index of the table parking ancestors deeper
	// than stackLevels (aux[depth] = container), 0 until needed.
	aux int
}

// errorf builds the error for a problem found at byte offset pos, located
// by 1-based line and column (the column counts characters, not bytes).
func (d *decoder) errorf(pos int, format string, args ...any) error {
	before := d.s[:pos]
	line := 1 + strings.Count(before, "\n")
	col := 1 + utf8.RuneCountInString(before[strings.LastIndexByte(before, '\n')+1:])
	return fmt.Errorf("json.decode: %s at line %d column %d", fmt.Sprintf(format, args...), line, col)
}

// describe names the character at pos for an error message.
func (d *decoder) describe(pos int) string {
	if pos >= len(d.s) {
		return "end of input"
	}
	c := d.s[pos]
	if c >= 0x20 && c < 0x7f {
		return fmt.Sprintf("character '%c'", c)
	}
	if r, size := utf8.DecodeRuneInString(d.s[pos:]); size > 1 {
		return fmt.Sprintf("character U+%04X", r)
	}
	return fmt.Sprintf("byte 0x%02x", c)
}

func (d *decoder) unexpected() error {
	return d.errorf(d.pos, "unexpected %s", d.describe(d.pos))
}

func (d *decoder) skipSpace() {
	for d.pos < len(d.s) {
		switch d.s[d.pos] {
		case ' ', '\t', '\n', '\r':
			d.pos++
		default:
			return
		}
	}
}

// value parses the value at d.pos (after white space) and pushes it; null
// pushes nil. depth is the nesting depth a container here would have.
func (d *decoder) value(depth int) error {
	if d.pos >= len(d.s) {
		return d.unexpected()
	}
	L := d.L
	switch c := d.s[d.pos]; c {
	case '{':
		return d.object(depth)
	case '[':
		return d.array(depth)
	case '"':
		s, err := d.str()
		if err != nil {
			return err
		}
		L.PushString(s)
	case 't':
		if err := d.literal("true"); err != nil {
			return err
		}
		L.PushBoolean(true)
	case 'f':
		if err := d.literal("false"); err != nil {
			return err
		}
		L.PushBoolean(false)
	case 'n':
		if err := d.literal("null"); err != nil {
			return err
		}
		L.PushNil()
	default:
		if c == '-' || c >= '0' && c <= '9' {
			return d.number()
		}
		return d.unexpected()
	}
	return nil
}

func (d *decoder) literal(word string) error {
	if !strings.HasPrefix(d.s[d.pos:], word) {
		return d.errorf(d.pos, "invalid literal (expected %s)", word)
	}
	d.pos += len(word)
	return nil
}

// nested parses the container starting at d.pos into a new table on top of
// the current container (at depth `depth`), parking the current one in aux
// meanwhile when the stack already holds stackLevels containers.
func (d *decoder) nested(depth int) error {
	L := d.L
	park := depth > stackLevels
	if park {
		if d.aux == 0 {
			// Right above the argument, so that containers stay adjacent
			// to their parents (they are addressed relative to the top).
			L.NewTable(0, 0)
			L.Insert(2)
			d.aux = 2
		}
		L.RawSetI(d.aux, int64(depth))
	}
	if err := d.value(depth + 1); err != nil {
		return err
	}
	if park {
		L.RawGetI(d.aux, int64(depth))
		L.Insert(-2)
	}
	return nil
}

func (d *decoder) enter(depth int) error {
	if depth > maxDepth {
		return d.errorf(d.pos, "nesting deeper than %d levels", maxDepth)
	}
	d.pos++
	d.L.NewTable(0, 0)
	d.skipSpace()
	return nil
}

func (d *decoder) array(depth int) error {
	if err := d.enter(depth); err != nil {
		return err
	}
	L := d.L
	if d.pos < len(d.s) && d.s[d.pos] == ']' {
		d.pos++
		return nil
	}
	for i := int64(1); ; i++ {
		d.skipSpace()
		if d.pos >= len(d.s) {
			return d.unexpected()
		}
		switch d.s[d.pos] {
		case '[', '{':
			if err := d.nested(depth); err != nil {
				return err
			}
			L.RawSetI(-2, i)
		case 'n':
			// null leaves a hole.
			if err := d.literal("null"); err != nil {
				return err
			}
		default:
			if err := d.value(depth + 1); err != nil {
				return err
			}
			L.RawSetI(-2, i)
		}
		d.skipSpace()
		if d.pos >= len(d.s) {
			return d.unexpected()
		}
		switch d.s[d.pos] {
		case ',':
			d.pos++
		case ']':
			d.pos++
			return nil
		default:
			return d.errorf(d.pos, "expected ',' or ']' after array element, got %s", d.describe(d.pos))
		}
	}
}

func (d *decoder) object(depth int) error {
	if err := d.enter(depth); err != nil {
		return err
	}
	L := d.L
	if d.pos < len(d.s) && d.s[d.pos] == '}' {
		d.pos++
		return nil
	}
	for {
		d.skipSpace()
		if d.pos >= len(d.s) {
			return d.unexpected()
		}
		if d.s[d.pos] != '"' {
			return d.errorf(d.pos, "expected a string as object key, got %s", d.describe(d.pos))
		}
		k, err := d.str()
		if err != nil {
			return err
		}
		d.skipSpace()
		if d.pos >= len(d.s) {
			return d.unexpected()
		}
		if d.s[d.pos] != ':' {
			return d.errorf(d.pos, "expected ':' after object key, got %s", d.describe(d.pos))
		}
		d.pos++
		d.skipSpace()
		if d.pos >= len(d.s) {
			return d.unexpected()
		}
		if c := d.s[d.pos]; c == '[' || c == '{' {
			if err := d.nested(depth); err != nil {
				return err
			}
			L.PushString(k)
			L.Insert(-2)
		} else {
			// A null value pushes nil, so a duplicate key set to null is
			// removed again: the last occurrence wins, as for other values.
			L.PushString(k)
			if err := d.value(depth + 1); err != nil {
				return err
			}
		}
		L.RawSet(-3)
		d.skipSpace()
		if d.pos >= len(d.s) {
			return d.unexpected()
		}
		switch d.s[d.pos] {
		case ',':
			d.pos++
		case '}':
			d.pos++
			return nil
		default:
			return d.errorf(d.pos, "expected ',' or '}' after object member, got %s", d.describe(d.pos))
		}
	}
}

// str parses the string starting at d.pos (on the opening quote). Strings
// without escapes are returned as slices of the input.
func (d *decoder) str() (string, error) {
	s := d.s
	open := d.pos
	i := open + 1
	for i < len(s) {
		c := s[i]
		switch {
		case c == '"':
			d.pos = i + 1
			return s[open+1 : i], nil
		case c == '\\':
			return d.strEscaped(open, i)
		case c < 0x20:
			return "", d.errorf(i, "unescaped control character U+%04X in string", c)
		case c >= utf8.RuneSelf:
			r, size := utf8.DecodeRuneInString(s[i:])
			if r == utf8.RuneError && size == 1 {
				return "", d.errorf(i, "invalid UTF-8 in string")
			}
			i += size
		default:
			i++
		}
	}
	return "", d.errorf(open, "unterminated string")
}

// strEscaped continues str from the first backslash at i, building a copy.
func (d *decoder) strEscaped(open, i int) (string, error) {
	s := d.s
	b := make([]byte, 0, i-open+16)
	b = append(b, s[open+1:i]...)
	for i < len(s) {
		c := s[i]
		switch {
		case c == '"':
			d.pos = i + 1
			return string(b), nil
		case c == '\\':
			if i+1 >= len(s) {
				return "", d.errorf(open, "unterminated string")
			}
			esc := s[i+1]
			switch esc {
			case '"', '\\', '/':
				b = append(b, esc)
			case 'b':
				b = append(b, '\b')
			case 'f':
				b = append(b, '\f')
			case 'n':
				b = append(b, '\n')
			case 'r':
				b = append(b, '\r')
			case 't':
				b = append(b, '\t')
			case 'u':
				r, n, err := d.unicodeEscape(i)
				if err != nil {
					return "", err
				}
				b = utf8.AppendRune(b, r)
				i += n
				continue
			default:
				return "", d.errorf(i, "invalid escape %s in string", d.describeEscape(i))
			}
			i += 2
		case c < 0x20:
			return "", d.errorf(i, "unescaped control character U+%04X in string", c)
		case c >= utf8.RuneSelf:
			r, size := utf8.DecodeRuneInString(s[i:])
			if r == utf8.RuneError && size == 1 {
				return "", d.errorf(i, "invalid UTF-8 in string")
			}
			b = append(b, s[i:i+size]...)
			i += size
		default:
			b = append(b, c)
			i++
		}
	}
	return "", d.errorf(open, "unterminated string")
}

func (d *decoder) describeEscape(i int) string {
	if c := d.s[i+1]; c >= 0x20 && c < 0x7f {
		return fmt.Sprintf("'\\%c'", c)
	}
	return "'\\' followed by " + d.describe(i+1)
}

// unicodeEscape decodes the \uXXXX escape at i (on the backslash), joining
// a surrogate pair; it returns the rune and the bytes consumed. A lone
// surrogate is an error since it has no UTF-8 encoding.
func (d *decoder) unicodeEscape(i int) (rune, int, error) {
	hi, ok := hex4(d.s, i+2)
	if !ok {
		return 0, 0, d.errorf(i, "invalid \\u escape (expected 4 hex digits)")
	}
	switch {
	case hi >= 0xDC00 && hi <= 0xDFFF:
		return 0, 0, d.errorf(i, "invalid \\u escape (lone low surrogate \\u%04X)", hi)
	case hi >= 0xD800 && hi <= 0xDBFF:
		j := i + 6
		if j+1 >= len(d.s) || d.s[j] != '\\' || d.s[j+1] != 'u' {
			return 0, 0, d.errorf(i, "invalid \\u escape (high surrogate \\u%04X not followed by a low one)", hi)
		}
		lo, ok := hex4(d.s, j+2)
		if !ok {
			return 0, 0, d.errorf(j, "invalid \\u escape (expected 4 hex digits)")
		}
		if lo < 0xDC00 || lo > 0xDFFF {
			return 0, 0, d.errorf(i, "invalid \\u escape (high surrogate \\u%04X not followed by a low one)", hi)
		}
		return 0x10000 + (hi-0xD800)<<10 + (lo - 0xDC00), 12, nil
	}
	return hi, 6, nil
}

func hex4(s string, i int) (rune, bool) {
	if i+4 > len(s) {
		return 0, false
	}
	var r rune
	for _, c := range []byte(s[i : i+4]) {
		switch {
		case c >= '0' && c <= '9':
			c -= '0'
		case c >= 'a' && c <= 'f':
			c -= 'a' - 10
		case c >= 'A' && c <= 'F':
			c -= 'A' - 10
		default:
			return 0, false
		}
		r = r<<4 | rune(c)
	}
	return r, true
}

// number parses a JSON number and pushes it: an integer when it has no
// fraction or exponent and fits 64 bits (values above math.maxinteger and up
// to 2^64-1 wrap to the negative integer with the same bits), else a float.
func (d *decoder) number() error {
	s := d.s
	start := d.pos
	i := start
	if s[i] == '-' {
		i++
	}
	digits := i
	if i >= len(s) || s[i] < '0' || s[i] > '9' {
		return d.errorf(start, "invalid number (no digits)")
	}
	if s[i] == '0' {
		i++
		if i < len(s) && s[i] >= '0' && s[i] <= '9' {
			return d.errorf(start, "invalid number (leading zero)")
		}
	} else {
		i = skipDigits(s, i)
	}
	intEnd := i
	if i < len(s) && s[i] == '.' {
		i++
		if i >= len(s) || s[i] < '0' || s[i] > '9' {
			return d.errorf(start, "invalid number (no digits after '.')")
		}
		i = skipDigits(s, i)
	}
	if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		i++
		if i < len(s) && (s[i] == '+' || s[i] == '-') {
			i++
		}
		if i >= len(s) || s[i] < '0' || s[i] > '9' {
			return d.errorf(start, "invalid number (no digits in exponent)")
		}
		i = skipDigits(s, i)
	}
	d.pos = i
	if i == intEnd {
		if u, err := strconv.ParseUint(s[digits:i], 10, 64); err == nil {
			switch {
			case digits == start:
				d.L.PushInteger(int64(u)) // wraps above math.maxinteger
				return nil
			case u <= 1<<63:
				d.L.PushInteger(-int64(u)) // 1<<63 negates to math.mininteger
				return nil
			}
		}
	}
	// Out-of-range magnitudes become ±inf or 0, as Lua's tonumber does.
	f, err := strconv.ParseFloat(s[start:i], 64)
	if err != nil && !math.IsInf(f, 0) && f != 0 {
		return d.errorf(start, "invalid number")
	}
	d.L.PushNumber(f)
	return nil
}

func skipDigits(s string, i int) int {
	for i < len(s) && s[i] >= '0' && s[i] <= '9' {
		i++
	}
	return i
}
