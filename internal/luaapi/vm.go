package luaapi

import (
	"context"
	"fmt"

	"github.com/provium/provium/internal/guest"
	"github.com/provium/provium/internal/lab"
	"github.com/provium/provium/internal/lua"
)

type ctxT = context.Context

// guestOps need a booted VM; until the VM backend is wired they fail with
// the core's wrong-state error, which names the VM and its state.
var guestOps = []string{
	"snapshot",
}

func (a *API) vmClass() lua.Class {
	ms := map[string]method{
		"boot": func(L *lua.Thread) (int, error) {
			vm, err := self[*lab.VM](L, "vm:boot")
			if err != nil {
				return 0, err
			}
			opts, err := bootOpts(L, 2)
			if err != nil {
				return 0, err
			}
			if err := vm.Boot(L.Context(), opts); err != nil {
				return 0, err
			}
			if m, ok := vm.Machine().(*guest.Machine); ok {
				a.remember(vm, m)
			}
			L.PushValue(1)
			return 1, nil
		},
		"pause":        vmAction("vm:pause", (*lab.VM).Pause),
		"resume":       vmAction("vm:resume", (*lab.VM).Resume),
		"shutdown":     vmAction("vm:shutdown", (*lab.VM).Shutdown),
		"reset":        vmAction("vm:reset", (*lab.VM).Reset),
		"power_button": vmAction("vm:power_button", (*lab.VM).PowerButton),
		"wakeup":       a.vmWakeup,
		"close": func(L *lua.Thread) (int, error) {
			vm, err := self[*lab.VM](L, "vm:close")
			if err != nil {
				return 0, err
			}
			_ = vm.Close(L.Context()) // a walker hook: never raises
			return 0, nil
		},
		"name":    vmString("vm:name", (*lab.VM).Name),
		"profile": vmString("vm:profile", (*lab.VM).Profile),
		"state": vmString("vm:state", func(v *lab.VM) string {
			return v.State().String()
		}),
		"cid": vmConst("vm:cid", func(L *lua.Thread) { L.PushNil() }),
		"console_socket_path": func(L *lua.Thread) (int, error) {
			vm, err := self[*lab.VM](L, "vm:console_socket_path")
			if err != nil {
				return 0, err
			}
			m, ok := vm.Machine().(*guest.Machine)
			if !ok || m == nil {
				L.PushNil() // not booted
				return 1, nil
			}
			path, err := m.ConsoleSocket()
			if err != nil {
				return 0, fmt.Errorf("vm:console_socket_path: vm `%s`: %v", vm.Name(), err)
			}
			L.PushString(path)
			return 1, nil
		},
		"open_file_count": func(L *lua.Thread) (int, error) {
			vm, err := self[*lab.VM](L, "vm:open_file_count")
			if err != nil {
				return 0, err
			}
			L.PushInteger(int64(a.openFileCount(vm)))
			return 1, nil
		},
		"open_stream_count": func(L *lua.Thread) (int, error) {
			vm, err := self[*lab.VM](L, "vm:open_stream_count")
			if err != nil {
				return 0, err
			}
			L.PushInteger(int64(a.openStreamCount(vm)))
			return 1, nil
		},
		"tail_file": a.vmTailFile,
		"fd_stream": a.vmFdStream,
		"clock":     a.vmClock,
		"is_quiescent": func(L *lua.Thread) (int, error) {
			vm, err := self[*lab.VM](L, "vm:is_quiescent")
			if err != nil {
				return 0, err
			}
			L.PushBoolean(a.openFileCount(vm) == 0 && a.openStreamCount(vm) == 0)
			return 1, nil
		},
		"run":           a.vmRun,
		"read_file":     a.vmReadFile,
		"write_file":    a.vmWriteFile,
		"push_file":     a.vmPushFile,
		"stat":          a.vmStat,
		"listdir":       a.vmListdir,
		"mkdir":         a.vmMkdir,
		"unlink":        a.vmUnlink,
		"rename":        a.vmRename,
		"open_file":     a.vmOpenFile,
		"batch":         a.vmBatch,
		"run_async":     a.vmRunAsync,
		"syscall":       a.vmSyscall,
		"syscall_async": a.vmSyscallAsync,
		"ioctl":         a.vmIoctl,
		"read_mem":      a.vmReadMem,
		"spawn_worker":  a.vmSpawnWorker,
		"console":       a.vmConsole,
		"is_suspended":  a.vmIsSuspended,
		"nic": func(L *lua.Thread) (int, error) {
			vm, err := self[*lab.VM](L, "vm:nic")
			if err != nil {
				return 0, err
			}
			name, err := checkString(L, 2, "vm:nic")
			if err != nil {
				return 0, err
			}
			n, err := vm.NIC(name)
			if err != nil {
				return 0, err
			}
			L.PushObject(n, classNic)
			return 1, nil
		},
		"disk":        a.vmDisk,
		"attach_disk": a.vmAttachDisk,
	}
	for _, op := range guestOps {
		site := "vm:" + op
		ms[op] = func(L *lua.Thread) (int, error) {
			vm, err := self[*lab.VM](L, site)
			if err != nil {
				return 0, err
			}
			if err := vm.CheckGuestOp(op); err != nil {
				return 0, err
			}
			return 0, fmt.Errorf("%s: not available yet (guest operations arrive with the VM core)", site)
		}
	}
	a.snapshotVMMethods(ms)
	for name, m := range ms {
		if !untraced[name] {
			ms[name] = a.traced("vm:"+name, m)
		}
	}
	return lua.Class{
		Name:    classVM,
		Methods: toFunctions(ms),
		Meta: map[string]lua.Function{
			"__eq": eq,
			"__tostring": func(L *lua.Thread) (int, error) {
				vm, err := self[*lab.VM](L, "vm")
				if err != nil {
					return 0, err
				}
				L.PushString(vmTostring(vm))
				return 1, nil
			},
		},
	}
}

// vmTostring is tostring(vm): short, and different for two VMs and for two
// boots of one VM (peios/integration-tests keys per-guest caches by it;
// upstream's showed the guest's vsock CID, which has no equivalent here).
func vmTostring(vm *lab.VM) string {
	return fmt.Sprintf("vm(%s state=%s cid=- id=%d boot=%d)", vm.Name(), vm.State(), vm.ID(), vm.Boots())
}

// untraced VM methods are cheap getters: they would only clutter --trace.
var untraced = map[string]bool{
	"name": true, "profile": true, "state": true, "cid": true, "console_socket_path": true,
	"open_file_count": true, "open_stream_count": true, "is_quiescent": true, "console": true, "clock": true,
}

// traced wraps a method in a --trace span named after it.
func (a *API) traced(name string, m method) method {
	return func(L *lua.Thread) (int, error) {
		if a.tracer == nil {
			return m(L)
		}
		end := a.tracer(name)
		defer end()
		return m(L)
	}
}

// SetTracer makes every VM operation of this file a --trace span.
func (a *API) SetTracer(begin func(name string) (end func())) { a.tracer = begin }

func vmAction(site string, op func(*lab.VM, context.Context) error) method {
	return func(L *lua.Thread) (int, error) {
		vm, err := self[*lab.VM](L, site)
		if err != nil {
			return 0, err
		}
		return 0, op(vm, L.Context())
	}
}

func vmString(site string, get func(*lab.VM) string) method {
	return func(L *lua.Thread) (int, error) {
		vm, err := self[*lab.VM](L, site)
		if err != nil {
			return 0, err
		}
		L.PushString(get(vm))
		return 1, nil
	}
}

func vmConst(site string, push func(L *lua.Thread)) method {
	return func(L *lua.Thread) (int, error) {
		if _, err := self[*lab.VM](L, site); err != nil {
			return 0, err
		}
		push(L)
		return 1, nil
	}
}
