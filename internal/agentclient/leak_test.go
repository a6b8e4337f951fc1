package agentclient_test

import (
	"context"
	"errors"
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
