package luaapi

import (
	"fmt"
	"math"
	"strings"

	"github.com/provium/provium/internal/agentclient"
	"github.com/provium/provium/internal/guest"
	"github.com/provium/provium/internal/lab"
	"github.com/provium/provium/internal/lua"
	"github.com/provium/provium/internal/units"
)

const classClock = "Clock"

// clockObj is vm:clock(). Each operation runs on the VM's current agent
// session, so a Clock stays usable across resets.
type clockObj struct {
	api *API
	vm  *lab.VM
}

// timeControlled reports whether the VM's guest clock was set by the test
// (clock:set/set_ns/advance, or boot option initial_time): restoring such
// a VM must not re-sync its clock to the host's.
func (a *API) timeControlled(vm *lab.VM) bool {
	if a.timeCtl[vm] {
		return true
	}
	return vm.Opts().InitialTime != nil
}

func (a *API) markTimeControlled(vm *lab.VM) {
	if a.timeCtl == nil {
		a.timeCtl = map[*lab.VM]bool{}
	}
	a.timeCtl[vm] = true
}

func (a *API) vmClock(L *lua.Thread) (int, error) {
	s, err := a.guestSession(L, "clock")
	if err != nil {
		return 0, err
	}
	L.PushObject(onePerVM(&a.clocks, s.vm, func() *clockObj { return &clockObj{api: a, vm: s.vm} }), classClock)
	return 1, nil
}

// agent returns the agent of the VM's current boot.
func (c *clockObj) agent(method string) (*agentclient.Client, error) {
	if err := c.vm.CheckGuestOp("clock"); err != nil {
		return nil, fmt.Errorf("clock:%s: %w", method, err)
	}
	m, ok := c.vm.Machine().(*guest.Machine)
	if !ok || m == nil {
		return nil, fmt.Errorf("clock:%s: vm `%s` has no running guest", method, c.vm.Name())
	}
	ag, err := m.Agent()
	if err != nil {
		return nil, fmt.Errorf("clock:%s: vm `%s`: %v", method, c.vm.Name(), err)
	}
	return ag, nil
}

func clockMethod(name string, body func(L *lua.Thread, c *clockObj, ag *agentclient.Client) (int, error)) lua.Function {
	return func(L *lua.Thread) (int, error) {
		c, err := self[*clockObj](L, "clock:"+name)
		if err != nil {
			return 0, err
		}
		ag, err := c.agent(name)
		if err != nil {
			return 0, err
		}
		return body(L, c, ag)
	}
}

func clockErr(L *lua.Thread, method string, err error) error {
	return ctxErr(L.Context(), fmt.Errorf("clock:%s: %w", method, err))
}

// formatNonFinite names NaN and the infinities as the spec's messages do.
func formatNonFinite(f float64) string {
	switch {
	case math.IsNaN(f):
		return "NaN"
	case math.IsInf(f, 1):
		return "inf"
	case math.IsInf(f, -1):
		return "-inf"
	}
	return fmt.Sprintf("%g", f)
}

// secondsToNs converts finite seconds to ns, rounding to the nearest.
func secondsToNs(site string, f float64) (int64, error) {
	ns := math.Round(f * 1e9)
	if ns >= math.MaxInt64 || ns < math.MinInt64 {
		return 0, fmt.Errorf("%s: %g s is out of range", site, f)
	}
	return int64(ns), nil
}

// signedDuration reads clock:advance's argument: nil = 0, a number of
// seconds or a duration string, either possibly negative.
func signedDuration(L *lua.Thread, i int) (int64, error) {
	const site = "clock:advance"
	switch L.Type(i) {
	case lua.TypeNone, lua.TypeNil:
		return 0, nil
	case lua.TypeNumber:
		if L.IsInteger(i) {
			n, _ := L.ToInteger(i)
			return secondsToNs(site, float64(n))
		}
		f, _ := L.ToNumber(i)
		if math.IsNaN(f) || math.IsInf(f, 0) {
			return 0, fmt.Errorf("clock:advance: must be finite (got %s)", formatNonFinite(f))
		}
		return secondsToNs(site, f)
	case lua.TypeString:
		s, _ := L.ToString(i)
		t := strings.TrimSpace(s)
		neg := strings.HasPrefix(t, "-")
		d, err := units.ParseDuration(strings.TrimPrefix(t, "-"))
		if err != nil {
			return 0, units.AtSite(err, site)
		}
		if neg {
			return -int64(d), nil
		}
		return int64(d), nil
	}
	return 0, fmt.Errorf("%s: duration: cannot parse `%s` (expected number or `Nms`/`Ns`/`Nm`/`Nh`)", site, L.TypeName(i))
}

func (a *API) clockClass() lua.Class {
	return lua.Class{
		Name: classClock,
		Methods: map[string]lua.Function{
			"get": clockMethod("get", func(L *lua.Thread, _ *clockObj, ag *agentclient.Client) (int, error) {
				ns, err := ag.ClockGet(L.Context())
				if err != nil {
					return 0, clockErr(L, "get", err)
				}
				L.PushNumber(float64(ns) / 1e9)
				return 1, nil
			}),
			"get_ns": clockMethod("get_ns", func(L *lua.Thread, _ *clockObj, ag *agentclient.Client) (int, error) {
				ns, err := ag.ClockGet(L.Context())
				if err != nil {
					return 0, clockErr(L, "get_ns", err)
				}
				L.PushInteger(ns)
				return 1, nil
			}),
			"set": clockMethod("set", func(L *lua.Thread, c *clockObj, ag *agentclient.Client) (int, error) {
				f, ok := L.ToNumber(2)
				if !ok || L.Type(2) != lua.TypeNumber {
					return 0, fmt.Errorf("clock:set: value must be a finite number (got %s)", L.TypeName(2))
				}
				if math.IsNaN(f) || math.IsInf(f, 0) {
					return 0, fmt.Errorf("clock:set: value must be a finite number (got %s)", formatNonFinite(f))
				}
				if L.IsInteger(2) {
					n, _ := L.ToInteger(2)
					f = float64(n)
				}
				ns, err := secondsToNs("clock:set", f)
				if err != nil {
					return 0, err
				}
				if err := ag.ClockSet(L.Context(), ns); err != nil {
					return 0, clockErr(L, "set", err)
				}
				c.api.markTimeControlled(c.vm)
				return 0, nil
			}),
			"set_ns": clockMethod("set_ns", func(L *lua.Thread, c *clockObj, ag *agentclient.Client) (int, error) {
				ns, ok := L.ToInteger(2)
				if !ok || L.Type(2) != lua.TypeNumber {
					v, _ := L.ToStringMeta(2)
					return 0, fmt.Errorf("clock:set_ns: ns must be an integer (got %s)", v)
				}
				if err := ag.ClockSet(L.Context(), ns); err != nil {
					return 0, clockErr(L, "set_ns", err)
				}
				c.api.markTimeControlled(c.vm)
				return 0, nil
			}),
			"sleep": clockMethod("sleep", func(L *lua.Thread, _ *clockObj, ag *agentclient.Client) (int, error) {
				d, err := Duration(L, 2, "clock:sleep")
				if err != nil {
					return 0, err
				}
				if d == 0 {
					return 0, nil
				}
				if err := ag.ClockSleep(L.Context(), d); err != nil {
					return 0, clockErr(L, "sleep", err)
				}
				return 0, nil
			}),
			"advance": clockMethod("advance", func(L *lua.Thread, c *clockObj, ag *agentclient.Client) (int, error) {
				ns, err := signedDuration(L, 2)
				if err != nil {
					return 0, err
				}
				if ns != 0 {
					if err := ag.ClockAdvance(L.Context(), ns); err != nil {
						return 0, clockErr(L, "advance", err)
					}
				}
				c.api.markTimeControlled(c.vm)
				return 0, nil
			}),
		},
		Meta: map[string]lua.Function{
			"__eq": eq,
			"__tostring": func(L *lua.Thread) (int, error) {
				c, err := self[*clockObj](L, "clock")
				if err != nil {
					return 0, err
				}
				L.PushString(fmt.Sprintf("clock(vm=%s)", c.vm.Name()))
				return 1, nil
			},
		},
	}
}

// vmWakeup is vm:wakeup(): resume a guest suspended to RAM.
func (a *API) vmWakeup(L *lua.Thread) (int, error) {
	vm, err := self[*lab.VM](L, "vm:wakeup")
	if err != nil {
		return 0, err
	}
	if m, ok := vm.Machine().(*guest.Machine); ok && m != nil && vm.State() == lab.Booted {
		suspended, err := m.IsSuspended(L.Context())
		if err != nil {
			return 0, ctxErr(L.Context(), fmt.Errorf("vm:wakeup: vm `%s`: %w", vm.Name(), err))
		}
		if !suspended {
			return 0, fmt.Errorf("vm:wakeup: vm `%s` is not suspended", vm.Name())
		}
	}
	// The core checks the state (and reports a wrong one) and wakes the guest.
	return 0, vm.Wakeup(L.Context())
}

// vmIsSuspended is vm:is_suspended(): whether the guest sleeps in S3.
func (a *API) vmIsSuspended(L *lua.Thread) (int, error) {
	vm, err := self[*lab.VM](L, "vm:is_suspended")
	if err != nil {
		return 0, err
	}
	suspended := false
	if m, ok := vm.Machine().(*guest.Machine); ok && m != nil {
		suspended, err = m.IsSuspended(L.Context())
		if err != nil {
			return 0, ctxErr(L.Context(), fmt.Errorf("vm:is_suspended: vm `%s`: %w", vm.Name(), err))
		}
	}
	L.PushBoolean(suspended)
	return 1, nil
}
