package agentclient_test

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/provium/provium/internal/agentclient"
	"github.com/provium/provium/internal/proto"
)

func cstr(s string) []byte { return append([]byte(s), 0) }

func timespec(d time.Duration) []byte {
	b := make([]byte, 16)
	binary.LittleEndian.PutUint64(b, uint64(d/time.Second))
	binary.LittleEndian.PutUint64(b[8:], uint64(d%time.Second))
	return b
}

// openat opens path read-only through a raw syscall and returns the fd.
func openat(t *testing.T, c *agentclient.Client, path string) int {
	t.Helper()
	res, err := c.Syscall(ctx(t), proto.SyscallReq{Nr: unix.SYS_OPENAT,
		Args: [6]uint64{uint64(0xffffffffffffff9c) /* AT_FDCWD */, 0, unix.O_RDONLY | unix.O_CLOEXEC},
		Bufs: [][]byte{cstr(path)}, Ptrs: []int{1}})
	if err != nil || res.Ret < 0 {
		t.Fatalf("openat %s: %+v %v", path, res, err)
	}
	return int(res.Ret)
}

func TestSyscallBasics(t *testing.T) {
	c := newAgent(t)
	res, err := c.Syscall(ctx(t), proto.SyscallReq{Nr: unix.SYS_GETPID})
	if err != nil || res.Ret != int64(os.Getpid()) || res.Errno != 0 || len(res.OutBufs) != 0 {
		t.Fatalf("getpid: %+v %v", res, err)
	}
	// Every call runs on a thread of its own, which ends with the call.
	tid1, _ := c.Syscall(ctx(t), proto.SyscallReq{Nr: unix.SYS_GETTID})
	tid2, _ := c.Syscall(ctx(t), proto.SyscallReq{Nr: unix.SYS_GETTID})
	if tid1.Ret <= 0 || tid2.Ret <= 0 || tid1.Ret == tid2.Ret {
		t.Fatalf("two calls ran on threads %d and %d", tid1.Ret, tid2.Ret)
	}
	// The runtime parks the main thread for good instead of ending it.
	task := fmt.Sprintf("/proc/self/task/%d", tid1.Ret)
	for deadline := time.Now().Add(10 * time.Second); tid1.Ret != int64(os.Getpid()); time.Sleep(10 * time.Millisecond) {
		if _, err := os.Stat(task); errors.Is(err, os.ErrNotExist) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("thread %d of a finished call still runs (pid %d)", tid1.Ret, os.Getpid())
		}
	}
	res, err = c.Syscall(ctx(t), proto.SyscallReq{Nr: unix.SYS_CLOSE, Args: [6]uint64{1 << 30}})
	if err != nil || res.Ret != -1 || res.Errno != int(unix.EBADF) {
		t.Fatalf("close(bad): %+v %v", res, err)
	}
	// Bad buffer references are refused before the call.
	for _, req := range []proto.SyscallReq{
		{Nr: unix.SYS_GETPID, Ptrs: []int{0}},
		{Nr: unix.SYS_GETPID, Bufs: [][]byte{{1}}, Ptrs: []int{6}},
		{Nr: unix.SYS_GETPID, Bufs: [][]byte{make([]byte, 8)}, Nested: []proto.SyscallNested{{Parent: 0, Child: 1}}},
		{Nr: unix.SYS_GETPID, Bufs: [][]byte{make([]byte, 8)}, Nested: []proto.SyscallNested{{Parent: 0, Child: 0, Offset: 1}}},
	} {
		if _, err := c.Syscall(ctx(t), req); err == nil {
			t.Errorf("accepted %+v", req)
		}
	}
}

// TestSyscallFdsOutliveTheCall: fds are process-wide, so one opened by a
// call stays usable by the next although each runs on its own thread.
func TestSyscallFdsOutliveTheCall(t *testing.T) {
	c := newAgent(t)
	path := filepath.Join(t.TempDir(), "f")
	if err := os.WriteFile(path, []byte("hello world"), 0o644); err != nil {
		t.Fatal(err)
	}
	fd := openat(t, c, path)
	res, err := c.Syscall(ctx(t), proto.SyscallReq{Nr: unix.SYS_READ, Args: [6]uint64{uint64(fd), 0, 5},
		Bufs: [][]byte{make([]byte, 16)}, Ptrs: []int{1}})
	if err != nil || res.Ret != 5 || string(res.OutBufs[0][:5]) != "hello" || len(res.OutBufs[0]) != 16 {
		t.Fatalf("read: %+v %v", res, err)
	}
	// readv with a nested iovec array: bufs[0] holds two iovecs pointing at
	// bufs[1] and bufs[2]; the fd's offset carried over from the read.
	iov := make([]byte, 32)
	binary.LittleEndian.PutUint64(iov[8:], 3)
	binary.LittleEndian.PutUint64(iov[24:], 10)
	res, err = c.Syscall(ctx(t), proto.SyscallReq{Nr: unix.SYS_READV, Args: [6]uint64{uint64(fd), 0, 2},
		Bufs: [][]byte{iov, make([]byte, 3), make([]byte, 10)}, Ptrs: []int{1},
		Nested: []proto.SyscallNested{{Parent: 0, Child: 1, Offset: 0}, {Parent: 0, Child: 2, Offset: 16}}})
	if err != nil || res.Ret != 6 || string(res.OutBufs[1]) != " wo" || !strings.HasPrefix(string(res.OutBufs[2]), "rld") {
		t.Fatalf("readv: %+v %v", res, err)
	}
	// The iovec buffer comes back with the addresses written into it.
	a1 := binary.LittleEndian.Uint64(res.OutBufs[0])
	a2 := binary.LittleEndian.Uint64(res.OutBufs[0][16:])
	if a1 == 0 || a2 <= a1 {
		t.Fatalf("nested addresses %#x %#x", a1, a2)
	}
	if res, err := c.Syscall(ctx(t), proto.SyscallReq{Nr: unix.SYS_CLOSE, Args: [6]uint64{uint64(fd)}}); err != nil || res.Ret != 0 {
		t.Fatalf("close: %+v %v", res, err)
	}
}

func TestIoctlAndReadMem(t *testing.T) {
	c := newAgent(t)
	// A pipe made in the agent, filled with 3 bytes; FIONREAD reports them.
	res, err := c.Syscall(ctx(t), proto.SyscallReq{Nr: unix.SYS_PIPE2, Args: [6]uint64{0, unix.O_CLOEXEC}, Bufs: [][]byte{make([]byte, 8)}, Ptrs: []int{0}})
	if err != nil || res.Ret != 0 {
		t.Fatalf("pipe2: %+v %v", res, err)
	}
	rfd := binary.LittleEndian.Uint32(res.OutBufs[0])
	wfd := binary.LittleEndian.Uint32(res.OutBufs[0][4:])
	defer c.Syscall(ctx(t), proto.SyscallReq{Nr: unix.SYS_CLOSE, Args: [6]uint64{uint64(rfd)}})
	defer c.Syscall(ctx(t), proto.SyscallReq{Nr: unix.SYS_CLOSE, Args: [6]uint64{uint64(wfd)}})
	if res, err := c.Syscall(ctx(t), proto.SyscallReq{Nr: unix.SYS_WRITE, Args: [6]uint64{uint64(wfd), 0, 3}, Bufs: [][]byte{[]byte("abc")}, Ptrs: []int{1}}); err != nil || res.Ret != 3 {
		t.Fatalf("write: %+v %v", res, err)
	}
	io, err := c.Ioctl(ctx(t), proto.IoctlReq{Fd: int(rfd), Cmd: unix.TIOCINQ, Data: make([]byte, 4)})
	if err != nil || io.Ret != 0 || io.Errno != 0 || binary.LittleEndian.Uint32(io.OutData) != 3 {
		t.Fatalf("FIONREAD: %+v %v", io, err)
	}
	io, err = c.Ioctl(ctx(t), proto.IoctlReq{Fd: 1 << 30, Cmd: unix.TIOCINQ, Data: make([]byte, 4)})
	if err != nil || io.Ret != -1 || io.Errno != int(unix.EBADF) {
		t.Fatalf("ioctl on bad fd: %+v %v", io, err)
	}
	// ptr_offsets link extra buffers into data (checked on the way back).
	io, err = c.Ioctl(ctx(t), proto.IoctlReq{Fd: int(rfd), Cmd: unix.TIOCINQ, Data: make([]byte, 16), Bufs: [][]byte{[]byte("zz")}, PtrOffsets: []int{8}})
	if err != nil || binary.LittleEndian.Uint64(io.OutData[8:]) == 0 || string(io.OutBufs[0]) != "zz" {
		t.Fatalf("ptr_offsets: %+v %v", io, err)
	}

	// The agent runs in this process here, so it can read our memory.
	secret := []byte("provium-read-mem-probe")
	data, errno, err := c.ReadMem(ctx(t), uint64(uintptr(unsafe.Pointer(&secret[0]))), len(secret))
	if err != nil || errno != 0 || string(data) != string(secret) {
		t.Fatalf("read_mem: %q %v %v", data, errno, err)
	}
	if _, errno, err := c.ReadMem(ctx(t), 0, 16); err != nil || errno == 0 {
		t.Fatalf("read_mem at 0: errno %v err %v", errno, err)
	}
	if _, _, err := c.ReadMem(ctx(t), 0, proto.MaxReadMem+1); err == nil {
		t.Fatal("oversized read_mem accepted")
	}
}

func TestSyscallAsync(t *testing.T) {
	c := newAgent(t)
	sleep := proto.SyscallReq{Nr: unix.SYS_NANOSLEEP, Bufs: [][]byte{timespec(400 * time.Millisecond)}, Ptrs: []int{0}}
	p, err := c.SyscallAsync(ctx(t), sleep)
	if err != nil {
		t.Fatal(err)
	}
	if done, err := p.Done(ctx(t)); err != nil || done {
		t.Fatalf("done right away: %v %v", done, err)
	}
	// The dedicated thread stays free meanwhile.
	if res, err := c.Syscall(ctx(t), proto.SyscallReq{Nr: unix.SYS_GETPID}); err != nil || res.Ret != int64(os.Getpid()) {
		t.Fatalf("getpid during async: %+v %v", res, err)
	}
	if _, err := p.Await(ctx(t), 10*time.Millisecond); !errors.Is(err, agentclient.ErrAwaitTimeout) {
		t.Fatalf("short await: %v", err)
	}
	res, err := p.Await(ctx(t), 0)
	if err != nil || res.Ret != 0 || res.Errno != 0 {
		t.Fatalf("await: %+v %v", res, err)
	}
	if done, err := p.Done(ctx(t)); err != nil || !done {
		t.Fatalf("done after await: %v %v", done, err)
	}
	if _, err := p.Await(ctx(t), 0); err == nil || !strings.Contains(err.Error(), "already awaited") {
		t.Fatalf("second await: %v", err)
	}

	// Two blocking reads on their own threads are independent: the second
	// completes while the first still blocks.
	pipe := func() (r, w uint64) {
		res, err := c.Syscall(ctx(t), proto.SyscallReq{Nr: unix.SYS_PIPE2, Args: [6]uint64{0, unix.O_CLOEXEC}, Bufs: [][]byte{make([]byte, 8)}, Ptrs: []int{0}})
		if err != nil || res.Ret != 0 {
			t.Fatalf("pipe2: %+v %v", res, err)
		}
		return uint64(binary.LittleEndian.Uint32(res.OutBufs[0])), uint64(binary.LittleEndian.Uint32(res.OutBufs[0][4:]))
	}
	write := func(fd uint64, s string) {
		if res, err := c.Syscall(ctx(t), proto.SyscallReq{Nr: unix.SYS_WRITE, Args: [6]uint64{fd, 0, uint64(len(s))}, Bufs: [][]byte{[]byte(s)}, Ptrs: []int{1}}); err != nil || res.Ret != int64(len(s)) {
			t.Fatalf("write: %+v %v", res, err)
		}
	}
	r1, w1 := pipe()
	r2, w2 := pipe()
	read := func(fd uint64) *agentclient.Pending {
		p, err := c.SyscallAsync(ctx(t), proto.SyscallReq{Nr: unix.SYS_READ, Args: [6]uint64{fd, 0, 8}, Bufs: [][]byte{make([]byte, 8)}, Ptrs: []int{1}})
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	p1, p2 := read(r1), read(r2)
	write(w2, "two")
	res, err = p2.Await(ctx(t), 0)
	if err != nil || res.Ret != 3 || string(res.OutBufs[0][:3]) != "two" {
		t.Fatalf("second read: %+v %v", res, err)
	}
	if done, _ := p1.Done(ctx(t)); done {
		t.Fatal("first read finished without data")
	}
	write(w1, "one")
	if res, err := p1.Await(ctx(t), 0); err != nil || string(res.OutBufs[0][:3]) != "one" {
		t.Fatalf("first read: %+v %v", res, err)
	}
	for _, fd := range []uint64{r1, w1, r2, w2} {
		c.Syscall(ctx(t), proto.SyscallReq{Nr: unix.SYS_CLOSE, Args: [6]uint64{fd}})
	}
}

// sigUSR2 is SIGUSR2's bit in a kernel sigset_t.
const sigUSR2 = 1 << (unix.SIGUSR2 - 1)

// blockUSR2 blocks SIGUSR2 on the calling thread; readMask reads the
// calling thread's signal mask (from rt_sigprocmask's old set).
var (
	blockUSR2 = proto.SyscallReq{Nr: unix.SYS_RT_SIGPROCMASK, Args: [6]uint64{unix.SIG_BLOCK, 0, 0, 8},
		Bufs: [][]byte{binary.LittleEndian.AppendUint64(nil, sigUSR2)}, Ptrs: []int{1}}
	readMask = proto.SyscallReq{Nr: unix.SYS_RT_SIGPROCMASK, Args: [6]uint64{unix.SIG_BLOCK, 0, 0, 8},
		Bufs: [][]byte{make([]byte, 8)}, Ptrs: []int{2}}
)

func maskOf(t *testing.T, what string, r proto.SyscallResult) uint64 {
	t.Helper()
	if r.Ret != 0 || len(r.OutBufs) != 1 || len(r.OutBufs[0]) != 8 {
		t.Fatalf("%s: rt_sigprocmask: %+v", what, r)
	}
	return binary.LittleEndian.Uint64(r.OutBufs[0])
}

// TestSyscallThreadStateEndsWithTheCall: a per-thread change one call
// makes (here its signal mask) is gone for the next call, as upstream's
// agent serves each call on a thread of its own; within one batch the
// items share a thread, so a later item sees an earlier item's change.
func TestSyscallThreadStateEndsWithTheCall(t *testing.T) {
	c := newAgent(t)
	call := func(what string, req proto.SyscallReq) proto.SyscallResult {
		t.Helper()
		r, err := c.Syscall(ctx(t), req)
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		return r
	}
	if m := maskOf(t, "first read", call("read mask", readMask)); m&sigUSR2 != 0 {
		t.Fatalf("SIGUSR2 blocked before the test (mask %#x)", m)
	}
	if r := call("block SIGUSR2", blockUSR2); r.Ret != 0 {
		t.Fatalf("block SIGUSR2: %+v", r)
	}
	if m := maskOf(t, "next call", call("read mask", readMask)); m&sigUSR2 != 0 {
		t.Fatalf("the next call still has SIGUSR2 blocked (mask %#x)", m)
	}

	var b agentclient.Batch
	b.Syscall(readMask)
	b.Syscall(blockUSR2)
	b.Syscall(readMask)
	res, err := c.Batch(ctx(t), &b)
	if err != nil || len(res) != 3 {
		t.Fatalf("batch: %+v %v", res, err)
	}
	got := make([]uint64, 3)
	for i, r := range res {
		v, ok := r.Value.(proto.SyscallResult)
		if !ok {
			t.Fatalf("batch item %d: %+v", i+1, r)
		}
		if i != 1 {
			got[i] = maskOf(t, fmt.Sprintf("batch item %d", i+1), v)
		}
	}
	if got[0]&sigUSR2 != 0 || got[2]&sigUSR2 == 0 {
		t.Fatalf("batch masks %#x then %#x: want SIGUSR2 unblocked, then blocked by item 2", got[0], got[2])
	}
	if m := maskOf(t, "after the batch", call("read mask", readMask)); m&sigUSR2 != 0 {
		t.Fatalf("the call after the batch has SIGUSR2 blocked (mask %#x)", m)
	}
}

func TestBatchSyscall(t *testing.T) {
	c := newAgent(t)
	var b agentclient.Batch
	b.Syscall(proto.SyscallReq{Nr: unix.SYS_GETPID})
	b.Syscall(proto.SyscallReq{Nr: unix.SYS_CLOSE, Args: [6]uint64{1 << 30}})
	res, err := c.Batch(ctx(t), &b)
	if err != nil || len(res) != 2 {
		t.Fatalf("batch: %+v %v", res, err)
	}
	if r, ok := res[0].Value.(proto.SyscallResult); !ok || r.Ret != int64(os.Getpid()) {
		t.Fatalf("getpid in batch: %+v", res[0])
	}
	if r, ok := res[1].Value.(proto.SyscallResult); !ok || r.Ret != -1 || r.Errno != int(unix.EBADF) {
		t.Fatalf("close in batch: %+v", res[1])
	}
}

// TestBlockingSyscallIsAbandonedOnCancel: a call that blocks (a read of
// an empty pipe runs on any thread, a 3 s ppoll on a call thread) gives up
// when the host cancels it, and the session goes on.
func TestBlockingSyscallIsAbandonedOnCancel(t *testing.T) {
	c := newAgent(t)
	res, err := c.Syscall(ctx(t), proto.SyscallReq{Nr: unix.SYS_PIPE2, Args: [6]uint64{0, unix.O_CLOEXEC}, Bufs: [][]byte{make([]byte, 8)}, Ptrs: []int{0}})
	if err != nil || res.Ret != 0 {
		t.Fatalf("pipe2: %+v %v", res, err)
	}
	r, w := uint64(binary.LittleEndian.Uint32(res.OutBufs[0])), uint64(binary.LittleEndian.Uint32(res.OutBufs[0][4:]))
	for _, req := range []proto.SyscallReq{
		{Nr: unix.SYS_READ, Args: [6]uint64{r, 0, 1}, Bufs: [][]byte{make([]byte, 1)}, Ptrs: []int{1}},
		{Nr: unix.SYS_PPOLL, Args: [6]uint64{0, 0, 0, 0, 8}, Bufs: [][]byte{timespec(3 * time.Second)}, Ptrs: []int{2}},
	} {
		short, cancel := context.WithTimeout(ctx(t), 300*time.Millisecond)
		_, err := c.Syscall(short, req)
		cancel()
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("syscall %d: %v, want the deadline", req.Nr, err)
		}
	}
	if res, err := c.Syscall(ctx(t), proto.SyscallReq{Nr: unix.SYS_GETPID}); err != nil || res.Ret != int64(os.Getpid()) {
		t.Fatalf("getpid after: %+v %v", res, err)
	}
	// Let the abandoned read end, then close the pipe.
	if res, err := c.Syscall(ctx(t), proto.SyscallReq{Nr: unix.SYS_WRITE, Args: [6]uint64{w, 0, 1}, Bufs: [][]byte{{'x'}}, Ptrs: []int{1}}); err != nil || res.Ret != 1 {
		t.Fatalf("write: %+v %v", res, err)
	}
	for _, fd := range []uint64{r, w} {
		c.Syscall(ctx(t), proto.SyscallReq{Nr: unix.SYS_CLOSE, Args: [6]uint64{fd}})
	}
}
