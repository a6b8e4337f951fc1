package luaapi

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/provium/provium/internal/guest"
	"github.com/provium/provium/internal/lab"
	"github.com/provium/provium/internal/lua"
	"github.com/provium/provium/internal/vmm"
)

const (
	classConsole         = "Console"
	consoleExpectDefault = 30 * time.Second
	errFmtConsoleExpect  = "console:expect timed out waiting for `%s`"
	errConsoleTimeoutMs  = "console:write: opts.timeout_ms is not supported (use timeout = \"500ms\" or timeout = 0.5)"
)

// consoleObj is vm:console(): it never fails to exist; it reads the
// console of the VM's current (or last) QEMU process. It keeps no state:
// an expect without `since` searches the current boot's output, however
// often the same text was expected before (peios/integration-tests expects
// a line printed before an earlier expect's match, and one line several
// times), and after vm:reset() only the new boot's (its power-loss tests
// wait for the boot marker again).
type consoleObj struct {
	api *API
	vm  *lab.VM
}

// console returns the capture of the VM's current or last machine.
func (c *consoleObj) console() *vmm.Console {
	if m, ok := c.vm.Machine().(*guest.Machine); ok && m != nil {
		c.api.remember(c.vm, m)
		return m.Console()
	}
	if m := c.api.machines[c.vm]; m != nil {
		return m.Console()
	}
	return nil
}

func (a *API) vmConsole(L *lua.Thread) (int, error) {
	vm, err := self[*lab.VM](L, "vm:console")
	if err != nil {
		return 0, err
	}
	L.PushObject(onePerVM(&a.consoles, vm, func() *consoleObj { return &consoleObj{api: a, vm: vm} }), classConsole)
	return 1, nil
}

func consoleMethod(name string, body func(L *lua.Thread, c *consoleObj) (int, error)) lua.Function {
	return func(L *lua.Thread) (int, error) {
		c, err := self[*consoleObj](L, "console:"+name)
		if err != nil {
			return 0, err
		}
		return body(L, c)
	}
}

func (a *API) consoleClass() lua.Class {
	return lua.Class{
		Name: classConsole,
		Methods: map[string]lua.Function{
			"read_log": consoleMethod("read_log", func(L *lua.Thread, c *consoleObj) (int, error) {
				if con := c.console(); con != nil {
					L.PushString(string(con.Bytes()))
				} else {
					L.PushString("")
				}
				return 1, nil
			}),
			"log_size": consoleMethod("log_size", func(L *lua.Thread, c *consoleObj) (int, error) {
				if con := c.console(); con != nil {
					L.PushInteger(con.Offset())
				} else {
					L.PushInteger(0)
				}
				return 1, nil
			}),
			"expect": consoleMethod("expect", consoleExpect),
			"write":  consoleMethod("write", consoleWrite),
			"read":   consoleMethod("read", a.consoleRead),
			"close":  func(L *lua.Thread) (int, error) { return 0, nil },
		},
		Meta: map[string]lua.Function{
			"__eq": eq,
			"__tostring": func(L *lua.Thread) (int, error) {
				c, err := self[*consoleObj](L, "console")
				if err != nil {
					return 0, err
				}
				L.PushString(fmt.Sprintf("console(vm=%s)", c.vm.Path()))
				return 1, nil
			},
		},
	}
}

func consoleExpect(L *lua.Thread, c *consoleObj) (int, error) {
	pat, ok := L.ToString(2)
	if !ok {
		return 0, fmt.Errorf("console:expect: pattern must be a string, got %s", L.TypeName(2))
	}
	timeout := consoleExpectDefault
	if !L.IsNoneOrNil(3) {
		d, err := Duration(L, 3, "console:expect")
		if err != nil {
			return 0, err
		}
		timeout = d
	}
	since := int64(-1) // none: from the start of the current boot
	if L.Type(4) == lua.TypeTable {
		if L.RawGetField(4, "since") != lua.TypeNil {
			n, ok := L.ToInteger(-1)
			if !ok || n < 0 {
				L.Pop(1)
				return 0, fmt.Errorf("console:expect: opts.since must be a non-negative integer")
			}
			since = n
		}
		L.Pop(1)
	}
	ctx, cancel := context.WithTimeout(L.Context(), timeout)
	defer cancel()
	// Poll the retained log; the machine behind the console can change
	// (reset keeps it, a reboot keeps it), so look it up every round.
	for {
		if con := c.console(); con != nil {
			from := since
			if since < 0 {
				from = con.BootStart()
			}
			found := false
			if timeout == 0 {
				found = bytes.Contains(sinceBytes(con, from), []byte(pat))
			} else {
				wctx, wcancel := context.WithTimeout(ctx, 50*time.Millisecond)
				_, err := con.WaitFor(wctx, from, []byte(pat))
				wcancel()
				found = err == nil
			}
			if found {
				L.PushString(pat)
				return 1, nil
			}
		}
		if timeout == 0 || ctx.Err() != nil {
			if pc := L.Context(); pc.Err() != nil {
				return 0, ctxErr(pc, pc.Err())
			}
			return 0, fmt.Errorf(errFmtConsoleExpect, pat)
		}
		select {
		case <-ctx.Done():
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// sinceBytes is the retained log after history offset since.
func sinceBytes(con *vmm.Console, since int64) []byte {
	b := con.Bytes()
	start := con.Offset() - int64(len(b))
	if since <= start {
		return b
	}
	if since-start >= int64(len(b)) {
		return nil
	}
	return b[since-start:]
}

func consoleWrite(L *lua.Thread, c *consoleObj) (int, error) {
	data, ok := L.ToString(2)
	if !ok {
		return 0, fmt.Errorf("console:write: data must be a string, got %s", L.TypeName(2))
	}
	ctx := L.Context()
	if L.Type(3) == lua.TypeTable {
		if L.RawGetField(3, "timeout_ms") != lua.TypeNil {
			L.Pop(1)
			return 0, errors.New(errConsoleTimeoutMs)
		}
		L.Pop(1)
		if L.RawGetField(3, "timeout") != lua.TypeNil {
			d, err := Duration(L, L.GetTop(), "console:write")
			if err != nil {
				L.Pop(1)
				return 0, err
			}
			if d > 0 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, d)
				defer cancel()
			}
		}
		L.Pop(1)
	}
	con := c.console()
	if con == nil {
		return 0, fmt.Errorf("console:write: vm `%s` has no console (it never booted)", c.vm.Name())
	}
	done := make(chan error, 1)
	go func() {
		_, err := con.Write([]byte(data))
		done <- err
	}()
	select {
	case err := <-done:
		if err != nil {
			return 0, fmt.Errorf("console:write: %v", err)
		}
		return 0, nil
	case <-ctx.Done():
		return 0, fmt.Errorf("console:write: timed out after writing to vm `%s`", c.vm.Name())
	}
}
