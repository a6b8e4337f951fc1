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
