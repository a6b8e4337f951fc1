package lab

import (
	"fmt"
	"math"
)

// Values from Lua arrive as plain Go values (the luaapi adapter converts them):
// nil, bool, int64, float64, string, []any (tables keyed 1..n, including the
// empty table) and map[string]any (string-keyed tables). Core objects (*VM,
// *Bridge, *Lab) stand for userdata. These helpers keep the conversions and
// the Lua type names in messages uniform.

// luaTypeName is the Lua type() of a converted value, for messages.
func luaTypeName(v any) string {
	switch v.(type) {
	case nil:
		return "nil"
	case bool:
		return "boolean"
	case int, int64, float64:
		return "number"
	case string:
		return "string"
	case []any, map[string]any:
		return "table"
	case *VM, *Bridge, *Lab:
		return "userdata"
	default:
		// Functions, threads and foreign userdata reach the core only as
		// opaque values; the adapter names them before they get here.
		return fmt.Sprintf("%T", v)
	}
}

// asInteger accepts a Lua integer, or a float with an exact integer value (as
// luaL_checkinteger does).
func asInteger(v any) (int64, bool) {
	switch n := v.(type) {
	case int64:
		return n, true
	case int:
		return int64(n), true
	case float64:
		if n == math.Trunc(n) && n >= math.MinInt64 && n < math.MaxInt64 {
			return int64(n), true
		}
	}
	return 0, false
}

// asNumber accepts any Lua number as a float64.
func asNumber(v any) (float64, bool) {
	switch n := v.(type) {
	case int64:
		return float64(n), true
	case int:
		return float64(n), true
	case float64:
		return n, true
	}
	return 0, false
}

// asTable accepts a string-keyed table; the empty table arrives as []any{}
// and is an empty map here.
func asTable(v any) (map[string]any, bool) {
	switch t := v.(type) {
	case map[string]any:
		return t, true
	case []any:
		if len(t) == 0 {
			return map[string]any{}, true
		}
	}
	return nil, false
}

// asArray accepts a sequence table (the empty table included).
func asArray(v any) ([]any, bool) {
	a, ok := v.([]any)
	return a, ok
}
