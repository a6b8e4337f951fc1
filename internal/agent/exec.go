package agent

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"sync/atomic"
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

// runExec runs a command to completion in its own process group. On timeout
// or when ctx ends (session gone) the whole group is SIGKILLed, so children
// of a shell die with it. Once the command exited, background children
// still holding its stdout/stderr get pipeDrainDelay before the pipes are
// closed. launch starts it (a worker's executor, or the agent itself).
func runExec(ctx context.Context, r proto.ExecReq, launch launcher, inheritCwd bool) (proto.ExecResult, error) {
	spec, err := prepareSpec(r, inheritCwd)
	if err != nil {
		return proto.ExecResult{}, err
	}
	var pipes [6]*os.File // stdin r/w, stdout r/w, stderr r/w
	closeAll := func() {
		for _, f := range pipes {
			if f != nil {
				f.Close()
			}
		}
	}
	for i := 0; i < 6; i += 2 {
		if pipes[i], pipes[i+1], err = os.Pipe(); err != nil {
			closeAll()
			return proto.ExecResult{}, fmt.Errorf("exec: pipe: %w", err)
		}
	}
	inR, inW, outR, outW, errR, errW := pipes[0], pipes[1], pipes[2], pipes[3], pipes[4], pipes[5]
	c, err := launch(spec, [3]*os.File{inR, outW, errW})
	// The child has its copies; ours would keep the pipes from reaching EOF.
	inR.Close()
	outW.Close()
	errW.Close()
	if err != nil {
		inW.Close()
		outR.Close()
		errR.Close()
		return proto.ExecResult{}, err
	}
	stdout := &cappedBuffer{max: proto.MaxCapture}
	stderr := &cappedBuffer{max: proto.MaxCapture}
	var copies sync.WaitGroup
	copies.Add(3)
	go func() {
		defer copies.Done()
		_, _ = io.Copy(stdout, outR)
	}()
	go func() {
		defer copies.Done()
		_, _ = io.Copy(stderr, errR)
	}()
	go func() {
		defer copies.Done()
		// The given bytes, then EOF. A command that never reads its stdin
		// is unblocked by the close below.
		_, _ = inW.Write(r.Stdin)
		inW.Close()
	}()

	pgid := c.Pid()
	var timedOut atomic.Bool
	killGroup := func() { _ = unix.Kill(-pgid, unix.SIGKILL) }
	done := make(chan struct{})
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
	ws, err := c.Wait()
	close(done)
	deadline := time.Now().Add(pipeDrainDelay)
	_ = outR.SetReadDeadline(deadline)
	_ = errR.SetReadDeadline(deadline)
	_ = inW.SetWriteDeadline(deadline)
	copies.Wait()
	inW.Close()
	outR.Close()
	errR.Close()
	if err != nil {
		return proto.ExecResult{}, err
	}
	res := execResult(ws, timedOut.Load(), stdout.buf.Bytes(), stderr.buf.Bytes())
	res.StdoutDropped, res.StderrDropped = stdout.dropped, stderr.dropped
	return res, nil
}
