package luaapi

import (
	"context"
	"errors"
	"fmt"

	"github.com/provium/provium/internal/agentclient"
	"github.com/provium/provium/internal/guest"
	"github.com/provium/provium/internal/lab"
	"github.com/provium/provium/internal/lua"
	"github.com/provium/provium/internal/proto"
)

const (
	classFile        = "File"
	errFileClosed    = "file is closed"
	errOpenNoMode    = "vm:open_file: must specify at least one of `read`, `write`, `append` (got `{}` — a no-mode open would defer errors to the first I/O)"
	errFmtStale      = "%s: stale handle (vm `%s` was %s)"
	errFmtSeekWhence = "seek: whence must be set/cur/end, got `%s`"
	readAllChunk     = 64 << 10
)

// fileObj is an open guest file (vm:open_file).
type fileObj struct {
	api     *API
	vm      *lab.VM
	machine *guest.Machine
	agent   *agentclient.Client
	f       *agentclient.File
	path    string // as opened; "" when unknown
	closed  bool
}

// staleReason says why a handle of an earlier guest session is invalid, or
// "" while it is current.
func staleReason(vm *lab.VM, m *guest.Machine, ag *agentclient.Client) string {
	cur, _ := vm.Machine().(*guest.Machine)
	if cur != m {
		switch vm.State() {
		case lab.Shutdown:
			return "shut down"
		case lab.Dead:
			return "dead"
		}
		// Running again: say how the current machine came to be.
		if since := vm.Since(); since != "" {
			return since
		}
		return "restored"
	}
	if now, err := m.Agent(); err != nil || now != ag {
		return "reset"
	}
	return ""
}

// live checks the handle before an operation.
func (f *fileObj) live(method string) error {
	if f.closed {
		return errors.New(errFileClosed)
	}
	if r := staleReason(f.vm, f.machine, f.agent); r != "" {
		return fmt.Errorf(errFmtStale, "file:"+method, f.vm.Name(), r)
	}
	return nil
}

// Close is idempotent; a stale handle just forgets its session.
func (f *fileObj) Close(ctx context.Context) error {
	if f.closed {
		return nil
	}
	f.closed = true
	delete(f.api.files, f)
	if staleReason(f.vm, f.machine, f.agent) != "" {
		return nil
	}
	return f.f.Close(ctx)
}

func fileErr(method string, err error) error {
	var ae *agentclient.Error
	if errors.As(err, &ae) {
		return fmt.Errorf("file:%s: %s", method, ae.Error())
	}
	return fmt.Errorf("file:%s: %v", method, err)
}

// openMode parses the mode table of open_file.
func openMode(L *lua.Thread, i int) (proto.OpenMode, uint32, error) {
	if L.IsNoneOrNil(i) {
		return 0, 0, errors.New(errOpenNoMode)
	}
	if L.Type(i) != lua.TypeTable {
		// The spec's text is about a table without a mode; any other
		// value is named as it is.
		return 0, 0, fmt.Errorf("vm:open_file: mode must be a table such as {read = true}, got %s", L.TypeName(i))
	}
	var mode proto.OpenMode
	for _, m := range []struct {
		key string
		bit proto.OpenMode
	}{
		{"read", proto.OpenRead}, {"write", proto.OpenWrite}, {"create", proto.OpenCreate},
		{"truncate", proto.OpenTruncate}, {"append", proto.OpenAppend}, {"exclusive", proto.OpenExclusive},
	} {
		L.RawGetField(i, m.key)
		if L.ToBoolean(-1) {
			mode |= m.bit
		}
		L.Pop(1)
	}
	if mode&(proto.OpenRead|proto.OpenWrite|proto.OpenAppend) == 0 {
		return 0, 0, errors.New(errOpenNoMode)
	}
	var perm uint32
	if L.RawGetField(i, "perm") != lua.TypeNil {
		n, ok := L.ToInteger(-1)
		if !ok || n < 0 || n > 0o7777 {
			L.Pop(1)
			return 0, 0, fmt.Errorf("vm:open_file: mode.perm must be an integer 0..0o7777")
		}
		perm = uint32(n)
	}
	L.Pop(1)
	return mode, perm, nil
}

func (a *API) vmOpenFile(L *lua.Thread) (int, error) {
	s, err := a.guestSession(L, "open_file")
	if err != nil {
		return 0, err
	}
	path, err := pathArg(L, 2, "vm:open_file")
	if err != nil {
		return 0, err
	}
	mode, perm, err := openMode(L, 3)
	if err != nil {
		return 0, err
	}
	f, err := s.agent.Open(L.Context(), path, mode, perm)
	if err != nil {
		return 0, ctxErr(L.Context(), opError("open_file", path, err))
	}
	obj := &fileObj{api: a, vm: s.vm, machine: s.machine, agent: s.agent, f: f, path: path}
	a.files[obj] = struct{}{}
	a.scope().Register(lab.ResFile, obj)
	L.PushObject(obj, classFile)
	return 1, nil
}

// openFileCount counts the VM's live file handles.
func (a *API) openFileCount(vm *lab.VM) int {
	n := 0
	for f := range a.files {
		if f.vm == vm && !f.closed && staleReason(f.vm, f.machine, f.agent) == "" {
			n++
		}
	}
	return n
}

func fileMethod(name string, body func(L *lua.Thread, f *fileObj) (int, error)) lua.Function {
	return func(L *lua.Thread) (int, error) {
		f, err := self[*fileObj](L, "file:"+name)
		if err != nil {
			return 0, err
		}
		if err := f.live(name); err != nil {
			return 0, err
		}
		return body(L, f)
	}
}

func (a *API) fileClass() lua.Class {
	return lua.Class{
		Name: classFile,
		Methods: map[string]lua.Function{
			"read": fileMethod("read", func(L *lua.Thread, f *fileObj) (int, error) {
				n, ok := L.ToInteger(2)
				if !ok || n < 0 {
					return 0, fmt.Errorf("file:read: n must be a non-negative integer")
				}
				data, err := f.f.Read(L.Context(), int(n))
				if err != nil {
					return 0, fileErr("read", err)
				}
				L.PushString(string(data))
				return 1, nil
			}),
			"read_all": fileMethod("read_all", func(L *lua.Thread, f *fileObj) (int, error) {
				var all []byte
				for {
					data, err := f.f.Read(L.Context(), readAllChunk)
					if err != nil {
						return 0, fileErr("read_all", err)
					}
					if len(data) == 0 {
						break
					}
					all = append(all, data...)
				}
				L.PushString(string(all))
				return 1, nil
			}),
			"write": fileMethod("write", func(L *lua.Thread, f *fileObj) (int, error) {
				data, ok := L.ToString(2)
				if !ok {
					return 0, fmt.Errorf("file:write: data must be a string, got %s", L.TypeName(2))
				}
				n, err := f.f.Write(L.Context(), []byte(data))
				if err != nil {
					return 0, fileErr("write", err)
				}
				L.PushInteger(int64(n))
				return 1, nil
			}),
			"seek": fileMethod("seek", func(L *lua.Thread, f *fileObj) (int, error) {
				off, ok := L.ToInteger(2)
				if !ok {
					return 0, fmt.Errorf("file:seek: offset must be an integer")
				}
				whence := proto.SeekSet
				if !L.IsNoneOrNil(3) {
					w, _ := L.ToStringMeta(3)
					switch w {
					case "set":
					case "cur":
						whence = proto.SeekCur
					case "end":
						whence = proto.SeekEnd
					default:
						return 0, fmt.Errorf(errFmtSeekWhence, w)
					}
				}
				pos, err := f.f.Seek(L.Context(), off, whence)
				if err != nil {
					return 0, fileErr("seek", err)
				}
				L.PushInteger(pos)
				return 1, nil
			}),
			"tell": fileMethod("tell", func(L *lua.Thread, f *fileObj) (int, error) {
				pos, err := f.f.Tell(L.Context())
				if err != nil {
					return 0, fileErr("tell", err)
				}
				L.PushInteger(pos)
				return 1, nil
			}),
			"close": func(L *lua.Thread) (int, error) {
				f, err := self[*fileObj](L, "file:close")
				if err != nil {
					return 0, err
				}
				if err := f.Close(L.Context()); err != nil {
					return 0, fileErr("close", err)
				}
				return 0, nil
			},
			"fd": func(L *lua.Thread) (int, error) {
				f, err := self[*fileObj](L, "file:fd")
				if err != nil {
					return 0, err
				}
				if f.closed {
					L.PushInteger(0)
				} else {
					L.PushInteger(int64(f.f.Fd()))
				}
				return 1, nil
			},
			"tail_stream": fileMethod("tail_stream", a.fileTailStream),
		},
		Meta: map[string]lua.Function{
			"__eq": eq,
			"__tostring": func(L *lua.Thread) (int, error) {
				f, err := self[*fileObj](L, "file")
				if err != nil {
					return 0, err
				}
				state := "open"
				if f.closed {
					state = "closed"
				}
				L.PushString(fmt.Sprintf("file(vm=%s fd=%d %s)", f.vm.Name(), f.f.Fd(), state))
				return 1, nil
			},
		},
	}
}
