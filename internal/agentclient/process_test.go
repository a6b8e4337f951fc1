package agentclient_test

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/provium/provium/internal/agent"
	"github.com/provium/provium/internal/agentclient"
	"github.com/provium/provium/internal/proto"
)

// newAgent starts a session with a server whose idle call goroutines end
// after 50 ms, so the leak test sees them go.
func newAgent(t *testing.T) *agentclient.Client {
	t.Helper()
	return startSession(t, &agent.Server{AgentVersion: "test", CallIdle: 50 * time.Millisecond}).c
}

// drain reads a stream to its end.
func drain(t *testing.T, s *agentclient.Stream) []byte {
	t.Helper()
	var out bytes.Buffer
	for {
		b, err := s.Next(ctx(t))
		if errors.Is(err, io.EOF) {
			return out.Bytes()
		}
		if err != nil {
			t.Fatalf("stream: %v (after %d bytes)", err, out.Len())
		}
		out.Write(b)
	}
}

func TestProcessExitAndResult(t *testing.T) {
	c := newAgent(t)
	p, err := c.Start(ctx(t), proto.ExecReq{Cmd: "echo out; echo err >&2; exit 3", Shell: true})
	if err != nil {
		t.Fatal(err)
	}
	if p.StartPid() <= 0 || p.Handle() == 0 {
		t.Fatalf("pid %d handle %d", p.StartPid(), p.Handle())
	}
	res, err := p.Wait(ctx(t), 0)
	if err != nil || res.Status != proto.StatusExited || res.ExitCode != 3 || string(res.Stdout) != "out\n" || string(res.Stderr) != "err\n" {
		t.Fatalf("wait: %+v %v", res, err)
	}
	again, err := p.Wait(ctx(t), time.Second)
	if err != nil || again.ExitCode != 3 || string(again.Stdout) != "out\n" {
		t.Fatalf("second wait: %+v %v", again, err)
	}
	if st, err := p.Status(ctx(t)); err != nil || st != proto.StatusExited {
		t.Fatalf("status %q %v", st, err)
	}
	if pid, err := p.Pid(ctx(t)); err != nil || pid != p.StartPid() {
		t.Fatalf("pid %d %v", pid, err)
	}
	if err := p.Signal(ctx(t), 15); !errors.Is(err, agentclient.ErrProcessExited) {
		t.Fatalf("signal after exit: %v", err)
	}
	if _, err := p.WriteStdin(ctx(t), []byte("x")); !errors.Is(err, agentclient.ErrProcessExited) {
		t.Fatalf("stdin after exit: %v", err)
	}
	if err := p.Close(ctx(t)); err != nil {
		t.Fatal(err)
	}
	if err := p.Close(ctx(t)); err != nil {
		t.Fatalf("second close: %v", err)
	}
	_, err = p.Status(ctx(t))
	wantErrno(t, err, syscall.EBADF, "EBADF")
	_, err = c.Start(ctx(t), proto.ExecReq{Cmd: "true", TimeoutMs: 5})
	if err == nil {
		t.Fatal("start accepted a timeout")
	}
	_, err = c.Start(ctx(t), proto.ExecReq{Cmd: "no-such-program-provium"})
	wantErrno(t, err, syscall.ENOENT, "ENOENT")
}

func TestProcessStdin(t *testing.T) {
	c := newAgent(t)
	p, err := c.Start(ctx(t), proto.ExecReq{Cmd: "cat"})
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"hello ", "world"} {
		if n, err := p.WriteStdin(ctx(t), []byte(s)); err != nil || n != len(s) {
			t.Fatalf("write %q: %d %v", s, n, err)
		}
	}
	if st, _ := p.Status(ctx(t)); st != proto.StatusRunning {
		t.Fatalf("cat with open stdin is %s", st)
	}
	if err := p.CloseStdin(ctx(t)); err != nil {
		t.Fatal(err)
	}
	if err := p.CloseStdin(ctx(t)); err != nil {
		t.Fatalf("close stdin twice: %v", err)
	}
	res, err := p.Wait(ctx(t), 0)
	if err != nil || string(res.Stdout) != "hello world" || res.ExitCode != 0 {
		t.Fatalf("wait %+v %v", res, err)
	}

	// Initial stdin bytes are followed by EOF, as for exec.
	p, err = c.Start(ctx(t), proto.ExecReq{Cmd: "wc -c", Shell: true, Stdin: []byte("12345")})
	if err != nil {
		t.Fatal(err)
	}
	if res, err := p.Wait(ctx(t), 0); err != nil || strings.TrimSpace(string(res.Stdout)) != "5" {
		t.Fatalf("stdin option: %+v %v", res, err)
	}

	p, err = c.Start(ctx(t), proto.ExecReq{Cmd: "sleep", Args: []string{"30"}})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close(ctx(t))
	if err := p.CloseStdin(ctx(t)); err != nil {
		t.Fatal(err)
	}
	_, err = p.WriteStdin(ctx(t), []byte("late"))
	wantErrno(t, err, syscall.EPIPE, "EPIPE")
}

func TestProcessWaitTimeoutKillsGroup(t *testing.T) {
	c := newAgent(t)
	pidFile := t.TempDir() + "/pid"
	p, err := c.Start(ctx(t), proto.ExecReq{Cmd: "echo started; sleep 60 & echo $! > " + pidFile + "; wait", Shell: true})
	if err != nil {
		t.Fatal(err)
	}
	res, err := p.Wait(ctx(t), 300*time.Millisecond)
	if err != nil || res.Status != proto.StatusTimedOut || res.ExitCode != proto.ExitCodeTimedOut || string(res.Stdout) != "started\n" {
		t.Fatalf("timed wait: %+v %v", res, err)
	}
	again, err := p.Wait(ctx(t), 0)
	if err != nil || again.Status != proto.StatusTimedOut {
		t.Fatalf("later wait: %+v %v", again, err)
	}
	if st, _ := p.Status(ctx(t)); st != proto.StatusSignalled {
		t.Fatalf("status after timeout %q", st)
	}
	b, err := os.ReadFile(pidFile)
	if err != nil {
		t.Fatal(err)
	}
	child, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	for i := 0; i < 100 && !gone(child); i++ {
		time.Sleep(20 * time.Millisecond)
	}
	if !gone(child) {
		t.Fatalf("background child %d survived the timeout", child)
	}
}

func TestProcessSignalAndStatus(t *testing.T) {
	c := newAgent(t)
	p, err := c.Start(ctx(t), proto.ExecReq{Cmd: "sleep", Args: []string{"30"}})
	if err != nil {
		t.Fatal(err)
	}
	if st, err := p.Status(ctx(t)); err != nil || st != proto.StatusRunning {
		t.Fatalf("status %q %v", st, err)
	}
	if err := p.Signal(ctx(t), int(syscall.SIGUSR1)); err != nil {
		t.Fatal(err)
	}
	res, err := p.Wait(ctx(t), 0)
	if err != nil || res.Status != proto.StatusSignalled || res.Signal != int(syscall.SIGUSR1) || res.ExitCode != proto.ExitCodeSignalled {
		t.Fatalf("wait %+v %v", res, err)
	}
	if st, _ := p.Status(ctx(t)); st != proto.StatusSignalled {
		t.Fatalf("status %q", st)
	}
}

func TestProcessCloseEscalates(t *testing.T) {
	c := newAgent(t)
	// The shell ignores SIGTERM: close must fall back to SIGKILL.
	p, err := c.Start(ctx(t), proto.ExecReq{Cmd: "trap '' TERM; echo ready; while :; do sleep 1; done", Shell: true})
	if err != nil {
		t.Fatal(err)
	}
	out, err := p.Stdout(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	if b, err := out.Next(ctx(t)); err != nil || string(b) != "ready\n" {
		t.Fatalf("ready: %q %v", b, err)
	}
	start := time.Now()
	if err := p.Close(ctx(t)); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Fatalf("close took %v", d)
	}
	if !gone(p.StartPid()) {
		t.Fatal("process survived close")
	}
	// The output stream ends once the process is gone.
	for {
		if _, err := out.Next(ctx(t)); err != nil {
			if !errors.Is(err, io.EOF) {
				t.Fatalf("stream after close: %v", err)
			}
			break
		}
	}
}

func TestProcessOutputStreams(t *testing.T) {
	c := newAgent(t)
	const lines = 10000
	var want bytes.Buffer
	for i := 1; i <= lines; i++ {
		fmt.Fprintf(&want, "%d\n", i)
	}
	// A slow start lets the first subscriber attach before any output.
	p, err := c.Start(ctx(t), proto.ExecReq{Cmd: fmt.Sprintf("read go; seq 1 %d; echo done >&2", lines), Shell: true})
	if err != nil {
		t.Fatal(err)
	}
	live, err := p.Stdout(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	defer live.Close()
	if _, err := p.WriteStdin(ctx(t), []byte("go\n")); err != nil {
		t.Fatal(err)
	}
	if got := drain(t, live); !bytes.Equal(got, want.Bytes()) {
		t.Fatalf("live stdout: %d bytes, want %d", len(got), want.Len())
	}
	res, err := p.Wait(ctx(t), 0)
	if err != nil || !bytes.Equal(res.Stdout, want.Bytes()) {
		t.Fatalf("wait: %v", err)
	}
	// A subscriber after exit replays from byte 0, each independently.
	for i := 0; i < 2; i++ {
		s, err := p.Stdout(ctx(t))
		if err != nil {
			t.Fatal(err)
		}
		if got := drain(t, s); !bytes.Equal(got, want.Bytes()) {
			t.Fatalf("replay %d: %d bytes", i, len(got))
		}
		s.Close()
	}
	s, err := p.Stderr(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	if got := drain(t, s); string(got) != "done\n" {
		t.Fatalf("stderr %q", got)
	}
	s.Close()
	if _, err := s.Next(ctx(t)); !errors.Is(err, agentclient.ErrStreamClosed) {
		t.Fatalf("next after close: %v", err)
	}
}

func TestProcessDiesWithSession(t *testing.T) {
	srv := &agent.Server{}
	h := startSession(t, srv)
	p, err := h.c.Start(ctx(t), proto.ExecReq{Cmd: "sleep", Args: []string{"60"}})
	if err != nil {
		t.Fatal(err)
	}
	h.stop(t)
	if !gone(p.StartPid()) {
		t.Fatalf("process %d outlived its session", p.StartPid())
	}
}

// children counts live (and zombie) processes whose parent is this one.
func children(t *testing.T) int {
	t.Helper()
	ents, err := os.ReadDir("/proc")
	if err != nil {
		t.Fatal(err)
	}
	me := os.Getpid()
	n := 0
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		s := string(b)
		i := strings.LastIndexByte(s, ')')
		f := strings.Fields(s[i+1:])
		if len(f) > 1 && f[1] == strconv.Itoa(me) && pid != me {
			n++
		}
	}
	return n
}

func TestProcessNoLeakAfterManyCycles(t *testing.T) {
	if testing.Short() {
		t.Skip("1000 process cycles")
	}
	c := newAgent(t)
	beforeG, beforeC := runtime.NumGoroutine(), children(t)
	for i := 0; i < 1000; i++ {
		req := proto.ExecReq{Cmd: "sleep", Args: []string{"30"}}
		if i%2 == 0 {
			req = proto.ExecReq{Cmd: "echo", Args: []string{strconv.Itoa(i)}}
		}
		p, err := c.Start(ctx(t), req)
		if err != nil {
			t.Fatalf("cycle %d: %v", i, err)
		}
		if i%2 == 0 {
			if res, err := p.Wait(ctx(t), 0); err != nil || string(res.Stdout) != strconv.Itoa(i)+"\n" {
				t.Fatalf("cycle %d: %+v %v", i, res, err)
			}
		}
		if err := p.Close(ctx(t)); err != nil {
			t.Fatalf("cycle %d close: %v", i, err)
		}
	}
	var g, ch int
	for i := 0; i < 100; i++ {
		if g, ch = runtime.NumGoroutine(), children(t); g <= beforeG && ch <= beforeC {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	buf := make([]byte, 1<<20)
	t.Fatalf("after 1000 cycles: goroutines %d -> %d, child processes %d -> %d\n%s", beforeG, g, beforeC, ch, buf[:runtime.Stack(buf, true)])
}
