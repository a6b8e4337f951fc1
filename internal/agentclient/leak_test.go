package agentclient_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"github.com/provium/provium/internal/agent"
	"github.com/provium/provium/internal/proto"
)

// TestNoGoroutineLeak runs a session through every kind of op, including a
// cancelled one and an abandoned handle, and checks that closing it returns
// the goroutine count to where it started on both sides.
func TestNoGoroutineLeak(t *testing.T) {
	before := runtime.NumGoroutine()
	h := startSession(t, &agent.Server{})
	c := h.c
	dir := t.TempDir()
	p := filepath.Join(dir, "f")
	if err := c.WriteFile(ctx(t), p, make([]byte, 3*proto.ChunkSize+1)); err != nil {
		t.Fatal(err)
	}
	if _, err := c.ReadFile(ctx(t), p); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Open(ctx(t), p, proto.OpenRead, 0); err != nil { // left open
		t.Fatal(err)
	}
	if _, err := c.Exec(ctx(t), proto.ExecReq{Cmd: "echo x", Shell: true}); err != nil {
		t.Fatal(err)
	}
	cctx, cancel := context.WithTimeout(ctx(t), 200*time.Millisecond)
	_, err := c.Exec(cctx, proto.ExecReq{Cmd: "sleep", Args: []string{"30"}})
	cancel()
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("want deadline error, got %v", err)
	}
	h.stop(t)

	var now int
	for i := 0; i < 200; i++ {
		if now = runtime.NumGoroutine(); now <= before {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	buf := make([]byte, 1<<20)
	t.Fatalf("%d goroutines before, %d after the session:\n%s", before, now, buf[:runtime.Stack(buf, true)])
}

// TestNoLeakWithLiveStreamsAndWorkers ends a session while it still has
// open streams, a running process, a worker with a child and a pending
// syscall: everything the session owned must be gone afterwards.
func TestNoLeakWithLiveStreamsAndWorkers(t *testing.T) {
	before := runtime.NumGoroutine()
	srv := &agent.Server{}
	h := startSession(t, srv)
	c := h.c
	path := filepath.Join(t.TempDir(), "log")
	if err := os.WriteFile(path, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	tail, err := c.TailFile(ctx(t), path, proto.TailBeginning, 0)
	if err != nil {
		t.Fatal(err)
	}
	p, err := c.Start(ctx(t), proto.ExecReq{Cmd: "sleep", Args: []string{"30"}})
	if err != nil {
		t.Fatal(err)
	}
	out, err := p.Stdout(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	w, err := c.SpawnWorker(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	wp, err := w.Start(ctx(t), proto.ExecReq{Cmd: "sleep", Args: []string{"30"}})
	if err != nil {
		t.Fatal(err)
	}
	ts := make([]byte, 16)
	ts[8] = 1 // 1 ns: the pending call ends on its own
	if _, err := c.SyscallAsync(ctx(t), proto.SyscallReq{Nr: 35 /* nanosleep */, Bufs: [][]byte{ts}, Ptrs: []int{0}}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Syscall(ctx(t), proto.SyscallReq{Nr: 39 /* getpid */}); err != nil {
		t.Fatal(err)
	}
	h.stop(t)
	tail.Close()
	out.Close()
	for _, pid := range []int{p.StartPid(), wp.StartPid(), w.Pid()} {
		for i := 0; i < 250 && !gone(pid); i++ {
			time.Sleep(20 * time.Millisecond)
		}
		if !gone(pid) {
			t.Errorf("process %d outlived the session", pid)
		}
	}
	var now int
	for i := 0; i < 200; i++ {
		if now = runtime.NumGoroutine(); now <= before {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	buf := make([]byte, 1<<20)
	t.Fatalf("%d goroutines before, %d after the session:\n%s", before, now, buf[:runtime.Stack(buf, true)])
}
