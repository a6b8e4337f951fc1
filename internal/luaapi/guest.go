package luaapi

import (
	"context"
	_ "embed"
	"errors"
	"fmt"

	"github.com/provium/provium/internal/agentclient"
	"github.com/provium/provium/internal/guest"
	"github.com/provium/provium/internal/lab"
	"github.com/provium/provium/internal/lua"
)

//go:embed prelude.lua
var prelude string

const regPrelude = "provium.luaapi.prelude"

func (a *API) loadPrelude() error {
	L := a.L
	if err := L.Load(prelude, "=provium.luaapi"); err != nil {
		return err
	}
	if err := L.PCall(0, 1, false); err != nil {
		return err
	}
	L.SetRegistryField(regPrelude)
	return nil
}

// session is what a guest operation needs: the VM, its running machine and
// the agent session of the current boot.
type session struct {
	vm      *lab.VM
	machine *guest.Machine
	agent   *agentclient.Client
}

// guestSession checks that the VM at argument 1 is booted and returns its
// agent session.
func (a *API) guestSession(L *lua.Thread, op string) (*session, error) {
	site := "vm:" + op
	vm, err := self[*lab.VM](L, site)
	if err != nil {
		return nil, err
	}
	if err := vm.CheckGuestOp(op); err != nil {
		// Why the machine ended, when that is news: it died, or the
		// guest's reboot shut it down (a poweroff or vm:shutdown is not).
		if last := a.machines[vm]; last != nil {
			st := vm.State()
			if st == lab.Dead || (st == lab.Shutdown && last.StoppedByGuestReboot()) {
				if d := last.ExitDetail(); d != "" {
					return nil, fmt.Errorf("%w: %s", err, d)
				}
			}
		}
		return nil, err
	}
	m, ok := vm.Machine().(*guest.Machine)
	if !ok || m == nil {
		return nil, fmt.Errorf("%s: vm `%s` has no running guest", site, vm.Name())
	}
	ag, err := m.EnsureAgent(L.Context())
	if err != nil {
		return nil, fmt.Errorf("%s: vm `%s`: %v", site, vm.Name(), err)
	}
	a.remember(vm, m)
	return &session{vm: vm, machine: m, agent: ag}, nil
}

// remember keeps the last machine of each VM: its console stays readable
// after the VM stopped.
func (a *API) remember(vm *lab.VM, m *guest.Machine) {
	if a.machines == nil {
		a.machines = map[*lab.VM]*guest.Machine{}
	}
	a.machines[vm] = m
}

// opError formats an agent failure: `vm:<op>("<path>"): <strerror> (os error <N>, <ENAME>) (errno <N>)`.
func opError(op, path string, err error) error {
	var ae *agentclient.Error
	if errors.As(err, &ae) {
		if path != "" {
			return fmt.Errorf("vm:%s(%q): %s", op, path, ae.Error())
		}
		return fmt.Errorf("vm:%s: %s", op, ae.Error())
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("vm:%s: %v", op, err)
	}
	if path != "" {
		return fmt.Errorf("vm:%s(%q): %v", op, path, err)
	}
	return fmt.Errorf("vm:%s: %v", op, err)
}

// ctxErr prefers the cancellation cause (a watchdog's message).
func ctxErr(ctx context.Context, err error) error {
	if c := context.Cause(ctx); c != nil && ctx.Err() != nil {
		return c
	}
	return err
}
