package runner

import (
	_ "embed"
	"fmt"

	"github.com/provium/provium/internal/lua"
	"github.com/provium/provium/internal/luaapi"
)

//go:embed prelude.lua
var prelude string

// Registry keys of the file's Lua state.
const (
	regTests   = "provium.tests"   // array of test functions, by declaration index
	regPrelude = "provium.prelude" // the prelude module table
)

// testDecl is one test() of the file.
type testDecl struct {
	name     string
	meta     map[string]any
	declLine int
	timeout  timeoutSetting
}

type timeoutSetting struct {
	set bool
	d   interface{ Seconds() float64 }
}

// installFramework defines test, todo and wait_until, and loads the prelude.
func (fr *fileRun) installFramework() error {
	L := fr.L
	if err := L.Load(prelude, "=provium.prelude"); err != nil {
		return fmt.Errorf("runner: load prelude: %w", err)
	}
	if err := L.PCall(0, 1, false); err != nil {
		return fmt.Errorf("runner: run prelude: %w", err)
	}
	L.SetRegistryField(regPrelude)
	L.NewTable(0, 0)
	L.SetRegistryField(regTests)

	L.Register("test", fr.luaTest)
	L.Register("todo", fr.luaTodo)
	L.Register("wait_until", fr.luaWaitUntil)
	return nil
}

const (
	errTestBadArgs   = "test(name, [meta,] fn): bad arguments"
	errTestDuplicate = "test: duplicate name `%s` in this file"
	errTestInBody    = "test: cannot declare a test inside a test body (declare it at the top level of the file)"
	errTodoInBody    = "todo: cannot be called inside a test body (call it at the top level of the file)"
)

func (fr *fileRun) luaTest(L *lua.Thread) (int, error) {
	if fr.inTest {
		return 0, fmt.Errorf(errTestInBody)
	}
	n := L.GetTop()
	name, ok := L.ToString(1)
	if !ok {
		return 0, fmt.Errorf(errTestBadArgs)
	}
	fnIdx, metaIdx := 0, 0
	switch {
	case n == 2 && L.Type(2) == lua.TypeFunction:
		fnIdx = 2
	case n == 3 && L.Type(3) == lua.TypeFunction && (L.Type(2) == lua.TypeTable || L.Type(2) == lua.TypeNil):
		fnIdx, metaIdx = 3, 2
	default:
		return 0, fmt.Errorf(errTestBadArgs)
	}
	if fr.names[name] {
		return 0, fmt.Errorf(errTestDuplicate, name)
	}
	decl := &testDecl{name: name}
	if metaIdx != 0 && L.Type(metaIdx) == lua.TypeTable {
		meta, err := convertMeta(L, metaIdx)
		if err != nil {
			return 0, err
		}
		decl.meta = meta
		if v, ok := meta["timeout"]; ok && v != nil {
			L.RawGetField(metaIdx, "timeout")
			d, err := luaapi.PositiveDuration(L, L.GetTop(), "meta.timeout")
			L.Pop(1)
			if err != nil {
				return 0, err
			}
			decl.timeout = timeoutSetting{set: true, d: d}
		}
	}
	if fr.file.Abs != "" {
		for _, f := range L.Stack() {
			if f.Source == fr.chunkName {
				decl.declLine = f.Line
				break
			}
		}
	}
	fr.names[name] = true
	fr.tests = append(fr.tests, decl)
	L.GetRegistryField(regTests)
	L.PushValue(fnIdx)
	L.RawSetI(-2, int64(len(fr.tests)))
	L.Pop(1)
	return 0, nil
}

// convertMeta converts a meta table with the C3 rules; errors name the key.
func convertMeta(L *lua.Thread, idx int) (map[string]any, error) {
	out := map[string]any{}
	idx = L.AbsIndex(idx)
	L.PushNil()
	for L.Next(idx) {
		key, ok := L.ToString(-2)
		if !ok || L.Type(-2) != lua.TypeString {
			k, _ := L.ToStringMeta(-2)
			L.Pop(2)
			return nil, fmt.Errorf("meta: keys must be strings, got %s", k)
		}
		v, err := luaapi.ToGo(L, -1)
		if err != nil {
			t := L.TypeName(-1)
			L.Pop(2)
			_ = err
			return nil, fmt.Errorf("meta.%s: unsupported value (%s)", key, t)
		}
		out[key] = v
		L.Pop(1)
	}
	return out, nil
}

func (fr *fileRun) luaTodo(L *lua.Thread) (int, error) {
	if fr.inTest {
		return 0, fmt.Errorf(errTodoInBody)
	}
	reason := "todo"
	if s, ok := L.ToString(1); ok {
		reason = s
	} else if !L.IsNoneOrNil(1) {
		reason, _ = L.ToStringMeta(1)
	}
	fr.todo = &reason
	return 0, nil
}
