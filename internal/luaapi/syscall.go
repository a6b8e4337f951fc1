package luaapi

import (
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/provium/provium/internal/agentclient"
	"github.com/provium/provium/internal/lab"
	"github.com/provium/provium/internal/lua"
	"github.com/provium/provium/internal/proto"
	"github.com/provium/provium/internal/report"
)

const (
	classPending        = "Pending"
	errFmtAwaitTimeout  = "syscall_async: await timed out after %s"
	errAwaitedTwice     = "syscall_async: handle already awaited"
	errWorkerClosed     = "worker closed"
	maxReadMem          = 16 << 20
	errFmtSyscallArgNum = "%s: at most 6 arguments, got %d"
)

// syscallArg converts one integer-form argument: ints, integral floats and
// nil (0).
func syscallArg(L *lua.Thread, i int, site string, pos int) (uint64, error) {
	switch L.Type(i) {
	case lua.TypeNil, lua.TypeNone:
		return 0, nil
	case lua.TypeNumber:
		if L.IsInteger(i) {
			n, _ := L.ToInteger(i)
			return uint64(n), nil
		}
		f, _ := L.ToNumber(i)
		if f == math.Trunc(f) && !math.IsInf(f, 0) && f >= math.MinInt64 && f <= math.MaxInt64 {
			return uint64(int64(f)), nil
		}
		return 0, fmt.Errorf("%s: argument %d must be an integer, got %v", site, pos, f)
	}
	return 0, fmt.Errorf("%s: argument %d must be an integer, got %s", site, pos, L.TypeName(i))
}

// parseSyscall reads `(nr, a1…a6)` or `(nr, {args=, bufs=, ptrs=, nested=})`
// starting at index i (the number).
func parseSyscall(L *lua.Thread, i int, site string) (proto.SyscallReq, error) {
	var req proto.SyscallReq
	nr, ok := L.ToInteger(i)
	if !ok || L.Type(i) != lua.TypeNumber {
		return req, fmt.Errorf("%s: syscall number must be an integer, got %s", site, L.TypeName(i))
	}
	req.Nr = nr
	top := L.GetTop()
	if L.Type(i+1) == lua.TypeTable && top == i+1 {
		return req, parseSyscallTable(L, i+1, site, &req)
	}
	if n := top - i; n > 6 {
		return req, fmt.Errorf(errFmtSyscallArgNum, site, n)
	}
	for k := 0; k < 6 && i+1+k <= top; k++ {
		v, err := syscallArg(L, i+1+k, site, k+1)
		if err != nil {
			return req, err
		}
		req.Args[k] = v
	}
	return req, nil
}

func parseSyscallTable(L *lua.Thread, t int, site string, req *proto.SyscallReq) error {
	// args
	if L.RawGetField(t, "args") != lua.TypeNil {
		at := L.GetTop()
		n := L.RawLen(at)
		if n > 6 {
			L.Pop(1)
			return fmt.Errorf(errFmtSyscallArgNum, site, n)
		}
		for k := int64(1); k <= n; k++ {
			L.RawGetI(at, k)
			v, err := syscallArg(L, L.GetTop(), site, int(k))
			L.Pop(1)
			if err != nil {
				L.Pop(1)
				return err
			}
			req.Args[k-1] = v
		}
	}
	L.Pop(1)
	// bufs
	if L.RawGetField(t, "bufs") != lua.TypeNil {
		bt := L.GetTop()
		for k := int64(1); ; k++ {
			if L.RawGetI(bt, k) == lua.TypeNil {
				L.Pop(1)
				break
			}
			s, ok := L.ToString(-1)
			L.Pop(1)
			if !ok {
				L.Pop(1)
				return fmt.Errorf("%s: bufs[%d] must be a string", site, k)
			}
			req.Bufs = append(req.Bufs, []byte(s))
		}
	}
	L.Pop(1)
	// ptrs: 0-based argument slots
	if L.RawGetField(t, "ptrs") != lua.TypeNil {
		pt := L.GetTop()
		for k := int64(1); L.RawGetI(pt, k) != lua.TypeNil; k++ {
			slot, ok := L.ToInteger(-1)
			L.Pop(1)
			if !ok || slot < 0 || slot > 5 {
				L.Pop(2)
				return fmt.Errorf("%s: ptrs[%d] must be an argument slot 0..5", site, k)
			}
			if int(k) > len(req.Bufs) {
				L.Pop(2)
				return fmt.Errorf("%s: ptrs[%d] has no matching bufs[%d]", site, k, k)
			}
			req.Ptrs = append(req.Ptrs, int(slot))
		}
		L.Pop(1)
	}
	L.Pop(1)
	// nested: 1-based positions in bufs
	if L.RawGetField(t, "nested") != lua.TypeNil {
		nt := L.GetTop()
		for k := int64(1); L.RawGetI(nt, k) != lua.TypeNil; k++ {
			et := L.GetTop()
			get := func(f string) (int64, bool) {
				L.RawGetField(et, f)
				v, ok := L.ToInteger(-1)
				L.Pop(1)
				return v, ok
			}
			parent, ok1 := get("parent")
			child, ok2 := get("child")
			offset, ok3 := get("offset")
			L.Pop(1)
			nb := int64(len(req.Bufs))
			switch {
			case !ok1 || !ok2 || !ok3:
				L.Pop(2)
				return fmt.Errorf("%s: nested[%d] needs integer parent, child and offset", site, k)
			case parent < 1 || parent > nb || child < 1 || child > nb:
				L.Pop(2)
				return fmt.Errorf("%s: nested[%d]: buffer index out of range (parent=%d, child=%d, %d bufs)", site, k, parent, child, nb)
			case offset < 0 || offset+8 > int64(len(req.Bufs[parent-1])):
				L.Pop(2)
				return fmt.Errorf("%s: nested[%d]: offset %d + 8 exceeds bufs[%d] (%d bytes)", site, k, offset, parent, len(req.Bufs[parent-1]))
			}
			req.Nested = append(req.Nested, proto.SyscallNested{Parent: int(parent - 1), Child: int(child - 1), Offset: int(offset)})
		}
		L.Pop(1)
	}
	L.Pop(1)
	return nil
}

// pushSyscallResult pushes {ret, result, errno, out_bufs}.
func pushSyscallResult(L *lua.Thread, r proto.SyscallResult) {
	L.NewTable(0, 4)
	L.PushInteger(r.Ret)
	L.RawSetField(-2, "ret")
	L.PushInteger(r.Ret)
	L.RawSetField(-2, "result")
	L.PushInteger(int64(r.Errno))
	L.RawSetField(-2, "errno")
	L.NewTable(len(r.OutBufs), 0)
	for i, b := range r.OutBufs {
		L.PushString(string(b))
		L.RawSetI(-2, int64(i+1))
	}
	L.RawSetField(-2, "out_bufs")
}

// syscaller is what can run syscalls: the VM's agent or a worker.
type syscaller interface {
	Syscall(ctx ctxT, req proto.SyscallReq) (proto.SyscallResult, error)
	SyscallAsync(ctx ctxT, req proto.SyscallReq) (*agentclient.Pending, error)
}

func doSyscall(L *lua.Thread, c syscaller, site string, argIdx int) (int, error) {
	req, err := parseSyscall(L, argIdx, site)
	if err != nil {
		return 0, err
	}
	r, err := c.Syscall(L.Context(), req)
	if err != nil {
		return 0, ctxErr(L.Context(), fmt.Errorf("%s: %w", site, err))
	}
	pushSyscallResult(L, r)
	return 1, nil
}

func (a *API) vmSyscall(L *lua.Thread) (int, error) {
	s, err := a.guestSession(L, "syscall")
	if err != nil {
		return 0, err
	}
	return doSyscall(L, s.agent, "vm:syscall", 2)
}

// pendingObj is a syscall_async call in flight.
type pendingObj struct {
	vm      *lab.VM
	session *session
	p       *agentclient.Pending
	awaited bool
}

// stale is the stale-handle error of a pending whose VM was reset,
// restored, shut down or died since the call started (10-lua-api.md §1).
func (p *pendingObj) stale(method string) error {
	if p.session == nil {
		return nil
	}
	if r := staleReason(p.vm, p.session.machine, p.session.agent); r != "" {
		return fmt.Errorf(errFmtStale, "pending:"+method, p.vm.Name(), r)
	}
	return nil
}

func (a *API) pushPending(L *lua.Thread, c syscaller, s *session, site string, argIdx int) (int, error) {
	req, err := parseSyscall(L, argIdx, site)
	if err != nil {
		return 0, err
	}
	p, err := c.SyscallAsync(L.Context(), req)
	if err != nil {
		return 0, ctxErr(L.Context(), fmt.Errorf("%s: %w", site, err))
	}
	L.PushObject(&pendingObj{vm: s.vm, session: s, p: p}, classPending)
	return 1, nil
}

func (a *API) vmSyscallAsync(L *lua.Thread) (int, error) {
	s, err := a.guestSession(L, "syscall_async")
	if err != nil {
		return 0, err
	}
	return a.pushPending(L, s.agent, s, "vm:syscall_async", 2)
}

func pendingErr(err error) error {
	switch {
	case errors.Is(err, agentclient.ErrClosed):
		return errors.New(errWorkerClosed)
	}
	var ae *agentclient.Error
	if errors.As(err, &ae) && ae.Message == "handle already awaited" {
		return errors.New(errAwaitedTwice)
	}
	return fmt.Errorf("syscall_async: %w", err)
}

func (a *API) pendingClass() lua.Class {
	return lua.Class{
		Name: classPending,
		Methods: map[string]lua.Function{
			"await": func(L *lua.Thread) (int, error) {
				p, err := self[*pendingObj](L, "pending:await")
				if err != nil {
					return 0, err
				}
				if p.awaited {
					return 0, errors.New(errAwaitedTwice)
				}
				if err := p.stale("await"); err != nil {
					return 0, err
				}
				var timeout time.Duration // 0 here: forever
				if !L.IsNoneOrNil(2) {
					if timeout, err = Duration(L, 2, "pending:await"); err != nil {
						return 0, err
					}
					if timeout == 0 { // one check
						done, err := p.p.Done(L.Context())
						if err != nil {
							return 0, ctxErr(L.Context(), pendingErr(err))
						}
						if !done {
							return 0, fmt.Errorf(errFmtAwaitTimeout, report.FormatDuration(0))
						}
					}
				}
				r, err := p.p.Await(L.Context(), timeout)
				if errors.Is(err, agentclient.ErrAwaitTimeout) {
					return 0, fmt.Errorf(errFmtAwaitTimeout, report.FormatDuration(timeout))
				}
				if err != nil {
					return 0, ctxErr(L.Context(), pendingErr(err))
				}
				p.awaited = true
				pushSyscallResult(L, r)
				return 1, nil
			},
			"done": func(L *lua.Thread) (int, error) {
				p, err := self[*pendingObj](L, "pending:done")
				if err != nil {
					return 0, err
				}
				if p.awaited {
					L.PushBoolean(true)
					return 1, nil
				}
				if err := p.stale("done"); err != nil {
					return 0, err
				}
				done, err := p.p.Done(L.Context())
				if err != nil {
					return 0, ctxErr(L.Context(), pendingErr(err))
				}
				L.PushBoolean(done)
				return 1, nil
			},
		},
		Meta: map[string]lua.Function{
			"__eq": eq,
			"__tostring": func(L *lua.Thread) (int, error) {
				p, err := self[*pendingObj](L, "pending")
				if err != nil {
					return 0, err
				}
				state := "pending"
				if p.awaited {
					state = "awaited"
				}
				L.PushString(fmt.Sprintf("pending(vm=%s %s)", p.vm.Path(), state))
				return 1, nil
			},
		},
	}
}

func (a *API) vmIoctl(L *lua.Thread) (int, error) {
	s, err := a.guestSession(L, "ioctl")
	if err != nil {
		return 0, err
	}
	fd, ok := L.ToInteger(2)
	if !ok {
		return 0, fmt.Errorf("vm:ioctl: fd must be an integer, got %s", L.TypeName(2))
	}
	cmd, err := syscallArg(L, 3, "vm:ioctl", 2)
	if err != nil {
		return 0, err
	}
	req := proto.IoctlReq{Fd: int(fd), Cmd: cmd}
	if !L.IsNoneOrNil(4) {
		d, ok := L.ToString(4)
		if !ok {
			return 0, fmt.Errorf("vm:ioctl: data must be a string, got %s", L.TypeName(4))
		}
		req.Data = []byte(d)
	}
	if L.Type(5) == lua.TypeTable {
		if L.RawGetField(5, "bufs") != lua.TypeNil {
			bt := L.GetTop()
			for k := int64(1); L.RawGetI(bt, k) != lua.TypeNil; k++ {
				b, ok := L.ToString(-1)
				L.Pop(1)
				if !ok {
					L.Pop(2)
					return 0, fmt.Errorf("vm:ioctl: opts.bufs[%d] must be a string", k)
				}
				req.Bufs = append(req.Bufs, []byte(b))
			}
			L.Pop(1)
		}
		L.Pop(1)
		if L.RawGetField(5, "ptr_offsets") != lua.TypeNil {
			pt := L.GetTop()
			for k := int64(1); L.RawGetI(pt, k) != lua.TypeNil; k++ {
				off, ok := L.ToInteger(-1)
				L.Pop(1)
				if !ok || off < 0 || off+8 > int64(len(req.Data)) {
					L.Pop(2)
					return 0, fmt.Errorf("vm:ioctl: opts.ptr_offsets[%d] must be an offset with 8 bytes of room in data (%d bytes)", k, len(req.Data))
				}
				req.PtrOffsets = append(req.PtrOffsets, int(off))
			}
			L.Pop(1)
		}
		L.Pop(1)
		if len(req.PtrOffsets) > len(req.Bufs) {
			return 0, fmt.Errorf("vm:ioctl: %d ptr_offsets but only %d bufs", len(req.PtrOffsets), len(req.Bufs))
		}
	}
	r, err := s.agent.Ioctl(L.Context(), req)
	if err != nil {
		return 0, ctxErr(L.Context(), opError("ioctl", "", err))
	}
	// An ioctl's result is a syscall's plus the data buffer after the call.
	pushSyscallResult(L, proto.SyscallResult{Ret: r.Ret, Errno: r.Errno, OutBufs: r.OutBufs})
	L.PushString(string(r.OutData))
	L.RawSetField(-2, "out_data")
	return 1, nil
}

func (a *API) vmReadMem(L *lua.Thread) (int, error) {
	s, err := a.guestSession(L, "read_mem")
	if err != nil {
		return 0, err
	}
	addr, err := syscallArg(L, 2, "vm:read_mem", 1)
	if err != nil {
		return 0, err
	}
	n, ok := L.ToInteger(3)
	if !ok || n < 0 || n > maxReadMem {
		return 0, fmt.Errorf("vm:read_mem: len must be an integer 0..%d", maxReadMem)
	}
	data, errno, err := s.agent.ReadMem(L.Context(), addr, int(n))
	if err != nil {
		return 0, ctxErr(L.Context(), opError("read_mem", "", err))
	}
	if errno != 0 {
		L.PushNil()
		L.PushInteger(int64(errno))
		return 2, nil
	}
	L.PushString(string(data))
	return 1, nil
}
