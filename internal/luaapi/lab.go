package luaapi

import (
	"fmt"
	"strings"
	"time"

	"github.com/provium/provium/internal/lab"
	"github.com/provium/provium/internal/lua"
	"github.com/provium/provium/internal/sched"
	"github.com/provium/provium/internal/units"
)

// reservedCallables work both as provium:f(...) and provium.f(...): a
// leading Lab argument is dropped (10-lua-api.md §2.6, differs).
var reservedCallables = []string{"pack", "unpack", "vm_fixture", "lab_fixture"}

// barrierDefault is lab:barrier's timeout when none is given.
const barrierDefault = 60 * time.Second

const unknownKeyFmt = "cannot set `provium.%s`: not a recognised file-scope config key. Known keys: reset_between_tests, timeout"

func (a *API) labClass() lua.Class {
	methods := map[string]method{
		"vm":              a.labVM,
		"bridge":          a.labBridge,
		"lab":             a.labSubLab,
		"depends_on_file": a.labDependsOnFile,
		"include":         a.labInclude,
		"remove":          a.labRemove,
		"members":         a.labMembers,
		"vm_names":        a.labNames(func(l *lab.Lab) []string { return l.VMNames() }),
		"bridge_names":    a.labNames(func(l *lab.Lab) []string { return l.BridgeNames() }),
		"sub_lab_names":   a.labNames(func(l *lab.Lab) []string { return l.SubLabNames() }),
		"boot":            a.labAll("lab:boot", (*lab.Lab).BootAll, true),
		"shutdown":        a.labAll("lab:shutdown", (*lab.Lab).ShutdownAll, false),
		"pause":           a.labAll("lab:pause", (*lab.Lab).PauseAll, false),
		"resume":          a.labAll("lab:resume", (*lab.Lab).ResumeAll, false),
		"claim":           a.labClaim,
		"barrier":         a.labBarrier,
		"name":            a.labName,
	}
	methods["pack"] = dropLab(stringLib("pack"))
	methods["unpack"] = dropLab(stringLib("unpack"))
	a.snapshotLabMethods(methods)
	fns := toFunctions(methods)
	return lua.Class{
		Name: classLab,
		Index: func(L *lua.Thread) (int, error) {
			l, err := self[*lab.Lab](L, "lab")
			if err != nil {
				return 0, err
			}
			key, ok := L.ToString(2)
			if !ok {
				L.PushNil()
				return 1, nil
			}
			if f, ok := fns[key]; ok {
				L.PushFunction(f)
				return 1, nil
			}
			if l.Kind() == lab.LabRoot {
				switch key {
				case "timeout":
					if a.File.Timeout == 0 {
						L.PushNil()
					} else {
						L.PushNumber(a.File.Timeout.Seconds())
					}
					return 1, nil
				case "reset_between_tests":
					L.PushBoolean(a.File.ResetBetweenTests)
					return 1, nil
				}
			}
			a.push(L, l.Lookup(key))
			return 1, nil
		},
		Meta: map[string]lua.Function{
			"__newindex": a.labNewIndex,
			"__eq":       eq,
			"__tostring": func(L *lua.Thread) (int, error) {
				l, err := self[*lab.Lab](L, "lab")
				if err != nil {
					return 0, err
				}
				L.PushString(fmt.Sprintf("lab(%s)", l.Name()))
				return 1, nil
			},
		},
	}
}

// dropLab makes a reserved callable accept both call forms.
func dropLab(m method) method {
	return func(L *lua.Thread) (int, error) {
		if _, class, ok := L.ToObject(1); ok && class == classLab {
			L.Remove(1)
		}
		return m(L)
	}
}

// stringLib calls string.<name> with the arguments on the stack.
func stringLib(name string) method {
	return func(L *lua.Thread) (int, error) {
		n := L.GetTop()
		L.GetGlobal("string")
		if err := L.GetField(-1, name); err != nil {
			return 0, err
		}
		L.Remove(-2)
		L.Insert(1)
		if err := L.PCall(n, -1, false); err != nil {
			return 0, fmt.Errorf("%s", strings.TrimPrefix(err.Error(), "bad argument"))
		}
		return L.GetTop(), nil
	}
}

func (a *API) labNewIndex(L *lua.Thread) (int, error) {
	l, err := self[*lab.Lab](L, "lab")
	if err != nil {
		return 0, err
	}
	key, _ := L.ToStringMeta(2)
	if l.Kind() != lab.LabRoot {
		if key == "timeout" || key == "reset_between_tests" {
			return 0, fmt.Errorf("cannot set `provium.%s` here: file-scope config keys are set at the top level of the file, not inside a test", key)
		}
		return 0, fmt.Errorf(unknownKeyFmt, key)
	}
	switch key {
	case "timeout":
		if L.IsNoneOrNil(3) {
			a.File.Timeout = 0
			return 0, nil
		}
		d, err := PositiveDuration(L, 3, "provium.timeout")
		if err != nil {
			return 0, err
		}
		a.File.Timeout = d
		return 0, nil
	case "reset_between_tests":
		if L.Type(3) != lua.TypeBoolean {
			return 0, fmt.Errorf("provium.reset_between_tests: expected a boolean, got %s", L.TypeName(3))
		}
		a.File.ResetBetweenTests = L.ToBoolean(3)
		return 0, nil
	}
	return 0, fmt.Errorf(unknownKeyFmt, key)
}

func (a *API) labVM(L *lua.Thread) (int, error) {
	l, err := self[*lab.Lab](L, "lab:vm")
	if err != nil {
		return 0, err
	}
	n := L.GetTop() - 1
	if n < 1 || n > 3 {
		return 0, fmt.Errorf("lab:vm: expected 1, 2, or 3 args, got %d", n)
	}
	name, err := checkString(L, 2, "lab:vm")
	if err != nil {
		return 0, err
	}
	if n == 1 {
		vm, err := l.VM(name)
		if err != nil {
			return 0, err
		}
		a.push(L, vm)
		return 1, nil
	}
	profile, err := checkString(L, 3, "lab:vm")
	if err != nil {
		return 0, err
	}
	opts, err := bootOpts(L, 4)
	if err != nil {
		return 0, err
	}
	vm, err := l.NewVM(name, profile, opts)
	if err != nil {
		return 0, err
	}
	a.push(L, vm)
	return 1, nil
}

// bootOpts parses an optional boot options table at i.
func bootOpts(L *lua.Thread, i int) (lab.BootOpts, error) {
	if L.IsNoneOrNil(i) {
		return lab.BootOpts{}, nil
	}
	if L.Type(i) != lua.TypeTable {
		return lab.BootOpts{}, fmt.Errorf("boot_opts: expected a table, got %s", L.TypeName(i))
	}
	v, err := ToGo(L, i)
	if err != nil {
		return lab.BootOpts{}, fmt.Errorf("boot_opts: %w", err)
	}
	m, ok := v.(map[string]any)
	if !ok {
		if arr, isArr := v.([]any); isArr && len(arr) == 0 {
			m = map[string]any{}
		} else {
			return lab.BootOpts{}, fmt.Errorf("boot_opts: expected a table with string keys")
		}
	}
	return lab.ParseBootOpts(m)
}

func (a *API) labBridge(L *lua.Thread) (int, error) {
	l, err := self[*lab.Lab](L, "lab:bridge")
	if err != nil {
		return 0, err
	}
	name, err := checkString(L, 2, "lab:bridge")
	if err != nil {
		return 0, err
	}
	var b *lab.Bridge
	if L.IsNoneOrNil(3) {
		b, err = l.Bridge(name)
	} else {
		var v any
		v, err = ToGo(L, 3)
		if err != nil {
			return 0, fmt.Errorf("lab:bridge: opts: %w", err)
		}
		m, _ := v.(map[string]any)
		if m == nil {
			m = map[string]any{}
		}
		var opts lab.BridgeOpts
		if opts, err = lab.ParseBridgeOpts(m); err != nil {
			return 0, err
		}
		b, err = l.BridgeWithOpts(name, opts)
	}
	if err != nil {
		return 0, err
	}
	a.push(L, b)
	return 1, nil
}

func (a *API) labSubLab(L *lua.Thread) (int, error) {
	l, err := self[*lab.Lab](L, "lab:lab")
	if err != nil {
		return 0, err
	}
	var sub *lab.Lab
	if L.IsNoneOrNil(2) {
		sub = l.AnonymousSubLab()
	} else {
		name, err := checkString(L, 2, "lab:lab")
		if err != nil {
			return 0, err
		}
		if sub, err = l.SubLab(name); err != nil {
			return 0, err
		}
	}
	a.push(L, sub)
	return 1, nil
}

func (a *API) labDependsOnFile(L *lua.Thread) (int, error) {
	if _, err := self[*lab.Lab](L, "lab:depends_on_file"); err != nil {
		return 0, err
	}
	// A runtime no-op: the literal argument feeds the fixture-key scanner.
	_, err := checkString(L, 2, "lab:depends_on_file")
	return 0, err
}

// objects reads argument i as one graph object or an array of them.
func objects(L *lua.Thread, i int, site string) ([]lab.Object, error) {
	one := func(idx int) (lab.Object, error) {
		v, _, ok := L.ToObject(idx)
		if ok {
			if o, ok := v.(lab.Object); ok {
				return o, nil
			}
		}
		return nil, fmt.Errorf("%s: expected a VM, Bridge or Lab (or an array of them), got %s", site, L.TypeName(idx))
	}
	if L.Type(i) != lua.TypeTable {
		o, err := one(i)
		if err != nil {
			return nil, err
		}
		return []lab.Object{o}, nil
	}
	var out []lab.Object
	for k := int64(1); ; k++ {
		if L.RawGetI(i, k) == lua.TypeNil {
			L.Pop(1)
			break
		}
		o, err := one(-1)
		L.Pop(1)
		if err != nil {
			return nil, err
		}
		out = append(out, o)
	}
	return out, nil
}

func (a *API) labInclude(L *lua.Thread) (int, error) {
	l, err := self[*lab.Lab](L, "lab:include")
	if err != nil {
		return 0, err
	}
	objs, err := objects(L, 2, "lab:include")
	if err != nil {
		return 0, err
	}
	return 0, l.Include(objs...)
}

func (a *API) labRemove(L *lua.Thread) (int, error) {
	l, err := self[*lab.Lab](L, "lab:remove")
	if err != nil {
		return 0, err
	}
	if name, ok := L.ToString(2); ok {
		L.PushBoolean(l.RemoveName(name))
		return 1, nil
	}
	objs, err := objects(L, 2, "lab:remove")
	if err != nil {
		return 0, err
	}
	L.PushBoolean(l.Remove(objs[0]))
	return 1, nil
}

func (a *API) labMembers(L *lua.Thread) (int, error) {
	l, err := self[*lab.Lab](L, "lab:members")
	if err != nil {
		return 0, err
	}
	ms := l.Members()
	L.NewTable(len(ms), 0)
	for i, m := range ms {
		L.NewTable(0, 2)
		L.PushString(string(m.Kind))
		L.RawSetField(-2, "kind")
		L.PushString(m.Name)
		L.RawSetField(-2, "name")
		L.RawSetI(-2, int64(i+1))
	}
	return 1, nil
}

func (a *API) labNames(get func(*lab.Lab) []string) method {
	return func(L *lua.Thread) (int, error) {
		l, err := self[*lab.Lab](L, "lab")
		if err != nil {
			return 0, err
		}
		PushGo(L, get(l))
		return 1, nil
	}
}

func (a *API) labAll(site string, op func(*lab.Lab, ctxT) error, returnSelf bool) method {
	return func(L *lua.Thread) (int, error) {
		l, err := self[*lab.Lab](L, site)
		if err != nil {
			return 0, err
		}
		if err := op(l, L.Context()); err != nil {
			return 0, labOpError(site, err)
		}
		if returnSelf {
			L.PushValue(1)
			return 1, nil
		}
		return 0, nil
	}
}

// labOpError prefixes the per-VM errors of a lab-wide operation with the
// lab method (10-lua-api.md §1): one failure reads `lab:boot: vm:boot: …`,
// several are listed one per line under `lab:boot: <n> VMs failed:`.
func labOpError(site string, err error) error {
	var errs []error
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		errs = j.Unwrap()
	}
	if len(errs) < 2 {
		return fmt.Errorf("%s: %w", site, err)
	}
	lines := make([]string, len(errs))
	for i, e := range errs {
		lines[i] = "  " + strings.ReplaceAll(e.Error(), "\n", "\n  ")
	}
	return fmt.Errorf("%s: %d VMs failed:\n%s", site, len(errs), strings.Join(lines, "\n"))
}

func (a *API) labClaim(L *lua.Thread) (int, error) {
	if _, err := self[*lab.Lab](L, "lab:claim"); err != nil {
		return 0, err
	}
	if a.Claim.Taken {
		return 0, fmt.Errorf("claim already taken")
	}
	if L.Type(2) != lua.TypeTable {
		return 0, fmt.Errorf("lab:claim: expected a table {memory=, cpus=}, got %s", L.TypeName(2))
	}
	var c Claim
	L.RawGetField(2, "memory")
	switch L.Type(-1) {
	case lua.TypeNil:
	case lua.TypeNumber:
		n, ok := L.ToInteger(-1)
		if !ok || n <= 0 {
			L.Pop(1)
			return 0, fmt.Errorf("lab:claim: memory must be a positive size, got %s", numberString(L))
		}
		c.Memory = uint64(n)
	case lua.TypeString:
		s, _ := L.ToString(-1)
		n, err := units.ParseSize(s)
		if err != nil {
			L.Pop(1)
			return 0, fmt.Errorf("lab:claim: memory: %w", err)
		}
		c.Memory = n
	default:
		t := L.TypeName(-1)
		L.Pop(1)
		return 0, fmt.Errorf("lab:claim: memory must be a size, got %s", t)
	}
	L.Pop(1)
	L.RawGetField(2, "cpus")
	if !L.IsNoneOrNil(-1) {
		n, ok := L.ToInteger(-1)
		if !ok || n < 0 || L.Type(-1) != lua.TypeNumber {
			L.Pop(1)
			return 0, fmt.Errorf("lab:claim: cpus must be a non-negative integer")
		}
		c.CPUs = n
	}
	L.Pop(1)
	// With a pool the claim takes effect (30-runtime.md B3); without one
	// (REPL, ad-hoc) it is only recorded.
	if f := sched.FromContext(L.Context()); f != nil {
		if err := f.Claim(L.Context(), sched.Amount{Memory: c.Memory, CPUs: int(c.CPUs)}); err != nil {
			return 0, err
		}
	}
	c.Taken = true
	a.Claim = c
	return 0, nil
}

func numberString(L *lua.Thread) string {
	s, _ := L.ToStringMeta(-1)
	return s
}

func (a *API) labBarrier(L *lua.Thread) (int, error) {
	l, err := self[*lab.Lab](L, "lab:barrier")
	if err != nil {
		return 0, err
	}
	name, err := checkString(L, 2, "lab:barrier")
	if err != nil {
		return 0, err
	}
	count, ok := L.ToInteger(3)
	if !ok || count < 1 {
		return 0, fmt.Errorf("lab:barrier: count must be a positive integer")
	}
	timeout := barrierDefault
	if !L.IsNoneOrNil(4) {
		if timeout, err = Duration(L, 4, "lab:barrier"); err != nil {
			return 0, err
		}
	}
	arr, err := l.Arrive(name, int(count))
	if err != nil {
		return 0, err
	}
	if arr.Opened() {
		return 0, nil
	}
	if L.IsYieldable() {
		// Another coroutine of this file makes the final arrival and the
		// file's own scheduler resumes this one.
		return 0, lua.Yield(0)
	}
	return 0, arr.Wait(L.Context(), timeout)
}

func (a *API) labName(L *lua.Thread) (int, error) {
	l, err := self[*lab.Lab](L, "lab:name")
	if err != nil {
		return 0, err
	}
	L.PushString(l.Name())
	return 1, nil
}
