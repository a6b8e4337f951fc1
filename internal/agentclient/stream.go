package agentclient

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/hashicorp/yamux"

	"github.com/provium/provium/internal/proto"
)

// ErrStreamClosed is returned by Next after Close.
var ErrStreamClosed = errors.New("agentclient: stream closed")

// openLong opens a stream for a long-lived operation: it sends the request
// and reads the Response under ctx, but the stream itself outlives ctx
// (the caller closes it). out receives the Response body (nil to ignore).
func (c *Client) openLong(ctx context.Context, op string, req, out any) (*yamux.Stream, error) {
	s, err := c.open(ctx)
	if err != nil {
		return nil, err
	}
	st, stop := s.st, s.stop
	fail := func(err error) (*yamux.Stream, error) {
		stop()
		_ = st.SetReadDeadline(time.Now())
		st.Close()
		return nil, err
	}
	if err := writeRequest(st, op, req); err != nil {
		return fail(ctxErr(ctx, err))
	}
	if err := readResponse(st, out); err != nil {
		return fail(agentOrCtxErr(ctx, err))
	}
	if !stop() {
		return fail(ctx.Err())
	}
	return st, nil
}

// Stream is a live byte stream from the agent: a tail, an fd stream or a
// process output. Each Next returns one agent read. Streams end with io.EOF
// (a process exited and its output is drained, a non-regular fd read 0
// bytes); file tails never end by themselves. When the session ends, Next
// reports an error wrapping ErrClosed, which callers may treat as EOF.
//
// A Stream owns one goroutine that reads frames ahead (a few at most, the
// rest waits in the agent under yamux flow control); Close stops it.
type Stream struct {
	st     *yamux.Stream
	frames chan []byte
	done   chan struct{} // closed by Close
	ended  chan struct{} // closed when the reader goroutine returns

	err  error // why frames was closed; written before close(frames)
	once sync.Once
}

func newStream(st *yamux.Stream) *Stream {
	s := &Stream{st: st, frames: make(chan []byte, 8), done: make(chan struct{}), ended: make(chan struct{})}
	go s.read()
	return s
}

func (s *Stream) read() {
	defer close(s.ended)
	defer close(s.frames)
	for {
		ch, err := proto.ReadChunk(s.st)
		switch {
		case err != nil:
			s.err = fmt.Errorf("%w: %v", ErrClosed, err)
			return
		case ch.Err != nil:
			s.err = newError(ch.Err)
			return
		case ch.EOF:
			if len(ch.Data) > 0 && !s.send(ch.Data) {
				return
			}
			s.err = io.EOF
			return
		case len(ch.Data) > 0:
			if !s.send(ch.Data) {
				return
			}
		}
	}
}

func (s *Stream) send(b []byte) bool {
	select {
	case s.frames <- b:
		return true
	case <-s.done:
		return false
	}
}

// Next returns the next chunk of bytes. It returns ctx's error when ctx
// ends first (nothing is lost: the chunk is returned by a later Next),
// io.EOF at the end of the stream, ErrStreamClosed after Close.
func (s *Stream) Next(ctx context.Context) ([]byte, error) {
	select {
	case <-s.done:
		return nil, ErrStreamClosed
	default:
	}
	select {
	case b, ok := <-s.frames:
		if !ok {
			return nil, s.err
		}
		return b, nil
	case <-s.done:
		return nil, ErrStreamClosed
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// Close ends the stream (the agent stops producing it) and waits for its
// reader goroutine. It is idempotent.
func (s *Stream) Close() error {
	s.once.Do(func() {
		close(s.done)
		_ = s.st.SetReadDeadline(time.Now())
		s.st.Close()
	})
	<-s.ended
	return nil
}

// TailFile follows a guest file from start (proto.TailEnd,
// proto.TailBeginning, or proto.TailOffset with offset ≥ 0 absolute or < 0
// that many bytes before the current end, floored at 0). A missing file is
// an *Error (ENOENT). The stream never reaches EOF by itself.
func (c *Client) TailFile(ctx context.Context, path, start string, offset int64) (*Stream, error) {
	st, err := c.openLong(ctx, proto.OpTailFile, proto.TailFileReq{Path: path, Start: start, Offset: offset}, nil)
	if err != nil {
		return nil, err
	}
	return newStream(st), nil
}

// FdStream reads a kernel fd of the agent process (from a File, a syscall
// or an ioctl). A regular file is followed from its cursor like TailFile;
// anything else ends with io.EOF when a read returns 0 bytes.
func (c *Client) FdStream(ctx context.Context, fd int) (*Stream, error) {
	st, err := c.openLong(ctx, proto.OpFdStream, proto.FdStreamReq{Fd: fd}, nil)
	if err != nil {
		return nil, err
	}
	return newStream(st), nil
}

// TailStream follows the file from the handle's current cursor (the cursor
// itself does not move).
func (f *File) TailStream(ctx context.Context) (*Stream, error) {
	st, err := f.c.openLong(ctx, proto.OpFileTail, proto.HandleReq{Handle: f.handle}, nil)
	if err != nil {
		return nil, err
	}
	return newStream(st), nil
}
