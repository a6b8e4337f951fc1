package agent

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/provium/provium/internal/proto"
)

// errWorkerGone is the error of calls to an executor that has exited.
var errWorkerGone = &proto.Error{Message: "the worker process has exited"}

// workerProc is a worker's executor: the single-threaded provium-worker
// process that executes every syscall, command and open of the worker, so
// the credentials, namespaces, root and cwd its syscalls change apply to
// all later operations (a Go process cannot be single-threaded).
type workerProc struct {
	cmd  *exec.Cmd
	conn *net.UnixConn
	wmu  sync.Mutex // one message at a time

	mu     sync.Mutex
	nextID uint64
	calls  map[uint64]chan wpReply
	kids   map[int]*wpChild
	gone   bool

	dead   chan struct{} // closed when the channel ended
	exited chan struct{} // closed when the process was reaped
}

type wpReply struct {
	typ  uint32
	body []byte
	fds  []int
	kid  *wpChild // a wpSpawned reply's child, registered by the reader
}

func (r wpReply) closeFDs() {
	for _, fd := range r.fds {
		unix.Close(fd)
	}
}

// startWorkerProc starts exe on a socketpair (its fd 3).
func startWorkerProc(exe string) (*workerProc, error) {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("socketpair: %w", err)
	}
	local := os.NewFile(uintptr(fds[0]), "worker-socket")
	remote := os.NewFile(uintptr(fds[1]), "worker-socket-child")
	fc, err := net.FileConn(local) // dups the fd
	local.Close()
	if err != nil {
		remote.Close()
		return nil, fmt.Errorf("worker socket: %w", err)
	}
	cmd := exec.Command(exe, "3")
	cmd.ExtraFiles = []*os.File{remote} // fd 3 in the child
	cmd.Stderr = os.Stderr
	cmd.Dir = "/"
	err = cmd.Start()
	remote.Close()
	if err != nil {
		fc.Close()
		return nil, fmt.Errorf("start %s: %w", exe, err)
	}
	w := &workerProc{
		cmd:    cmd,
		conn:   fc.(*net.UnixConn),
		calls:  map[uint64]chan wpReply{},
		kids:   map[int]*wpChild{},
		dead:   make(chan struct{}),
		exited: make(chan struct{}),
	}
	go func() {
		defer close(w.exited)
		_ = cmd.Wait()
	}()
	go w.readLoop()
	return w, nil
}

// ready waits until the executor serves calls: a getpid round trip that
// must answer the executor's own pid.
func (w *workerProc) ready(ctx context.Context) error {
	r, err := w.syscall(ctx, proto.SyscallReq{Nr: unix.SYS_GETPID}, false)
	if err != nil {
		return fmt.Errorf("executor pid %d did not start serving: %w", w.Pid(), err)
	}
	if int(r.Ret) != w.Pid() {
		return fmt.Errorf("executor pid %d answered getpid with %d", w.Pid(), r.Ret)
	}
	return nil
}

// Pid is the executor's pid: the worker's handle.
func (w *workerProc) Pid() int { return w.cmd.Process.Pid }

// close ends the channel (the executor then kills the children it still
// has and exits) and reaps the executor, killing it if it lingers.
func (w *workerProc) close() {
	w.conn.Close()
	<-w.dead
	t := time.NewTimer(workerExitGrace)
	defer t.Stop()
	select {
	case <-w.exited:
	case <-t.C:
		_ = w.cmd.Process.Kill()
		<-w.exited
	}
}

// signal sends sig to the executor itself (worker:kill). An executor that
// already exited (a signal from elsewhere ended it) is no error: the
// worker's end is what the caller wants, and join then reports it.
func (w *workerProc) signal(sig int) error {
	if sig < 0 || sig > 64 {
		return proto.ErrnoError(unix.EINVAL)
	}
	err := w.cmd.Process.Signal(unix.Signal(sig))
	if errors.Is(err, os.ErrProcessDone) {
		return nil
	}
	return err
}

// join ends the executor as close does and answers its exit status: the
// exit code, or 128 + the signal that ended it (upstream's shape).
func (w *workerProc) join() int {
	w.close()
	ws, ok := w.cmd.ProcessState.Sys().(syscall.WaitStatus)
	if !ok {
		return w.cmd.ProcessState.ExitCode()
	}
	if ws.Signaled() {
		return 128 + int(ws.Signal())
	}
	return ws.ExitStatus()
}

// send writes one message; the fds are the kernel's once it returns.
func (w *workerProc) send(typ uint32, id uint64, body []byte, fds []int) error {
	msg := make([]byte, wpHeaderSize, wpHeaderSize+len(body))
	binary.LittleEndian.PutUint32(msg[0:], uint32(len(body)))
	binary.LittleEndian.PutUint32(msg[4:], typ)
	binary.LittleEndian.PutUint64(msg[8:], id)
	msg = append(msg, body...)
	var oob []byte
	if len(fds) > 0 {
		oob = unix.UnixRights(fds...)
	}
	w.wmu.Lock()
	defer w.wmu.Unlock()
	n, _, err := w.conn.WriteMsgUnix(msg, oob, nil)
	if err == nil && n < len(msg) {
		_, err = w.conn.Write(msg[n:])
	}
	if err != nil {
		return errWorkerGone
	}
	return nil
}

// recv reads exactly len(b) bytes, collecting the fds that come with them.
func (w *workerProc) recv(b []byte, fds []int) ([]int, error) {
	oob := make([]byte, unix.CmsgSpace(8*4))
	for got := 0; got < len(b); {
		n, oobn, _, _, err := w.conn.ReadMsgUnix(b[got:], oob)
		if oobn > 0 {
			if msgs, perr := unix.ParseSocketControlMessage(oob[:oobn]); perr == nil {
				for _, m := range msgs {
					if rights, rerr := unix.ParseUnixRights(&m); rerr == nil {
						fds = append(fds, rights...)
					}
				}
			}
		}
		if err != nil {
			return fds, err
		}
		if n == 0 {
			return fds, errWorkerGone
		}
		got += n
	}
	return fds, nil
}

// readLoop routes replies to their callers and exit events to children
// until the channel ends; then every call and child learns the executor
// is gone.
func (w *workerProc) readLoop() {
	defer func() {
		w.mu.Lock()
		w.gone = true
		kids := w.kids
		w.kids = map[int]*wpChild{}
		w.mu.Unlock()
		close(w.dead)
		for _, c := range kids {
			c.lose()
		}
	}()
	hdr := make([]byte, wpHeaderSize)
	for {
		fds, err := w.recv(hdr, nil)
		n := binary.LittleEndian.Uint32(hdr[0:])
		if err != nil || n > wpMaxMessage {
			wpReply{fds: fds}.closeFDs()
			return
		}
		r := wpReply{typ: binary.LittleEndian.Uint32(hdr[4:]), body: make([]byte, n)}
		id := binary.LittleEndian.Uint64(hdr[8:])
		r.fds, err = w.recv(r.body, fds)
		if err != nil {
			r.closeFDs()
			return
		}
		switch r.typ {
		case wpExit:
			w.exit(r)
		case wpSpawned:
			w.spawned(id, r)
		default:
			w.deliver(id, r)
		}
	}
}

func (w *workerProc) deliver(id uint64, r wpReply) {
	w.mu.Lock()
	ch := w.calls[id]
	delete(w.calls, id)
	w.mu.Unlock()
	if ch == nil {
		r.closeFDs() // the caller gave up
		return
	}
	ch <- r
}

// spawned registers the new child before its reply is delivered, so its
// exit event (which the executor sends only later) always finds it.
func (w *workerProc) spawned(id uint64, r wpReply) {
	rd := &wpReader{b: r.body}
	pid := int(rd.i32())
	if !rd.bad && pid > 0 {
		c := &wpChild{pid: pid, pidfd: -1, done: make(chan struct{})}
		if len(r.fds) > 0 {
			c.pidfd = r.fds[0]
			r.fds = r.fds[1:]
		}
		w.mu.Lock()
		w.kids[pid] = c
		w.mu.Unlock()
		r.kid = c
	}
	w.deliver(id, r)
}

func (w *workerProc) exit(r wpReply) {
	r.closeFDs()
	rd := &wpReader{b: r.body}
	pid, st := int(rd.i32()), rd.i32()
	w.mu.Lock()
	c := w.kids[pid]
	delete(w.kids, pid)
	w.mu.Unlock()
	if c != nil {
		c.finish(unix.WaitStatus(st), false)
	}
}

// call sends a request and waits for its reply. A cancelled ctx stops the
// wait only: the executor finishes the request (a raw syscall cannot be
// abandoned) and the reply is dropped.
func (w *workerProc) call(ctx context.Context, typ uint32, body []byte, fds []int) (wpReply, error) {
	ch := make(chan wpReply, 1)
	w.mu.Lock()
	if w.gone {
		w.mu.Unlock()
		return wpReply{}, errWorkerGone
	}
	w.nextID++
	id := w.nextID
	w.calls[id] = ch
	w.mu.Unlock()
	forget := func() {
		w.mu.Lock()
		delete(w.calls, id)
		w.mu.Unlock()
		select {
		case r := <-ch:
			r.closeFDs()
		default:
		}
	}
	if err := w.send(typ, id, body, fds); err != nil {
		forget()
		return wpReply{}, err
	}
	select {
	case r := <-ch:
		if r.typ == wpError {
			r.closeFDs()
			return wpReply{}, fmt.Errorf("worker: %s", r.body)
		}
		return r, nil
	case <-w.dead:
		forget()
		return wpReply{}, errWorkerGone
	case <-ctx.Done():
		forget()
		return wpReply{}, ctx.Err()
	}
}

// syscall runs r in the executor: on its only thread, or (async) on a
// thread of its own that ends with the call.
func (w *workerProc) syscall(ctx context.Context, r proto.SyscallReq, async bool) (proto.SyscallResult, error) {
	if err := validateSyscall(r); err != nil {
		return proto.SyscallResult{}, err
	}
	flags := uint32(0)
	if async {
		flags |= wpSysAsync
	}
	rep, err := w.call(ctx, wpSyscall, encodeSyscall(r, flags), nil)
	if err != nil {
		return proto.SyscallResult{}, err
	}
	rep.closeFDs()
	return decodeResult(rep.body)
}

// open opens path in the executor. It returns the executor's fd (the one
// the worker's syscalls see) and the agent's duplicate of it for I/O.
func (w *workerProc) open(path string, flags int, perm uint32) (ownerFD, fd int, err error) {
	atCwd := int64(unix.AT_FDCWD)
	r := proto.SyscallReq{
		Nr:   unix.SYS_OPENAT,
		Args: [6]uint64{uint64(atCwd), 0, uint64(flags), uint64(perm)},
		Bufs: [][]byte{append([]byte(path), 0)},
		Ptrs: []int{1},
	}
	rep, err := w.call(context.Background(), wpSyscall, encodeSyscall(r, wpSysSendFD), nil)
	if err != nil {
		return -1, -1, err
	}
	res, err := decodeResult(rep.body)
	if err != nil || res.Errno != 0 || len(rep.fds) != 1 {
		rep.closeFDs()
		if err == nil && res.Errno != 0 {
			err = proto.ErrnoError(unix.Errno(res.Errno))
		} else if err == nil {
			err = fmt.Errorf("worker: open %s: no fd came back", path)
		}
		return -1, -1, err
	}
	return int(res.Ret), rep.fds[0], nil
}

// closeFD closes one of the executor's fds (a closed open_file handle).
// It does not wait for the reply: the executor may be blocked in a syscall
// of the test's, and it closes the fd in order with later requests anyway.
func (w *workerProc) closeFD(fd int) {
	sent, cancel := context.WithCancel(context.Background())
	cancel()
	_, _ = w.call(sent, wpSyscall, encodeSyscall(proto.SyscallReq{Nr: unix.SYS_CLOSE, Args: [6]uint64{uint64(fd)}}, 0), nil)
}

// launch starts spec as a child of the executor, with its credentials,
// namespaces, root and cwd (a relative dir or program resolves there).
func (w *workerProc) launch(spec procSpec, stdio [3]*os.File) (child, error) {
	fds := []int{int(stdio[0].Fd()), int(stdio[1].Fd()), int(stdio[2].Fd())}
	// Not cancellable: a started child must always reach its owner.
	rep, err := w.call(context.Background(), wpSpawn, encodeSpawn(spec), fds)
	if err != nil {
		return nil, err
	}
	rep.closeFDs()
	rd := &wpReader{b: rep.body}
	pid, errno := int(rd.i32()), rd.i32()
	if rd.bad {
		return nil, errors.New("worker: malformed spawn reply")
	}
	if errno != 0 {
		return nil, proto.ErrnoError(unix.Errno(errno))
	}
	if rep.kid == nil || rep.kid.pid != pid {
		return nil, fmt.Errorf("worker: spawn reply for pid %d without its child", pid)
	}
	return rep.kid, nil
}

// wpChild is a command the executor started; the executor reaps it and
// reports its status.
type wpChild struct {
	pid  int
	done chan struct{}

	mu    sync.Mutex
	pidfd int // -1 once finished (or on kernels without pidfds)
	ws    unix.WaitStatus
	lost  bool
}

func (c *wpChild) Pid() int { return c.pid }

func (c *wpChild) finish(ws unix.WaitStatus, lost bool) {
	c.mu.Lock()
	c.ws, c.lost = ws, lost
	if c.pidfd >= 0 {
		unix.Close(c.pidfd)
		c.pidfd = -1
	}
	c.mu.Unlock()
	close(c.done)
}

// lose ends a child whose executor died: nobody can reap it any more, so
// it is killed (with its group) and reported as killed.
func (c *wpChild) lose() {
	c.mu.Lock()
	if c.pidfd >= 0 {
		_ = unix.PidfdSendSignal(c.pidfd, unix.SIGKILL, nil, 0)
	}
	c.mu.Unlock()
	_ = unix.Kill(-c.pid, unix.SIGKILL)
	c.finish(unix.WaitStatus(unix.SIGKILL), true)
}

func (c *wpChild) Wait() (unix.WaitStatus, error) {
	<-c.done
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.ws, nil
}

func (c *wpChild) Signal(sig unix.Signal) error {
	select {
	case <-c.done:
		return errExited
	default:
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	var err error
	if c.pidfd >= 0 {
		err = unix.PidfdSendSignal(c.pidfd, sig, nil, 0)
	} else if !c.lost {
		err = unix.Kill(c.pid, sig)
	} else {
		return errExited
	}
	if err == unix.ESRCH {
		return errExited
	}
	return err
}
