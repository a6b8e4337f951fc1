package agent

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"runtime"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/provium/provium/internal/proto"
)

func (s *Server) syscall(ctx context.Context, sess *session, r proto.SyscallReq) (proto.SyscallResult, error) {
	if s.wp != nil {
		return s.wp.syscall(ctx, r, false)
	}
	pool := sess.threads
	if threadNeutral[r.Nr] {
		pool = nil // any thread serves; see callthread.go
	}
	var res proto.SyscallResult
	var err error
	if terr := onCallThread(ctx, pool, false, func(context.Context) { res, err = rawSyscall(r) }); terr != nil {
		return proto.SyscallResult{}, terr
	}
	return res, err
}

func (s *Server) ioctl(ctx context.Context, sess *session, r proto.IoctlReq) (proto.IoctlResp, error) {
	sr, err := ioctlRequest(r)
	if err != nil {
		return proto.IoctlResp{}, err
	}
	res, err := s.syscall(ctx, sess, sr)
	if err != nil {
		return proto.IoctlResp{}, err
	}
	out := proto.IoctlResp{Ret: res.Ret, Errno: res.Errno, OutBufs: [][]byte{}}
	bufs := res.OutBufs
	if r.Data != nil {
		out.OutData, bufs = bufs[0], bufs[1:]
	}
	if out.OutData == nil {
		out.OutData = []byte{}
	}
	out.OutBufs = append(out.OutBufs, bufs...)
	return out, nil
}

// ioctlRequest expresses an ioctl as a raw syscall: data (when given) is
// buffer 0 in arg slot 2, extra buffers follow and are linked into it.
func ioctlRequest(r proto.IoctlReq) (proto.SyscallReq, error) {
	sr := proto.SyscallReq{Nr: unix.SYS_IOCTL}
	sr.Args[0] = uint64(int64(r.Fd))
	sr.Args[1] = r.Cmd
	if len(r.PtrOffsets) > len(r.Bufs) {
		return sr, &proto.Error{Message: fmt.Sprintf("ioctl: %d ptr_offsets for %d bufs", len(r.PtrOffsets), len(r.Bufs))}
	}
	if r.Data == nil {
		if len(r.PtrOffsets) > 0 {
			return sr, &proto.Error{Message: "ioctl: ptr_offsets need data to write the addresses into"}
		}
		sr.Bufs = r.Bufs
		return sr, nil
	}
	sr.Bufs = append([][]byte{r.Data}, r.Bufs...)
	sr.Ptrs = []int{2}
	for i, off := range r.PtrOffsets {
		sr.Nested = append(sr.Nested, proto.SyscallNested{Parent: 0, Child: i + 1, Offset: off})
	}
	return sr, nil
}

// rawSyscall executes one system call on the calling thread. The buffers
// live in an anonymous mapping outside the Go heap for the duration of the
// call, so nothing the kernel reads or writes can be moved or collected.
func rawSyscall(r proto.SyscallReq) (proto.SyscallResult, error) {
	if err := validateSyscall(r); err != nil {
		return proto.SyscallResult{}, err
	}
	offs := make([]int, len(r.Bufs))
	total := 0
	for i, b := range r.Bufs {
		offs[i] = total
		total += (max(len(b), 1) + 15) &^ 15
	}
	page := os.Getpagesize()
	size := (max(total, 1) + page - 1) / page * page
	mem, err := unix.Mmap(-1, 0, size, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS)
	if err != nil {
		return proto.SyscallResult{}, fmt.Errorf("syscall: map buffers: %w", err)
	}
	defer unix.Munmap(mem)
	base := uint64(uintptr(unsafe.Pointer(&mem[0])))
	for i, b := range r.Bufs {
		copy(mem[offs[i]:], b)
	}
	args := r.Args
	for i, slot := range r.Ptrs {
		args[slot] = base + uint64(offs[i])
	}
	for _, n := range r.Nested {
		binary.LittleEndian.PutUint64(mem[offs[n.Parent]+n.Offset:], base+uint64(offs[n.Child]))
	}
	r1, _, errno := unix.Syscall6(uintptr(r.Nr), uintptr(args[0]), uintptr(args[1]), uintptr(args[2]),
		uintptr(args[3]), uintptr(args[4]), uintptr(args[5]))
	res := proto.SyscallResult{Ret: int64(r1), OutBufs: make([][]byte, len(r.Bufs))}
	if errno != 0 {
		res.Ret, res.Errno = -1, int(errno)
	}
	for i, b := range r.Bufs {
		res.OutBufs[i] = append([]byte{}, mem[offs[i]:offs[i]+len(b)]...)
	}
	return res, nil
}

// readMem reads the agent's own memory through /proc/self/mem, so an
// unmapped address is an errno rather than a crash.
func readMem(r proto.ReadMemReq) (proto.ReadMemResp, error) {
	if r.Len < 0 || r.Len > proto.MaxReadMem {
		return proto.ReadMemResp{}, &proto.Error{Message: fmt.Sprintf("read_mem: len %d out of range (0..%d)", r.Len, proto.MaxReadMem)}
	}
	fd, err := unix.Open("/proc/self/mem", unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return proto.ReadMemResp{}, fmt.Errorf("read_mem: open /proc/self/mem: %w", err)
	}
	defer unix.Close(fd)
	buf := make([]byte, r.Len)
	got := 0
	for got < len(buf) {
		n, err := unix.Pread(fd, buf[got:], int64(r.Addr)+int64(got))
		if err == unix.EINTR {
			continue
		}
		var errno unix.Errno
		if errors.As(err, &errno) {
			return proto.ReadMemResp{Errno: int(errno)}, nil
		}
		if err != nil {
			return proto.ReadMemResp{}, fmt.Errorf("read_mem: %w", err)
		}
		if n == 0 {
			return proto.ReadMemResp{Errno: int(unix.EIO)}, nil
		}
		got += n
	}
	return proto.ReadMemResp{Data: buf}, nil
}

// pendingCall is one syscall_async call.
type pendingCall struct {
	done    chan struct{}
	res     proto.SyscallResult
	err     error
	awaited bool // guarded by session.mu
}

// startAsync runs r on a fresh thread that ends with the call: a locked
// agent thread, or a thread of the worker's executor.
func (ss *session) startAsync(r proto.SyscallReq, wp *workerProc) (proto.PendingResp, error) {
	p := &pendingCall{done: make(chan struct{})}
	ss.mu.Lock()
	if ss.files == nil {
		ss.mu.Unlock()
		return proto.PendingResp{}, errSessionClosed
	}
	ss.next++
	id := ss.next
	ss.pending[id] = p
	ss.mu.Unlock()
	// Owned by the pending entry; it ends when the syscall returns (a
	// blocking call outliving the session ends with the agent process).
	go func() {
		defer close(p.done)
		if wp != nil {
			p.res, p.err = wp.syscall(context.Background(), r, true)
			return
		}
		runtime.LockOSThread() // never unlocked: the thread exits with us
		p.res, p.err = rawSyscall(r)
	}()
	return proto.PendingResp{ID: id}, nil
}

func (ss *session) pendingCall(id uint64) (*pendingCall, error) {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	p := ss.pending[id]
	if p == nil {
		return nil, &proto.Error{Message: fmt.Sprintf("unknown pending call %d", id)}
	}
	return p, nil
}

func (ss *session) await(ctx context.Context, r proto.AwaitReq) (proto.AwaitResp, error) {
	p, err := ss.pendingCall(r.ID)
	if err != nil {
		return proto.AwaitResp{}, err
	}
	var timeout <-chan time.Time
	if r.TimeoutMs > 0 {
		t := time.NewTimer(time.Duration(r.TimeoutMs) * time.Millisecond)
		defer t.Stop()
		timeout = t.C
	}
	select {
	case <-p.done:
	case <-timeout:
		return proto.AwaitResp{}, nil
	case <-ctx.Done():
		return proto.AwaitResp{}, ctx.Err()
	}
	ss.mu.Lock()
	already := p.awaited
	p.awaited = true
	ss.mu.Unlock()
	if already {
		return proto.AwaitResp{}, &proto.Error{Message: "handle already awaited"}
	}
	if p.err != nil {
		return proto.AwaitResp{}, p.err
	}
	res := p.res
	return proto.AwaitResp{Done: true, Result: &res}, nil
}

func (ss *session) pendingDone(id uint64) (proto.DoneResp, error) {
	p, err := ss.pendingCall(id)
	if err != nil {
		return proto.DoneResp{}, err
	}
	select {
	case <-p.done:
		return proto.DoneResp{Done: true}, nil
	default:
		return proto.DoneResp{}, nil
	}
}
