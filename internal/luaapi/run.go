package luaapi

import (
	"fmt"
	"sort"
	"strings"

	"github.com/provium/provium/internal/lua"
	"github.com/provium/provium/internal/proto"
)

// stringKeys returns the string keys of the table at index t, sorted, so an
// unknown-option error names the same key every time.
func stringKeys(L *lua.Thread, t int) []string {
	var keys []string
	L.PushNil()
	for L.Next(t) {
		if k, ok := L.ToString(-2); ok && L.Type(-2) == lua.TypeString {
			keys = append(keys, k)
		}
		L.Pop(1)
	}
	sort.Strings(keys)
	return keys
}

// runOptKeys make a table an options table (10-lua-api.md §5.4).
var runOptKeys = map[string]bool{
	"args": true, "env": true, "env_clear": true, "cwd": true, "stdin": true, "timeout": true, "timeout_ms": true,
}

// parseRun reads the (cmd, opts?) arguments of vm:run / worker:run /
// run_async starting at index i into an exec request.
func parseRun(L *lua.Thread, i int, site string) (proto.ExecReq, error) {
	var req proto.ExecReq
	cmd, ok := L.ToString(i)
	if !ok {
		return req, fmt.Errorf("%s: command must be a string, got %s", site, L.TypeName(i))
	}
	req.Cmd = cmd
	o := i + 1
	if L.IsNoneOrNil(o) {
		req.Shell = true
		return req, nil
	}
	if L.Type(o) != lua.TypeTable {
		return req, fmt.Errorf("%s: second argument must be an argv array or an options table, got %s", site, L.TypeName(o))
	}
	// Collect the array part and the string keys.
	var argv []string
	for k := int64(1); ; k++ {
		if L.RawGetI(o, k) == lua.TypeNil {
			L.Pop(1)
			break
		}
		s, ok := L.ToString(-1)
		if !ok {
			t := L.TypeName(-1)
			L.Pop(1)
			return req, fmt.Errorf("%s: argv[%d] must be a string, got %s", site, k, t)
		}
		argv = append(argv, s)
		L.Pop(1)
	}
	isOpts := false
	for _, k := range stringKeys(L, o) {
		if !runOptKeys[k] {
			return req, fmt.Errorf("%s: unknown option `%s`", site, k)
		}
		isOpts = true
	}
	if !isOpts {
		req.Args = argv
		return req, nil
	}
	hasArgs := L.RawGetField(o, "args") != lua.TypeNil
	L.Pop(1)
	if hasArgs && len(argv) > 0 {
		return req, fmt.Errorf("%s: give argv either as the array part or as `args`, not both", site)
	}
	switch {
	case hasArgs:
		args, err := stringArray(L, o, "args", site)
		if err != nil {
			return req, err
		}
		req.Args = args
		if req.Args == nil {
			req.Args = []string{}
		}
	case len(argv) > 0:
		req.Args = argv
	default:
		req.Shell = true
	}
	if L.RawGetField(o, "env") != lua.TypeNil {
		env, err := stringMap(L, L.GetTop(), site+": opts.env")
		L.Pop(1)
		if err != nil {
			return req, err
		}
		req.Env = env
	} else {
		L.Pop(1)
	}
	L.RawGetField(o, "env_clear")
	req.EnvClear = L.ToBoolean(-1)
	L.Pop(1)
	if L.RawGetField(o, "cwd") != lua.TypeNil {
		s, ok := L.ToString(-1)
		if !ok {
			L.Pop(1)
			return req, fmt.Errorf("%s: opts.cwd must be a string", site)
		}
		req.Cwd = s
	}
	L.Pop(1)
	if L.RawGetField(o, "stdin") != lua.TypeNil {
		s, ok := L.ToString(-1)
		if !ok {
			L.Pop(1)
			return req, fmt.Errorf("%s: opts.stdin must be a string", site)
		}
		req.Stdin = []byte(s)
	}
	L.Pop(1)
	if L.RawGetField(o, "timeout_ms") != lua.TypeNil {
		n, ok := L.ToInteger(-1)
		if !ok || n < 1 || L.Type(-1) != lua.TypeNumber { // "100" is not an int
			L.Pop(1)
			return req, fmt.Errorf("%s: opts.timeout_ms must be an integer >= 1", site)
		}
		req.TimeoutMs = n
	}
	L.Pop(1)
	if L.RawGetField(o, "timeout") != lua.TypeNil {
		d, err := PositiveDuration(L, L.GetTop(), site)
		if err != nil {
			L.Pop(1)
			return req, err
		}
		req.TimeoutMs = max(1, d.Milliseconds())
	}
	L.Pop(1)
	return req, nil
}

func stringArray(L *lua.Thread, t int, field, site string) ([]string, error) {
	L.RawGetField(t, field)
	defer L.Pop(1)
	if L.Type(-1) != lua.TypeTable {
		return nil, fmt.Errorf("%s: opts.%s must be an array of strings", site, field)
	}
	idx := L.GetTop()
	var out []string
	for k := int64(1); L.RawGetI(idx, k) != lua.TypeNil; k++ {
		s, ok := L.ToString(-1)
		L.Pop(1)
		if !ok {
			return nil, fmt.Errorf("%s: opts.%s[%d] must be a string", site, field, k)
		}
		out = append(out, s)
	}
	L.Pop(1)
	return out, nil
}

func stringMap(L *lua.Thread, t int, site string) (map[string]string, error) {
	if L.Type(t) != lua.TypeTable {
		return nil, fmt.Errorf("%s must be a table of strings", site)
	}
	out := map[string]string{}
	L.PushNil()
	for L.Next(t) {
		k, ok1 := L.ToString(-2)
		v, ok2 := L.ToString(-1)
		if !ok1 || !ok2 || L.Type(-2) != lua.TypeString {
			if L.Type(-1) == lua.TypeNumber {
				v, _ = L.ToStringMeta(-1)
				ok2 = true
			}
			if !ok1 || !ok2 {
				L.Pop(2)
				return nil, fmt.Errorf("%s must map strings to strings", site)
			}
		}
		out[k] = v
		L.Pop(1)
	}
	return out, nil
}

// argvOf is the command line a request runs, for messages.
func argvOf(req proto.ExecReq) []string {
	if req.Shell {
		return []string{"/bin/sh", "-c", req.Cmd}
	}
	return append([]string{req.Cmd}, req.Args...)
}

// pushRunResult pushes a RunResult table. A result whose output the agent
// had to cut is an error rather than a silently shortened string.
func pushRunResult(L *lua.Thread, r proto.ExecResult, argv []string) error {
	if err := outputDropped(r, argv); err != nil {
		return err
	}
	L.GetRegistryField(regPrelude)
	L.RawGetField(-1, "new_result")
	L.Remove(-2)
	L.NewTable(0, 6)
	L.PushInteger(int64(r.ExitCode))
	L.RawSetField(-2, "exit_code")
	L.PushString(string(r.Stdout))
	L.RawSetField(-2, "stdout")
	L.PushString(string(r.Stderr))
	L.RawSetField(-2, "stderr")
	L.PushString(r.Status)
	L.RawSetField(-2, "status")
	if r.Status == proto.StatusSignalled {
		L.PushInteger(int64(r.Signal))
		L.RawSetField(-2, "signal")
	}
	L.PushBoolean(r.Status == proto.StatusTimedOut)
	L.RawSetField(-2, "timed_out")
	PushGo(L, argv)
	return L.PCall(2, 1, false)
}

// outputDropped explains a result that carries only the first
// proto.MaxCapture bytes of an output.
func outputDropped(r proto.ExecResult, argv []string) error {
	for _, o := range []struct {
		name    string
		kept    int
		dropped int64
	}{{"stdout", len(r.Stdout), r.StdoutDropped}, {"stderr", len(r.Stderr), r.StderrDropped}} {
		if o.dropped > 0 {
			return fmt.Errorf("command %q (%s, exit code %d) wrote %d bytes to %s, more than the %d MiB a RunResult carries; "+
				"redirect the output to a file and read it with vm:read_file, or use vm:run_async and %s_stream()",
				strings.Join(argv, " "), r.Status, r.ExitCode, int64(o.kept)+o.dropped, o.name, proto.MaxCapture>>20, o.name)
		}
	}
	return nil
}

func (a *API) vmRun(L *lua.Thread) (int, error) {
	s, err := a.guestSession(L, "run")
	if err != nil {
		return 0, err
	}
	req, err := parseRun(L, 2, "vm:run")
	if err != nil {
		return 0, err
	}
	ctx := L.Context()
	res, err := s.agent.Exec(ctx, req)
	if err != nil {
		return 0, ctxErr(ctx, opError("run", "", err))
	}
	if err := pushRunResult(L, res, argvOf(req)); err != nil {
		return 0, err
	}
	return 1, nil
}
