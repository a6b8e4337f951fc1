// Package luaapi exposes the core object graph (internal/lab) to Lua: the
// `provium` global and the Lab, VM and Bridge userdata. Every method is a
// thin adapter: parse arguments, call one core method, convert the result.
// Business rules live in internal/lab.
package luaapi

import (
	"fmt"
	"time"

	"github.com/provium/provium/internal/guest"
	"github.com/provium/provium/internal/lab"
	"github.com/provium/provium/internal/lua"
)

// Class names (also the userdata __name).
const (
	classLab    = "Lab"
	classVM     = "VM"
	classBridge = "Bridge"
)

// FileConfig holds the file-scope settings a test file assigns on the root
// lab (`provium.timeout`, `provium.reset_between_tests`), read by the runner.
type FileConfig struct {
	Timeout           time.Duration // 0 = none
	ResetBetweenTests bool
}

// Claim is the recorded provium:claim of a file.
type Claim struct {
	Taken  bool
	Memory uint64
	CPUs   int64
}

// API is the Lua-facing side of one file's object graph.
type API struct {
	L     *lua.Thread
	Root  *lab.Lab
	File  *FileConfig
	Claim Claim

	current  *lab.Lab                   // the lab bound to `provium` (root or test scope)
	machines map[*lab.VM]*guest.Machine // last machine of each VM (console after exit)
	files    map[*fileObj]struct{}      // open guest files
	streams  map[*streamObj]struct{}    // open Tails and ConsoleStreams
	timeCtl  map[*lab.VM]bool           // VMs whose guest clock a test set (§12)
	snap     *snapAPI                   // snapshots and fixtures (snapshot.go)
	consoles map[*lab.VM]*consoleObj    // vm:console() objects, one per VM
	clocks   map[*lab.VM]*clockObj      // vm:clock() objects, one per VM
	tracer   func(name string) func()   // --trace spans of VM operations (nil: off)
}

// Install defines the userdata classes and binds `provium` to the root lab.
func Install(L *lua.Thread, root *lab.Lab) (*API, error) {
	a := &API{L: L, Root: root, File: &FileConfig{}, files: map[*fileObj]struct{}{}}
	if err := a.loadPrelude(); err != nil {
		return nil, fmt.Errorf("luaapi: prelude: %w", err)
	}
	for _, c := range []lua.Class{a.labClass(), a.vmClass(), a.bridgeClass(), a.fileClass(), a.consoleClass(), a.batchClass(),
		a.procClass(), a.workerClass(), a.pendingClass(),
		a.streamClass(classTail), a.streamClass(classConsoleStream), a.clockClass(), a.diskClass(),
		a.nicClass(), a.streamClass(classCapture)} {
		if err := L.DefineClass(c); err != nil {
			return nil, fmt.Errorf("luaapi: define %s: %w", c.Name, err)
		}
	}
	a.Bind(root)
	return a, nil
}

// Bind sets the global `provium` to lab l (the root, or a test scope).
func (a *API) Bind(l *lab.Lab) {
	a.current = l
	a.L.PushObject(l, classLab)
	a.L.SetGlobal("provium")
}

// scope is where resources created now register for auto-close.
func (a *API) scope() *lab.Scope { return a.current.Scope() }

// push pushes a core object as its userdata.
func (a *API) push(L *lua.Thread, obj any) {
	switch o := obj.(type) {
	case *lab.Lab:
		L.PushObject(o, classLab)
	case *lab.VM:
		L.PushObject(o, classVM)
	case *lab.Bridge:
		L.PushObject(o, classBridge)
	case *lab.NIC:
		L.PushObject(o, classNic)
	case nil:
		L.PushNil()
	default:
		panic(fmt.Sprintf("luaapi: push of %T", obj))
	}
}

// self returns argument 1 as the expected class.
func self[T any](L *lua.Thread, site string) (T, error) {
	var zero T
	v, _, ok := L.ToObject(1)
	if ok {
		if t, ok := v.(T); ok {
			return t, nil
		}
	}
	return zero, fmt.Errorf("%s: expected a %T receiver (call it with `:`), got %s", site, zero, L.TypeName(1))
}

// eq is the __eq metamethod shared by every class: two userdata are equal
// when they refer to the same core object.
// onePerVM returns the object *m holds for vm, made by mk the first time:
// vm:console() and vm:clock() hand out one object per VM, so handles on it
// are == (10-lua-api.md §1).
func onePerVM[T any](m *map[*lab.VM]T, vm *lab.VM, mk func() T) T {
	if *m == nil {
		*m = map[*lab.VM]T{}
	}
	obj, ok := (*m)[vm]
	if !ok {
		obj = mk()
		(*m)[vm] = obj
	}
	return obj
}

func eq(L *lua.Thread) (int, error) {
	a, _, ok1 := L.ToObject(1)
	b, _, ok2 := L.ToObject(2)
	L.PushBoolean(ok1 && ok2 && a == b)
	return 1, nil
}

// method wraps a method body so that a core error becomes the Lua error.
type method func(L *lua.Thread) (int, error)

func toFunctions(ms map[string]method) map[string]lua.Function {
	out := make(map[string]lua.Function, len(ms))
	for k, m := range ms {
		out[k] = lua.Function(m)
	}
	return out
}

// SetGlobalVM binds the Lua global name to vm (the REPL's `vm`, also a VM
// kept by --keep-failed that another lab created).
func (a *API) SetGlobalVM(name string, vm *lab.VM) {
	a.push(a.L, vm)
	a.L.SetGlobal(name)
}
