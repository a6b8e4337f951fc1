package luaapi

import (
	"fmt"
	"math"

	"github.com/provium/provium/internal/lua"
)

// maxDepth bounds the nesting of tables converted to Go (meta, options).
const maxDepth = 32

// ToGo converts the Lua value at idx into plain Go values: nil, bool, int64,
// float64, string, []any (tables keyed exactly 1..n, and {}) or
// map[string]any (tables with only string keys). Anything else is an
// error naming the offending Lua type.
func ToGo(L *lua.Thread, idx int) (any, error) {
	return toGo(L, L.AbsIndex(idx), 0, map[string]bool{})
}

func toGo(L *lua.Thread, idx, depth int, seen map[string]bool) (any, error) {
	switch L.Type(idx) {
	case lua.TypeNil, lua.TypeNone:
		return nil, nil
	case lua.TypeBoolean:
		return L.ToBoolean(idx), nil
	case lua.TypeNumber:
		if L.IsInteger(idx) {
			n, _ := L.ToInteger(idx)
			return n, nil
		}
		f, _ := L.ToNumber(idx)
		return f, nil
	case lua.TypeString:
		s, _ := L.ToString(idx)
		return s, nil
	case lua.TypeTable:
		if depth >= maxDepth {
			return nil, fmt.Errorf("nested deeper than %d levels", maxDepth)
		}
		return tableToGo(L, idx, depth, seen)
	}
	return nil, fmt.Errorf("unsupported value (%s)", L.TypeName(idx))
}

func tableToGo(L *lua.Thread, idx, depth int, seen map[string]bool) (any, error) {
	ints := map[int64]any{}
	strs := map[string]any{}
	var maxKey int64
	L.PushNil()
	for L.Next(idx) {
		var v any
		var err error
		v, err = toGo(L, L.GetTop(), depth+1, seen)
		if err != nil {
			L.Pop(2)
			return nil, err
		}
		switch L.Type(-2) {
		case lua.TypeString:
			k, _ := L.ToString(-2)
			strs[k] = v
		case lua.TypeNumber:
			if !L.IsInteger(-2) {
				f, _ := L.ToNumber(-2)
				if f != math.Trunc(f) {
					L.Pop(2)
					return nil, fmt.Errorf("unsupported key (float %v)", f)
				}
			}
			k, _ := L.ToInteger(-2)
			if k < 1 {
				L.Pop(2)
				return nil, fmt.Errorf("unsupported key (integer %d)", k)
			}
			ints[k] = v
			maxKey = max(maxKey, k)
		default:
			t := L.TypeName(-2)
			L.Pop(2)
			return nil, fmt.Errorf("unsupported key (%s)", t)
		}
		L.Pop(1)
	}
	switch {
	case len(ints) > 0 && len(strs) > 0:
		return nil, fmt.Errorf("unsupported value (table with mixed keys)")
	case len(strs) > 0:
		return strs, nil
	}
	if int64(len(ints)) != maxKey {
		return nil, fmt.Errorf("unsupported value (array with holes)")
	}
	arr := make([]any, maxKey)
	for k, v := range ints {
		arr[k-1] = v
	}
	return arr, nil
}

// PushGo pushes a Go value produced by ToGo (or a []string).
func PushGo(L *lua.Thread, v any) {
	switch x := v.(type) {
	case nil:
		L.PushNil()
	case bool:
		L.PushBoolean(x)
	case int64:
		L.PushInteger(x)
	case int:
		L.PushInteger(int64(x))
	case float64:
		L.PushNumber(x)
	case string:
		L.PushString(x)
	case []string:
		L.NewTable(len(x), 0)
		for i, s := range x {
			L.PushString(s)
			L.RawSetI(-2, int64(i+1))
		}
	case []any:
		L.NewTable(len(x), 0)
		for i, e := range x {
			PushGo(L, e)
			L.RawSetI(-2, int64(i+1))
		}
	case map[string]any:
		L.NewTable(0, len(x))
		for k, e := range x {
			PushGo(L, e)
			L.RawSetField(-2, k)
		}
	default:
		L.PushString(fmt.Sprint(x))
	}
}
