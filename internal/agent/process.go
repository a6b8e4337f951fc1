package agent

import (
	"context"
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/provium/provium/internal/proto"
)

// maxRetained bounds how much of each output of a run_async process the
// agent keeps: the last maxRetained bytes. A stream that keeps up never
// misses a byte; one that falls further behind (or starts replaying from
// byte 0 after more was written) is told how much it lost.
const maxRetained = 64 << 20

// closeGrace is how long close waits after SIGTERM before SIGKILL.
const closeGrace = 2 * time.Second

var errSessionClosed = &proto.Error{Message: "session closed"}

// errExited is the error of ops that need a running process.
var errExited = &proto.Error{Errno: int(unix.ESRCH), Name: "ESRCH", Message: "process has exited"}

// outBlock is the unit of an outBuf's storage: blocks are never grown or
// moved, so a long output costs no reallocation copies (under TCG each
// copy and each freshly touched page is expensive).
const outBlock = 1 << 20

// outBuf is one output of a process: append-only bytes addressed by their
// absolute offset, replayable by any number of subscribers while the
// process still writes.
type outBuf struct {
	mu     sync.Mutex
	blocks [][]byte // retained bytes from offset start on; all full but the last
	start  int64    // absolute offset of blocks[0][0], a multiple of outBlock
	head   [][]byte // blocks dropped from the front that hold the first proto.MaxCapture bytes
	total  int64    // bytes written in all
	closed bool
	// changed is closed and replaced on every append and at close.
	changed chan struct{}
	done    chan struct{} // closed once the pipe is drained
}

func newOutBuf() *outBuf {
	return &outBuf{changed: make(chan struct{}), done: make(chan struct{})}
}

// readFrom reads once from r straight into the free end of the last block
// (no intermediate buffer: one copy less per byte). Only the pump calls it,
// so the block cannot change between the two locked sections; readers only
// look below a block's length, so the read into the space past it does not
// race with them.
func (b *outBuf) readFrom(r io.Reader) (int, error) {
	b.mu.Lock()
	tail := b.tail()
	b.mu.Unlock()
	n, err := r.Read(tail[len(tail):cap(tail)])
	if n > 0 {
		b.mu.Lock()
		b.commit(n)
		b.changedLocked()
		b.mu.Unlock()
	}
	return n, err
}

// tail returns the last block, adding one when it is full. Caller locks.
func (b *outBuf) tail() []byte {
	if n := len(b.blocks); n == 0 || len(b.blocks[n-1]) == outBlock {
		b.blocks = append(b.blocks, make([]byte, 0, outBlock))
	}
	return b.blocks[len(b.blocks)-1]
}

// commit extends the last block by n bytes written into its free space,
// then keeps at least maxRetained bytes, dropping whole blocks from the
// front. Caller locks.
func (b *outBuf) commit(n int) {
	last := len(b.blocks) - 1
	b.blocks[last] = b.blocks[last][:len(b.blocks[last])+n]
	b.total += int64(n)
	for len(b.blocks) > 1 && b.total-b.start-int64(len(b.blocks[0])) >= maxRetained {
		if b.start < proto.MaxCapture {
			b.head = append(b.head, b.blocks[0])
		}
		b.start += int64(len(b.blocks[0]))
		b.blocks[0] = nil
		b.blocks = b.blocks[1:]
	}
}

// changedLocked wakes every subscriber. Caller locks.
func (b *outBuf) changedLocked() {
	close(b.changed)
	b.changed = make(chan struct{})
}

func (b *outBuf) finish() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.closed = true
	b.changedLocked()
	close(b.done)
}

// since returns up to n bytes from absolute offset off, how many bytes
// before the retained ones a reader at off has lost (then data starts at
// off+lost), whether the output is complete, and a channel closed at the
// next change. The returned slice is never written again, so it may be
// used after unlocking.
func (b *outBuf) since(off int64, n int) (data []byte, lost int64, complete bool, changed <-chan struct{}) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if off < b.start {
		lost, off = b.start-off, b.start
	}
	if off < b.total {
		rel := off - b.start
		blk := b.blocks[rel/outBlock]
		i := int(rel % outBlock)
		end := min(len(blk), i+n)
		data = blk[i:end:end]
	}
	return data, lost, b.closed && off+int64(len(data)) == b.total, b.changed
}

// captured returns a copy of the first n bytes written (n ≤
// proto.MaxCapture) and how many bytes were written beyond them.
func (b *outBuf) captured(n int) ([]byte, int64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	out := make([]byte, 0, min(int64(n), b.total))
	for _, blk := range append(b.head[:len(b.head):len(b.head)], b.blocks...) {
		if len(out) == n {
			break
		}
		out = append(out, blk[:min(len(blk), n-len(out))]...)
	}
	return out, b.total - int64(len(out))
}

// pump copies a pipe into b until EOF, an error or the drain deadline set
// after the process exited.
func pump(r *os.File, b *outBuf) {
	defer b.finish()
	defer r.Close()
	for {
		if _, err := b.readFrom(r); err != nil {
			return
		}
	}
}

// process is one run_async command. Three goroutines belong to it (two
// pumps, one waiter); all end once the process exited and its pipes are
// drained (at most pipeDrainDelay after exit).
type process struct {
	handle uint64
	c      child
	pid    int
	stdout *outBuf
	stderr *outBuf

	exited   chan struct{} // closed once reaped
	finished chan struct{} // closed once reaped and drained; result valid

	mu         sync.Mutex
	ws         unix.WaitStatus
	timedOut   bool
	stdin      *os.File // nil once closed
	result     proto.ExecResult
	stdinFeeds sync.WaitGroup
}

// startProcess starts r with its stdin, stdout and stderr on pipes owned by
// the new process entry.
func startProcess(r proto.ExecReq, launch launcher, inheritCwd bool) (*process, error) {
	if r.TimeoutMs != 0 {
		return nil, &proto.Error{Message: "proc_start: timeout is not honoured here; pass it to wait"}
	}
	spec, err := prepareSpec(r, inheritCwd)
	if err != nil {
		return nil, err
	}
	var files []*os.File
	closeAll := func() {
		for _, f := range files {
			f.Close()
		}
	}
	pipe := func() (*os.File, *os.File, error) {
		pr, pw, err := os.Pipe()
		if err != nil {
			return nil, nil, fmt.Errorf("proc_start: pipe: %w", err)
		}
		files = append(files, pr, pw)
		return pr, pw, nil
	}
	inR, inW, err := pipe()
	if err != nil {
		closeAll()
		return nil, err
	}
	outR, outW, err := pipe()
	if err != nil {
		closeAll()
		return nil, err
	}
	errR, errW, err := pipe()
	if err != nil {
		closeAll()
		return nil, err
	}
	c, err := launch(spec, [3]*os.File{inR, outW, errW})
	if err != nil {
		closeAll()
		return nil, err
	}
	// The child has its copies; ours would keep the pipes from reaching EOF.
	inR.Close()
	outW.Close()
	errW.Close()
	p := &process{
		c:        c,
		pid:      c.Pid(),
		stdout:   newOutBuf(),
		stderr:   newOutBuf(),
		exited:   make(chan struct{}),
		finished: make(chan struct{}),
		stdin:    inW,
	}
	if len(r.Stdin) > 0 {
		// The given bytes, then EOF (as for exec). Registered before the
		// waiter starts, which waits for it.
		p.stdinFeeds.Add(1)
		go func() {
			defer p.stdinFeeds.Done()
			_, _ = inW.Write(r.Stdin)
			p.closeStdin()
		}()
	}
	go pump(outR, p.stdout)
	go pump(errR, p.stderr)
	go p.waitLoop(outR, errR)
	return p, nil
}

// waitLoop reaps the process, gives background holders of its pipes
// pipeDrainDelay to finish, and records the result.
func (p *process) waitLoop(outR, errR *os.File) {
	ws, _ := p.c.Wait()
	p.mu.Lock()
	p.ws = ws
	p.mu.Unlock()
	close(p.exited)
	deadline := time.Now().Add(pipeDrainDelay)
	_ = outR.SetReadDeadline(deadline)
	_ = errR.SetReadDeadline(deadline)
	<-p.stdout.done
	<-p.stderr.done
	p.closeStdin()
	p.stdinFeeds.Wait()
	p.mu.Lock()
	stdout, stdoutDropped := p.stdout.captured(proto.MaxCapture)
	stderr, stderrDropped := p.stderr.captured(proto.MaxCapture)
	p.result = execResult(p.ws, p.timedOut, stdout, stderr)
	p.result.StdoutDropped, p.result.StderrDropped = stdoutDropped, stderrDropped
	p.mu.Unlock()
	close(p.finished)
}

func execResult(ws unix.WaitStatus, timedOut bool, stdout, stderr []byte) proto.ExecResult {
	res := proto.ExecResult{Stdout: stdout, Stderr: stderr}
	switch {
	case timedOut:
		res.Status, res.ExitCode = proto.StatusTimedOut, proto.ExitCodeTimedOut
	case ws.Signaled():
		res.Status, res.ExitCode, res.Signal = proto.StatusSignalled, proto.ExitCodeSignalled, int(ws.Signal())
	default:
		res.Status, res.ExitCode = proto.StatusExited, ws.ExitStatus()
	}
	if res.Stdout == nil {
		res.Stdout = []byte{}
	}
	if res.Stderr == nil {
		res.Stderr = []byte{}
	}
	return res
}

func (p *process) isExited() bool {
	select {
	case <-p.exited:
		return true
	default:
		return false
	}
}

func (p *process) killGroup() { _ = unix.Kill(-p.pid, unix.SIGKILL) }

func (p *process) wait(ctx context.Context, timeoutMs int64) (proto.ExecResult, error) {
	var timeout <-chan time.Time
	if timeoutMs > 0 {
		t := time.NewTimer(time.Duration(timeoutMs) * time.Millisecond)
		defer t.Stop()
		timeout = t.C
	}
	select {
	case <-p.finished:
	case <-timeout:
		p.mu.Lock()
		if !p.isExited() {
			p.timedOut = true
		}
		p.mu.Unlock()
		p.killGroup()
		<-p.finished
	case <-ctx.Done():
		return proto.ExecResult{}, ctx.Err()
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.result, nil
}

func (p *process) status() proto.ProcStatusResp {
	if !p.isExited() {
		return proto.ProcStatusResp{Status: proto.StatusRunning, Pid: p.pid}
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ws.Signaled() || p.timedOut {
		return proto.ProcStatusResp{Status: proto.StatusSignalled, Pid: p.pid}
	}
	return proto.ProcStatusResp{Status: proto.StatusExited, Pid: p.pid}
}

// signal goes through the child's pidfd, so a reaped and reused pid is
// never hit.
func (p *process) signal(sig int) error {
	if sig < 0 || sig > 64 {
		return proto.ErrnoError(unix.EINVAL)
	}
	if p.isExited() {
		return errExited
	}
	return p.c.Signal(unix.Signal(sig))
}

func (p *process) writeStdin(ctx context.Context, data []byte) (proto.CountResp, error) {
	if p.isExited() {
		return proto.CountResp{}, errExited
	}
	p.mu.Lock()
	f := p.stdin
	if f != nil {
		p.stdinFeeds.Add(1)
	}
	p.mu.Unlock()
	if f == nil {
		return proto.CountResp{}, &proto.Error{Errno: int(unix.EPIPE), Name: "EPIPE", Message: "stdin is closed"}
	}
	defer p.stdinFeeds.Done()
	stop := context.AfterFunc(ctx, func() { _ = f.SetWriteDeadline(time.Now()) })
	defer stop()
	n, err := f.Write(data)
	if err != nil && ctx.Err() != nil {
		return proto.CountResp{N: n}, ctx.Err()
	}
	if err != nil && n == 0 {
		return proto.CountResp{}, err
	}
	return proto.CountResp{N: n}, nil
}

// closeStdin is idempotent. A write in flight fails with the close.
func (p *process) closeStdin() {
	p.mu.Lock()
	f := p.stdin
	p.stdin = nil
	p.mu.Unlock()
	if f != nil {
		f.Close()
	}
}

// terminate ends a process politely: SIGTERM, closeGrace, then SIGKILL of
// its group; it returns once the process is reaped and drained.
func (p *process) terminate() {
	if !p.isExited() {
		_ = p.c.Signal(unix.SIGTERM)
		t := time.NewTimer(closeGrace)
		select {
		case <-p.exited:
		case <-t.C:
		}
		t.Stop()
	}
	p.killGroup()
	<-p.finished
}

// kill ends a process at once (session end).
func (p *process) kill() {
	p.killGroup()
	<-p.finished
}

// output returns the buffer of one output stream.
func (p *process) output(name string) (*outBuf, error) {
	switch name {
	case proto.OutputStdout, "":
		return p.stdout, nil
	case proto.OutputStderr:
		return p.stderr, nil
	default:
		return nil, &proto.Error{Message: fmt.Sprintf("proc_stream: unknown output `%s` (stdout or stderr)", name)}
	}
}

// feedOutput writes b to w from byte 0 as Chunks, following it live, and
// returns after the final EOF chunk or when ctx ends.
func feedOutput(ctx context.Context, w io.Writer, b *outBuf) error {
	var off int64
	for {
		data, lost, complete, changed := b.since(off, proto.ChunkSize)
		if lost > 0 {
			return proto.WriteFrame(w, proto.Chunk{Err: &proto.Error{Message: fmt.Sprintf(
				"%d bytes from offset %d were no longer retained (the agent keeps the last %d MiB of each output); read the stream sooner, or redirect the output to a file",
				lost, off, maxRetained>>20)}})
		}
		if len(data) > 0 {
			if err := proto.WriteChunk(w, data); err != nil {
				return err
			}
			off += int64(len(data))
			continue
		}
		if complete {
			return proto.WriteFrame(w, proto.Chunk{EOF: true})
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return nil
		}
	}
}

// Session bookkeeping for processes.

func (ss *session) addProcess(p *process) (proto.ProcStartResp, error) {
	ss.mu.Lock()
	if ss.files == nil {
		ss.mu.Unlock()
		p.kill()
		return proto.ProcStartResp{}, errSessionClosed
	}
	ss.next++
	p.handle = ss.next
	ss.procs[p.handle] = p
	ss.mu.Unlock()
	return proto.ProcStartResp{Handle: p.handle, Pid: p.pid}, nil
}

func (ss *session) process(id uint64) (*process, error) {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	p := ss.procs[id]
	if p == nil {
		return nil, &proto.Error{Errno: int(unix.EBADF), Name: "EBADF", Message: fmt.Sprintf("no process with handle %d", id)}
	}
	return p, nil
}

// closeProcess terminates and forgets a process; unknown handles are a
// no-op so close stays idempotent.
func (ss *session) closeProcess(id uint64) {
	ss.mu.Lock()
	p := ss.procs[id]
	delete(ss.procs, id)
	ss.mu.Unlock()
	if p != nil {
		p.terminate()
	}
}

// processes lists the session's processes.
func (ss *session) processes() []*process {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	out := make([]*process, 0, len(ss.procs))
	for _, p := range ss.procs {
		out = append(out, p)
	}
	return out
}

// terminateAll ends every process politely, in parallel.
func (ss *session) terminateAll() {
	var wg sync.WaitGroup
	for _, p := range ss.processes() {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p.terminate()
		}()
	}
	wg.Wait()
}

// launcher returns how this server starts commands: a worker's executor
// starts them with the worker's credentials, namespaces, root and cwd.
func (s *Server) launcher() launcher {
	if s.wp != nil {
		return s.wp.launch
	}
	return localLaunch
}

func (s *Server) dispatchProc(ctx context.Context, sess *session, req proto.Request) (any, error) {
	if req.Op == proto.OpProcStart {
		var r proto.ExecReq
		if err := decodeBody(req, &r); err != nil {
			return nil, err
		}
		p, err := startProcess(r, s.launcher(), s.wp != nil)
		if err != nil {
			return nil, err
		}
		return sess.addProcess(p)
	}
	switch req.Op {
	case proto.OpProcWait:
		var r proto.ProcWaitReq
		if err := decodeBody(req, &r); err != nil {
			return nil, err
		}
		p, err := sess.process(r.Handle)
		if err != nil {
			return nil, err
		}
		return p.wait(ctx, r.TimeoutMs)
	case proto.OpProcSignal:
		var r proto.ProcSignalReq
		if err := decodeBody(req, &r); err != nil {
			return nil, err
		}
		p, err := sess.process(r.Handle)
		if err != nil {
			return nil, err
		}
		return proto.Empty{}, p.signal(r.Signal)
	case proto.OpProcStdin:
		var r proto.ProcStdinReq
		if err := decodeBody(req, &r); err != nil {
			return nil, err
		}
		p, err := sess.process(r.Handle)
		if err != nil {
			return nil, err
		}
		return p.writeStdin(ctx, r.Data)
	}
	var r proto.HandleReq
	if err := decodeBody(req, &r); err != nil {
		return nil, err
	}
	if req.Op == proto.OpProcClose {
		sess.closeProcess(r.Handle)
		return proto.Empty{}, nil
	}
	p, err := sess.process(r.Handle)
	if err != nil {
		return nil, err
	}
	if req.Op == proto.OpProcStatus {
		return p.status(), nil
	}
	p.closeStdin()
	return proto.Empty{}, nil
}
