package agent

import (
	"context"
	"fmt"
	"runtime"
	"sync"

	"golang.org/x/sys/unix"

	"github.com/provium/provium/internal/proto"
)

// Call threads. Upstream's agent serves each op on a thread of its own that
// ends with the op (a batch: all its items on one thread, in order), and
// real suites depend on it: per-thread state a raw syscall changes
// (credentials, capabilities, signal mask, impersonation, per-thread
// namespaces) lasts for the call, or for the batch, and never reaches a
// later one, while process-wide state (fds, mounts, cwd) stays. So each
// agent syscall, ioctl and batch runs on a goroutine that locks its OS
// thread and never unlocks it: the runtime ends the thread with the
// goroutine. The thread it locks is clean because Go leaves no per-thread
// state behind on the threads it shares.
//
// Creating and ending a thread costs far more than the syscall under TCG
// (in the guest: ~0.2–1 ms against ~20–80 µs for handing the call to a
// thread that lives on; B3's syscall(getpid) went from ~1.1–2 ms to
// ~4.8 ms on a loaded host). So:
//   - Calls that cannot change the calling thread's own state (a read, an
//     open, getpid: threadNeutral) need no thread of their own. They run
//     on a goroutine of their own on any runtime thread, which is as clean
//     as a new one (Go changes no per-thread state on threads it shares),
//     so they behave exactly as on a thread of their own. Every other
//     syscall, every ioctl (a driver may change the caller's state: KACS
//     impersonates the calling thread) and every batch holding one runs
//     on a call thread.
//   - A session keeps call threads started ahead of time, and a thread
//     whose call is done stays parked (running nothing else: it is locked)
//     until the reply is written, then ends. Both happen in afterReply,
//     while the guest waits for the host's next request.

// threadNeutral lists the syscalls (x86_64 numbers) that change no state
// of the calling thread: file, fd, socket and memory operations act on
// the process's tables, the rest only read. Per-thread namespaces,
// credentials, signal state, scheduling, prctl, keyrings, seccomp and
// thread exit are all left out, as is everything not listed.
var threadNeutral = map[int64]bool{}

func init() {
	for _, nr := range []int{
		unix.SYS_READ, unix.SYS_WRITE, unix.SYS_OPEN, unix.SYS_CLOSE, unix.SYS_STAT, unix.SYS_FSTAT,
		unix.SYS_LSTAT, unix.SYS_POLL, unix.SYS_LSEEK, unix.SYS_PREAD64, unix.SYS_PWRITE64, unix.SYS_READV,
		unix.SYS_WRITEV, unix.SYS_ACCESS, unix.SYS_PIPE, unix.SYS_PIPE2, unix.SYS_DUP, unix.SYS_DUP2,
		unix.SYS_DUP3, unix.SYS_NANOSLEEP, unix.SYS_CLOCK_NANOSLEEP, unix.SYS_GETPID, unix.SYS_GETPPID,
		unix.SYS_GETUID, unix.SYS_GETGID, unix.SYS_GETEUID, unix.SYS_GETEGID, unix.SYS_GETGROUPS,
		unix.SYS_GETRESUID, unix.SYS_GETRESGID, unix.SYS_GETPGRP, unix.SYS_GETPGID, unix.SYS_GETSID,
		unix.SYS_UNAME, unix.SYS_FCNTL, unix.SYS_FLOCK, unix.SYS_FSYNC, unix.SYS_FDATASYNC, unix.SYS_SYNC,
		unix.SYS_SYNCFS, unix.SYS_TRUNCATE, unix.SYS_FTRUNCATE, unix.SYS_FALLOCATE, unix.SYS_GETDENTS64,
		unix.SYS_GETCWD, unix.SYS_MKDIR, unix.SYS_RMDIR, unix.SYS_UNLINK, unix.SYS_RENAME, unix.SYS_LINK,
		unix.SYS_SYMLINK, unix.SYS_READLINK, unix.SYS_CHMOD, unix.SYS_FCHMOD, unix.SYS_CHOWN,
		unix.SYS_FCHOWN, unix.SYS_LCHOWN, unix.SYS_STATFS, unix.SYS_FSTATFS, unix.SYS_OPENAT,
		unix.SYS_MKDIRAT, unix.SYS_FCHOWNAT, unix.SYS_NEWFSTATAT, unix.SYS_UNLINKAT, unix.SYS_RENAMEAT,
		unix.SYS_RENAMEAT2, unix.SYS_LINKAT, unix.SYS_SYMLINKAT, unix.SYS_READLINKAT, unix.SYS_FCHMODAT,
		unix.SYS_FACCESSAT, unix.SYS_FACCESSAT2, unix.SYS_STATX, unix.SYS_GETXATTR, unix.SYS_LGETXATTR,
		unix.SYS_FGETXATTR, unix.SYS_LISTXATTR, unix.SYS_LLISTXATTR, unix.SYS_FLISTXATTR,
		unix.SYS_CLOCK_GETTIME, unix.SYS_GETTIMEOFDAY, unix.SYS_GETRANDOM, unix.SYS_SYSINFO,
		unix.SYS_MEMFD_CREATE, unix.SYS_EVENTFD2, unix.SYS_SOCKET, unix.SYS_SOCKETPAIR, unix.SYS_BIND,
		unix.SYS_LISTEN, unix.SYS_CONNECT, unix.SYS_ACCEPT4, unix.SYS_SENDTO, unix.SYS_RECVFROM,
		unix.SYS_SENDMSG, unix.SYS_RECVMSG, unix.SYS_SHUTDOWN, unix.SYS_GETSOCKNAME, unix.SYS_GETPEERNAME,
		unix.SYS_GETSOCKOPT, unix.SYS_SETSOCKOPT, unix.SYS_SENDFILE, unix.SYS_SPLICE, unix.SYS_TEE,
		unix.SYS_COPY_FILE_RANGE,
	} {
		threadNeutral[int64(nr)] = true
	}
}

// batchNeedsCallThread reports whether an agent batch holds an op that may
// change the state of the thread it runs on.
func batchNeedsCallThread(r proto.BatchReq) bool {
	for _, op := range r.Ops {
		switch op.Op {
		case proto.OpIoctl:
			return true
		case proto.OpSyscall:
			var sr proto.SyscallReq
			if decodeBody(op, &sr) != nil || !threadNeutral[sr.Nr] {
				return true
			}
		}
	}
	return false
}

// callThreads is the number of call threads a session keeps ready.
const callThreads = 2

// callThreadKey marks a context whose op already runs on a call thread
// (the items of a batch), so its syscalls run inline on that thread.
type callThreadKey struct{}

// onCallThreadOps are the agent ops that run on a call thread.
var onCallThreadOps = map[string]bool{proto.OpSyscall: true, proto.OpIoctl: true, proto.OpBatch: true}

// threadPool is a session's call threads: ready ones and spent ones.
type threadPool struct {
	mu     sync.Mutex
	ready  []chan func()   // each served by one locked goroutine, for one job; nil ends it unused
	spent  []chan struct{} // threads whose call is done, ending once closed
	used   bool            // a call ran on a thread of the pool's: keep some ready
	closed bool
}

// take returns a ready thread's job channel, or nil when none is ready.
func (p *threadPool) take() chan<- func() {
	if p == nil {
		return nil
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	n := len(p.ready)
	if n == 0 {
		return nil
	}
	t := p.ready[n-1]
	p.ready = p.ready[:n-1]
	return t
}

// spend registers the calling call thread as done; it ends once the
// returned channel is closed.
func (p *threadPool) spend() <-chan struct{} {
	release := make(chan struct{})
	p.mu.Lock()
	defer p.mu.Unlock()
	p.used = true
	if p.closed {
		close(release)
		return release
	}
	p.spent = append(p.spent, release)
	return release
}

// spent1 ends a call on its call thread: it registers the thread as spent
// before the answer can reach the reply, answers, and parks until released.
func (p *threadPool) spent1(done chan<- error, err error) {
	release := p.spend()
	done <- err
	<-release
}

// release ends the spent threads and, once the session used call threads,
// starts new ones until callThreads are ready.
func (p *threadPool) release() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.used {
		return
	}
	for _, r := range p.spent {
		close(r)
	}
	p.spent = nil
	for !p.closed && len(p.ready) < callThreads {
		jobs := make(chan func(), 1)
		p.ready = append(p.ready, jobs)
		go func() {
			runtime.LockOSThread() // never unlocked: the thread ends with us
			if f := <-jobs; f != nil {
				f()
			}
		}()
	}
}

// close ends every thread of the pool once its call (if any) is done;
// later calls start threads of their own, which end right after the call.
func (p *threadPool) close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.closed = true
	for _, r := range p.spent {
		close(r)
	}
	for _, t := range p.ready {
		t <- nil
	}
	p.spent, p.ready = nil, nil
}

// afterReply ends spent call threads and readies new ones once the reply
// to an op that used one is written.
func (s *Server) afterReply(sess *session, op string) {
	if s.wp == nil && onCallThreadOps[op] {
		sess.threads.release()
	}
}

// onCallThread runs f on a call thread of pool (a new one when none is
// ready); with a nil pool, on a goroutine of its own on any runtime thread
// (for calls that change no thread state). Inside a batch's call thread f
// runs inline. Otherwise a cancelled ctx stops the wait unless wait is set
// (a raw syscall cannot be abandoned: it finishes and its result is
// dropped). A panic in f is returned as an error: the agent must stay up.
func onCallThread(ctx context.Context, pool *threadPool, wait bool, f func(ctx context.Context)) error {
	if ctx.Value(callThreadKey{}) != nil {
		f(ctx)
		return nil
	}
	done := make(chan error, 1)
	call := func(ctx context.Context) (err error) {
		defer func() {
			if r := recover(); r != nil {
				err = fmt.Errorf("agent internal error: %v", r)
			}
		}()
		f(ctx)
		return nil
	}
	switch t := pool.take(); {
	case pool == nil:
		go func() { done <- call(ctx) }()
	case t != nil:
		t <- func() { pool.spent1(done, call(context.WithValue(ctx, callThreadKey{}, true))) }
	default:
		go func() {
			runtime.LockOSThread() // never unlocked: the thread ends with us
			pool.spent1(done, call(context.WithValue(ctx, callThreadKey{}, true)))
		}()
	}
	if wait {
		return <-done
	}
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}
