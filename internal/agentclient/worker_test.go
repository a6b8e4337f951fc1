package agentclient_test

import (
	"context"
	"errors"
	"os"
	"os/exec"
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
	// An in-flight call of the worker fails once the worker process is gone.
	pend, err := w.SyscallAsync(ctx(t), proto.SyscallReq{Nr: unix.SYS_PAUSE})
	if err != nil {
		t.Fatal(err)
	}
	// Kill signals the worker process itself; its children die with it.
	if err := w.Kill(ctx(t), int(syscall.SIGTERM)); err != nil {
		t.Fatal(err)
	}
	if _, err := pend.Await(ctx(t), 0); err == nil || !strings.Contains(err.Error(), "the worker process has exited") {
		t.Fatalf("await on a killed worker: %v", err)
	}
	for _, p := range procs {
		if res, err := p.Wait(ctx(t), 0); err != nil || res.Signal != int(syscall.SIGKILL) {
			t.Fatalf("child of a killed worker: %+v %v", res, err)
		}
	}
	// Kill of a worker that already exited is no error; join reports how
	// it ended (128 + signal) and every later operation fails.
	if err := w.Kill(ctx(t), int(syscall.SIGTERM)); err != nil {
		t.Fatalf("kill of an exited worker: %v", err)
	}
	if st, err := w.Join(ctx(t)); err != nil || st != 128+int(syscall.SIGTERM) {
		t.Fatalf("join = %d %v", st, err)
	}
	if _, err := w.Syscall(ctx(t), proto.SyscallReq{Nr: unix.SYS_GETPID}); err == nil {
		t.Fatal("syscall in a joined worker succeeded")
	}

	// Join alone ends a live worker: it exits on its own (status 0).
	w = spawn(t, c)
	if st, err := w.Join(ctx(t)); err != nil || st != 0 {
		t.Fatalf("join of a live worker = %d %v", st, err)
	}
	if !gone(w.Pid()) {
		t.Fatalf("worker %d lives after join", w.Pid())
	}
	if err := w.Close(ctx(t)); err != nil {
		t.Fatalf("close after join: %v", err)
	}

	// A worker killed by a raw signal from elsewhere still takes kill and
	// join without an error.
	w = spawn(t, c)
	if err := unix.Kill(w.Pid(), unix.SIGKILL); err != nil {
		t.Fatal(err)
	}
	if err := w.Kill(ctx(t), int(syscall.SIGTERM)); err != nil {
		t.Fatalf("kill after a raw SIGKILL: %v", err)
	}
	if st, err := w.Join(ctx(t)); err != nil || st != 128+int(syscall.SIGKILL) {
		t.Fatalf("join after a raw SIGKILL = %d %v", st, err)
	}

	w = spawn(t, c)
	// The agent's own session has no worker ops.
	if err := (&agentclient.Worker{Client: c}).Kill(ctx(t), 9); err == nil {
		t.Fatal("worker_kill accepted outside a worker")
	}

	// Close terminates the children and the worker; its pendings fail.
	p, err := w.Start(ctx(t), proto.ExecReq{Cmd: "sleep", Args: []string{"30"}})
	if err != nil {
		t.Fatal(err)
	}
	pend, err = w.SyscallAsync(ctx(t), proto.SyscallReq{Nr: unix.SYS_PAUSE})
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

// threads reads the Threads: line of /proc/<pid>/status.
func threads(t *testing.T, pid int) string {
	t.Helper()
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "Threads:"); ok {
			return strings.TrimSpace(v)
		}
	}
	t.Fatalf("no Threads line in /proc/%d/status", pid)
	return ""
}

func TestWorkerIsSingleThreaded(t *testing.T) {
	c := newAgent(t)
	w := spawn(t, c)
	if n := threads(t, w.Pid()); n != "1" {
		t.Fatalf("worker has %s threads", n)
	}
	// syscall_async runs on a thread of its own while in flight only.
	pend, err := w.SyscallAsync(ctx(t), proto.SyscallReq{Nr: unix.SYS_NANOSLEEP,
		Bufs: [][]byte{timespec(3 * time.Second)}, Ptrs: []int{0}})
	if err != nil {
		t.Fatal(err)
	}
	// The call reaches the executor asynchronously; its thread shows up
	// soon and lives as long as the 3 s sleep.
	for i := 0; i < 100 && threads(t, w.Pid()) != "2"; i++ {
		time.Sleep(10 * time.Millisecond)
	}
	if n := threads(t, w.Pid()); n != "2" {
		t.Errorf("worker has %s threads while an async syscall is in flight", n)
	}
	if r, err := pend.Await(ctx(t), 0); err != nil || r.Ret != 0 {
		t.Fatalf("async nanosleep: %+v %v", r, err)
	}
	for i := 0; i < 100 && threads(t, w.Pid()) != "1"; i++ {
		time.Sleep(10 * time.Millisecond)
	}
	if n := threads(t, w.Pid()); n != "1" {
		t.Fatalf("worker has %s threads after the async syscall", n)
	}
}

func TestWorkerChrootAndChdirApplyToCommandsAndOpens(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("needs root to chroot")
	}
	busybox, err := exec.LookPath("busybox")
	if err != nil {
		t.Skip("needs a static busybox to run inside the new root")
	}
	root := t.TempDir()
	os.MkdirAll(filepath.Join(root, "bin"), 0o755)
	os.MkdirAll(filepath.Join(root, "data"), 0o755)
	bb, _ := os.ReadFile(busybox)
	os.WriteFile(filepath.Join(root, "bin", "busybox"), bb, 0o755)
	os.Symlink("busybox", filepath.Join(root, "bin", "sh"))
	os.Symlink("busybox", filepath.Join(root, "bin", "cat"))
	os.WriteFile(filepath.Join(root, "data", "marker"), []byte("inside"), 0o644)
	c := newAgent(t)
	w := spawn(t, c)
	for _, call := range []struct {
		nr   int64
		path string
	}{{unix.SYS_CHROOT, root}, {unix.SYS_CHDIR, "/data"}} {
		r, err := w.Syscall(ctx(t), proto.SyscallReq{Nr: call.nr, Bufs: [][]byte{cstr(call.path)}, Ptrs: []int{0}})
		if err != nil || r.Ret != 0 {
			t.Fatalf("syscall %d(%s): %+v %v", call.nr, call.path, r, err)
		}
	}
	// A relative path (program and argument) resolves in the new root's cwd.
	out, err := w.Exec(ctx(t), proto.ExecReq{Cmd: "../bin/cat", Args: []string{"marker"}})
	if err != nil || string(out.Stdout) != "inside" {
		t.Fatalf("relative run in the new root: %+v %v", out, err)
	}
	// PATH lookup and the shell form find the new root's programs.
	out, err = w.Exec(ctx(t), proto.ExecReq{Cmd: "cat marker; pwd", Shell: true, Env: map[string]string{"PATH": "/bin"}})
	if err != nil || string(out.Stdout) != "inside/data\n" {
		t.Fatalf("shell in the new root: %q %v", out.Stdout, err)
	}
	f, err := w.Open(ctx(t), "marker", proto.OpenRead, 0)
	if err != nil {
		t.Fatal(err)
	}
	if b, err := f.Read(ctx(t), 100); err != nil || string(b) != "inside" {
		t.Fatalf("open_file in the new root: %q %v", b, err)
	}
	f.Close(ctx(t))
	// A program missing in the new root fails with its errno.
	_, err = w.Exec(ctx(t), proto.ExecReq{Cmd: "/usr/bin/env"})
	var ae *agentclient.Error
	if !errors.As(err, &ae) || ae.Name != "ENOENT" {
		t.Fatalf("missing program: %v", err)
	}
}

func TestWorkerUserNamespace(t *testing.T) {
	c := newAgent(t)
	w := spawn(t, c)
	r, err := w.Syscall(ctx(t), proto.SyscallReq{Nr: unix.SYS_UNSHARE, Args: [6]uint64{unix.CLONE_NEWUSER}})
	if err != nil {
		t.Fatal(err)
	}
	if r.Ret != 0 {
		// Some sandboxes forbid user namespaces to everyone; the real
		// guest test is the one that must pass.
		if _, herr := exec.Command("unshare", "-U", "true").CombinedOutput(); herr != nil {
			t.Skipf("user namespaces are not available here (%v)", herr)
		}
		t.Fatalf("unshare(CLONE_NEWUSER) in a worker: %+v", r)
	}
	self, _ := os.Readlink("/proc/self/ns/user")
	theirs, _ := os.Readlink("/proc/" + strconv.Itoa(w.Pid()) + "/ns/user")
	if theirs == self || theirs == "" {
		t.Fatalf("worker user ns %q, agent's %q", theirs, self)
	}
	out, err := w.Exec(ctx(t), proto.ExecReq{Cmd: "readlink", Args: []string{"/proc/self/ns/user"}})
	if err != nil || strings.TrimSpace(string(out.Stdout)) != theirs {
		t.Fatalf("worker child ns: %q %v", out.Stdout, err)
	}
}
