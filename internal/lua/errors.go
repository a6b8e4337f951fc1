package lua

/*
#include "shim.h"
*/
import "C"

import "fmt"

// Error is a Lua error caught by a protected call.
type Error struct {
	// Message is the error value converted with tostring semantics (a string
	// error as is; other values through __tostring / their type name).
	Message string
	// Traceback is set when the call asked for one.
	Traceback string
	// Value reports whether the raised value was a string.
	IsString bool
	// Status is the Lua status code (LUA_ERRRUN, LUA_ERRSYNTAX, LUA_ERRMEM…).
	Status int
}

func (e *Error) Error() string { return e.Message }

// Status codes returned by load and pcall.
const (
	StatusOK     = int(C.LUA_OK)
	StatusYield  = int(C.LUA_YIELD)
	StatusRun    = int(C.LUA_ERRRUN)
	StatusSyntax = int(C.LUA_ERRSYNTAX)
	StatusMem    = int(C.LUA_ERRMEM)
	StatusErr    = int(C.LUA_ERRERR)
)

// popError converts the error value on top of the stack into an *Error and
// pops it. The raw value is kept available through RaisedValue when the
// caller needs it before popping: use PCallKeep for that.
func (t *Thread) popError(st C.int) *Error {
	e := &Error{Status: int(st)}
	e.IsString = t.Type(-1) == TypeString
	if s, ok := t.ToStringMeta(-1); ok {
		e.Message = s
	} else {
		e.Message = fmt.Sprintf("(error object is a %s value)", t.Type(-1))
	}
	t.Pop(1)
	return e
}

// raiseTop is the sentinel error a Function returns to raise the value on
// top of its stack unchanged (tables, userdata, sentinels).
type raiseTop struct{}

func (raiseTop) Error() string { return "lua: raise value on top of stack" }

// Raise returns an error that, returned from a Function, raises the value
// currently on top of the stack as is.
func Raise() error { return raiseTop{} }

// yieldN is the sentinel a Function returns to yield n values.
type yieldN struct{ n int }

func (y yieldN) Error() string { return "lua: yield" }

// Yield returns an error that, returned from a Function running inside a
// coroutine, yields the top n values. The function must be called from a
// coroutine (Thread.IsYieldable).
func Yield(n int) error { return yieldN{n} }
