package luaapi

import (
	"errors"
	"fmt"

	"github.com/provium/provium/internal/agentclient"
	"github.com/provium/provium/internal/lua"
	"github.com/provium/provium/internal/proto"
)

const classBatch = "BatchRecorder"

// batchRecorder collects the ops of vm:batch(fn); nothing is sent until fn
// returns.
type batchRecorder struct {
	b     agentclient.Batch
	argvs map[int][]string // RunResult argv by op index
	sent  bool
}

func recorderMethod(name string, body func(L *lua.Thread, r *batchRecorder) error) lua.Function {
	return func(L *lua.Thread) (int, error) {
		r, err := self[*batchRecorder](L, "batch:"+name)
		if err != nil {
			return 0, err
		}
		if r.sent {
			return 0, fmt.Errorf("batch:%s: the batch was already sent", name)
		}
		return 0, body(L, r)
	}
}

func (a *API) batchClass() lua.Class {
	path := func(L *lua.Thread, i int, name string) (string, error) { return pathArg(L, i, "batch:"+name) }
	return lua.Class{
		Name: classBatch,
		Methods: map[string]lua.Function{
			"run": recorderMethod("run", func(L *lua.Thread, r *batchRecorder) error {
				req, err := parseRun(L, 2, "batch:run")
				if err != nil {
					return err
				}
				r.argvs[r.b.Len()] = argvOf(req)
				r.b.Exec(req)
				return nil
			}),
			"read_file": recorderMethod("read_file", func(L *lua.Thread, r *batchRecorder) error {
				p, err := path(L, 2, "read_file")
				if err == nil {
					r.b.ReadFile(p)
				}
				return err
			}),
			"write_file": recorderMethod("write_file", func(L *lua.Thread, r *batchRecorder) error {
				p, err := path(L, 2, "write_file")
				if err != nil {
					return err
				}
				data, ok := L.ToString(3)
				if !ok {
					return fmt.Errorf("batch:write_file: data must be a string, got %s", L.TypeName(3))
				}
				r.b.WriteFile(p, []byte(data))
				return nil
			}),
			"stat": recorderMethod("stat", func(L *lua.Thread, r *batchRecorder) error {
				p, err := path(L, 2, "stat")
				if err == nil {
					r.b.Stat(p)
				}
				return err
			}),
			"listdir": recorderMethod("listdir", func(L *lua.Thread, r *batchRecorder) error {
				p, err := path(L, 2, "listdir")
				if err == nil {
					r.b.Listdir(p)
				}
				return err
			}),
			"mkdir": recorderMethod("mkdir", func(L *lua.Thread, r *batchRecorder) error {
				p, err := path(L, 2, "mkdir")
				if err != nil {
					return err
				}
				parents, perm, err := mkdirOpts(L, 3, "batch:mkdir")
				if err == nil {
					r.b.Mkdir(p, parents, perm)
				}
				return err
			}),
			"unlink": recorderMethod("unlink", func(L *lua.Thread, r *batchRecorder) error {
				p, err := path(L, 2, "unlink")
				if err == nil {
					r.b.Unlink(p)
				}
				return err
			}),
			"rename": recorderMethod("rename", func(L *lua.Thread, r *batchRecorder) error {
				from, err := path(L, 2, "rename")
				if err != nil {
					return err
				}
				to, err := path(L, 3, "rename")
				if err == nil {
					r.b.Rename(from, to)
				}
				return err
			}),
			"syscall": recorderMethod("syscall", func(L *lua.Thread, r *batchRecorder) error {
				if L.Type(3) == lua.TypeTable {
					return errors.New("batch:syscall: only the integer form is allowed in a batch (no bufs/ptrs table)")
				}
				req, err := parseSyscall(L, 2, "batch:syscall")
				if err == nil {
					r.b.Syscall(req)
				}
				return err
			}),
		},
	}
}

func (a *API) vmBatch(L *lua.Thread) (int, error) {
	s, err := a.guestSession(L, "batch")
	if err != nil {
		return 0, err
	}
	if L.Type(2) != lua.TypeFunction {
		return 0, fmt.Errorf("vm:batch: expected a function, got %s", L.TypeName(2))
	}
	rec := &batchRecorder{argvs: map[int][]string{}}
	L.PushValue(2)
	L.PushObject(rec, classBatch)
	if e := L.PCallValue(1, 0); e != nil {
		rec.sent = true
		return 0, lua.Raise() // a raise in fn sends nothing
	}
	rec.sent = true
	if rec.b.Len() == 0 {
		L.NewTable(0, 0)
		return 1, nil
	}
	results, err := s.agent.Batch(L.Context(), &rec.b)
	if err != nil {
		return 0, ctxErr(L.Context(), opError("batch", "", err))
	}
	L.NewTable(len(results), 0)
	for i, r := range results {
		L.NewTable(0, 1)
		if r.Err != nil {
			L.PushString(r.Err.Error())
			L.RawSetField(-2, "err")
		} else if r.Value != nil {
			switch v := r.Value.(type) {
			case proto.ExecResult:
				if err := pushRunResult(L, v, rec.argvs[i]); err != nil {
					return 0, err
				}
			case []byte:
				L.PushString(string(v))
			case proto.StatResp:
				pushStat(L, v)
			case []proto.DirEntry:
				pushDir(L, v)
			case proto.SyscallResult:
				pushSyscallResult(L, v)
			default:
				L.PushNil()
			}
			L.RawSetField(-2, "ok")
		}
		L.RawSetI(-2, int64(i+1))
	}
	return 1, nil
}
