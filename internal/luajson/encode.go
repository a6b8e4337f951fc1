package luajson

import (
	"cmp"
	"fmt"
	"math"
	"slices"
	"strconv"
	"sync"
	"unicode/utf8"
	"unsafe"

	"github.com/provium/provium/internal/lua"
)

// maxGaps bounds the null padding of a sparse array, so that a table such as
// {[1e12] = true} fails instead of exhausting memory.
const maxGaps = 1 << 20

// encode is json.encode(v).
func encode(L *lua.Thread) (int, error) {
	L.SetTop(1)
	e := encoders.Get().(*encoder)
	defer e.release()
	e.L = L
	var err error
	if typ := L.Type(1); typ == lua.TypeTable {
		err = e.table(1)
	} else {
		e.buf, err = e.scalar(e.buf, 1, typ)
	}
	if err != nil {
		return 0, err
	}
	// PushString copies the bytes into Lua at once, so the pooled buffer
	// can be lent without a Go copy.
	L.PushString(unsafe.String(unsafe.SliceData(e.buf), len(e.buf)))
	return 1, nil
}

// encoders recycles the buffers of finished calls: with them a typical
// encode allocates only the Go copies of the strings it reads from Lua.
var encoders = sync.Pool{New: func() any { return new(encoder) }}

// maxPooled is the largest buffer kept for reuse, so that one huge document
// does not pin its memory forever.
const maxPooled = 64 << 10

func (e *encoder) release() {
	if cap(e.buf) > maxPooled || cap(e.scratch) > maxPooled || cap(e.entries) > maxPooled/64 {
		return
	}
	clear(e.entries[:cap(e.entries)]) // drop references to key strings
	*e = encoder{buf: e.buf[:0], scratch: e.scratch[:0], entries: e.entries[:0], path: e.path[:0]}
	encoders.Put(e)
}

// encoder holds the state of one json.encode call. entries and scratch are
// used as stacks: each table appends its collected entries and the encoded
// text of its scalar values, and truncates them back when done.
type encoder struct {
	L       *lua.Thread
	buf     []byte
	scratch []byte
	entries []entry
	path    []key
	// levels[d] is the absolute stack index of the table at depth d, for
	// d <= stackLevels (used to detect cycles without a lookup table).
	levels [stackLevels + 1]int
	// aux is the absolute stack index of the auxiliary table (0 until the
	// nesting exceeds stackLevels). aux[d] parks the ancestor at depth d,
	// aux[t] == true marks a parked ancestor t for cycle detection.
	aux int
}

// entry is one key/value pair of a table being encoded. The value is either
// already encoded in scratch[start:end] or, when start < 0, a table that is
// encoded when its turn comes in key order.
type entry struct {
	key
	start, end int
}

func (e *encoder) fail(format string, args ...any) error {
	return fmt.Errorf("json.encode: "+format, args...)
}

// failAt reports a problem with the value at the current path.
func (e *encoder) failAt(format string, args ...any) error {
	return fmt.Errorf("json.encode: %s at %s", fmt.Sprintf(format, args...), renderPath(e.path))
}

// scalar appends the encoding of the non-table value at index i, whose type
// the caller already knows.
func (e *encoder) scalar(dst []byte, i int, typ lua.Type) ([]byte, error) {
	L := e.L
	switch typ {
	case lua.TypeNil, lua.TypeNone:
		return append(dst, "null"...), nil
	case lua.TypeBoolean:
		if L.ToBoolean(i) {
			return append(dst, "true"...), nil
		}
		return append(dst, "false"...), nil
	case lua.TypeNumber:
		if L.IsInteger(i) {
			n, _ := L.ToInteger(i)
			return strconv.AppendInt(dst, n, 10), nil
		}
		f, _ := L.ToNumber(i)
		return appendFloat(dst, f), nil
	case lua.TypeString:
		s, _ := L.ToString(i)
		out, ok := appendString(dst, s)
		if !ok {
			return dst, e.failAt("invalid UTF-8 in string")
		}
		return out, nil
	default:
		name := typ.String()
		if tn := L.TypeName(i); tn != name {
			name += " (" + tn + ")"
		}
		return dst, e.failAt("cannot encode %s value", name)
	}
}

// table encodes the table on top of the stack, which is at nesting depth
// `depth`, into e.buf. The table stays on the stack.
func (e *encoder) table(depth int) error {
	L := e.L
	if depth > maxDepth {
		return e.fail("nesting deeper than %d levels", maxDepth)
	}
	if depth == stackLevels+1 && e.aux == 0 {
		// Slide the auxiliary table under the first table that will not get
		// a fixed stack slot, before anyone records that table's index.
		L.NewTable(0, 0)
		L.Insert(-2)
		e.aux = L.GetTop() - 1
	}
	idx := L.GetTop()

	// Cycle detection: compare with the ancestors kept on the stack, then
	// look the table up among the parked ones.
	for d := 1; d < depth && d <= stackLevels; d++ {
		if L.RawEqual(e.levels[d], idx) {
			return e.failAt("table cycle (the table contains itself)")
		}
	}
	if depth <= stackLevels {
		e.levels[depth] = idx
	} else if depth > stackLevels+1 {
		L.PushValue(idx)
		typ := L.RawGet(e.aux)
		L.Pop(1)
		if typ != lua.TypeNil {
			return e.failAt("table cycle (the table contains itself)")
		}
	}

	first, scratchStart := len(e.entries), len(e.scratch)
	isArray := true
	var maxIndex int64
	L.PushNil()
	for L.Next(idx) {
		var k key
		switch L.Type(-2) {
		case lua.TypeString:
			s, _ := L.ToString(-2)
			k = key{kind: keyString, str: s}
			isArray = false
		case lua.TypeNumber:
			if L.IsInteger(-2) {
				n, _ := L.ToInteger(-2)
				k = key{kind: keyInt, num: n}
				if n <= 0 {
					isArray = false
				} else if n > maxIndex {
					maxIndex = n
				}
			} else {
				f, _ := L.ToNumber(-2)
				k = key{kind: keyFloat, fnum: f, str: floatKeyText(f)}
				isArray = false
			}
		case lua.TypeBoolean:
			k = key{kind: keyBool, str: "false"}
			if L.ToBoolean(-2) {
				k = key{kind: keyBool, str: "true", num: 1}
			}
			isArray = false
		default:
			return e.failAt("cannot use %s as object key", L.TypeName(-2))
		}
		en := entry{key: k, start: -1}
		if typ := L.Type(-1); typ != lua.TypeTable {
			e.path = append(e.path, k)
			en.start = len(e.scratch)
			var err error
			if e.scratch, err = e.scalar(e.scratch, -1, typ); err != nil {
				return err
			}
			en.end = len(e.scratch)
			e.path = e.path[:len(e.path)-1]
		}
		e.entries = append(e.entries, en)
		L.Pop(1)
	}

	var err error
	switch ents := e.entries[first:]; {
	case len(ents) == 0:
		e.buf = append(e.buf, "{}"...)
	case isArray:
		err = e.array(ents, idx, depth, maxIndex)
	default:
		err = e.object(ents, idx, depth)
	}
	if err != nil {
		return err
	}
	e.entries = e.entries[:first]
	e.scratch = e.scratch[:scratchStart]
	return nil
}

func (e *encoder) array(ents []entry, idx, depth int, maxIndex int64) error {
	if gaps := maxIndex - int64(len(ents)); gaps > maxGaps {
		return e.failAt("array too sparse (largest index %d but only %d elements)", maxIndex, len(ents))
	}
	slices.SortFunc(ents, func(a, b entry) int { return cmp.Compare(a.num, b.num) })
	e.buf = append(e.buf, '[')
	next := int64(1)
	for _, en := range ents {
		for ; next < en.num; next++ {
			e.buf = append(e.buf, "null,"...)
		}
		next++
		if en.start >= 0 {
			e.buf = append(e.buf, e.scratch[en.start:en.end]...)
		} else {
			e.L.RawGetI(idx, en.num)
			if err := e.child(depth, en.key); err != nil {
				return err
			}
		}
		e.buf = append(e.buf, ',')
	}
	e.buf[len(e.buf)-1] = ']'
	return nil
}

func (e *encoder) object(ents []entry, idx, depth int) error {
	for i := range ents {
		if ents[i].kind == keyInt {
			ents[i].str = strconv.FormatInt(ents[i].num, 10)
		}
	}
	// Bytewise order of the key text; keys that render the same (1 and "1")
	// are ordered by kind, then value, so the output is deterministic.
	slices.SortFunc(ents, func(a, b entry) int {
		if c := cmp.Compare(a.str, b.str); c != 0 {
			return c
		}
		if c := cmp.Compare(a.kind, b.kind); c != 0 {
			return c
		}
		return cmp.Compare(a.fnum, b.fnum)
	})
	L := e.L
	e.buf = append(e.buf, '{')
	for _, en := range ents {
		var ok bool
		if e.buf, ok = appendString(e.buf, en.str); !ok {
			return e.failAt("invalid UTF-8 in object key %q", en.str)
		}
		e.buf = append(e.buf, ':')
		if en.start >= 0 {
			e.buf = append(e.buf, e.scratch[en.start:en.end]...)
		} else {
			switch en.kind {
			case keyInt:
				L.RawGetI(idx, en.num)
			case keyFloat:
				L.PushNumber(en.fnum)
				L.RawGet(idx)
			case keyBool:
				L.PushBoolean(en.num == 1)
				L.RawGet(idx)
			default:
				L.PushString(en.str)
				L.RawGet(idx)
			}
			if err := e.child(depth, en.key); err != nil {
				return err
			}
		}
		e.buf = append(e.buf, ',')
	}
	e.buf[len(e.buf)-1] = '}'
	return nil
}

// child encodes the table on top of the stack, a value of the table just
// below it (at depth parentDepth) under key k, then pops it.
func (e *encoder) child(parentDepth int, k key) error {
	L := e.L
	e.path = append(e.path, k)
	park := parentDepth > stackLevels
	if park {
		// Move the parent into aux so the stack does not grow with depth.
		L.Insert(-2)
		L.PushValue(-1)
		L.PushBoolean(true)
		L.RawSet(e.aux)
		L.RawSetI(e.aux, int64(parentDepth))
	}
	if err := e.table(parentDepth + 1); err != nil {
		return err
	}
	L.Pop(1)
	if park {
		L.RawGetI(e.aux, int64(parentDepth))
		L.PushValue(-1)
		L.PushNil()
		L.RawSet(e.aux)
	}
	e.path = e.path[:len(e.path)-1]
	return nil
}

// appendFloat writes f as upstream's encoder (serde_json) does: the
// shortest digits that read back as the same float, always recognisable as
// a float. Plain notation with at least one fraction digit ("1.0",
// "0.00001", "123456789.5") for decimal exponents in [-5, 15], where every
// integral float is still exact, and exponent notation ("1e20", "1.5e-7")
// outside. NaN and the infinities, which JSON cannot express, become null.
func appendFloat(dst []byte, f float64) []byte {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return append(dst, "null"...)
	}
	var eb [32]byte
	exp := strconv.AppendFloat(eb[:0], f, 'e', -1, 64)
	if x := decimalExponent(exp); x < -5 || x > 15 {
		// strconv writes "1.5e-07": drop the '+' and the leading zeros.
		i := slices.Index(exp, 'e')
		dst = append(dst, exp[:i+1]...)
		if exp[i+1] == '-' {
			dst = append(dst, '-')
		}
		digits := exp[i+2:]
		for len(digits) > 1 && digits[0] == '0' {
			digits = digits[1:]
		}
		return append(dst, digits...)
	}
	start := len(dst)
	dst = strconv.AppendFloat(dst, f, 'f', -1, 64)
	if !slices.Contains(dst[start:], '.') {
		dst = append(dst, '.', '0')
	}
	return dst
}

// decimalExponent parses the exponent of strconv's 'e' format ("1.5e-07").
func decimalExponent(s []byte) int {
	i := slices.Index(s, 'e')
	neg := s[i+1] == '-'
	x := 0
	for _, c := range s[i+2:] {
		x = x*10 + int(c-'0')
	}
	if neg {
		return -x
	}
	return x
}

// floatKeyText is the object key upstream makes of a float table key: an
// integral one as the integer it converts to (saturating at the int64
// range: Lua keeps only floats outside it as float keys), any other in
// plain notation with the shortest digits ("0.1", "1e-7" -> "0.0000001"),
// and "inf" / "-inf".
func floatKeyText(f float64) string {
	switch {
	case math.IsInf(f, 1):
		return "inf"
	case math.IsInf(f, -1):
		return "-inf"
	case math.IsNaN(f): // not a valid table key; for completeness
		return "NaN"
	case f == math.Trunc(f):
		switch {
		case f >= 0x1p63:
			return strconv.FormatInt(math.MaxInt64, 10)
		case f < -0x1p63:
			return strconv.FormatInt(math.MinInt64, 10)
		}
		return strconv.FormatInt(int64(f), 10)
	}
	return strconv.FormatFloat(f, 'f', -1, 64)
}

// appendString writes s as a JSON string; ok is false if s is not valid
// UTF-8. Only what JSON requires is escaped.
func appendString(dst []byte, s string) (out []byte, ok bool) {
	const hex = "0123456789abcdef"
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c >= utf8.RuneSelf {
			r, size := utf8.DecodeRuneInString(s[i:])
			if r == utf8.RuneError && size == 1 {
				return dst, false
			}
			i += size
			continue
		}
		if c >= 0x20 && c != '"' && c != '\\' {
			i++
			continue
		}
		dst = append(dst, s[start:i]...)
		switch c {
		case '"', '\\':
			dst = append(dst, '\\', c)
		case '\n':
			dst = append(dst, '\\', 'n')
		case '\r':
			dst = append(dst, '\\', 'r')
		case '\t':
			dst = append(dst, '\\', 't')
		case '\b':
			dst = append(dst, '\\', 'b')
		case '\f':
			dst = append(dst, '\\', 'f')
		default:
			dst = append(dst, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
		}
		i++
		start = i
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"'), true
}
