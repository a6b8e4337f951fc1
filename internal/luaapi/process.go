package luaapi

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/provium/provium/internal/agentclient"
	"github.com/provium/provium/internal/lab"
	"github.com/provium/provium/internal/lua"
	"github.com/provium/provium/internal/proto"
)

const (
	classProcess        = "Process"
	errRunAsyncTimeout  = "vm:run_async: timeout is not honoured here; pass it to proc:wait(timeout)"
	errWaitZero         = "proc:wait: timeout=0 is not allowed (use proc:status() to poll, or a small positive timeout such as \"100ms\")"
	errFmtProcExited    = "proc: process %d has exited"
	errFmtUnknownSignal = "unknown signal name `%s`"
	errStdinClosed      = "proc:stdin_write: stdin is closed"
)

// signalNumbers are the names 10-lua-api.md §7 accepts.
var signalNumbers = map[string]int{
	"hup": 1, "int": 2, "quit": 3, "kill": 9, "usr1": 10, "usr2": 12, "pipe": 13,
	"alrm": 14, "term": 15, "chld": 17, "cont": 18, "stop": 19, "winch": 28,
}

// parseSignal reads a signal argument: an int, or a name (case-insensitive,
// optional `sig` prefix) or decimal string. typeSite prefixes the bad-type
// error (`kill`, `worker:kill`).
func parseSignal(L *lua.Thread, i int, typeSite string) (int, error) {
	switch L.Type(i) {
	case lua.TypeNumber:
		n, ok := L.ToInteger(i)
		if !ok {
			f, _ := L.ToNumber(i)
			return 0, fmt.Errorf("%s: signal must be an integer, got %v", typeSite, f)
		}
		return int(n), nil
	case lua.TypeString:
		raw, _ := L.ToString(i)
		name := strings.ToLower(strings.TrimSpace(raw))
		if n, err := strconv.Atoi(name); err == nil {
			return n, nil
		}
		name = strings.TrimPrefix(name, "sig")
		if n, ok := signalNumbers[name]; ok {
			return n, nil
		}
		return 0, fmt.Errorf(errFmtUnknownSignal, raw)
	}
	return 0, fmt.Errorf("%s: signal must be int or string, got %s", typeSite, L.TypeName(i))
}

// procObj is a process started with run_async (on the VM or a worker).
type procObj struct {
	api    *API
	s      *session
	p      *agentclient.Process
	argv   []string
	result *proto.ExecResult // after a completed wait
	closed bool
}

func (p *procObj) live(method string) error {
	if r := staleReason(p.s.vm, p.s.machine, p.s.agent); r != "" {
		return fmt.Errorf(errFmtStale, "proc:"+method, p.s.vm.Name(), r)
	}
	return nil
}

// Close is the scope walker's hook and proc:close(): no-op once waited,
// else SIGTERM, ≤ 2 s, SIGKILL, reap (in the agent).
func (p *procObj) Close(ctx context.Context) error {
	if p.closed {
		return nil
	}
	p.closed = true
	if p.result != nil || staleReason(p.s.vm, p.s.machine, p.s.agent) != "" {
		return nil
	}
	return p.p.Close(ctx)
}

func procErr(p *procObj, method string, err error) error {
	if errors.Is(err, agentclient.ErrProcessExited) {
		return fmt.Errorf(errFmtProcExited, p.p.Handle())
	}
	var ae *agentclient.Error
	if errors.As(err, &ae) {
		return fmt.Errorf("proc:%s: %s", method, ae.Error())
	}
	return fmt.Errorf("proc:%s: %w", method, err)
}

// startProcess parses (cmd, opts) at argIdx and starts it through c.
func (a *API) startProcess(L *lua.Thread, s *session, c *agentclient.Client, site string, argIdx int) (int, error) {
	req, err := parseRun(L, argIdx, site)
	if err != nil {
		return 0, err
	}
	if req.TimeoutMs != 0 {
		return 0, errors.New(strings.Replace(errRunAsyncTimeout, "vm:run_async", site, 1))
	}
	proc, err := c.Start(L.Context(), req)
	if err != nil {
		return 0, ctxErr(L.Context(), opError(strings.TrimPrefix(site, "vm:"), "", err))
	}
	obj := &procObj{api: a, s: s, p: proc, argv: argvOf(req)}
	a.scope().Register(lab.ResProcess, obj)
	L.PushObject(obj, classProcess)
	return 1, nil
}

func (a *API) vmRunAsync(L *lua.Thread) (int, error) {
	s, err := a.guestSession(L, "run_async")
	if err != nil {
		return 0, err
	}
	return a.startProcess(L, s, s.agent, "vm:run_async", 2)
}

func procMethod(name string, body func(L *lua.Thread, p *procObj) (int, error)) lua.Function {
	return func(L *lua.Thread) (int, error) {
		p, err := self[*procObj](L, "proc:"+name)
		if err != nil {
			return 0, err
		}
		if err := p.live(name); err != nil {
			return 0, err
		}
		return body(L, p)
	}
}

func (a *API) procClass() lua.Class {
	signal := func(L *lua.Thread, p *procObj, sigIdx int, required bool) (int, error) {
		sig := 15
		if !L.IsNoneOrNil(sigIdx) || required {
			var err error
			if sig, err = parseSignal(L, sigIdx, "kill"); err != nil {
				return 0, err
			}
		}
		if p.result != nil {
			return 0, fmt.Errorf(errFmtProcExited, p.p.Handle())
		}
		if err := p.p.Signal(L.Context(), sig); err != nil {
			// A process that exited but was not waited for takes the
			// signal as a no-op: real suites kill a process that may have
			// ended already, then wait for it (peios/integration-tests'
			// `s:kill("kill"); pcall(function() s:wait("5s") end)`).
			if errors.Is(err, agentclient.ErrProcessExited) {
				return 0, nil
			}
			return 0, ctxErr(L.Context(), procErr(p, "kill", err))
		}
		return 0, nil
	}
	stream := func(kind string, open func(*agentclient.Process, context.Context) (*agentclient.Stream, error)) lua.Function {
		return procMethod(kind, func(L *lua.Thread, p *procObj) (int, error) {
			st, err := open(p.p, L.Context())
			if err != nil {
				return 0, ctxErr(L.Context(), procErr(p, kind, err))
			}
			a.pushTail(L, p.s, st, "proc_"+kind, fmt.Sprintf("handle=%d", p.p.Handle()))
			return 1, nil
		})
	}
	return lua.Class{
		Name: classProcess,
		Methods: map[string]lua.Function{
			"wait": procMethod("wait", func(L *lua.Thread, p *procObj) (int, error) {
				var timeout time.Duration
				if !L.IsNoneOrNil(2) {
					d, err := Duration(L, 2, "proc:wait")
					if err != nil {
						return 0, err
					}
					if d == 0 {
						return 0, errors.New(errWaitZero)
					}
					timeout = d
				}
				if p.result == nil {
					r, err := p.p.Wait(L.Context(), timeout)
					if err != nil {
						return 0, ctxErr(L.Context(), procErr(p, "wait", err))
					}
					p.result = &r
				}
				if err := pushRunResult(L, *p.result, p.argv); err != nil {
					return 0, err
				}
				return 1, nil
			}),
			"kill": procMethod("kill", func(L *lua.Thread, p *procObj) (int, error) { return signal(L, p, 2, false) }),
			"signal": procMethod("signal", func(L *lua.Thread, p *procObj) (int, error) {
				return signal(L, p, 2, true)
			}),
			"pid": procMethod("pid", func(L *lua.Thread, p *procObj) (int, error) {
				pid, err := p.p.Pid(L.Context())
				if err != nil {
					return 0, ctxErr(L.Context(), procErr(p, "pid", err))
				}
				L.PushInteger(int64(pid))
				return 1, nil
			}),
			"handle": func(L *lua.Thread) (int, error) {
				p, err := self[*procObj](L, "proc:handle")
				if err != nil {
					return 0, err
				}
				L.PushInteger(int64(p.p.Handle()))
				return 1, nil
			},
			"status": procMethod("status", func(L *lua.Thread, p *procObj) (int, error) {
				if p.result != nil && p.result.Status != proto.StatusTimedOut {
					L.PushString(p.result.Status)
					return 1, nil
				}
				st, err := p.p.Status(L.Context())
				if err != nil {
					return 0, ctxErr(L.Context(), procErr(p, "status", err))
				}
				L.PushString(st)
				return 1, nil
			}),
			"stdin_write": procMethod("stdin_write", func(L *lua.Thread, p *procObj) (int, error) {
				data, ok := L.ToString(2)
				if !ok {
					return 0, fmt.Errorf("proc:stdin_write: data must be a string, got %s", L.TypeName(2))
				}
				if p.result != nil {
					return 0, fmt.Errorf(errFmtProcExited, p.p.Handle())
				}
				n, err := p.p.WriteStdin(L.Context(), []byte(data))
				if err != nil {
					var ae *agentclient.Error
					if errors.As(err, &ae) && ae.Name == "EPIPE" {
						return 0, errors.New(errStdinClosed)
					}
					return 0, ctxErr(L.Context(), procErr(p, "stdin_write", err))
				}
				L.PushInteger(int64(n))
				return 1, nil
			}),
			"close_stdin": procMethod("close_stdin", func(L *lua.Thread, p *procObj) (int, error) {
				if err := p.p.CloseStdin(L.Context()); err != nil && !errors.Is(err, agentclient.ErrProcessExited) {
					return 0, ctxErr(L.Context(), procErr(p, "close_stdin", err))
				}
				return 0, nil
			}),
			"stdout_stream": stream("stdout_stream", (*agentclient.Process).Stdout),
			"stderr_stream": stream("stderr_stream", (*agentclient.Process).Stderr),
			"close": func(L *lua.Thread) (int, error) {
				p, err := self[*procObj](L, "proc:close")
				if err != nil {
					return 0, err
				}
				if err := p.Close(L.Context()); err != nil {
					return 0, ctxErr(L.Context(), procErr(p, "close", err))
				}
				return 0, nil
			},
		},
		Meta: map[string]lua.Function{
			"__eq": eq,
			"__tostring": func(L *lua.Thread) (int, error) {
				p, err := self[*procObj](L, "proc")
				if err != nil {
					return 0, err
				}
				L.PushString(fmt.Sprintf("process(handle=%d pid=%d vm=%s)", p.p.Handle(), p.p.StartPid(), p.s.vm.Name()))
				return 1, nil
			},
		},
	}
}
