package agent

import (
	"sync"

	"golang.org/x/sys/unix"

	"github.com/provium/provium/internal/proto"
)

// maxFileRead caps one file_read so a single response stays well inside
// proto.MaxFrameSize; read(n) may return fewer bytes than asked anyway.
const maxFileRead = 16 << 20

// session holds the state that lives exactly as long as one host session:
// open file handles. When the session dies they are all closed, so a handle
// from an earlier session can never reach a reused fd.
type session struct {
	mu      sync.Mutex
	next    uint64 // one handle space for files, processes and pendings
	files   map[uint64]*handle
	procs   map[uint64]*process
	pending map[uint64]*pendingCall
	threads *threadPool // the agent's ready call threads (callthread.go)
}

// handle is one open file. Its mutex serialises I/O against close so an op
// never runs on an fd number that close already released.
type handle struct {
	mu     sync.Mutex
	fd     int
	closed bool
	// A worker's file lives in its executor's fd table (ownerFD, what
	// the worker's syscalls and file:fd() see); fd is the agent's
	// duplicate for I/O.
	wp      *workerProc
	ownerFD int
}

func newSession() *session {
	return &session{files: map[uint64]*handle{}, procs: map[uint64]*process{}, pending: map[uint64]*pendingCall{},
		threads: &threadPool{}}
}

func openFlags(m proto.OpenMode) (int, error) {
	write := m&(proto.OpenWrite|proto.OpenAppend) != 0
	read := m&proto.OpenRead != 0
	var flags int
	switch {
	case read && write:
		flags = unix.O_RDWR
	case write:
		flags = unix.O_WRONLY
	case read:
		flags = unix.O_RDONLY
	default:
		return 0, &proto.Error{Message: "open: mode needs at least one of read, write, append"}
	}
	if m&proto.OpenCreate != 0 {
		flags |= unix.O_CREAT
	}
	if m&proto.OpenTruncate != 0 {
		flags |= unix.O_TRUNC
	}
	if m&proto.OpenAppend != 0 {
		flags |= unix.O_APPEND
	}
	if m&proto.OpenExclusive != 0 {
		flags |= unix.O_EXCL
	}
	// CLOEXEC keeps agent handles out of commands the agent runs.
	return flags | unix.O_CLOEXEC, nil
}

// open opens r.Path in the agent, or in the worker's executor (wp) so the
// worker's credentials, root and cwd decide.
func (s *session) open(r proto.OpenReq, wp *workerProc) (proto.OpenResp, error) {
	flags, err := openFlags(r.Mode)
	if err != nil {
		return proto.OpenResp{}, err
	}
	perm := r.Perm
	if perm == 0 {
		perm = 0o644
	}
	h := &handle{wp: wp}
	if wp != nil {
		h.ownerFD, h.fd, err = wp.open(r.Path, flags, perm)
	} else {
		h.fd, err = unix.Open(r.Path, flags, perm)
		h.ownerFD = h.fd
	}
	if err != nil {
		return proto.OpenResp{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.files == nil {
		s.mu.Unlock()
		_ = h.closeFD()
		s.mu.Lock()
		return proto.OpenResp{}, errSessionClosed
	}
	s.next++
	s.files[s.next] = h
	return proto.OpenResp{Handle: s.next, Fd: h.ownerFD}, nil
}

func (s *session) lookup(id uint64) (*handle, error) {
	s.mu.Lock()
	h := s.files[id]
	s.mu.Unlock()
	if h == nil {
		return nil, proto.ErrnoError(unix.EBADF)
	}
	return h, nil
}

// withHandle runs fn with the handle's fd while holding its lock.
func (s *session) withHandle(id uint64, fn func(fd int) error) error {
	h, err := s.lookup(id)
	if err != nil {
		return err
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return proto.ErrnoError(unix.EBADF)
	}
	return fn(h.fd)
}

func (s *session) read(r proto.FileReadReq) (proto.DataResp, error) {
	if r.N < 0 {
		return proto.DataResp{}, proto.ErrnoError(unix.EINVAL)
	}
	n := min(r.N, maxFileRead)
	var out proto.DataResp
	err := s.withHandle(r.Handle, func(fd int) error {
		buf := make([]byte, n)
		for {
			got, err := unix.Read(fd, buf)
			if err == unix.EINTR {
				continue
			}
			if err != nil {
				return err
			}
			out.Data = buf[:got]
			return nil
		}
	})
	return out, err
}

func (s *session) write(r proto.FileWriteReq) (proto.CountResp, error) {
	var out proto.CountResp
	err := s.withHandle(r.Handle, func(fd int) error {
		for {
			n, err := unix.Write(fd, r.Data)
			if err == unix.EINTR {
				continue
			}
			if err != nil {
				return err
			}
			out.N = n
			return nil
		}
	})
	return out, err
}

func (s *session) seek(id uint64, off int64, whence int) (proto.OffsetResp, error) {
	if whence != proto.SeekSet && whence != proto.SeekCur && whence != proto.SeekEnd {
		return proto.OffsetResp{}, proto.ErrnoError(unix.EINVAL)
	}
	var out proto.OffsetResp
	err := s.withHandle(id, func(fd int) error {
		pos, err := unix.Seek(fd, off, whence)
		out.Offset = pos
		return err
	})
	return out, err
}

// close is idempotent from the host's point of view: closing an unknown or
// already closed handle succeeds.
func (s *session) close(id uint64) error {
	s.mu.Lock()
	h := s.files[id]
	delete(s.files, id)
	s.mu.Unlock()
	if h == nil {
		return nil
	}
	return h.closeFD()
}

func (h *handle) closeFD() error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return nil
	}
	h.closed = true
	if h.wp != nil {
		h.wp.closeFD(h.ownerFD)
	}
	return unix.Close(h.fd)
}

// closeAll drops every handle and kills every process of the session
// (reaping them); later opens and starts on this session fail. Pending
// syscall_async calls are forgotten: a raw syscall cannot be interrupted,
// so their threads end when the call returns.
func (s *session) closeAll() {
	s.mu.Lock()
	files, procs := s.files, s.procs
	s.files, s.procs, s.pending = nil, map[uint64]*process{}, map[uint64]*pendingCall{}
	s.mu.Unlock()
	s.threads.close()
	for _, h := range files {
		_ = h.closeFD()
	}
	var wg sync.WaitGroup
	for _, p := range procs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p.kill()
		}()
	}
	wg.Wait()
}
