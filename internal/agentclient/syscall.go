package agentclient

import (
	"context"
	"errors"
	"fmt"
	"syscall"
	"time"

	"github.com/provium/provium/internal/proto"
)

// ErrAwaitTimeout is returned by Pending.Await when the timeout passed
// first; the call is still pending and may be awaited again.
var ErrAwaitTimeout = errors.New("agentclient: await timed out")

// Syscall runs one raw system call on an agent thread of its own that ends
// with the call: fds it opens stay for later calls, per-thread state it
// changes (credentials, signal mask) does not. Buffer indexes in
// req.Nested are 0-based.
func (c *Client) Syscall(ctx context.Context, req proto.SyscallReq) (proto.SyscallResult, error) {
	var res proto.SyscallResult
	err := c.call(ctx, proto.OpSyscall, req, &res)
	return res, err
}

// Pending is a syscall running on its own agent thread (SyscallAsync).
type Pending struct {
	c  *Client
	id uint64
}

// SyscallAsync starts req on a new agent thread and returns at once.
func (c *Client) SyscallAsync(ctx context.Context, req proto.SyscallReq) (*Pending, error) {
	var resp proto.PendingResp
	if err := c.call(ctx, proto.OpSyscallAsync, req, &resp); err != nil {
		return nil, err
	}
	return &Pending{c: c, id: resp.ID}, nil
}

// ID is the agent's handle of the pending call.
func (p *Pending) ID() uint64 { return p.id }

// Await waits for the call (timeout 0 = forever). A timeout returns
// ErrAwaitTimeout; a second Await after completion returns an *Error
// "handle already awaited". On a worker that was closed it returns an
// error wrapping ErrClosed.
func (p *Pending) Await(ctx context.Context, timeout time.Duration) (proto.SyscallResult, error) {
	req := proto.AwaitReq{ID: p.id}
	if timeout > 0 {
		req.TimeoutMs = max(int64((timeout+time.Millisecond-1)/time.Millisecond), 1)
	}
	var resp proto.AwaitResp
	if err := p.c.call(ctx, proto.OpSyscallAwait, req, &resp); err != nil {
		return proto.SyscallResult{}, err
	}
	if !resp.Done || resp.Result == nil {
		return proto.SyscallResult{}, ErrAwaitTimeout
	}
	return *resp.Result, nil
}

// Done reports, without blocking, whether the call finished.
func (p *Pending) Done(ctx context.Context) (bool, error) {
	var resp proto.DoneResp
	err := p.c.call(ctx, proto.OpSyscallDone, proto.PendingReq{ID: p.id}, &resp)
	return resp.Done, err
}

// Ioctl runs ioctl(fd, cmd, data) like Syscall; see proto.IoctlReq.
func (c *Client) Ioctl(ctx context.Context, req proto.IoctlReq) (proto.IoctlResp, error) {
	var res proto.IoctlResp
	err := c.call(ctx, proto.OpIoctl, req, &res)
	return res, err
}

// ReadMem reads n (≤ proto.MaxReadMem) bytes at addr in the agent's
// address space. An unreadable range gives a non-zero errno and no error.
func (c *Client) ReadMem(ctx context.Context, addr uint64, n int) ([]byte, syscall.Errno, error) {
	if n < 0 || n > proto.MaxReadMem {
		return nil, 0, fmt.Errorf("agentclient: read_mem: len %d out of range (0..%d)", n, proto.MaxReadMem)
	}
	var res proto.ReadMemResp
	if err := c.call(ctx, proto.OpReadMem, proto.ReadMemReq{Addr: addr, Len: n}, &res); err != nil {
		return nil, 0, err
	}
	if res.Errno != 0 {
		return nil, syscall.Errno(res.Errno), nil
	}
	if res.Data == nil {
		res.Data = []byte{}
	}
	return res.Data, 0, nil
}
