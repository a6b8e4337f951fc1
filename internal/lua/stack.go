package lua

/*
#include "shim.h"
*/
import "C"

import (
	"fmt"
	"unsafe"
)

var emptyByte = [1]byte{0}

// cstr returns a pointer to the bytes of s for a C call that copies them.
func cstr(s string) (*C.char, C.size_t) {
	if len(s) == 0 {
		return (*C.char)(unsafe.Pointer(&emptyByte[0])), 0
	}
	return (*C.char)(unsafe.Pointer(unsafe.StringData(s))), C.size_t(len(s))
}

// GetTop returns the index of the top element (the number of elements).
func (t *Thread) GetTop() int { return int(C.lua_gettop(t.L)) }

// SetTop sets the stack top.
func (t *Thread) SetTop(n int) { C.lua_settop(t.L, C.int(n)) }

// Pop pops n values.
func (t *Thread) Pop(n int) { C.pv_pop(t.L, C.int(n)) }

// AbsIndex converts a relative index to an absolute one.
func (t *Thread) AbsIndex(i int) int { return int(C.lua_absindex(t.L, C.int(i))) }

// PushValue pushes a copy of the value at i.
func (t *Thread) PushValue(i int) { C.lua_pushvalue(t.L, C.int(i)) }

// Rotate rotates the values between i and the top n positions toward the top.
func (t *Thread) Rotate(i, n int) { C.lua_rotate(t.L, C.int(i), C.int(n)) }

// Insert moves the top value to position i.
func (t *Thread) Insert(i int) { t.Rotate(i, 1) }

// Remove removes the value at i.
func (t *Thread) Remove(i int) {
	t.Rotate(i, -1)
	t.Pop(1)
}

// Type returns the type of the value at i.
func (t *Thread) Type(i int) Type { return Type(C.lua_type(t.L, C.int(i))) }

// IsNoneOrNil reports whether i is absent or nil.
func (t *Thread) IsNoneOrNil(i int) bool { return t.Type(i) <= TypeNil }

// IsInteger reports whether the value at i is a number with integer subtype.
func (t *Thread) IsInteger(i int) bool { return C.lua_isinteger(t.L, C.int(i)) != 0 }

// PushNil pushes nil.
func (t *Thread) PushNil() { C.lua_pushnil(t.L) }

// PushBoolean pushes a boolean.
func (t *Thread) PushBoolean(b bool) {
	v := C.int(0)
	if b {
		v = 1
	}
	C.lua_pushboolean(t.L, v)
}

// PushInteger pushes an integer.
func (t *Thread) PushInteger(n int64) { C.lua_pushinteger(t.L, C.lua_Integer(n)) }

// PushNumber pushes a float.
func (t *Thread) PushNumber(f float64) { C.lua_pushnumber(t.L, C.lua_Number(f)) }

// PushString pushes a byte string (may contain NULs).
func (t *Thread) PushString(s string) {
	p, n := cstr(s)
	C.lua_pushlstring(t.L, p, n)
}

// ToBoolean returns the truthiness of the value at i.
func (t *Thread) ToBoolean(i int) bool { return C.lua_toboolean(t.L, C.int(i)) != 0 }

// ToInteger converts the value at i to an integer (numbers with an exact
// integer value and convertible strings); ok is false otherwise.
func (t *Thread) ToInteger(i int) (int64, bool) {
	var isnum C.int
	v := C.pv_tointegerx(t.L, C.int(i), &isnum)
	return int64(v), isnum != 0
}

// ToNumber converts the value at i to a float; ok is false when it is not
// a number or a numeric string.
func (t *Thread) ToNumber(i int) (float64, bool) {
	var isnum C.int
	v := C.pv_tonumberx(t.L, C.int(i), &isnum)
	return float64(v), isnum != 0
}

// ToString returns the value at i if it is a string (numbers are not
// converted, so the stack is never modified).
func (t *Thread) ToString(i int) (string, bool) {
	var n C.size_t
	p := C.pv_tolstring_raw(t.L, C.int(i), &n)
	if p == nil {
		return "", false
	}
	return C.GoStringN(p, C.int(n)), true
}

// ToStringMeta converts any value with Lua's tostring semantics (__tostring,
// __name). ok is false if a __tostring metamethod raised.
func (t *Thread) ToStringMeta(i int) (string, bool) {
	if st := C.pv_tolstring(t.L, C.int(i)); st != C.LUA_OK {
		t.Pop(1)
		return "", false
	}
	s, _ := t.ToString(-1)
	t.Pop(1)
	return s, true
}

// TypeName returns the type name of the value at i, honouring __name of
// userdata metatables.
func (t *Thread) TypeName(i int) string {
	if t.Type(i) == TypeUserdata {
		if C.lua_getmetatable(t.L, C.int(i)) != 0 {
			t.PushString("__name")
			C.lua_rawget(t.L, -2)
			s, ok := t.ToString(-1)
			t.Pop(2)
			if ok {
				return s
			}
		}
	}
	return t.Type(i).String()
}

// NewTable pushes a new table with room for narr array and nrec hash items.
func (t *Thread) NewTable(narr, nrec int) { C.lua_createtable(t.L, C.int(narr), C.int(nrec)) }

// RawGet pushes t[k] where t is at i and k is on top (replaced), without metamethods.
func (t *Thread) RawGet(i int) Type { return Type(C.lua_rawget(t.L, C.int(i))) }

// RawSet does t[k] = v with t at i, k and v on top (popped), without metamethods.
func (t *Thread) RawSet(i int) { C.lua_rawset(t.L, C.int(i)) }

// RawGetI pushes t[n].
func (t *Thread) RawGetI(i int, n int64) Type {
	return Type(C.lua_rawgeti(t.L, C.int(i), C.lua_Integer(n)))
}

// RawSetI does t[n] = top (popped).
func (t *Thread) RawSetI(i int, n int64) { C.lua_rawseti(t.L, C.int(i), C.lua_Integer(n)) }

// RawGetField pushes t[k] without metamethods.
func (t *Thread) RawGetField(i int, k string) Type {
	i = t.AbsIndex(i)
	t.PushString(k)
	return t.RawGet(i)
}

// RawSetField sets t[k] = top (popped) without metamethods.
func (t *Thread) RawSetField(i int, k string) {
	i = t.AbsIndex(i)
	t.PushString(k)
	t.Insert(-2)
	t.RawSet(i)
}

// RawLen returns the raw length of the value at i.
func (t *Thread) RawLen(i int) int64 { return int64(C.lua_rawlen(t.L, C.int(i))) }

// GetField pushes t[k] honouring metamethods, under protection.
func (t *Thread) GetField(i int, k string) error {
	ck := C.CString(k)
	defer C.free(unsafe.Pointer(ck))
	if st := C.pv_getfield(t.L, C.int(i), ck); st != C.LUA_OK {
		return t.popError(st)
	}
	return nil
}

// GetTable pushes t[k] for the key on top (replaced), honouring metamethods.
func (t *Thread) GetTable(i int) error {
	if st := C.pv_gettable(t.L, C.int(i)); st != C.LUA_OK {
		return t.popError(st)
	}
	return nil
}

// SetTable does t[k] = v for k, v on top (popped), honouring metamethods.
func (t *Thread) SetTable(i int) error {
	if st := C.pv_settable(t.L, C.int(i)); st != C.LUA_OK {
		return t.popError(st)
	}
	return nil
}

// Next pops a key and pushes the next key-value pair of the table at i;
// returns false (pushing nothing) at the end. Keys must not be modified
// during traversal (use ToString only on values you know are strings).
func (t *Thread) Next(i int) bool { return C.pv_next(t.L, C.int(i)) != 0 }

// PushGlobalTable pushes _G.
func (t *Thread) PushGlobalTable() { C.pv_pushglobaltable(t.L) }

// GetGlobal pushes the global name (raw access to _G).
func (t *Thread) GetGlobal(name string) Type {
	t.PushGlobalTable()
	typ := t.RawGetField(-1, name)
	t.Remove(-2)
	return typ
}

// SetGlobal pops the top value into global name (raw access to _G).
func (t *Thread) SetGlobal(name string) {
	t.PushGlobalTable()
	t.Insert(-2)
	t.RawSetField(-2, name)
	t.Pop(1)
}

// SetMetatable pops a table and sets it as the metatable of the value at i.
func (t *Thread) SetMetatable(i int) { C.lua_setmetatable(t.L, C.int(i)) }

// GetMetatable pushes the metatable of the value at i; false (nothing
// pushed) if it has none.
func (t *Thread) GetMetatable(i int) bool { return C.lua_getmetatable(t.L, C.int(i)) != 0 }

// NewMetatable pushes the registry metatable called name, creating it (with
// __name set) if needed; created reports whether it is new.
func (t *Thread) NewMetatable(name string) (created bool, err error) {
	cname := C.CString(name)
	defer C.free(unsafe.Pointer(cname))
	if st := C.pv_newmetatable(t.L, cname); st != C.LUA_OK {
		return false, t.popError(st)
	}
	created = t.ToBoolean(-1)
	t.Pop(1)
	return created, nil
}

// GetRegistryField pushes registry[name].
func (t *Thread) GetRegistryField(name string) Type {
	return t.RawGetField(int(C.pv_registryindex()), name)
}

// SetRegistryField pops the top into registry[name].
func (t *Thread) SetRegistryField(name string) {
	t.RawSetField(int(C.pv_registryindex()), name)
}

// RawEqual compares two values without metamethods.
func (t *Thread) RawEqual(a, b int) bool { return C.lua_rawequal(t.L, C.int(a), C.int(b)) != 0 }

// Equal compares two values with __eq, under protection.
func (t *Thread) Equal(a, b int) (bool, error) {
	var out C.int
	if st := C.pv_compare_eq(t.L, C.int(a), C.int(b), &out); st != C.LUA_OK {
		return false, t.popError(st)
	}
	return out != 0, nil
}

// Load compiles a text chunk and pushes it as a function. Syntax errors are
// returned, nothing is pushed then.
func (t *Thread) Load(code, chunkname string) error {
	p, n := cstr(code)
	cname := C.CString(chunkname)
	defer C.free(unsafe.Pointer(cname))
	if st := C.pv_loadbuffer(t.L, p, n, cname); st != C.LUA_OK {
		return t.popError(st)
	}
	return nil
}

// PCall calls the function below nargs arguments in protected mode. With
// traceback, a string error is extended with a traceback.
func (t *Thread) PCall(nargs, nresults int, traceback bool) error {
	tb := C.int(0)
	if traceback {
		tb = 1
	}
	if st := C.pv_pcall(t.L, C.int(nargs), C.int(nresults), tb); st != C.LUA_OK {
		return t.popError(st)
	}
	return nil
}

// PCallValue is PCall, but on error the raised value stays on the stack
// (for sentinel errors) and the returned *Error describes it.
func (t *Thread) PCallValue(nargs, nresults int) *Error {
	if st := C.pv_pcall(t.L, C.int(nargs), C.int(nresults), 0); st != C.LUA_OK {
		e := &Error{Status: int(st), IsString: t.Type(-1) == TypeString}
		if s, ok := t.ToStringMeta(-1); ok {
			e.Message = s
		} else {
			e.Message = fmt.Sprintf("(error object is a %s value)", t.Type(-1))
		}
		return e
	}
	return nil
}

// DoString loads and runs a chunk, discarding its results.
func (t *Thread) DoString(code, chunkname string) error {
	if err := t.Load(code, chunkname); err != nil {
		return err
	}
	return t.PCall(0, 0, false)
}

// IsYieldable reports whether the running code may yield.
func (t *Thread) IsYieldable() bool { return C.lua_isyieldable(t.L) != 0 }

// Where returns "chunkname:line:" for the function at the given call level
// (1 = the function that called the running Go function), or "".
func (t *Thread) Where(level int) string {
	var ar C.lua_Debug
	if C.lua_getstack(t.L, C.int(level), &ar) == 0 {
		return ""
	}
	what := C.CString("Sl")
	defer C.free(unsafe.Pointer(what))
	C.lua_getinfo(t.L, what, &ar)
	if ar.currentline <= 0 {
		return ""
	}
	return fmt.Sprintf("%s:%d:", C.GoString(&ar.short_src[0]), int(ar.currentline))
}

// Frame describes one level of the Lua call stack.
type Frame struct {
	Source string // chunk name without the leading '@' / '='
	Line   int
}

// Stack returns the Lua frames of the running thread, innermost first,
// skipping C functions.
func (t *Thread) Stack() []Frame {
	var frames []Frame
	what := C.CString("Sl")
	defer C.free(unsafe.Pointer(what))
	for level := 0; ; level++ {
		var ar C.lua_Debug
		if C.lua_getstack(t.L, C.int(level), &ar) == 0 {
			break
		}
		C.lua_getinfo(t.L, what, &ar)
		if ar.currentline <= 0 {
			continue
		}
		src := C.GoString(ar.source)
		if len(src) > 0 && (src[0] == '@' || src[0] == '=') {
			src = src[1:]
		}
		frames = append(frames, Frame{Source: src, Line: int(ar.currentline)})
	}
	return frames
}

// PCallHandler is PCall with the message handler at absolute stack index h:
// the handler runs at the point of the error, before the stack unwinds, so it
// can look at the frames of the failure.
func (t *Thread) PCallHandler(nargs, nresults, h int) error {
	if st := C.pv_pcallh(t.L, C.int(nargs), C.int(nresults), C.int(h)); st != C.LUA_OK {
		return t.popError(st)
	}
	return nil
}

// Version returns the Lua release, e.g. "Lua 5.4.4".
func Version() string { return C.LUA_RELEASE }
