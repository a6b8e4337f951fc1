package agentclient_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/provium/provium/internal/agent"
	"github.com/provium/provium/internal/agentclient"
	"github.com/provium/provium/internal/proto"
)

// harness runs an in-process agent session over a pipe.
type harness struct {
	c    *agentclient.Client
	done chan error
}

func startSession(t testing.TB, srv *agent.Server) *harness {
	t.Helper()
	if srv.WorkerExe == "" {
		srv.WorkerExe = workerExe
	}
	hostEnd, guestEnd := net.Pipe()
	done := make(chan error, 1)
	go func() { done <- srv.ServeSession(context.Background(), guestEnd) }()
	c, err := agentclient.Dial(context.Background(), hostEnd)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	h := &harness{c: c, done: done}
	t.Cleanup(func() { h.stop(t) })
	return h
}

// stop closes the client and waits for the agent side to finish the session.
func (h *harness) stop(t testing.TB) {
	t.Helper()
	if h.done == nil {
		return
	}
	h.c.Close()
	if err := <-h.done; err != nil {
		t.Errorf("ServeSession: %v", err)
	}
	h.done = nil
}

func newClient(t *testing.T) *agentclient.Client {
	return startSession(t, &agent.Server{AgentVersion: "test"}).c
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return c
}

func wantErrno(t *testing.T, err error, errno syscall.Errno, name string) {
	t.Helper()
	var ae *agentclient.Error
	if !errors.As(err, &ae) {
		t.Fatalf("want agent error %s, got %v", name, err)
	}
	if ae.Errno != errno || ae.Name != name || !errors.Is(err, errno) {
		t.Fatalf("want %s (%d), got %+v", name, errno, ae)
	}
}

func TestHello(t *testing.T) {
	c := newClient(t)
	h := c.Hello()
	if h.Protocol != proto.ProtocolVersion || h.AgentVersion != "test" || h.GuestOS != "linux" || h.Kernel == "" {
		t.Fatalf("hello %+v", h)
	}
	if err := c.Ping(ctx(t)); err != nil {
		t.Fatal(err)
	}
}

func TestExecShellForm(t *testing.T) {
	c := newClient(t)
	res, err := c.Exec(ctx(t), proto.ExecReq{Cmd: "echo out; echo err >&2; exit 3", Shell: true})
	if err != nil {
		t.Fatal(err)
	}
	if res.Status != proto.StatusExited || res.ExitCode != 3 || string(res.Stdout) != "out\n" || string(res.Stderr) != "err\n" || res.Signal != 0 {
		t.Fatalf("got %+v", res)
	}
}

func TestExecDirectFormUsesPath(t *testing.T) {
	c := newClient(t)
	// "a b" stays one argument: no shell splitting in the direct form.
	res, err := c.Exec(ctx(t), proto.ExecReq{Cmd: "printf", Args: []string{"%s|%s", "a b", "$HOME"}})
	if err != nil {
		t.Fatal(err)
	}
	if string(res.Stdout) != "a b|$HOME" || res.ExitCode != 0 {
		t.Fatalf("got %+v", res)
	}
	_, err = c.Exec(ctx(t), proto.ExecReq{Cmd: "no-such-program-provium"})
	wantErrno(t, err, syscall.ENOENT, "ENOENT")
}

func TestExecEnvCwdStdin(t *testing.T) {
	c := newClient(t)
	t.Setenv("PROVIUM_AGENT_BASE", "base")
	res, err := c.Exec(ctx(t), proto.ExecReq{Cmd: `printf '%s/%s' "$PROVIUM_AGENT_BASE" "$FOO"`, Shell: true, Env: map[string]string{"FOO": "x"}})
	if err != nil || string(res.Stdout) != "base/x" {
		t.Fatalf("merged env: %q %v", res.Stdout, err)
	}
	res, err = c.Exec(ctx(t), proto.ExecReq{Cmd: "env", EnvClear: true, Env: map[string]string{"ONLY": "1"}})
	if err != nil || string(res.Stdout) != "ONLY=1\n" {
		t.Fatalf("env_clear: %q %v", res.Stdout, err)
	}
	res, err = c.Exec(ctx(t), proto.ExecReq{Cmd: "pwd"})
	if err != nil || string(res.Stdout) != "/\n" {
		t.Fatalf("default cwd: %q %v", res.Stdout, err)
	}
	dir := t.TempDir()
	res, err = c.Exec(ctx(t), proto.ExecReq{Cmd: "pwd", Cwd: dir})
	if err != nil || string(res.Stdout) != dir+"\n" {
		t.Fatalf("cwd: %q %v", res.Stdout, err)
	}
	in := []byte("line\x00with nul\nand more")
	res, err = c.Exec(ctx(t), proto.ExecReq{Cmd: "cat", Stdin: in})
	if err != nil || !bytes.Equal(res.Stdout, in) {
		t.Fatalf("stdin: %q %v", res.Stdout, err)
	}
	// No stdin: the command sees EOF at once instead of hanging.
	res, err = c.Exec(ctx(t), proto.ExecReq{Cmd: "cat"})
	if err != nil || len(res.Stdout) != 0 || res.ExitCode != 0 {
		t.Fatalf("empty stdin: %+v %v", res, err)
	}
}

// gone reports whether pid no longer runs (absent or a zombie awaiting reap).
func gone(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return true
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i > 0 && len(s) > i+2 && s[i+2] == 'Z'
}

func TestExecTimeoutKillsProcessGroup(t *testing.T) {
	c := newClient(t)
	pidFile := filepath.Join(t.TempDir(), "pid")
	res, err := c.Exec(ctx(t), proto.ExecReq{
		Cmd:       "echo before; sleep 60 & echo $! > " + pidFile + "; wait",
		Shell:     true,
		TimeoutMs: 300,
	})
	if err != nil {
		t.Fatal(err)
	}
	if res.Status != proto.StatusTimedOut || res.ExitCode != proto.ExitCodeTimedOut || string(res.Stdout) != "before\n" {
		t.Fatalf("got %+v", res)
	}
	b, err := os.ReadFile(pidFile)
	if err != nil {
		t.Fatal(err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		t.Fatal(err)
	}
	// The kill is immediate; polling only absorbs the reparent/reap lag.
	for i := 0; i < 200 && !gone(pid); i++ {
		time.Sleep(25 * time.Millisecond)
	}
	if !gone(pid) {
		t.Fatalf("child %d of the timed-out shell is still running", pid)
	}
}

func TestExecSignalled(t *testing.T) {
	c := newClient(t)
	res, err := c.Exec(ctx(t), proto.ExecReq{Cmd: "echo x; kill -TERM $$", Shell: true})
	if err != nil {
		t.Fatal(err)
	}
	if res.Status != proto.StatusSignalled || res.ExitCode != proto.ExitCodeSignalled || res.Signal != int(syscall.SIGTERM) || string(res.Stdout) != "x\n" {
		t.Fatalf("got %+v", res)
	}
}

func TestExecCancelledByHost(t *testing.T) {
	c := newClient(t)
	pidFile := filepath.Join(t.TempDir(), "pid")
	cctx, cancel := context.WithCancel(ctx(t))
	go func() {
		for i := 0; i < 400; i++ {
			if _, err := os.Stat(pidFile); err == nil {
				break
			}
			time.Sleep(10 * time.Millisecond)
		}
		cancel()
	}()
	_, err := c.Exec(cctx, proto.ExecReq{Cmd: "echo $$ > " + pidFile + ".tmp; mv " + pidFile + ".tmp " + pidFile + "; exec sleep 60", Shell: true})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("want context.Canceled, got %v", err)
	}
	b, err := os.ReadFile(pidFile)
	if err != nil {
		t.Fatal(err)
	}
	pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	for i := 0; i < 200 && !gone(pid); i++ {
		time.Sleep(25 * time.Millisecond)
	}
	if !gone(pid) {
		t.Fatalf("command %d survived the cancelled call", pid)
	}
	// The session is still usable after a cancelled call.
	if err := c.Ping(ctx(t)); err != nil {
		t.Fatal(err)
	}
}

func TestLargeFileRoundTrip(t *testing.T) {
	if testing.Short() {
		t.Skip("moves > 128 MiB")
	}
	c := newClient(t)
	data := make([]byte, 64<<20+12345)
	rng := rand.New(rand.NewPCG(1, 2))
	for i := 0; i+8 <= len(data); i += 8 {
		v := rng.Uint64()
		for j := 0; j < 8; j++ {
			data[i+j] = byte(v >> (8 * j))
		}
	}
	for i := 0; i < len(data); i += 4096 {
		data[i] = 0
	}
	p := filepath.Join(t.TempDir(), "big")
	if err := c.WriteFile(ctx(t), p, data); err != nil {
		t.Fatal(err)
	}
	onDisk, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(onDisk, data) {
		t.Fatalf("written file differs (len %d vs %d)", len(onDisk), len(data))
	}
	got, err := c.ReadFile(ctx(t), p)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, data) {
		t.Fatalf("read back differs (len %d vs %d)", len(got), len(data))
	}
}

func TestReadWriteFileSmall(t *testing.T) {
	c := newClient(t)
	dir := t.TempDir()
	p := filepath.Join(dir, "f")
	data := []byte("a\x00b\x00\x00c")
	if err := c.WriteFile(ctx(t), p, data); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(p)
	if err != nil || fi.Mode().Perm() != 0o644 {
		t.Fatalf("created mode %v %v", fi.Mode(), err)
	}
	got, err := c.ReadFile(ctx(t), p)
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("read %q %v", got, err)
	}
	// Truncating keeps the existing mode.
	if err := os.Chmod(p, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := c.WriteFile(ctx(t), p, []byte("z")); err != nil {
		t.Fatal(err)
	}
	fi, _ = os.Stat(p)
	got, _ = os.ReadFile(p)
	if fi.Mode().Perm() != 0o600 || string(got) != "z" {
		t.Fatalf("after truncate: mode %v content %q", fi.Mode(), got)
	}
	if err := c.WriteFileMode(ctx(t), p, nil, 0o750); err != nil {
		t.Fatal(err)
	}
	fi, _ = os.Stat(p)
	if fi.Mode().Perm() != 0o750 || fi.Size() != 0 {
		t.Fatalf("explicit mode: %v size %d", fi.Mode(), fi.Size())
	}
	_, err = c.ReadFile(ctx(t), filepath.Join(dir, "missing"))
	wantErrno(t, err, syscall.ENOENT, "ENOENT")
	if err.Error() != "No such file or directory (os error 2, ENOENT) (errno 2)" {
		t.Fatalf("error text %q", err.Error())
	}
	_, err = c.ReadFile(ctx(t), dir)
	wantErrno(t, err, syscall.EISDIR, "EISDIR")
	err = c.WriteFile(ctx(t), filepath.Join(dir, "nodir", "f"), []byte("x"))
	wantErrno(t, err, syscall.ENOENT, "ENOENT")
	// A streamed write that fails still answers with the errno.
	err = c.WriteFile(ctx(t), filepath.Join(dir, "nodir", "big"), make([]byte, 3*proto.ChunkSize))
	wantErrno(t, err, syscall.ENOENT, "ENOENT")
	// /proc files report size 0 but have content.
	got, err = c.ReadFile(ctx(t), "/proc/self/status")
	if err != nil || !bytes.Contains(got, []byte("Pid:")) {
		t.Fatalf("/proc read: %q %v", got, err)
	}
}

func TestStatListdir(t *testing.T) {
	c := newClient(t)
	dir := t.TempDir()
	f := filepath.Join(dir, "file")
	if err := os.WriteFile(f, []byte("12345"), 0o640); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Chmod(f, 0o4750); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("file", filepath.Join(dir, "link")); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mkfifo(filepath.Join(dir, "fifo"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(dir, "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	st, err := c.Stat(ctx(t), f)
	if err != nil {
		t.Fatal(err)
	}
	fi, _ := os.Stat(f)
	if st.Size != 5 || st.Perm != 0o4750 || st.EntryType != proto.EntryFile || st.MtimeNs != fi.ModTime().UnixNano() {
		t.Fatalf("stat %+v", st)
	}
	if d := st.Mtime - float64(fi.ModTime().UnixNano())/1e9; d > 1e-3 || d < -1e-3 {
		t.Fatalf("mtime %v vs %v", st.Mtime, fi.ModTime())
	}
	// Links are followed.
	st, err = c.Stat(ctx(t), filepath.Join(dir, "link"))
	if err != nil || st.EntryType != proto.EntryFile || st.Size != 5 {
		t.Fatalf("stat link %+v %v", st, err)
	}
	for path, want := range map[string]string{dir: proto.EntryDirectory, filepath.Join(dir, "fifo"): proto.EntryFIFO, "/dev/null": proto.EntryCharDevice} {
		st, err := c.Stat(ctx(t), path)
		if err != nil || st.EntryType != want {
			t.Fatalf("stat %s: %+v %v", path, st, err)
		}
	}
	_, err = c.Stat(ctx(t), filepath.Join(dir, "missing"))
	wantErrno(t, err, syscall.ENOENT, "ENOENT")

	ents, err := c.Listdir(ctx(t), dir)
	if err != nil {
		t.Fatal(err)
	}
	want := []proto.DirEntry{{Name: "fifo", EntryType: proto.EntryFIFO}, {Name: "file", EntryType: proto.EntryFile}, {Name: "link", EntryType: proto.EntrySymlink}, {Name: "sub", EntryType: proto.EntryDirectory}}
	if len(ents) != len(want) {
		t.Fatalf("listdir %+v", ents)
	}
	for i := range want {
		if ents[i] != want[i] {
			t.Fatalf("listdir[%d] = %+v, want %+v", i, ents[i], want[i])
		}
	}
	_, err = c.Listdir(ctx(t), f)
	wantErrno(t, err, syscall.ENOTDIR, "ENOTDIR")
}

func TestMkdirUnlinkRename(t *testing.T) {
	c := newClient(t)
	dir := t.TempDir()
	deep := filepath.Join(dir, "a", "b", "c")
	if err := c.Mkdir(ctx(t), deep, true, 0o700); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(deep)
	if err != nil || !fi.IsDir() || fi.Mode().Perm() != 0o700 {
		t.Fatalf("mkdir parents: %v %v", fi, err)
	}
	if err := c.Mkdir(ctx(t), deep, true, 0); err != nil {
		t.Fatalf("existing dir with parents: %v", err)
	}
	wantErrno(t, c.Mkdir(ctx(t), deep, false, 0), syscall.EEXIST, "EEXIST")
	wantErrno(t, c.Mkdir(ctx(t), filepath.Join(dir, "x", "y"), false, 0), syscall.ENOENT, "ENOENT")
	plain := filepath.Join(dir, "plain")
	if err := c.Mkdir(ctx(t), plain, false, 0o755); err != nil {
		t.Fatal(err)
	}
	if fi, _ := os.Stat(plain); fi.Mode().Perm() != 0o755 {
		t.Fatalf("perm 0755 gave %v", fi.Mode())
	}
	// An explicit 0 is kept (the Lua default 0755 is the caller's).
	closed := filepath.Join(dir, "closed")
	if err := c.Mkdir(ctx(t), closed, false, 0); err != nil {
		t.Fatal(err)
	}
	if fi, _ := os.Stat(closed); fi.Mode().Perm() != 0 {
		t.Fatalf("perm 0 gave %v", fi.Mode())
	}

	wantErrno(t, c.Unlink(ctx(t), filepath.Join(dir, "a")), syscall.ENOTEMPTY, "ENOTEMPTY")
	if err := c.Unlink(ctx(t), deep); err != nil {
		t.Fatalf("unlink empty dir: %v", err)
	}
	f := filepath.Join(dir, "f")
	os.WriteFile(f, []byte("x"), 0o644)
	if err := c.Rename(ctx(t), f, filepath.Join(plain, "g")); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(plain, "g")); err != nil {
		t.Fatalf("rename target: %v", err)
	}
	wantErrno(t, c.Rename(ctx(t), f, filepath.Join(dir, "h")), syscall.ENOENT, "ENOENT")
	if err := c.Unlink(ctx(t), filepath.Join(plain, "g")); err != nil {
		t.Fatal(err)
	}
	wantErrno(t, c.Unlink(ctx(t), filepath.Join(plain, "g")), syscall.ENOENT, "ENOENT")
}

func TestFileHandles(t *testing.T) {
	c := newClient(t)
	dir := t.TempDir()
	p := filepath.Join(dir, "h")
	f, err := c.Open(ctx(t), p, proto.OpenRead|proto.OpenWrite|proto.OpenCreate|proto.OpenExclusive, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	if f.Fd() <= 2 || f.Handle() == 0 {
		t.Fatalf("fd %d handle %d", f.Fd(), f.Handle())
	}
	if fi, _ := os.Stat(p); fi.Mode().Perm() != 0o600 {
		t.Fatalf("created perm %v", fi.Mode())
	}
	if n, err := f.Write(ctx(t), []byte("hello\x00world")); err != nil || n != 11 {
		t.Fatalf("write %d %v", n, err)
	}
	if off, err := f.Tell(ctx(t)); err != nil || off != 11 {
		t.Fatalf("tell %d %v", off, err)
	}
	if off, err := f.Seek(ctx(t), -5, proto.SeekEnd); err != nil || off != 6 {
		t.Fatalf("seek end %d %v", off, err)
	}
	if b, err := f.Read(ctx(t), 100); err != nil || string(b) != "world" {
		t.Fatalf("read %q %v", b, err)
	}
	if b, err := f.Read(ctx(t), 100); err != nil || len(b) != 0 || b == nil {
		t.Fatalf("read at EOF %q %v", b, err)
	}
	if off, err := f.Seek(ctx(t), 0, proto.SeekSet); err != nil || off != 0 {
		t.Fatalf("seek set %d %v", off, err)
	}
	if b, err := f.Read(ctx(t), 6); err != nil || string(b) != "hello\x00" {
		t.Fatalf("read %q %v", b, err)
	}
	if _, err := f.Seek(ctx(t), 0, 7); err == nil {
		t.Fatal("bad whence accepted")
	}
	if err := f.Close(ctx(t)); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(ctx(t)); err != nil || f.Fd() != 0 {
		t.Fatalf("second close %v fd %d", err, f.Fd())
	}
	_, err = f.Read(ctx(t), 1)
	wantErrno(t, err, syscall.EBADF, "EBADF")

	_, err = c.Open(ctx(t), p, proto.OpenWrite|proto.OpenCreate|proto.OpenExclusive, 0)
	wantErrno(t, err, syscall.EEXIST, "EEXIST")
	_, err = c.Open(ctx(t), filepath.Join(dir, "none"), proto.OpenRead, 0)
	wantErrno(t, err, syscall.ENOENT, "ENOENT")

	a, err := c.Open(ctx(t), p, proto.OpenAppend, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.Write(ctx(t), []byte("!")); err != nil {
		t.Fatal(err)
	}
	a.Close(ctx(t))
	tr, err := c.Open(ctx(t), p, proto.OpenWrite|proto.OpenTruncate, 0)
	if err != nil {
		t.Fatal(err)
	}
	tr.Close(ctx(t))
	if got, _ := os.ReadFile(p); len(got) != 0 {
		t.Fatalf("truncate left %q", got)
	}
	if _, err := c.Open(ctx(t), p, 0, 0); err == nil {
		t.Fatal("open without read/write/append accepted")
	}
}

func TestBatch(t *testing.T) {
	c := newClient(t)
	dir := t.TempDir()
	var b agentclient.Batch
	b.WriteFile(filepath.Join(dir, "f"), []byte("x\x00y"))
	b.ReadFile(filepath.Join(dir, "missing"))
	b.ReadFile(filepath.Join(dir, "f"))
	b.Stat(filepath.Join(dir, "f"))
	b.Mkdir(filepath.Join(dir, "d"), false, 0)
	b.Listdir(dir)
	b.Exec(proto.ExecReq{Cmd: "echo batched", Shell: true})
	b.Rename(filepath.Join(dir, "f"), filepath.Join(dir, "g"))
	b.Unlink(filepath.Join(dir, "f"))
	res, err := c.Batch(ctx(t), &b)
	if err != nil {
		t.Fatal(err)
	}
	if len(res) != b.Len() {
		t.Fatalf("%d results for %d ops", len(res), b.Len())
	}
	if res[0].Err != nil || res[0].Value != nil {
		t.Fatalf("write: %+v", res[0])
	}
	if res[1].Err == nil || res[1].Err.Error() != "No such file or directory (os error 2, ENOENT) (errno 2)" {
		t.Fatalf("read missing: %+v", res[1])
	}
	if v, ok := res[2].Value.([]byte); !ok || string(v) != "x\x00y" {
		t.Fatalf("read: %+v", res[2])
	}
	if v, ok := res[3].Value.(proto.StatResp); !ok || v.Size != 3 {
		t.Fatalf("stat: %+v", res[3])
	}
	if res[4].Err != nil {
		t.Fatalf("mkdir: %+v", res[4])
	}
	if v, ok := res[5].Value.([]proto.DirEntry); !ok || len(v) != 2 || v[0].Name != "d" || v[1].Name != "f" {
		t.Fatalf("listdir: %+v", res[5])
	}
	if v, ok := res[6].Value.(proto.ExecResult); !ok || string(v.Stdout) != "batched\n" {
		t.Fatalf("exec: %+v", res[6])
	}
	if res[7].Err != nil {
		t.Fatalf("rename: %+v", res[7])
	}
	if res[8].Err == nil || res[8].Err.Name != "ENOENT" {
		t.Fatalf("unlink after rename: %+v", res[8])
	}
	empty, err := c.Batch(ctx(t), &agentclient.Batch{})
	if err != nil || len(empty) != 0 {
		t.Fatalf("empty batch %v %v", empty, err)
	}
}

func fdTarget(fd int) string {
	s, _ := os.Readlink("/proc/self/fd/" + strconv.Itoa(fd))
	return s
}

func TestSessionDeathDropsHandles(t *testing.T) {
	srv := &agent.Server{AgentVersion: "test"}
	h1 := startSession(t, srv)
	p := filepath.Join(t.TempDir(), "held")
	f, err := h1.c.Open(ctx(t), p, proto.OpenWrite|proto.OpenCreate, 0)
	if err != nil {
		t.Fatal(err)
	}
	if fdTarget(f.Fd()) != p {
		t.Fatalf("fd %d points at %q, want %q", f.Fd(), fdTarget(f.Fd()), p)
	}
	h1.stop(t) // returns only after the agent side has torn the session down
	if fdTarget(f.Fd()) == p {
		t.Fatalf("fd %d still open on %s after the session died", f.Fd(), p)
	}
	if _, err := f.Write(ctx(t), []byte("x")); !errors.Is(err, agentclient.ErrClosed) {
		t.Fatalf("write on dead session: want ErrClosed, got %v", err)
	}
	h2 := startSession(t, srv)
	if err := h2.c.Ping(ctx(t)); err != nil {
		t.Fatal(err)
	}
	// Handle numbers from the old session mean nothing in the new one.
	_, err = h2.c.Exec(ctx(t), proto.ExecReq{Cmd: "true"})
	if err != nil {
		t.Fatal(err)
	}
}

func TestVersionMismatch(t *testing.T) {
	hostEnd, guestEnd := net.Pipe()
	go fakeAgent(t, guestEnd, proto.Hello{Protocol: proto.ProtocolVersion + 1, AgentVersion: "future"})
	_, err := agentclient.Dial(ctx(t), hostEnd)
	var ve *agentclient.VersionError
	if !errors.As(err, &ve) || ve.Agent != proto.ProtocolVersion+1 || ve.Host != proto.ProtocolVersion {
		t.Fatalf("want VersionError, got %v", err)
	}
	if !strings.Contains(err.Error(), fmt.Sprintf("agent protocol version %d", proto.ProtocolVersion+1)) {
		t.Fatalf("message %q", err.Error())
	}
}

func TestDetachEndsSessionFromAgentSide(t *testing.T) {
	srv := &agent.Server{}
	h := startSession(t, srv)
	p := filepath.Join(t.TempDir(), "held")
	f, err := h.c.Open(ctx(t), p, proto.OpenWrite|proto.OpenCreate, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := h.c.Detach(ctx(t)); err != nil {
		t.Fatal(err)
	}
	if err := <-h.done; err != nil { // ServeSession returned: the agent ended it
		t.Fatal(err)
	}
	h.done = nil
	if fdTarget(f.Fd()) == p {
		t.Fatal("handle survived detach")
	}
	if err := h.c.Ping(ctx(t)); !errors.Is(err, agentclient.ErrClosed) {
		t.Fatalf("ping after detach: want ErrClosed, got %v", err)
	}
}

// TestReadFileInlineBoundary: a file of exactly one chunk comes back in the
// call, one byte more takes the streamed path; both give the bytes back.
func TestReadFileInlineBoundary(t *testing.T) {
	c := newClient(t)
	dir := t.TempDir()
	for _, n := range []int{0, proto.ChunkSize, proto.ChunkSize + 1} {
		data := bytes.Repeat([]byte{'q'}, n)
		p := filepath.Join(dir, strconv.Itoa(n))
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
		got, err := c.ReadFile(ctx(t), p)
		if err != nil || !bytes.Equal(got, data) {
			t.Fatalf("%d bytes: got %d, %v", n, len(got), err)
		}
	}
}
