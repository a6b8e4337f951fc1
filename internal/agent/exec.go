package agent

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/provium/provium/internal/proto"
)

// pipeDrainDelay is how long run waits, after the command itself exited,
// for background children still holding its stdout/stderr open. Without it
// `run("daemon &")` would block until the daemon exits.
const pipeDrainDelay = 500 * time.Millisecond

// defaultPath is used for lookup when neither the request nor the agent
// environment has PATH (a PID-1 agent starts with an empty environment).
const defaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// cappedBuffer keeps the first max bytes written and counts the rest, so a
// chatty command never blocks on a full pipe and the host learns how much
// it did not get.
type cappedBuffer struct {
	buf     bytes.Buffer
	max     int
	dropped int64
}

func (c *cappedBuffer) Write(p []byte) (int, error) {
	keep := min(len(p), max(c.max-c.buf.Len(), 0))
	c.buf.Write(p[:keep])
	c.dropped += int64(len(p) - keep)
	return len(p), nil
}

// mergeEnv applies overrides over base (KEY=VALUE list), replacing keys.
func mergeEnv(base []string, overrides map[string]string) []string {
	out := make([]string, 0, len(base)+len(overrides))
	for _, kv := range base {
		k, _, _ := strings.Cut(kv, "=")
		if _, ok := overrides[k]; ok {
			continue
		}
		out = append(out, kv)
	}
	for k, v := range overrides {
		out = append(out, k+"="+v)
	}
	return out
}

func envValue(env []string, key string) (string, bool) {
	for i := len(env) - 1; i >= 0; i-- {
		if k, v, ok := strings.Cut(env[i], "="); ok && k == key {
			return v, true
		}
	}
	return "", false
}

// lookPath resolves name in the command's PATH (not the agent's), as a
// shell in the guest would.
func lookPath(name string, env []string) (string, error) {
	if name == "" {
		return "", proto.ErrnoError(unix.ENOENT)
	}
	if strings.Contains(name, "/") {
		return name, nil
	}
	path, ok := envValue(env, "PATH")
	if !ok {
		path = defaultPath
	}
	denied := false
	for _, dir := range strings.Split(path, ":") {
		if dir == "" {
			dir = "."
		}
		p := dir + "/" + name
		var st unix.Stat_t
		if unix.Stat(p, &st) != nil || st.Mode&unix.S_IFMT == unix.S_IFDIR {
			continue
		}
		if unix.Access(p, unix.X_OK) == nil {
			return p, nil
		}
		denied = true
	}
	if denied {
		return "", proto.ErrnoError(unix.EACCES)
	}
	return "", proto.ErrnoError(unix.ENOENT)
}

// prepareCmd resolves an ExecReq into a command in its own process group,
// with no stdio attached yet.
func prepareCmd(r proto.ExecReq) (*exec.Cmd, error) {
	var env []string
	if !r.EnvClear {
		env = os.Environ()
	}
	env = mergeEnv(env, r.Env)

	var path string
	var argv []string
	if r.Shell {
		if len(r.Args) > 0 {
			return nil, &proto.Error{Message: "exec: shell form takes no args"}
		}
		path, argv = "/bin/sh", []string{"/bin/sh", "-c", r.Cmd}
	} else {
		p, err := lookPath(r.Cmd, env)
		if err != nil {
			return nil, err
		}
		path, argv = p, append([]string{r.Cmd}, r.Args...)
	}
	cwd := r.Cwd
	if cwd == "" {
		cwd = "/"
	}
	return &exec.Cmd{
		Path:        path,
		Args:        argv,
		Env:         env,
		Dir:         cwd,
		SysProcAttr: &syscall.SysProcAttr{Setpgid: true},
	}, nil
}

// runExec runs a command to completion in its own process group. On timeout
// or when ctx ends (session gone) the whole group is SIGKILLed, so children
// of a shell die with it. start starts the prepared command (a worker forks
// from its syscall thread so children get that thread's credentials).
func runExec(ctx context.Context, r proto.ExecReq, start func(*exec.Cmd) error) (proto.ExecResult, error) {
	cmd, err := prepareCmd(r)
	if err != nil {
		return proto.ExecResult{}, err
	}
	stdout := &cappedBuffer{max: proto.MaxCapture}
	stderr := &cappedBuffer{max: proto.MaxCapture}
	cmd.Stdin = bytes.NewReader(r.Stdin)
	cmd.Stdout = stdout
	cmd.Stderr = stderr
	cmd.WaitDelay = pipeDrainDelay
	if err := start(cmd); err != nil {
		return proto.ExecResult{}, err
	}
	pgid := cmd.Process.Pid
	var timedOut atomic.Bool
	killGroup := func() { _ = unix.Kill(-pgid, unix.SIGKILL) }

	done := make(chan struct{})
	defer close(done)
	var timeout <-chan time.Time
	if r.TimeoutMs > 0 {
		t := time.NewTimer(time.Duration(r.TimeoutMs) * time.Millisecond)
		defer t.Stop()
		timeout = t.C
	}
	go func() {
		select {
		case <-timeout:
			timedOut.Store(true)
			killGroup()
		case <-ctx.Done():
			killGroup()
		case <-done:
		}
	}()

	err = cmd.Wait()
	var exitErr *exec.ExitError
	if err != nil && !errors.As(err, &exitErr) && !errors.Is(err, exec.ErrWaitDelay) {
		return proto.ExecResult{}, err
	}
	ws, _ := cmd.ProcessState.Sys().(syscall.WaitStatus)
	res := execResult(ws, timedOut.Load(), stdout.buf.Bytes(), stderr.buf.Bytes())
	res.StdoutDropped, res.StderrDropped = stdout.dropped, stderr.dropped
	return res, nil
}
