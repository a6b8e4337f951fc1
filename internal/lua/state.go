// Package lua is a small, safe binding to PUC-Rio Lua 5.4 (Debian's
// liblua5.4, linked statically). It is the only cgo package of Provium.
//
// Safety rules, enforced by the shim:
//   - a Lua error never unwinds through a Go frame: Go callbacks return a
//     status and the C trampoline raises after Go has returned;
//   - every API call from Go that can raise runs under lua_pcall;
//   - Go panics inside callbacks become Lua errors;
//   - userdata carry an integer handle into a Go-side table: no Go pointer is
//     ever stored in C memory;
//   - a State is used by one goroutine at a time (Interrupt excepted).
package lua

/*
#cgo CFLAGS: -I/usr/include/lua5.4
#cgo LDFLAGS: -l:liblua5.4.a -lm -ldl
#include "shim.h"
*/
import "C"

import (
	"context"
	"errors"
	"fmt"
	"runtime/cgo"
	"sync"
	"unsafe"
)

// Type is a Lua value type.
type Type int

// The Lua 5.4 basic types.
const (
	TypeNone          Type = C.LUA_TNONE
	TypeNil           Type = C.LUA_TNIL
	TypeBoolean       Type = C.LUA_TBOOLEAN
	TypeLightUserdata Type = C.LUA_TLIGHTUSERDATA
	TypeNumber        Type = C.LUA_TNUMBER
	TypeString        Type = C.LUA_TSTRING
	TypeTable         Type = C.LUA_TTABLE
	TypeFunction      Type = C.LUA_TFUNCTION
	TypeUserdata      Type = C.LUA_TUSERDATA
	TypeThread        Type = C.LUA_TTHREAD
)

// String returns the Lua name of the type, as type() reports it.
func (t Type) String() string {
	switch t {
	case TypeNone:
		return "no value"
	case TypeNil:
		return "nil"
	case TypeBoolean:
		return "boolean"
	case TypeLightUserdata, TypeUserdata:
		return "userdata"
	case TypeNumber:
		return "number"
	case TypeString:
		return "string"
	case TypeTable:
		return "table"
	case TypeFunction:
		return "function"
	case TypeThread:
		return "thread"
	}
	return fmt.Sprintf("type(%d)", int(t))
}

// Function is a Go function callable from Lua. It reads its arguments from
// the stack of L (the calling thread, which may be a coroutine), pushes its
// results and returns how many it pushed. A non-nil error is raised in Lua
// after the function has returned: use Raise to raise an arbitrary value.
type Function func(L *Thread) (int, error)

// State is one Lua universe (lua_State created by luaL_newstate).
type State struct {
	main   *Thread
	handle cgo.Handle

	mu      sync.Mutex // guards objects; __gc may run during any allocation
	objects map[uint64]any
	next    uint64

	ctx context.Context

	// lifeMu lets Interrupt (any goroutine) race safely with Close: a
	// watchdog may fire just as its file finishes.
	lifeMu sync.RWMutex
	closed bool
}

// Thread is a Lua thread (the main one or a coroutine) of a State. All
// stack operations are methods of Thread.
type Thread struct {
	L     *C.lua_State
	state *State
}

// NewState creates a Lua state with the standard libraries open.
func NewState() (*State, error) {
	s := &State{objects: map[uint64]any{}, ctx: context.Background()}
	s.handle = cgo.NewHandle(s)
	L := C.pv_newstate(C.uintptr_t(s.handle))
	if L == nil {
		s.handle.Delete()
		return nil, errors.New("lua: cannot create state (out of memory)")
	}
	s.main = &Thread{L: L, state: s}
	if st := C.pv_openlibs(L); st != C.LUA_OK {
		err := s.main.popError(st)
		s.Close()
		return nil, fmt.Errorf("lua: open standard libraries: %w", err)
	}
	if err := s.registerGoFunctionMeta(); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

// Main returns the main thread.
func (s *State) Main() *Thread { return s.main }

// Close releases the state; every __gc metamethod runs.
func (s *State) Close() {
	s.lifeMu.Lock()
	defer s.lifeMu.Unlock()
	if s.closed || s.main == nil || s.main.L == nil {
		return
	}
	s.closed = true
	C.pv_close(s.main.L)
	s.main.L = nil
	s.handle.Delete()
	s.mu.Lock()
	s.objects = map[uint64]any{}
	s.mu.Unlock()
}

// SetContext sets the context that blocking Go callbacks should honour.
func (s *State) SetContext(ctx context.Context) { s.ctx = ctx }

// Context returns the context set by SetContext (Background by default).
func (s *State) Context() context.Context { return s.ctx }

// Interrupt makes the running Lua code raise msg at its next count-hook tick
// (every 1000 instructions) and keep raising it on every tick, so pcall
// cannot swallow it. It is safe to call from any goroutine.
func (s *State) Interrupt(msg string) {
	s.lifeMu.RLock()
	defer s.lifeMu.RUnlock()
	if s.closed {
		return
	}
	cmsg := C.CString(msg)
	defer C.free(unsafe.Pointer(cmsg))
	C.pv_set_interrupt(s.main.L, cmsg)
}

// ClearInterrupt stops the raising started by Interrupt.
func (s *State) ClearInterrupt() {
	s.lifeMu.RLock()
	defer s.lifeMu.RUnlock()
	if !s.closed {
		C.pv_clear_interrupt(s.main.L)
	}
}

// ObjectCount reports how many Go objects are referenced from Lua userdata
// and Go functions (for leak tests).
func (s *State) ObjectCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.objects)
}

func (s *State) store(v any) uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.next++
	s.objects[s.next] = v
	return s.next
}

func (s *State) load(h uint64) (any, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	v, ok := s.objects[h]
	return v, ok
}

func (s *State) release(h uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.objects, h)
}

// State returns the state the thread belongs to.
func (t *Thread) State() *State { return t.state }

// Context is a shortcut for t.State().Context().
func (t *Thread) Context() context.Context { return t.state.ctx }
