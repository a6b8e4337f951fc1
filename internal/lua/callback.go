package lua

/*
#include "shim.h"
*/
import "C"

import (
	"errors"
	"fmt"
	"runtime/cgo"
	"unsafe"
)

const goFunctionMeta = "provium.gofunction"

// provium_go_call is the single entry from C into Go. It never lets a panic
// escape (that would cross the C frames of the Lua VM) and never raises: it
// reports what to do through its return value.
//
//export provium_go_call
func provium_go_call(state C.uintptr_t, L *C.lua_State, fn C.uint64_t) (ret C.int) {
	s := cgo.Handle(state).Value().(*State)
	t := &Thread{L: L, state: s}
	v, ok := s.load(uint64(fn))
	if !ok {
		t.PushString("lua: call of a released Go function")
		return -1
	}
	f := v.(Function)
	defer func() {
		if r := recover(); r != nil {
			t.PushString(fmt.Sprintf("go panic: %v", r))
			ret = -1
		}
	}()
	n, err := f(t)
	if err != nil {
		var y yieldN
		switch {
		case errors.As(err, &y):
			return C.int(-2 - y.n)
		case errors.Is(err, raiseTop{}):
			return -1
		default:
			t.PushString(err.Error())
			return -1
		}
	}
	return C.int(n)
}

// registerGoFunctionMeta creates the metatable of the userdata that carries a
// Go function handle as the closure's upvalue; its __gc frees the handle.
func (s *State) registerGoFunctionMeta() error {
	t := s.main
	if _, err := t.NewMetatable(goFunctionMeta); err != nil {
		return err
	}
	t.PushString("__gc")
	h := s.store(Function(func(L *Thread) (int, error) {
		if p := C.lua_touserdata(L.L, 1); p != nil {
			s.release(*(*uint64)(p))
		}
		return 0, nil
	}))
	gcHolder := (*uint64)(C.pv_newuserdata(t.L, 8))
	*gcHolder = h
	// The __gc function's own handle lives as long as the state.
	C.pv_push_gofunction(t.L)
	C.lua_rawset(t.L, -3)
	t.Pop(1)
	return nil
}

// PushFunction pushes f as a Lua function. The Go function is released when
// Lua collects the closure.
func (t *Thread) PushFunction(f Function) {
	h := t.state.store(f)
	p := (*uint64)(C.pv_newuserdata(t.L, 8))
	*p = h
	cname := C.CString(goFunctionMeta)
	C.lua_getfield(t.L, C.pv_registryindex(), cname) // registry has no metamethods
	C.free(unsafe.Pointer(cname))
	C.lua_setmetatable(t.L, -2)
	C.pv_push_gofunction(t.L)
}

// Register sets global name to f.
func (t *Thread) Register(name string, f Function) {
	t.PushFunction(f)
	t.SetGlobal(name)
}
