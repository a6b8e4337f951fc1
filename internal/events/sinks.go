package events

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"syscall"
	"time"
)

// FileSink is --save-events: the file is truncated when opened, and each
// frame is one write(2), so a reader never sees half a frame unless the
// disk fills.
type FileSink struct {
	f *os.File
}

// OpenFile creates or truncates path.
func OpenFile(path string) (*FileSink, error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o644)
	if err != nil {
		return nil, err
	}
	return &FileSink{f: f}, nil
}

func (s *FileSink) Name() string { return "--save-events" }

func (s *FileSink) Write(frame []byte) error {
	_, err := s.f.Write(frame)
	return err
}

// Close closes the file.
func (s *FileSink) Close() error { return s.f.Close() }

// WriterSink is --events-stdout: frames on a writer (stdout). A broken
// pipe drops it like any other error.
type WriterSink struct {
	W    io.Writer
	Flag string // "--events-stdout"
}

func (s *WriterSink) Name() string { return s.Flag }

func (s *WriterSink) Write(frame []byte) error {
	_, err := s.W.Write(frame)
	if errors.Is(err, syscall.EPIPE) {
		return fmt.Errorf("the reader went away (broken pipe)")
	}
	return err
}

// Socket limits (C5).
const (
	ClientQueueFrames = 1024
	ClientWriteStall  = 100 * time.Millisecond
)

// SocketSink is --events-socket: a unix socket listener that fans every
// frame out to the clients connected at that moment, each through its own
// bounded queue and writer goroutine. A client whose queue is full or
// whose write is stuck longer than ClientWriteStall is dropped with a
// notice; the run never waits for a client. It lives as long as the
// session (across --watch iterations); Close unlinks the socket.
type SocketSink struct {
	path   string
	ln     *net.UnixListener
	notice func(string)

	mu      sync.Mutex
	clients map[*sockClient]struct{}
	closed  bool
	wg      sync.WaitGroup
}

type sockClient struct {
	conn  net.Conn
	queue chan []byte
	gone  chan struct{}
	once  sync.Once
}

// ListenSocket replaces a stale socket at path and listens (mode 0600).
// notice hears about dropped clients.
func ListenSocket(path string, notice func(string)) (*SocketSink, error) {
	if st, err := os.Lstat(path); err == nil {
		if st.Mode()&os.ModeSocket == 0 {
			return nil, fmt.Errorf("`%s` exists and is not a socket", path)
		}
		if c, err := net.DialTimeout("unix", path, 200*time.Millisecond); err == nil {
			c.Close()
			return nil, fmt.Errorf("`%s` is in use by another process", path)
		}
		if err := os.Remove(path); err != nil {
			return nil, fmt.Errorf("remove stale socket `%s`: %w", path, err)
		}
	}
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		return nil, err
	}
	ln.SetUnlinkOnClose(true)
	if err := os.Chmod(path, 0o600); err != nil {
		ln.Close()
		return nil, err
	}
	s := &SocketSink{path: path, ln: ln, notice: notice, clients: map[*sockClient]struct{}{}}
	s.wg.Add(1)
	go s.accept()
	return s, nil
}

func (s *SocketSink) Name() string { return "--events-socket" }

// Path is where the socket listens.
func (s *SocketSink) Path() string { return s.path }

func (s *SocketSink) accept() {
	defer s.wg.Done()
	for {
		conn, err := s.ln.Accept()
		if err != nil {
			return
		}
		c := &sockClient{conn: conn, queue: make(chan []byte, ClientQueueFrames), gone: make(chan struct{})}
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			conn.Close()
			return
		}
		s.clients[c] = struct{}{}
		s.wg.Add(1)
		s.mu.Unlock()
		go s.serve(c)
	}
}

// serve writes c's queue to its connection until it is dropped or closed.
func (s *SocketSink) serve(c *sockClient) {
	defer s.wg.Done()
	defer c.conn.Close()
	// Whatever a client sends is discarded; its half-close is not a
	// hang-up (a reader may shut its write side), a full one shows up as
	// a failed write.
	go func() { _, _ = io.Copy(io.Discard, c.conn) }()
	for {
		select {
		case <-c.gone:
			return
		case f := <-c.queue:
			if f == nil { // Close: everything queued before was written
				s.drop(c, "")
				return
			}
			_ = c.conn.SetWriteDeadline(time.Now().Add(ClientWriteStall))
			if _, err := c.conn.Write(f); err != nil {
				var ne net.Error
				if errors.As(err, &ne) && ne.Timeout() {
					s.drop(c, fmt.Sprintf("a write was stuck for more than %s", ClientWriteStall))
				} else {
					s.drop(c, "")
				}
				return
			}
		}
	}
}

// drop forgets c; a non-empty why is announced.
func (s *SocketSink) drop(c *sockClient, why string) {
	c.once.Do(func() {
		s.mu.Lock()
		delete(s.clients, c)
		s.mu.Unlock()
		close(c.gone)
		c.conn.Close()
		if why != "" && s.notice != nil {
			s.notice(fmt.Sprintf("provium --events-socket: dropped a slow client: %s", why))
		}
	})
}

// Write queues the frame for every client; it never blocks.
func (s *SocketSink) Write(frame []byte) error {
	s.mu.Lock()
	var full []*sockClient
	for c := range s.clients {
		cp := append([]byte(nil), frame...)
		select {
		case c.queue <- cp:
		default:
			full = append(full, c)
		}
	}
	s.mu.Unlock()
	for _, c := range full {
		s.drop(c, fmt.Sprintf("its queue of %d frames is full", ClientQueueFrames))
	}
	return nil
}

// Clients is how many clients are connected.
func (s *SocketSink) Clients() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.clients)
}

// Flush waits up to d for every client's queue to drain (the end of a
// run, so clients get the last frames before the socket closes).
func (s *SocketSink) Flush(d time.Duration) {
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		s.mu.Lock()
		pending := 0
		for c := range s.clients {
			pending += len(c.queue)
		}
		s.mu.Unlock()
		if pending == 0 {
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// Close stops listening, unlinks the socket and disconnects every client
// once its queue is written (at most a second).
func (s *SocketSink) Close() error {
	s.mu.Lock()
	s.closed = true
	clients := make([]*sockClient, 0, len(s.clients))
	for c := range s.clients {
		clients = append(clients, c)
	}
	s.mu.Unlock()
	err := s.ln.Close()
	for _, c := range clients {
		select {
		case c.queue <- nil:
		default:
			s.drop(c, "")
		}
	}
	done := make(chan struct{})
	go func() { s.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(time.Second):
		for _, c := range clients {
			s.drop(c, "")
		}
		<-done
	}
	return err
}
