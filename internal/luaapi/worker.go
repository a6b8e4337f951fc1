package luaapi

import (
	"context"
	"errors"
	"fmt"

	"github.com/provium/provium/internal/agentclient"
	"github.com/provium/provium/internal/lab"
	"github.com/provium/provium/internal/lua"
)

const (
	classWorker         = "Worker"
	errWorkerThreadOpt  = "vm:spawn_worker: {thread=true} is not supported (a worker is a separate guest process)"
	errFmtWorkerOptions = "vm:spawn_worker: unknown option `%s`"
	// errFmtWorkerJoined: an operation on a worker after worker:join().
	errFmtWorkerJoined = "worker:%s: worker (pid %d) was joined: its process has exited; spawn a new worker with vm:spawn_worker()"
)

// workerObj is a separate guest process made by vm:spawn_worker.
type workerObj struct {
	api    *API
	s      *session // the VM's session (staleness)
	w      *agentclient.Worker
	ws     *session // session whose agent is the worker (its ops run there)
	closed bool
	joined bool // worker:join() ended and reaped the worker process
}

func (w *workerObj) live(method string) error {
	if w.closed {
		return fmt.Errorf("worker:%s: %s", method, errWorkerClosed)
	}
	if w.joined {
		return fmt.Errorf(errFmtWorkerJoined, method, w.w.Pid())
	}
	if r := staleReason(w.s.vm, w.s.machine, w.s.agent); r != "" {
		return fmt.Errorf(errFmtStale, "worker:"+method, w.s.vm.Name(), r)
	}
	return nil
}

// Close: SIGTERM children, ≤ 2 s, SIGKILL, end the worker. After join
// only the worker's session is left to close.
func (w *workerObj) Close(ctx context.Context) error {
	if w.closed {
		return nil
	}
	w.closed = true
	if staleReason(w.s.vm, w.s.machine, w.s.agent) != "" {
		return nil
	}
	if w.joined {
		w.w.Client.Close()
		return nil
	}
	return w.w.Close(ctx)
}

func (a *API) vmSpawnWorker(L *lua.Thread) (int, error) {
	s, err := a.guestSession(L, "spawn_worker")
	if err != nil {
		return 0, err
	}
	if L.Type(2) == lua.TypeTable {
		L.PushNil()
		for L.Next(2) {
			k, _ := L.ToStringMeta(-2)
			thread := L.ToBoolean(-1)
			L.Pop(1)
			if k == "thread" {
				if thread {
					L.Pop(1)
					return 0, errors.New(errWorkerThreadOpt)
				}
				continue
			}
			L.Pop(1)
			return 0, fmt.Errorf(errFmtWorkerOptions, k)
		}
	}
	w, err := s.agent.SpawnWorker(L.Context())
	if err != nil {
		return 0, ctxErr(L.Context(), opError("spawn_worker", "", err))
	}
	obj := &workerObj{api: a, s: s, w: w}
	// Operations inside the worker keep the VM's session for staleness but
	// talk to the worker's relayed client.
	obj.ws = &session{vm: s.vm, machine: s.machine, agent: s.agent}
	a.scope().Register(lab.ResWorker, obj)
	L.PushObject(obj, classWorker)
	return 1, nil
}

func workerMethod(name string, body func(L *lua.Thread, w *workerObj) (int, error)) lua.Function {
	return func(L *lua.Thread) (int, error) {
		w, err := self[*workerObj](L, "worker:"+name)
		if err != nil {
			return 0, err
		}
		if err := w.live(name); err != nil {
			return 0, err
		}
		return body(L, w)
	}
}

// opErr formats a failed worker operation. A worker's session rides on
// the VM's agent session; when that one ended (the guest rebooted or
// stopped under the call) the error says so, as vm:run's does, rather than
// blaming the worker.
func (w *workerObj) opErr(method string, err error) error {
	if errors.Is(err, agentclient.ErrClosed) {
		select {
		case <-w.s.agent.Done():
			return fmt.Errorf("worker:%s: %w", method, agentclient.ErrClosed)
		default:
		}
		return fmt.Errorf("worker:%s: %s", method, errWorkerClosed)
	}
	var ae *agentclient.Error
	if errors.As(err, &ae) {
		return fmt.Errorf("worker:%s: %s", method, ae.Error())
	}
	return fmt.Errorf("worker:%s: %w", method, err)
}

func (a *API) workerClass() lua.Class {
	return lua.Class{
		Name: classWorker,
		Methods: map[string]lua.Function{
			"run": workerMethod("run", func(L *lua.Thread, w *workerObj) (int, error) {
				req, err := parseRun(L, 2, "worker:run")
				if err != nil {
					return 0, err
				}
				res, err := w.w.Exec(L.Context(), req)
				if err != nil {
					return 0, ctxErr(L.Context(), w.opErr("run", err))
				}
				if err := pushRunResult(L, res, argvOf(req)); err != nil {
					return 0, err
				}
				return 1, nil
			}),
			"run_async": workerMethod("run_async", func(L *lua.Thread, w *workerObj) (int, error) {
				return a.startProcess(L, w.ws, w.w.Client, "worker:run_async", 2)
			}),
			"open_file": workerMethod("open_file", func(L *lua.Thread, w *workerObj) (int, error) {
				path, err := pathArg(L, 2, "worker:open_file")
				if err != nil {
					return 0, err
				}
				mode, perm, err := openMode(L, 3)
				if err != nil {
					return 0, err
				}
				f, err := w.w.Open(L.Context(), path, mode, perm)
				if err != nil {
					return 0, ctxErr(L.Context(), opError("open_file", path, err))
				}
				obj := &fileObj{api: a, vm: w.s.vm, machine: w.s.machine, agent: w.s.agent, f: f}
				a.files[obj] = struct{}{}
				a.scope().Register(lab.ResFile, obj)
				L.PushObject(obj, classFile)
				return 1, nil
			}),
			"syscall": workerMethod("syscall", func(L *lua.Thread, w *workerObj) (int, error) {
				return doSyscall(L, w.w, "worker:syscall", 2)
			}),
			"syscall_async": workerMethod("syscall_async", func(L *lua.Thread, w *workerObj) (int, error) {
				return a.pushPending(L, w.w, w.s, "worker:syscall_async", 2)
			}),
			"kill": workerMethod("kill", func(L *lua.Thread, w *workerObj) (int, error) {
				sig := 15
				if !L.IsNoneOrNil(2) {
					var err error
					if sig, err = parseSignal(L, 2, "worker:kill"); err != nil {
						return 0, err
					}
				}
				if err := w.w.Kill(L.Context(), sig); err != nil {
					return 0, ctxErr(L.Context(), w.opErr("kill", err))
				}
				return 0, nil
			}),
			"join": workerMethod("join", func(L *lua.Thread, w *workerObj) (int, error) {
				st, err := w.w.Join(L.Context())
				if err != nil {
					return 0, ctxErr(L.Context(), w.opErr("join", err))
				}
				w.joined = true
				L.PushInteger(int64(st))
				return 1, nil
			}),
			"handle": func(L *lua.Thread) (int, error) {
				w, err := self[*workerObj](L, "worker:handle")
				if err != nil {
					return 0, err
				}
				L.PushInteger(int64(w.w.Pid()))
				return 1, nil
			},
			"close": func(L *lua.Thread) (int, error) {
				w, err := self[*workerObj](L, "worker:close")
				if err != nil {
					return 0, err
				}
				if err := w.Close(L.Context()); err != nil {
					return 0, ctxErr(L.Context(), w.opErr("close", err))
				}
				return 0, nil
			},
		},
		Meta: map[string]lua.Function{
			"__eq": eq,
			"__tostring": func(L *lua.Thread) (int, error) {
				w, err := self[*workerObj](L, "worker")
				if err != nil {
					return 0, err
				}
				state := "open"
				switch {
				case w.closed:
					state = "closed"
				case w.joined:
					state = "joined"
				}
				L.PushString(fmt.Sprintf("worker(pid=%d vm=%s %s)", w.w.Pid(), w.s.vm.Path(), state))
				return 1, nil
			},
		},
	}
}
