// Package agent implements the guest side of the host↔agent protocol: a
// yamux server session over any byte stream (the virtio-serial port in a VM,
// a pipe or unix socket in tests) and the operation handlers behind it.
package agent

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/yamux"
	"golang.org/x/sys/unix"

	"github.com/provium/provium/internal/proto"
)

// Server answers host sessions. The zero value is usable; fields only
// describe the agent in its Hello and where diagnostics go.
type Server struct {
	// AgentVersion is reported in Hello.
	AgentVersion string
	// GuestOS is reported in Hello ("linux" when empty).
	GuestOS string
	// Logf receives diagnostics; nil discards them. A PID-1 agent has no
	// better place than the console, so the caller decides.
	Logf func(format string, args ...any)
	// WorkerExe is the worker executor (cmd/provium-worker) started for
	// spawn_worker; empty means provium-worker next to this executable.
	WorkerExe string
	// CallIdle is how long a call goroutine waits for the next call before
	// it ends (see callRunner); 0 means 10 s.
	CallIdle time.Duration

	// wp is the executor of the worker whose session this server serves
	// (nil: the agent's own session).
	wp *workerProc

	// workerMem is the host's worker executor (OpWorkerExe) when none is
	// beside the agent.
	workerMu  sync.Mutex
	workerMem *os.File
}

// YamuxConfig is the session configuration both ends use. Keepalives are off
// because a paused or snapshotted VM must not make either side tear the
// session down; liveness is the VM monitor's job. Writes get a generous
// timeout because TCG guests can be slow to drain the port.
func YamuxConfig() *yamux.Config {
	cfg := yamux.DefaultConfig()
	cfg.EnableKeepAlive = false
	cfg.ConnectionWriteTimeout = 60 * time.Second
	cfg.MaxStreamWindowSize = 1 << 20
	cfg.LogOutput = io.Discard
	return cfg
}

// features lists what this agent implements, reported in Hello so the host
// can refuse a test needing something missing with a clear message.
var features = []string{
	proto.OpExec, proto.OpReadFile, proto.OpWriteFile, proto.OpStat, proto.OpListdir,
	proto.OpMkdir, proto.OpUnlink, proto.OpRename, proto.OpOpen, proto.OpBatch,
	proto.OpProcStart, proto.OpProcStream, proto.OpTailFile, proto.OpFdStream, proto.OpFileTail,
	proto.OpSyscall, proto.OpSyscallAsync, proto.OpIoctl, proto.OpReadMem, proto.OpWorkerSpawn,
	proto.OpWorkerExe, proto.OpClockGet, proto.OpNetConfig, proto.OpHWRNGSync,
}

func (s *Server) logf(format string, args ...any) {
	if s.Logf != nil {
		s.Logf(format, args...)
	}
}

func (s *Server) hello() proto.Hello {
	h := proto.Hello{
		Protocol:     proto.ProtocolVersion,
		AgentVersion: s.AgentVersion,
		GuestOS:      s.GuestOS,
		Features:     append([]string(nil), features...),
	}
	if h.GuestOS == "" {
		h.GuestOS = "linux"
	}
	var u unix.Utsname
	if err := unix.Uname(&u); err == nil {
		h.Kernel = unix.ByteSliceToString(u.Release[:])
	}
	return h
}

// ServeSession runs one yamux server session on conn until the peer goes
// away, conn fails or ctx is cancelled; only a failure to start the session
// is returned as an error. Every handle opened in the session
// is closed and every command it started is killed before it returns, so a
// new session starts clean. conn is closed on return.
func (s *Server) ServeSession(ctx context.Context, conn io.ReadWriteCloser) error {
	// The sync handshake (see proto.AcceptSync) finds where this host's
	// session starts, whatever the channel held before.
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	synced, err := proto.AcceptSync(conn)
	stop()
	if err != nil {
		conn.Close()
		if ctx.Err() == nil && !errors.Is(err, io.EOF) {
			s.logf("agent: %v", err)
		}
		return nil
	}
	conn = synced
	mux, err := yamux.Server(proto.CoalesceFrames(conn), YamuxConfig())
	if err != nil {
		conn.Close()
		return fmt.Errorf("agent: start session: %w", err)
	}
	ctx, cancel := context.WithCancel(ctx)
	sess := newSession()
	var wg sync.WaitGroup
	defer func() {
		cancel()
		mux.Close()
		wg.Wait()
		sess.closeAll()
	}()
	go func() {
		// Unblock Accept when the caller gives up on the session.
		select {
		case <-ctx.Done():
			mux.Close()
		case <-mux.CloseChan():
		}
	}()
	for {
		st, err := mux.AcceptStream()
		if err != nil {
			// Accept only fails once the session is over: the host went
			// away or the channel broke. Both are the normal end of a
			// session for an agent that will simply serve the next one.
			if ctx.Err() == nil && !errors.Is(err, yamux.ErrSessionShutdown) && !errors.Is(err, io.EOF) {
				s.logf("agent: session ended: %v", err)
			}
			return nil
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer st.Close()
			s.serveStream(ctx, cancel, sess, st)
		}()
	}
}

// serveStream handles one operation. A panic in a handler must not take the
// agent down (as PID 1 that would panic the guest kernel), so it is turned
// into an error response.
func (s *Server) serveStream(ctx context.Context, endSession context.CancelFunc, sess *session, st *yamux.Stream) {
	defer func() {
		if r := recover(); r != nil {
			s.logf("agent: handler panic: %v", r)
			_ = proto.WriteFrame(st, proto.Response{Err: &proto.Error{Message: fmt.Sprintf("agent internal error: %v", r)}})
		}
	}()
	raw, err := proto.ReadRawFrame(st)
	if err != nil {
		if err != io.EOF {
			s.logf("agent: read request: %v", err)
		}
		return
	}
	var req proto.Request
	if err := proto.Unmarshal(raw, &req); err != nil {
		_ = writeErr(st, &proto.Error{Message: fmt.Sprintf("bad request: %v", err)})
		return
	}
	if err := s.refuseInWorker(req.Op); err != nil {
		_ = writeErr(st, err)
		return
	}
	switch req.Op {
	case proto.OpHello:
		if err := writeOK(st, s.hello()); err != nil {
			s.logf("agent: hello: %v", err)
			return
		}
		s.serveCalls(ctx, endSession, sess, st)
		return
	case proto.OpDetach:
		// Answer first: the write returns once the frame is on the channel,
		// so the host has its reply before the session goes away.
		err = writeOK(st, proto.Empty{})
		endSession()
	case proto.OpReadFile:
		err = s.readFileStream(st, req.Body)
	case proto.OpWriteFile:
		err = s.writeFileStream(st, req.Body)
	case proto.OpProcStream:
		err = s.serveFeed(ctx, st, func() (feed, func(), error) { return sess.prepareProcStream(req.Body) })
	case proto.OpTailFile:
		err = s.serveFeed(ctx, st, func() (feed, func(), error) { return prepareTailFile(req.Body) })
	case proto.OpFdStream:
		err = s.serveFeed(ctx, st, func() (feed, func(), error) { return prepareFdStream(req.Body) })
	case proto.OpFileTail:
		err = s.serveFeed(ctx, st, func() (feed, func(), error) { return sess.prepareFileTail(req.Body) })
	case proto.OpWorkerSpawn:
		err = s.serveWorkerSpawn(ctx, st)
	default:
		// The host sends nothing after the request of a single-message op,
		// so any read returning means it closed or reset the stream
		// (cancelled call): cancel the op, which kills a running command.
		opCtx, cancel := context.WithCancel(ctx)
		watched := make(chan struct{})
		go func() {
			defer close(watched)
			var b [1]byte
			_, _ = st.Read(b[:])
			cancel()
		}()
		body, opErr := s.dispatch(opCtx, sess, req)
		cancel()
		// A past deadline wakes the watcher so it never outlives the op.
		_ = st.SetReadDeadline(time.Now())
		<-watched
		if opErr != nil {
			err = writeErr(st, opErr)
		} else {
			err = writeOK(st, body)
		}
		s.afterReply(sess, req.Op)
	}
	if err != nil {
		s.logf("agent: op %s: %v", req.Op, err)
	}
}

// dispatch runs a single-message operation: it is what batch entries go
// through as well, so an op behaves the same alone and in a batch.
func (s *Server) dispatch(ctx context.Context, sess *session, req proto.Request) (any, error) {
	if err := s.refuseInWorker(req.Op); err != nil {
		return nil, err
	}
	switch req.Op {
	case proto.OpPing:
		var p proto.Ping
		if err := decodeBody(req, &p); err != nil {
			return nil, err
		}
		return p, nil
	case proto.OpWorkerExe:
		var r proto.WorkerExeReq
		if err := decodeBody(req, &r); err != nil {
			return nil, err
		}
		return proto.Empty{}, s.installWorkerExe(r.Content)
	case proto.OpExec:
		var r proto.ExecReq
		if err := decodeBody(req, &r); err != nil {
			return nil, err
		}
		return runExec(ctx, r, s.launcher(), s.wp != nil)
	case proto.OpReadFile:
		var r proto.ReadFileReq
		if err := decodeBody(req, &r); err != nil {
			return nil, err
		}
		if r.InlineMax > 0 {
			return readFileUpTo(r.Path, r.InlineMax)
		}
		return readFileInline(r.Path)
	case proto.OpWriteFile:
		var r proto.WriteFileReq
		if err := decodeBody(req, &r); err != nil {
			return nil, err
		}
		if r.Streamed {
			return nil, &proto.Error{Message: "write_file: streamed content is not allowed in a batch"}
		}
		return proto.Empty{}, writeFileInline(r)
	case proto.OpStat:
		var r proto.PathReq
		if err := decodeBody(req, &r); err != nil {
			return nil, err
		}
		return statPath(r.Path)
	case proto.OpListdir:
		var r proto.PathReq
		if err := decodeBody(req, &r); err != nil {
			return nil, err
		}
		return listdir(r.Path)
	case proto.OpMkdir:
		var r proto.MkdirReq
		if err := decodeBody(req, &r); err != nil {
			return nil, err
		}
		return proto.Empty{}, mkdir(r)
	case proto.OpUnlink:
		var r proto.PathReq
		if err := decodeBody(req, &r); err != nil {
			return nil, err
		}
		return proto.Empty{}, unlink(r.Path)
	case proto.OpRename:
		var r proto.RenameReq
		if err := decodeBody(req, &r); err != nil {
			return nil, err
		}
		return proto.Empty{}, unix.Rename(r.From, r.To)
	case proto.OpOpen:
		var r proto.OpenReq
		if err := decodeBody(req, &r); err != nil {
			return nil, err
		}
		return sess.open(r, s.wp)
	case proto.OpFileRead:
		var r proto.FileReadReq
		if err := decodeBody(req, &r); err != nil {
			return nil, err
		}
		return sess.read(r)
	case proto.OpFileWrite:
		var r proto.FileWriteReq
		if err := decodeBody(req, &r); err != nil {
			return nil, err
		}
		return sess.write(r)
	case proto.OpFileSeek:
		var r proto.FileSeekReq
		if err := decodeBody(req, &r); err != nil {
			return nil, err
		}
		return sess.seek(r.Handle, r.Offset, r.Whence)
	case proto.OpFileTell:
		var r proto.HandleReq
		if err := decodeBody(req, &r); err != nil {
			return nil, err
		}
		return sess.seek(r.Handle, 0, proto.SeekCur)
	case proto.OpFileClose:
		var r proto.HandleReq
		if err := decodeBody(req, &r); err != nil {
			return nil, err
		}
		return proto.Empty{}, sess.close(r.Handle)
	case proto.OpProcStart, proto.OpProcWait, proto.OpProcStatus, proto.OpProcSignal,
		proto.OpProcStdin, proto.OpProcCloseStdin, proto.OpProcClose:
		return s.dispatchProc(ctx, sess, req)
	case proto.OpSyscall:
		var r proto.SyscallReq
		if err := decodeBody(req, &r); err != nil {
			return nil, err
		}
		return s.syscall(ctx, sess, r)
	case proto.OpSyscallAsync:
		var r proto.SyscallReq
		if err := decodeBody(req, &r); err != nil {
			return nil, err
		}
		return sess.startAsync(r, s.wp)
	case proto.OpSyscallAwait:
		var r proto.AwaitReq
		if err := decodeBody(req, &r); err != nil {
			return nil, err
		}
		return sess.await(ctx, r)
	case proto.OpSyscallDone:
		var r proto.PendingReq
		if err := decodeBody(req, &r); err != nil {
			return nil, err
		}
		return sess.pendingDone(r.ID)
	case proto.OpIoctl:
		var r proto.IoctlReq
		if err := decodeBody(req, &r); err != nil {
			return nil, err
		}
		return s.ioctl(ctx, sess, r)
	case proto.OpReadMem:
		var r proto.ReadMemReq
		if err := decodeBody(req, &r); err != nil {
			return nil, err
		}
		return readMem(r)
	case proto.OpClockGet:
		return clockGet()
	case proto.OpHWRNGSync:
		var r proto.HWRNGSyncReq
		if err := decodeBody(req, &r); err != nil {
			return nil, err
		}
		return hwrngSync(ctx, r)
	case proto.OpNetConfig:
		var r proto.NetConfigReq
		if err := decodeBody(req, &r); err != nil {
			return nil, err
		}
		return netConfig(ctx, r)
	case proto.OpClockSet, proto.OpClockAdvance, proto.OpClockSleep:
		var r proto.ClockReq
		if err := decodeBody(req, &r); err != nil {
			return nil, err
		}
		switch req.Op {
		case proto.OpClockSet:
			return proto.Empty{}, clockSet(r.Ns)
		case proto.OpClockAdvance:
			return proto.Empty{}, clockAdvance(r.Ns)
		default:
			return proto.Empty{}, clockSleep(ctx, r.Ns)
		}
	case proto.OpWorkerKill, proto.OpWorkerJoin, proto.OpWorkerShutdown:
		if s.wp == nil {
			return nil, &proto.Error{Message: fmt.Sprintf("op `%s` is only valid in a worker session", req.Op)}
		}
		switch req.Op {
		case proto.OpWorkerKill:
			var r proto.SignalReq
			if err := decodeBody(req, &r); err != nil {
				return nil, err
			}
			return proto.Empty{}, s.wp.signal(r.Signal)
		case proto.OpWorkerJoin:
			return proto.WorkerJoinResp{Status: s.wp.join()}, nil
		default:
			sess.terminateAll()
			return proto.Empty{}, nil
		}
	case proto.OpBatch:
		var r proto.BatchReq
		if err := decodeBody(req, &r); err != nil {
			return nil, err
		}
		if s.wp != nil || !batchNeedsCallThread(r) {
			return s.batch(ctx, sess, r), nil
		}
		// All of an agent batch runs on one call thread, so a thread-state
		// change an item makes holds for the later items, and no further.
		var out proto.BatchResp
		err := onCallThread(ctx, sess.threads, true, func(ctx context.Context) { out = s.batch(ctx, sess, r) })
		return out, err
	case proto.OpHello, proto.OpDetach, proto.OpCancel, proto.OpProcStream, proto.OpTailFile,
		proto.OpFdStream, proto.OpFileTail, proto.OpWorkerSpawn:
		return nil, &proto.Error{Message: fmt.Sprintf("op `%s` is only valid alone on its own stream", req.Op)}
	default:
		return nil, &proto.Error{Message: fmt.Sprintf("unknown op `%s`", req.Op)}
	}
}

// workerOps are the operations a worker session serves: those the Lua
// Worker and the File and Process objects it makes reach. Each runs in the
// worker's executor or on an fd or pipe it handed over; path operations of
// the agent's own (read_file, stat …) would run with the agent's
// credentials, root and cwd instead, so they are refused.
var workerOps = map[string]bool{
	proto.OpHello: true, proto.OpDetach: true, proto.OpCancel: true, proto.OpPing: true,
	proto.OpExec: true, proto.OpProcStart: true, proto.OpProcWait: true, proto.OpProcStatus: true,
	proto.OpProcSignal: true, proto.OpProcStdin: true, proto.OpProcCloseStdin: true,
	proto.OpProcClose: true, proto.OpProcStream: true,
	proto.OpOpen: true, proto.OpFileRead: true, proto.OpFileWrite: true, proto.OpFileSeek: true,
	proto.OpFileTell: true, proto.OpFileClose: true, proto.OpFileTail: true,
	proto.OpSyscall: true, proto.OpSyscallAsync: true, proto.OpSyscallAwait: true,
	proto.OpSyscallDone: true, proto.OpIoctl: true,
	proto.OpWorkerKill: true, proto.OpWorkerJoin: true, proto.OpWorkerShutdown: true,
}

// refuseInWorker rejects, in a worker session, an op that would not run
// as the worker.
func (s *Server) refuseInWorker(op string) error {
	if s.wp == nil || workerOps[op] {
		return nil
	}
	return &proto.Error{Message: fmt.Sprintf("op `%s` is not available in a worker session (a worker runs commands, syscalls and open_file)", op)}
}

// batch runs every op in order, one result each, never stopping early.
func (s *Server) batch(ctx context.Context, sess *session, r proto.BatchReq) proto.BatchResp {
	out := proto.BatchResp{Results: make([]proto.Response, len(r.Ops))}
	for i, op := range r.Ops {
		var body any
		var err error
		if op.Op == proto.OpBatch || op.Op == proto.OpHello || op.Op == proto.OpDetach || op.Op == proto.OpCancel {
			err = &proto.Error{Message: fmt.Sprintf("op `%s` is not allowed in a batch", op.Op)}
		} else {
			body, err = s.dispatch(ctx, sess, op)
		}
		if err != nil {
			out.Results[i] = proto.Response{Err: proto.ErrorFrom(err)}
			continue
		}
		b, mErr := proto.Marshal(body)
		if mErr != nil {
			out.Results[i] = proto.Response{Err: proto.ErrorFrom(mErr)}
			continue
		}
		out.Results[i] = proto.Response{Body: b}
	}
	return out
}

func decodeBody(req proto.Request, v any) error {
	if len(req.Body) == 0 {
		return nil
	}
	if err := proto.Unmarshal(req.Body, v); err != nil {
		return &proto.Error{Message: fmt.Sprintf("%s: bad request: %v", req.Op, err)}
	}
	return nil
}

func writeOK(w io.Writer, body any) error {
	b, err := proto.Marshal(body)
	if err != nil {
		return writeErr(w, err)
	}
	return writeResponse(w, proto.Response{Body: b})
}

// writeResponse sends resp, or an error response with the same ID when it
// cannot be framed (a batch whose results together exceed
// proto.MaxFrameSize), so the host never waits on a reply that was dropped.
func writeResponse(w io.Writer, resp proto.Response) error {
	frame, err := proto.Marshal(resp)
	if err != nil {
		return proto.WriteFrame(w, proto.Response{ID: resp.ID, Err: proto.ErrorFrom(err)})
	}
	if len(frame) > proto.MaxFrameSize {
		return proto.WriteFrame(w, proto.Response{ID: resp.ID, Err: &proto.Error{
			Message: fmt.Sprintf("response too large (%d bytes, limit %d); split the batch or stream the data", len(frame), proto.MaxFrameSize)}})
	}
	err = proto.WriteRawFrame(w, frame)
	if len(frame) >= bigResponse {
		releaseMemory()
	}
	return err
}

// bigResponse is the response size from which the agent hands its freed
// heap back to the guest right away.
const bigResponse = 4 << 20

// releasing coalesces releaseMemory calls (the heap is one per process,
// and so is this flag).
var releasing atomic.Bool

// releaseMemory returns freed heap to the guest kernel in the background.
// A response of many MiB leaves several copies of it as garbage; Go would
// give the pages back only minutes later, and a small guest that then
// writes a large file into its tmpfs would OOM-kill the agent.
func releaseMemory() {
	if !releasing.CompareAndSwap(false, true) {
		return
	}
	go func() {
		defer releasing.Store(false)
		debug.FreeOSMemory()
	}()
}

func writeErr(w io.Writer, err error) error {
	return proto.WriteFrame(w, proto.Response{Err: proto.ErrorFrom(err)})
}
