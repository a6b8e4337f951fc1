package agentclient

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/provium/provium/internal/proto"
)

// Worker is a separate guest process (a re-exec of the agent) with its own
// credentials, fd table and cwd. It embeds a full Client whose session is
// relayed by the agent, so every operation (Exec, Start, Open, Syscall on
// the worker's main syscall thread, SyscallAsync on a new worker thread,
// streams …) runs inside the worker. Its Pendings fail with an error
// wrapping ErrClosed once the worker is closed.
type Worker struct {
	*Client
	pid int
}

// SpawnWorker starts a worker process and opens a session with it. When
// the guest has no worker executor beside the agent (an image that copied
// only the agent out of the overlay), it gives the agent the host's copy
// (SetWorkerExe) and tries once more; the agent keeps it until it exits.
func (c *Client) SpawnWorker(ctx context.Context) (*Worker, error) {
	w, err := c.spawnWorker(ctx)
	if err == nil || !isNoWorkerExe(err) {
		return w, err
	}
	c.mu.Lock()
	exe := c.workerExe
	c.mu.Unlock()
	if exe == nil {
		return nil, err
	}
	bin, berr := exe(ctx)
	if berr != nil {
		return nil, fmt.Errorf("%w; the host has no worker executor to give: %v", err, berr)
	}
	if ierr := c.call(ctx, proto.OpWorkerExe, proto.WorkerExeReq{Content: bin}, nil); ierr != nil {
		return nil, fmt.Errorf("%w; giving the agent the host's worker executor failed: %w", err, ierr)
	}
	return c.spawnWorker(ctx)
}

// isNoWorkerExe reports whether err is the agent's proto.NoWorkerExe.
func isNoWorkerExe(err error) bool {
	var ae *Error
	return errors.As(err, &ae) && strings.HasPrefix(ae.Message, proto.NoWorkerExe)
}

func (c *Client) spawnWorker(ctx context.Context) (*Worker, error) {
	var resp proto.WorkerSpawnResp
	st, err := c.openLong(ctx, proto.OpWorkerSpawn, proto.Empty{}, &resp)
	if err != nil {
		return nil, err
	}
	wc, err := Dial(ctx, st) // owns st from here, closing it on failure
	if err != nil {
		return nil, fmt.Errorf("agentclient: worker %d: %w", resp.Pid, err)
	}
	return &Worker{Client: wc, pid: resp.Pid}, nil
}

// Pid is the worker process's guest pid.
func (w *Worker) Pid() int { return w.pid }

// Kill sends sig to the worker process itself, as upstream's worker:kill
// does; its children are not signalled. A worker process that already
// exited is no error.
func (w *Worker) Kill(ctx context.Context, sig int) error {
	return w.call(ctx, proto.OpWorkerKill, proto.SignalReq{Signal: sig}, nil)
}

// Join ends the worker process (one still running kills its children and
// exits) and returns its exit status: the exit code, or 128 + the signal
// that ended it. The session stays open until Close, but every operation
// that needs the worker process fails from then on; the processes it had
// started were killed with it and can still be waited for.
func (w *Worker) Join(ctx context.Context) (int, error) {
	var out proto.WorkerJoinResp
	err := w.call(ctx, proto.OpWorkerJoin, proto.Empty{}, &out)
	return out.Status, err
}

// Close terminates the worker's children (SIGTERM, up to 2 s, SIGKILL) and
// ends the worker process; idempotent.
func (w *Worker) Close(ctx context.Context) error {
	err := w.call(ctx, proto.OpWorkerShutdown, proto.Empty{}, nil)
	w.Client.Close()
	if err != nil && !isClosed(err) {
		return err
	}
	return nil
}
