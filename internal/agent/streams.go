package agent

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/hashicorp/yamux"
	"golang.org/x/sys/unix"

	"github.com/provium/provium/internal/proto"
)

// followPoll is how often a followed file (or a regular fd) is checked for
// growth once it reached its end.
const followPoll = 50 * time.Millisecond

// tailReadSize bounds one read of a followed file: a frame per read.
const tailReadSize = 64 << 10

// feed produces a long-lived stream's frames until it ends or ctx does.
type feed func(ctx context.Context, w io.Writer) error

// serveFeed answers a streaming op: prepare validates the request and
// opens what the feed reads (its error is the op's error Response);
// otherwise an OK Response is followed by the feed's Chunks. The feed ends
// when the host closes the stream, the session ends or it completes. The
// returned cleanup (may be nil) always runs.
func (s *Server) serveFeed(ctx context.Context, st *yamux.Stream, prepare func() (feed, func(), error)) error {
	f, cleanup, err := prepare()
	if cleanup != nil {
		defer cleanup()
	}
	if err != nil {
		return writeErr(st, err)
	}
	if err := writeOK(st, proto.Empty{}); err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	// The host sends nothing after the request: a read returning means it
	// closed the stream. A blocked write (host not reading) ends with ctx.
	watched := make(chan struct{})
	go func() {
		defer close(watched)
		var b [1]byte
		_, _ = st.Read(b[:])
		cancel()
	}()
	stopWrites := context.AfterFunc(ctx, func() { _ = st.SetWriteDeadline(time.Now()) })
	err = f(ctx, st)
	stopWrites()
	cancel()
	_ = st.SetReadDeadline(time.Now())
	<-watched
	if ctx.Err() != nil {
		return nil // ended by the host or the session: not an error
	}
	return err
}

// sleepCtx waits d or until ctx ends; false when ctx ended.
func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// followFD sends what fd holds from pos on and keeps following its growth
// (pread, so any shared cursor is untouched). A file truncated below pos is
// followed again from its new end. It never sends EOF.
func followFD(ctx context.Context, w io.Writer, fd int, pos int64) error {
	buf := make([]byte, tailReadSize)
	for ctx.Err() == nil {
		n, err := unix.Pread(fd, buf, pos)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return proto.WriteFrame(w, proto.Chunk{Err: proto.ErrorFrom(err)})
		}
		if n > 0 {
			if err := proto.WriteChunk(w, buf[:n]); err != nil {
				return err
			}
			pos += int64(n)
			continue
		}
		var st unix.Stat_t
		if unix.Fstat(fd, &st) == nil && st.Size < pos {
			pos = st.Size
		}
		if !sleepCtx(ctx, followPoll) {
			return nil
		}
	}
	return nil
}

// tailStart resolves a tail_file start point against the file's size.
func tailStart(r proto.TailFileReq, size int64) (int64, error) {
	switch r.Start {
	case proto.TailEnd, "":
		return size, nil
	case proto.TailBeginning, "start":
		return 0, nil
	case proto.TailOffset:
		if r.Offset >= 0 {
			return r.Offset, nil
		}
		return max(size+r.Offset, 0), nil
	default:
		return 0, &proto.Error{Message: fmt.Sprintf("tail_file: unknown start `%s`", r.Start)}
	}
}

func prepareTailFile(body []byte) (feed, func(), error) {
	var r proto.TailFileReq
	if err := decodeBody(proto.Request{Op: proto.OpTailFile, Body: body}, &r); err != nil {
		return nil, nil, err
	}
	fd, err := unix.Open(r.Path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, nil, err
	}
	cleanup := func() { unix.Close(fd) }
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return nil, cleanup, err
	}
	if st.Mode&unix.S_IFMT == unix.S_IFDIR {
		return nil, cleanup, proto.ErrnoError(unix.EISDIR)
	}
	pos, err := tailStart(r, st.Size)
	if err != nil {
		return nil, cleanup, err
	}
	return func(ctx context.Context, w io.Writer) error { return followFD(ctx, w, fd, pos) }, cleanup, nil
}

// prepareFileTail follows an open handle from its current cursor through a
// duplicate of its fd.
func (ss *session) prepareFileTail(body []byte) (feed, func(), error) {
	var r proto.HandleReq
	if err := decodeBody(proto.Request{Op: proto.OpFileTail, Body: body}, &r); err != nil {
		return nil, nil, err
	}
	var fd int
	var pos int64
	err := ss.withHandle(r.Handle, func(hfd int) error {
		var err error
		if pos, err = unix.Seek(hfd, 0, unix.SEEK_CUR); err != nil {
			return err
		}
		fd, err = unix.FcntlInt(uintptr(hfd), unix.F_DUPFD_CLOEXEC, 0)
		return err
	})
	if err != nil {
		return nil, nil, err
	}
	return func(ctx context.Context, w io.Writer) error { return followFD(ctx, w, fd, pos) }, func() { unix.Close(fd) }, nil
}

// prepareFdStream reads an agent fd through a duplicate: regular files are
// followed from their current cursor like tail_file; anything else is read
// as it becomes readable and ends with EOF when a read returns 0.
func prepareFdStream(body []byte) (feed, func(), error) {
	var r proto.FdStreamReq
	if err := decodeBody(proto.Request{Op: proto.OpFdStream, Body: body}, &r); err != nil {
		return nil, nil, err
	}
	if r.Fd < 0 {
		return nil, nil, proto.ErrnoError(unix.EBADF)
	}
	fd, err := unix.FcntlInt(uintptr(r.Fd), unix.F_DUPFD_CLOEXEC, 0)
	if err != nil {
		return nil, nil, err
	}
	cleanup := func() { unix.Close(fd) }
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return nil, cleanup, err
	}
	if st.Mode&unix.S_IFMT == unix.S_IFREG {
		pos, err := unix.Seek(fd, 0, unix.SEEK_CUR)
		if err != nil {
			return nil, cleanup, err
		}
		return func(ctx context.Context, w io.Writer) error { return followFD(ctx, w, fd, pos) }, cleanup, nil
	}
	return func(ctx context.Context, w io.Writer) error { return streamFD(ctx, w, fd) }, cleanup, nil
}

// streamFD polls a non-regular fd (so the host closing the stream is seen
// within followPoll even while nothing arrives) and sends each read.
func streamFD(ctx context.Context, w io.Writer, fd int) error {
	buf := make([]byte, tailReadSize)
	for ctx.Err() == nil {
		pfd := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
		n, err := unix.Poll(pfd, int(followPoll/time.Millisecond))
		if err == unix.EINTR || n == 0 {
			continue
		}
		if err != nil {
			return proto.WriteFrame(w, proto.Chunk{Err: proto.ErrorFrom(err)})
		}
		got, err := unix.Read(fd, buf)
		switch {
		case err == unix.EINTR || err == unix.EAGAIN:
		case err != nil:
			return proto.WriteFrame(w, proto.Chunk{Err: proto.ErrorFrom(err)})
		case got == 0:
			return proto.WriteFrame(w, proto.Chunk{EOF: true})
		default:
			if err := proto.WriteChunk(w, buf[:got]); err != nil {
				return err
			}
		}
	}
	return nil
}

func (ss *session) prepareProcStream(body []byte) (feed, func(), error) {
	var r proto.ProcStreamReq
	if err := decodeBody(proto.Request{Op: proto.OpProcStream, Body: body}, &r); err != nil {
		return nil, nil, err
	}
	p, err := ss.process(r.Handle)
	if err != nil {
		return nil, nil, err
	}
	b, err := p.output(r.Output)
	if err != nil {
		return nil, nil, err
	}
	return func(ctx context.Context, w io.Writer) error { return feedOutput(ctx, w, b) }, nil, nil
}
