package agent

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"time"

	"github.com/hashicorp/yamux"
	"golang.org/x/sys/unix"

	"github.com/provium/provium/internal/proto"
)

// WorkerFlag is the command-line flag that makes the agent binary a worker
// serving one session on the inherited socket fd that follows it.
const WorkerFlag = "--worker-fd"

// workerFD is the fd number the worker's socket gets in the child.
const workerFD = 3

// workerExitGrace bounds the wait for a worker to exit once its session
// is over (it terminates its own children first, up to closeGrace).
const workerExitGrace = closeGrace + 3*time.Second

func (s *Server) workerExe() (string, error) {
	if s.WorkerExe != "" {
		return s.WorkerExe, nil
	}
	exe, err := os.Executable()
	if err != nil {
		return "", fmt.Errorf("worker_spawn: find agent binary: %w", err)
	}
	return exe, nil
}

// serveWorkerSpawn starts a worker process on a socketpair, answers its
// pid, and then relays bytes between the stream and the worker until
// either side ends; the worker is reaped before it returns.
func (s *Server) serveWorkerSpawn(ctx context.Context, st *yamux.Stream) error {
	exe, err := s.workerExe()
	if err != nil {
		return writeErr(st, err)
	}
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return writeErr(st, fmt.Errorf("worker_spawn: socketpair: %w", err))
	}
	// Non-blocking before NewFile so the runtime poller serves it and
	// Close wakes a blocked Read.
	if err := unix.SetNonblock(fds[0], true); err != nil {
		unix.Close(fds[0])
		unix.Close(fds[1])
		return writeErr(st, fmt.Errorf("worker_spawn: %w", err))
	}
	local := os.NewFile(uintptr(fds[0]), "worker-socket")
	remote := os.NewFile(uintptr(fds[1]), "worker-socket-child")
	cmd := exec.Command(exe, WorkerFlag, strconv.Itoa(workerFD))
	cmd.ExtraFiles = []*os.File{remote} // fd 3 in the child
	cmd.Stderr = os.Stderr
	cmd.Dir = "/"
	err = cmd.Start()
	remote.Close()
	if err != nil {
		local.Close()
		return writeErr(st, fmt.Errorf("worker_spawn: start %s: %w", exe, err))
	}
	exited := make(chan struct{})
	go func() {
		defer close(exited)
		_ = cmd.Wait()
	}()
	defer func() {
		t := time.NewTimer(workerExitGrace)
		defer t.Stop()
		select {
		case <-exited:
		case <-t.C:
			_ = cmd.Process.Kill()
			<-exited
		}
	}()
	if err := writeOK(st, proto.WorkerSpawnResp{Pid: cmd.Process.Pid}); err != nil {
		local.Close()
		return err
	}
	relay(ctx, st, local)
	return nil
}

// relay copies both ways between a and b until one side ends or ctx does,
// then closes both and waits for both copies.
func relay(ctx context.Context, a *yamux.Stream, b *os.File) {
	var once sync.Once
	closeBoth := func() {
		once.Do(func() {
			// A yamux Close is a half-close that leaves a blocked Read
			// waiting for the peer; the deadline ends it now.
			_ = a.SetReadDeadline(time.Now())
			a.Close()
			b.Close()
		})
	}
	stop := context.AfterFunc(ctx, closeBoth)
	defer stop()
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		_, _ = io.Copy(b, a)
		closeBoth()
	}()
	_, _ = io.Copy(a, b)
	closeBoth()
	wg.Wait()
}

// ServeWorker is the body of a worker process (the agent binary started
// with WorkerFlag): it serves exactly one session on fd, with srv's
// operations plus the worker ones, and returns when the session ends
// (every child it started is then killed).
func ServeWorker(ctx context.Context, srv *Server, fd int) error {
	if err := unix.SetNonblock(fd, true); err != nil {
		return fmt.Errorf("worker: fd %d: %w", fd, err)
	}
	unix.CloseOnExec(fd)
	conn := os.NewFile(uintptr(fd), "worker-socket")
	srv.worker = true
	defer srv.Close()
	return srv.ServeSession(ctx, conn)
}
