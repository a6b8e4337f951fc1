package agent

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/hashicorp/yamux"

	"github.com/provium/provium/internal/proto"
)

// WorkerExeName is the executor binary's name, installed next to the agent.
const WorkerExeName = "provium-worker"

// workerExitGrace bounds the wait for a worker's executor to exit once its
// session is over (its children are terminated first, up to closeGrace).
const workerExitGrace = closeGrace + 3*time.Second

func (s *Server) workerExe() (string, error) {
	if s.WorkerExe != "" {
		return s.WorkerExe, nil
	}
	exe, err := os.Executable()
	if err != nil {
		return "", fmt.Errorf("worker_spawn: find agent binary: %w", err)
	}
	return filepath.Join(filepath.Dir(exe), WorkerExeName), nil
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
