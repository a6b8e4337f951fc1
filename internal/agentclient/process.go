package agentclient

import (
	"context"
	"errors"
	"syscall"
	"time"

	"github.com/provium/provium/internal/proto"
)

// ErrProcessExited is returned by Signal and WriteStdin once the process
// has exited.
var ErrProcessExited = errors.New("agentclient: process has exited")

// Process is a command started with Start. It belongs to the session: the
// agent kills it when the session ends.
type Process struct {
	c      *Client
	handle uint64
	pid    int
}

// Start starts a command and returns at once (same forms and options as
// Exec; req.TimeoutMs must be 0 — pass a timeout to Wait instead).
func (c *Client) Start(ctx context.Context, req proto.ExecReq) (*Process, error) {
	var resp proto.ProcStartResp
	if err := c.call(ctx, proto.OpProcStart, req, &resp); err != nil {
		return nil, err
	}
	return &Process{c: c, handle: resp.Handle, pid: resp.Pid}, nil
}

// Handle is the agent's stable handle number for the process.
func (p *Process) Handle() uint64 { return p.handle }

// StartPid is the pid reported at start (no round trip).
func (p *Process) StartPid() int { return p.pid }

// Pid asks the agent for the process's pid.
func (p *Process) Pid(ctx context.Context) (int, error) {
	var st proto.ProcStatusResp
	err := p.c.call(ctx, proto.OpProcStatus, proto.HandleReq{Handle: p.handle}, &st)
	return st.Pid, err
}

// Status is proto.StatusRunning, proto.StatusExited or
// proto.StatusSignalled (also for a process killed by a Wait timeout),
// without blocking.
func (p *Process) Status(ctx context.Context) (string, error) {
	var st proto.ProcStatusResp
	err := p.c.call(ctx, proto.OpProcStatus, proto.HandleReq{Handle: p.handle}, &st)
	return st.Status, err
}

// Wait waits for the process to exit and its output to drain; timeout 0
// waits forever. On timeout the agent SIGKILLs the process group and the
// result has Status proto.StatusTimedOut. Later Waits return the same
// result. A cancelled ctx only abandons this wait.
func (p *Process) Wait(ctx context.Context, timeout time.Duration) (proto.ExecResult, error) {
	req := proto.ProcWaitReq{Handle: p.handle}
	if timeout > 0 {
		req.TimeoutMs = max(int64((timeout+time.Millisecond-1)/time.Millisecond), 1)
	}
	var res proto.ExecResult
	err := p.c.call(ctx, proto.OpProcWait, req, &res)
	return res, err
}

// Signal sends any signal number to the process (not its group).
func (p *Process) Signal(ctx context.Context, sig int) error {
	return exited(p.c.call(ctx, proto.OpProcSignal, proto.ProcSignalReq{Handle: p.handle, Signal: sig}, nil))
}

// WriteStdin writes to the process's stdin and returns the bytes written.
// After CloseStdin it fails with EPIPE.
func (p *Process) WriteStdin(ctx context.Context, data []byte) (int, error) {
	if data == nil {
		data = []byte{}
	}
	var out proto.CountResp
	err := p.c.call(ctx, proto.OpProcStdin, proto.ProcStdinReq{Handle: p.handle, Data: data}, &out)
	return out.N, exited(err)
}

// CloseStdin closes the process's stdin; idempotent.
func (p *Process) CloseStdin(ctx context.Context) error {
	return p.c.call(ctx, proto.OpProcCloseStdin, proto.HandleReq{Handle: p.handle}, nil)
}

// Stdout replays the process's stdout from byte 0 and follows it; the
// stream ends with io.EOF after the process exited and the output drained.
// Any number of subscribers may read it, each from byte 0.
func (p *Process) Stdout(ctx context.Context) (*Stream, error) {
	return p.output(ctx, proto.OutputStdout)
}

// Stderr is Stdout for stderr.
func (p *Process) Stderr(ctx context.Context) (*Stream, error) {
	return p.output(ctx, proto.OutputStderr)
}

func (p *Process) output(ctx context.Context, which string) (*Stream, error) {
	st, err := p.c.openLong(ctx, proto.OpProcStream, proto.ProcStreamReq{Handle: p.handle, Output: which}, nil)
	if err != nil {
		return nil, err
	}
	return newStream(st), nil
}

// Close ends the process if it still runs (SIGTERM, up to 2 s, SIGKILL of
// its group), reaps it and releases the handle; later calls on p fail
// with EBADF. Closing twice is a no-op.
func (p *Process) Close(ctx context.Context) error {
	return p.c.call(ctx, proto.OpProcClose, proto.HandleReq{Handle: p.handle}, nil)
}

func exited(err error) error {
	if errors.Is(err, syscall.ESRCH) {
		return ErrProcessExited
	}
	return err
}
