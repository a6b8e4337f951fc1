package agent

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/hashicorp/yamux"
	"golang.org/x/sys/unix"

	"github.com/provium/provium/internal/proto"
)

// WorkerExeName is the executor binary's name, installed next to the agent.
const WorkerExeName = "provium-worker"

// workerExitGrace bounds the wait for a worker's executor to exit once its
// session is over (its children are terminated first, up to closeGrace).
const workerExitGrace = closeGrace + 3*time.Second

// workerExe is the executor to start: Server.WorkerExe, else the one
// beside the agent, else the host's copy it gave with OpWorkerExe.
func (s *Server) workerExe() (string, error) {
	if s.WorkerExe != "" {
		return s.WorkerExe, nil
	}
	exe, err := os.Executable()
	if err != nil {
		return "", fmt.Errorf("worker_spawn: find agent binary: %w", err)
	}
	beside := filepath.Join(filepath.Dir(exe), WorkerExeName)
	if _, err := os.Stat(beside); !errors.Is(err, os.ErrNotExist) {
		return beside, nil // a start error names any other problem
	}
	s.workerMu.Lock()
	mem := s.workerMem
	s.workerMu.Unlock()
	if mem != nil {
		// The agent's own fd table: a child's fd numbers change before
		// its exec (ExtraFiles), the agent's do not.
		return fmt.Sprintf("/proc/%d/fd/%d", os.Getpid(), mem.Fd()), nil
	}
	return "", &proto.Error{Errno: int(unix.ENOENT), Name: "ENOENT",
		Message: fmt.Sprintf("%s at %s (the host sends its copy)", proto.NoWorkerExe, beside)}
}

// installWorkerExe keeps the host's worker executor in a sealed memfd for
// the agent's lifetime: nothing is written to the guest's filesystems. A
// second copy (two spawns raced) is dropped.
func (s *Server) installWorkerExe(content []byte) error {
	if !bytes.HasPrefix(content, []byte("\x7fELF")) {
		return &proto.Error{Message: fmt.Sprintf("worker_exe: the content (%d bytes) is not an ELF executable", len(content))}
	}
	s.workerMu.Lock()
	defer s.workerMu.Unlock()
	if s.workerMem != nil {
		return nil
	}
	f, err := sealedMemfd(WorkerExeName, content)
	if err != nil {
		return fmt.Errorf("worker_exe: %w", err)
	}
	s.workerMem = f
	return nil
}

// sealedMemfd makes an executable memfd holding content that nobody can
// change afterwards.
func sealedMemfd(name string, content []byte) (*os.File, error) {
	const flags = unix.MFD_CLOEXEC | unix.MFD_ALLOW_SEALING
	// MFD_EXEC (Linux 6.3+) says we mean to execute it, so the kernel
	// does not warn; older kernels refuse the flag.
	fd, err := unix.MemfdCreate(name, flags|unix.MFD_EXEC)
	if errors.Is(err, unix.EINVAL) {
		fd, err = unix.MemfdCreate(name, flags)
	}
	if err != nil {
		return nil, fmt.Errorf("memfd_create: %w", err)
	}
	f := os.NewFile(uintptr(fd), name)
	if _, err := f.Write(content); err != nil {
		f.Close()
		return nil, fmt.Errorf("write memfd: %w", err)
	}
	seals := unix.F_SEAL_SEAL | unix.F_SEAL_SHRINK | unix.F_SEAL_GROW | unix.F_SEAL_WRITE
	if _, err := unix.FcntlInt(f.Fd(), unix.F_ADD_SEALS, seals); err != nil {
		f.Close()
		return nil, fmt.Errorf("seal memfd: %w", err)
	}
	return f, nil
}

// serveWorkerSpawn starts a worker's executor, answers its pid, and then
// serves the worker's own session on the stream: every syscall, command
// and open of that session runs in the executor. The executor is ended
// and reaped before it returns.
func (s *Server) serveWorkerSpawn(ctx context.Context, st *yamux.Stream) error {
	exe, err := s.workerExe()
	if err != nil {
		return writeErr(st, err)
	}
	wp, err := startWorkerProc(exe)
	if err != nil {
		return writeErr(st, fmt.Errorf("worker_spawn: %w", err))
	}
	defer wp.close()
	// The executor sets its signal dispositions and mask before it serves
	// its first call. Answer the spawn only once it has served one, so the
	// worker a test gets is already in its final state (its
	// /proc/<handle>/status, say) and a start that died is reported here.
	if err := wp.ready(ctx); err != nil {
		return writeErr(st, fmt.Errorf("worker_spawn: %w", err))
	}
	if err := writeOK(st, proto.WorkerSpawnResp{Pid: wp.Pid()}); err != nil {
		return err
	}
	ws := &Server{
		AgentVersion: s.AgentVersion,
		GuestOS:      s.GuestOS,
		Logf:         s.Logf,
		CallIdle:     s.CallIdle,
		wp:           wp,
	}
	// A yamux Close is a half-close that leaves a blocked Read waiting
	// for the peer; ending the agent's session must end this one too.
	stop := context.AfterFunc(ctx, func() { _ = st.SetReadDeadline(time.Now()); st.Close() })
	defer stop()
	return ws.ServeSession(ctx, st)
}
