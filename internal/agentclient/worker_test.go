package agentclient_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/provium/provium/internal/agentclient"
	"github.com/provium/provium/internal/proto"
)

func spawn(t *testing.T, c *agentclient.Client) *agentclient.Worker {
	t.Helper()
	w, err := c.SpawnWorker(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.Close(context.Background()) })
	return w
}

func TestWorkerIsASeparateProcess(t *testing.T) {
	c := newAgent(t)
	w := spawn(t, c)
	if w.Pid() <= 0 || w.Pid() == os.Getpid() {
		t.Fatalf("worker pid %d", w.Pid())
	}
	res, err := w.Syscall(ctx(t), proto.SyscallReq{Nr: unix.SYS_GETPID})
	if err != nil || res.Ret != int64(w.Pid()) {
		t.Fatalf("getpid in worker: %+v %v", res, err)
	}
	// An fd opened in the worker stays there across ops, and is not the
	// agent's.
	path := filepath.Join(t.TempDir(), "f")
	os.WriteFile(path, []byte("worker data"), 0o644)
	fd := openat(t, w.Client, path)
	res, err = w.Syscall(ctx(t), proto.SyscallReq{Nr: unix.SYS_READ, Args: [6]uint64{uint64(fd), 0, 6}, Bufs: [][]byte{make([]byte, 6)}, Ptrs: []int{1}})
	if err != nil || string(res.OutBufs[0]) != "worker" {
		t.Fatalf("read in worker: %+v %v", res, err)
	}
	link, _ := os.Readlink("/proc/" + strconv.Itoa(w.Pid()) + "/fd/" + strconv.Itoa(fd))
	if link != path {
		t.Fatalf("worker fd %d is %q", fd, link)
	}
	// Exec, files and streams all run inside the worker.
	out, err := w.Exec(ctx(t), proto.ExecReq{Cmd: "echo $PPID", Shell: true})
	if err != nil || strings.TrimSpace(string(out.Stdout)) != strconv.Itoa(w.Pid()) {
		t.Fatalf("exec parent: %q %v", out.Stdout, err)
	}
	f, err := w.Open(ctx(t), path, proto.OpenRead, 0)
	if err != nil {
		t.Fatal(err)
	}
	if b, err := f.Read(ctx(t), 100); err != nil || string(b) != "worker data" {
		t.Fatalf("worker file: %q %v", b, err)
	}
	link, _ = os.Readlink("/proc/" + strconv.Itoa(w.Pid()) + "/fd/" + strconv.Itoa(f.Fd()))
	if link != path {
		t.Fatalf("worker file fd %d is %q", f.Fd(), link)
	}
}

func TestWorkerCredentials(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("needs root to change credentials")
	}
	c := newAgent(t)
	w := spawn(t, c)
	res, err := w.Syscall(ctx(t), proto.SyscallReq{Nr: unix.SYS_SETRESUID, Args: [6]uint64{65534, 65534, 65534}})
	if err != nil || res.Ret != 0 {
		t.Fatalf("setresuid: %+v %v", res, err)
	}
	if res, _ := w.Syscall(ctx(t), proto.SyscallReq{Nr: unix.SYS_GETUID}); res.Ret != 65534 {
		t.Fatalf("worker uid %d after setresuid", res.Ret)
	}
	if res, _ := c.Syscall(ctx(t), proto.SyscallReq{Nr: unix.SYS_GETUID}); res.Ret != 0 {
		t.Fatalf("agent uid changed to %d", res.Ret)
	}
	// Commands of the worker run with its credentials.
	out, err := w.Exec(ctx(t), proto.ExecReq{Cmd: "id", Args: []string{"-u"}})
	if err != nil || strings.TrimSpace(string(out.Stdout)) != "65534" {
		t.Fatalf("worker child uid: %q %v", out.Stdout, err)
	}
}

func TestWorkerKillJoinClose(t *testing.T) {
	c := newAgent(t)
	w := spawn(t, c)
	var procs []*agentclient.Process
	for i := 0; i < 2; i++ {
		p, err := w.Start(ctx(t), proto.ExecReq{Cmd: "sleep", Args: []string{"30"}})
		if err != nil {
			t.Fatal(err)
		}
		procs = append(procs, p)
	}
	if err := w.Kill(ctx(t), int(syscall.SIGKILL)); err != nil {
		t.Fatal(err)
	}
	if n, err := w.Join(ctx(t)); err != nil || n != 2 {
		t.Fatalf("join = %d %v", n, err)
	}
	if n, err := w.Join(ctx(t)); err != nil || n != 0 {
		t.Fatalf("second join = %d %v", n, err)
	}
	for _, p := range procs {
		if res, err := p.Wait(ctx(t), 0); err != nil || res.Signal != int(syscall.SIGKILL) {
			t.Fatalf("killed child: %+v %v", res, err)
		}
	}
	// The agent's own session has no worker ops.
	if err := (&agentclient.Worker{Client: c}).Kill(ctx(t), 9); err == nil {
		t.Fatal("worker_kill accepted outside a worker")
	}

	// Close terminates the children and the worker; its pendings fail.
	p, err := w.Start(ctx(t), proto.ExecReq{Cmd: "sleep", Args: []string{"30"}})
	if err != nil {
		t.Fatal(err)
	}
	pend, err := w.SyscallAsync(ctx(t), proto.SyscallReq{Nr: unix.SYS_PAUSE})
	if err != nil {
		t.Fatal(err)
	}
	child, workerPid := p.StartPid(), w.Pid()
	if err := w.Close(ctx(t)); err != nil {
		t.Fatal(err)
	}
	if _, err := pend.Await(ctx(t), 0); !errors.Is(err, agentclient.ErrClosed) {
		t.Fatalf("await on closed worker: %v", err)
	}
	for i := 0; i < 250 && !(gone(child) && gone(workerPid)); i++ {
		time.Sleep(20 * time.Millisecond)
	}
	if !gone(child) || !gone(workerPid) {
		t.Fatalf("child gone %v, worker gone %v", gone(child), gone(workerPid))
	}
	if err := w.Close(ctx(t)); err != nil {
		t.Fatalf("second close: %v", err)
	}
	if err := c.Ping(ctx(t)); err != nil {
		t.Fatalf("agent after worker close: %v", err)
	}
}

func TestWorkersDieWithSession(t *testing.T) {
	c := newAgent(t)
	w, err := c.SpawnWorker(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	p, err := w.Start(ctx(t), proto.ExecReq{Cmd: "sleep", Args: []string{"30"}})
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
	for i := 0; i < 250 && !(gone(p.StartPid()) && gone(w.Pid())); i++ {
		time.Sleep(20 * time.Millisecond)
	}
	if !gone(p.StartPid()) || !gone(w.Pid()) {
		t.Fatal("worker or its child outlived the session")
	}
	if _, err := w.Exec(ctx(t), proto.ExecReq{Cmd: "true"}); !errors.Is(err, agentclient.ErrClosed) {
		t.Fatalf("worker op after session end: %v", err)
	}
}
