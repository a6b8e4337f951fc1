package agent

import (
	"context"
	"runtime"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// noThreadsLeft returns a check that every goroutine started since is gone
// (call threads end a moment after their pool lets them go).
func noThreadsLeft(t *testing.T) func() {
	before := runtime.NumGoroutine()
	return func() {
		t.Helper()
		for deadline := time.Now().Add(10 * time.Second); runtime.NumGoroutine() > before; time.Sleep(10 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("goroutines: %d before, %d after", before, runtime.NumGoroutine())
			}
		}
	}
}

func TestCallThreadPanicIsAnError(t *testing.T) {
	defer noThreadsLeft(t)()
	p := &threadPool{}
	defer p.close()
	err := onCallThread(context.Background(), p, true, func(context.Context) { panic("boom") })
	if err == nil || !strings.Contains(err.Error(), "agent internal error: boom") {
		t.Fatalf("panic: %v", err)
	}
}

// A call made from a call thread (a batch's items) runs inline on it; a
// new top-level call gets another thread, ready or new.
func TestCallThreadNesting(t *testing.T) {
	defer noThreadsLeft(t)()
	p := &threadPool{}
	defer p.close()
	var outer, inner, next int
	err := onCallThread(context.Background(), p, true, func(ctx context.Context) {
		outer = unix.Gettid()
		if err := onCallThread(ctx, p, false, func(context.Context) { inner = unix.Gettid() }); err != nil {
			t.Error(err)
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	p.release()
	if err := onCallThread(context.Background(), p, false, func(context.Context) { next = unix.Gettid() }); err != nil {
		t.Fatal(err)
	}
	if outer != inner || next == outer {
		t.Fatalf("threads: outer %d, inner %d, next call %d", outer, inner, next)
	}
}

// Ready and spent threads end when the pool closes; a call after that
// still runs, on a thread of its own.
func TestThreadPoolCloseEndsItsThreads(t *testing.T) {
	check := noThreadsLeft(t)
	before := runtime.NumGoroutine()
	p := &threadPool{}
	if err := onCallThread(context.Background(), p, true, func(context.Context) {}); err != nil {
		t.Fatal(err)
	}
	p.release()
	if err := onCallThread(context.Background(), p, true, func(context.Context) {}); err != nil {
		t.Fatal(err)
	}
	// One spent thread and one ready one are parked now.
	if n := runtime.NumGoroutine(); n < before+2 {
		t.Fatalf("%d goroutines, want at least %d", n, before+2)
	}
	p.close()
	if err := onCallThread(context.Background(), p, true, func(context.Context) {}); err != nil {
		t.Fatal(err)
	}
	check()
	if p.take() != nil {
		t.Fatal("a closed pool handed out a thread")
	}
}

// No syscall that changes the calling thread's own state may skip the
// call thread.
func TestThreadNeutralLeavesOutThreadState(t *testing.T) {
	for _, nr := range []int{
		unix.SYS_SETUID, unix.SYS_SETGID, unix.SYS_SETREUID, unix.SYS_SETREGID, unix.SYS_SETRESUID,
		unix.SYS_SETRESGID, unix.SYS_SETFSUID, unix.SYS_SETFSGID, unix.SYS_SETGROUPS, unix.SYS_CAPSET,
		unix.SYS_RT_SIGPROCMASK, unix.SYS_SIGALTSTACK, unix.SYS_RT_SIGACTION, unix.SYS_UNSHARE, unix.SYS_SETNS,
		unix.SYS_PRCTL, unix.SYS_SECCOMP, unix.SYS_ARCH_PRCTL, unix.SYS_PERSONALITY, unix.SYS_SCHED_SETAFFINITY,
		unix.SYS_SCHED_SETSCHEDULER, unix.SYS_SCHED_SETATTR, unix.SYS_SETPRIORITY, unix.SYS_IOPRIO_SET,
		unix.SYS_SET_ROBUST_LIST, unix.SYS_SET_TID_ADDRESS, unix.SYS_RSEQ, unix.SYS_KEYCTL, unix.SYS_IOCTL,
		unix.SYS_EXIT, unix.SYS_CLONE, unix.SYS_CLONE3, unix.SYS_EXECVE, unix.SYS_GETTID,
		unix.SYS_LANDLOCK_RESTRICT_SELF,
	} {
		if threadNeutral[int64(nr)] {
			t.Errorf("syscall %d is listed as thread-neutral", nr)
		}
	}
}
