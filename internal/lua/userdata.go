package lua

/*
#include "shim.h"
*/
import "C"

import "unsafe"

// objectMarker is a metatable field that marks the metatables created by
// DefineClass, so ToObject never misreads foreign userdata.
const objectMarker = "__provium_object"

// Class describes a userdata type: its metatable name (also __name) and
// its metamethods and methods.
type Class struct {
	Name string
	// Methods become the __index table (unless Index is set).
	Methods map[string]Function
	// Index, if set, is used as __index instead of the Methods table; it is
	// called with (object, key).
	Index Function
	// Meta holds other metamethods (__tostring, __eq, __newindex, __len, ...).
	Meta map[string]Function
}

// DefineClass creates the metatable for c in the registry. The __gc
// metamethod is installed by the binding to release the Go object.
func (t *Thread) DefineClass(c Class) error {
	if _, err := t.NewMetatable(c.Name); err != nil {
		return err
	}
	mt := t.GetTop()
	t.PushBoolean(true)
	t.RawSetField(mt, objectMarker)
	state := t.state
	t.PushFunction(func(L *Thread) (int, error) {
		if p := C.lua_touserdata(L.L, 1); p != nil {
			state.release(*(*uint64)(p))
		}
		return 0, nil
	})
	t.RawSetField(mt, "__gc")
	for name, f := range c.Meta {
		t.PushFunction(f)
		t.RawSetField(mt, name)
	}
	if c.Index != nil {
		t.PushFunction(c.Index)
	} else {
		t.NewTable(0, len(c.Methods))
		for name, f := range c.Methods {
			t.PushFunction(f)
			t.RawSetField(-2, name)
		}
	}
	t.RawSetField(mt, "__index")
	t.Pop(1)
	return nil
}

// PushObject pushes a new userdata of class name referring to v.
func (t *Thread) PushObject(v any, class string) {
	h := t.state.store(v)
	p := (*uint64)(C.pv_newuserdata(t.L, C.size_t(unsafe.Sizeof(uint64(0)))))
	*p = h
	t.GetRegistryField(class)
	t.SetMetatable(-2)
}

// ToObject returns the Go value of a userdata created by PushObject, and
// its class name.
func (t *Thread) ToObject(i int) (v any, class string, ok bool) {
	if t.Type(i) != TypeUserdata {
		return nil, "", false
	}
	p := C.lua_touserdata(t.L, C.int(i))
	if p == nil || !t.GetMetatable(i) {
		return nil, "", false
	}
	t.RawGetField(-1, objectMarker)
	marked := t.ToBoolean(-1)
	t.Pop(1)
	t.RawGetField(-1, "__name")
	class, _ = t.ToString(-1)
	t.Pop(2)
	if !marked {
		return nil, "", false
	}
	v, ok = t.state.load(*(*uint64)(p))
	return v, class, ok
}
