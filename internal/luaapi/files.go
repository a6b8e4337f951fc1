package luaapi

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"

	"github.com/provium/provium/internal/lua"
	"github.com/provium/provium/internal/proto"
)

// pathArg reads a guest path argument.
func pathArg(L *lua.Thread, i int, site string) (string, error) {
	p, ok := L.ToString(i)
	if !ok {
		return "", fmt.Errorf("%s: path must be a string, got %s", site, L.TypeName(i))
	}
	return p, nil
}

func (a *API) vmReadFile(L *lua.Thread) (int, error) {
	s, err := a.guestSession(L, "read_file")
	if err != nil {
		return 0, err
	}
	path, err := pathArg(L, 2, "vm:read_file")
	if err != nil {
		return 0, err
	}
	data, err := s.agent.ReadFile(L.Context(), path)
	if err != nil {
		return 0, ctxErr(L.Context(), opError("read_file", path, err))
	}
	L.PushString(string(data))
	return 1, nil
}

func (a *API) vmWriteFile(L *lua.Thread) (int, error) {
	s, err := a.guestSession(L, "write_file")
	if err != nil {
		return 0, err
	}
	path, err := pathArg(L, 2, "vm:write_file")
	if err != nil {
		return 0, err
	}
	data, ok := L.ToString(3)
	if !ok {
		return 0, fmt.Errorf("vm:write_file: data must be a string, got %s", L.TypeName(3))
	}
	if err := s.agent.WriteFile(L.Context(), path, []byte(data)); err != nil {
		return 0, ctxErr(L.Context(), opError("write_file", path, err))
	}
	return 0, nil
}

// callerDir is the directory of the nearest file-backed Lua frame (helper,
// test or fixture): relative host paths resolve against it.
func callerDir(L *lua.Thread) string {
	for _, f := range L.Stack() {
		if f.Source == "" || f.Source[0] == '[' {
			continue
		}
		if _, err := os.Stat(f.Source); err == nil {
			if abs, err := filepath.Abs(f.Source); err == nil {
				return filepath.Dir(abs)
			}
		}
	}
	wd, _ := os.Getwd()
	return wd
}

func (a *API) vmPushFile(L *lua.Thread) (int, error) {
	s, err := a.guestSession(L, "push_file")
	if err != nil {
		return 0, err
	}
	host, err := pathArg(L, 2, "vm:push_file")
	if err != nil {
		return 0, err
	}
	dst, err := pathArg(L, 3, "vm:push_file")
	if err != nil {
		return 0, err
	}
	var mode *uint32
	if L.Type(4) == lua.TypeTable {
		for _, k := range stringKeys(L, 4) {
			if k != "mode" && k != "auto_dep" {
				return 0, fmt.Errorf("vm:push_file: unknown option `%s` (known: auto_dep, mode)", k)
			}
		}
		if L.RawGetField(4, "mode") != lua.TypeNil {
			n, ok := L.ToInteger(-1)
			if !ok || n < 0 || n > 0o7777 {
				L.Pop(1)
				return 0, fmt.Errorf("vm:push_file: opts.mode must be an integer 0..0o7777")
			}
			m := uint32(n)
			mode = &m
		}
		L.Pop(1)
	}
	if !filepath.IsAbs(host) {
		host = filepath.Join(callerDir(L), host)
	}
	f, err := os.Open(host)
	if err != nil {
		return 0, fmt.Errorf("vm:push_file: read `%s` failed: %v", host, unwrapPathErr(err))
	}
	defer f.Close()
	if err := s.agent.WriteFileFrom(L.Context(), dst, f, mode); err != nil {
		return 0, ctxErr(L.Context(), opError("push_file", dst, err))
	}
	return 0, nil
}

// unwrapPathErr drops the path (the message names it already) and renders
// an OS error as every OS error reads: `<strerror> (os error N, ENAME) (errno N)`.
func unwrapPathErr(err error) error {
	var errno syscall.Errno
	if errors.As(err, &errno) {
		return proto.ErrnoError(errno)
	}
	if pe, ok := err.(*os.PathError); ok {
		return pe.Err
	}
	return err
}

func pushStat(L *lua.Thread, st proto.StatResp) {
	L.NewTable(0, 5)
	L.PushInteger(st.Size)
	L.RawSetField(-2, "size")
	L.PushNumber(st.Mtime)
	L.RawSetField(-2, "mtime")
	L.PushInteger(st.MtimeNs)
	L.RawSetField(-2, "mtime_ns")
	L.PushInteger(int64(st.Perm))
	L.RawSetField(-2, "perm")
	L.PushString(st.EntryType)
	L.RawSetField(-2, "entry_type")
}

func pushDir(L *lua.Thread, entries []proto.DirEntry) {
	L.NewTable(len(entries), 0)
	for i, e := range entries {
		L.NewTable(0, 2)
		L.PushString(e.Name)
		L.RawSetField(-2, "name")
		L.PushString(e.EntryType)
		L.RawSetField(-2, "entry_type")
		L.RawSetI(-2, int64(i+1))
	}
}

func (a *API) vmStat(L *lua.Thread) (int, error) {
	s, err := a.guestSession(L, "stat")
	if err != nil {
		return 0, err
	}
	path, err := pathArg(L, 2, "vm:stat")
	if err != nil {
		return 0, err
	}
	st, err := s.agent.Stat(L.Context(), path)
	if err != nil {
		return 0, ctxErr(L.Context(), opError("stat", path, err))
	}
	pushStat(L, st)
	return 1, nil
}

func (a *API) vmListdir(L *lua.Thread) (int, error) {
	s, err := a.guestSession(L, "listdir")
	if err != nil {
		return 0, err
	}
	path, err := pathArg(L, 2, "vm:listdir")
	if err != nil {
		return 0, err
	}
	entries, err := s.agent.Listdir(L.Context(), path)
	if err != nil {
		return 0, ctxErr(L.Context(), opError("listdir", path, err))
	}
	pushDir(L, entries)
	return 1, nil
}

// mkdirOpts reads `{parents=, perm=}` (or a bare boolean: parents) at i.
func mkdirOpts(L *lua.Thread, i int, site string) (parents bool, perm uint32, err error) {
	perm = 0o755
	switch L.Type(i) {
	case lua.TypeNil, lua.TypeNone:
	case lua.TypeBoolean:
		parents = L.ToBoolean(i)
	case lua.TypeTable:
		L.RawGetField(i, "parents")
		parents = L.ToBoolean(-1)
		L.Pop(1)
		if L.RawGetField(i, "perm") != lua.TypeNil {
			n, ok := L.ToInteger(-1)
			if !ok || n < 0 || n > 0o7777 {
				L.Pop(1)
				return false, 0, fmt.Errorf("%s: opts.perm must be an integer 0..0o7777", site)
			}
			perm = uint32(n)
		}
		L.Pop(1)
	default:
		return false, 0, fmt.Errorf("%s: opts must be a table, got %s", site, L.TypeName(i))
	}
	return parents, perm, nil
}

func (a *API) vmMkdir(L *lua.Thread) (int, error) {
	s, err := a.guestSession(L, "mkdir")
	if err != nil {
		return 0, err
	}
	path, err := pathArg(L, 2, "vm:mkdir")
	if err != nil {
		return 0, err
	}
	parents, perm, err := mkdirOpts(L, 3, "vm:mkdir")
	if err != nil {
		return 0, err
	}
	if err := s.agent.Mkdir(L.Context(), path, parents, perm); err != nil {
		return 0, ctxErr(L.Context(), opError("mkdir", path, err))
	}
	return 0, nil
}

func (a *API) vmUnlink(L *lua.Thread) (int, error) {
	s, err := a.guestSession(L, "unlink")
	if err != nil {
		return 0, err
	}
	path, err := pathArg(L, 2, "vm:unlink")
	if err != nil {
		return 0, err
	}
	if err := s.agent.Unlink(L.Context(), path); err != nil {
		return 0, ctxErr(L.Context(), opError("unlink", path, err))
	}
	return 0, nil
}

func (a *API) vmRename(L *lua.Thread) (int, error) {
	s, err := a.guestSession(L, "rename")
	if err != nil {
		return 0, err
	}
	from, err := pathArg(L, 2, "vm:rename")
	if err != nil {
		return 0, err
	}
	to, err := pathArg(L, 3, "vm:rename")
	if err != nil {
		return 0, err
	}
	if err := s.agent.Rename(L.Context(), from, to); err != nil {
		return 0, ctxErr(L.Context(), opError("rename", from, err))
	}
	return 0, nil
}
