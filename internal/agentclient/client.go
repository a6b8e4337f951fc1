// Package agentclient is the host side of the host↔agent protocol: a yamux
// client session over the VM's agent channel with one typed method per
// guest operation.
package agentclient

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"time"

	"github.com/hashicorp/yamux"

	"github.com/provium/provium/internal/proto"
)

// ErrClosed is returned by calls on a client whose session has ended.
var ErrClosed = errors.New("the agent session ended (the guest agent exited or restarted, the guest rebooted or stopped; the console log tells which)")

// VersionError reports an agent speaking another protocol version.
type VersionError struct {
	Agent, Host  int
	AgentVersion string
}

func (e *VersionError) Error() string {
	return fmt.Sprintf("agent protocol version %d (agent %s) does not match host protocol version %d; rebuild the agent or the initrd cache",
		e.Agent, e.AgentVersion, e.Host)
}

// Client is one session with a guest agent. Methods are safe for concurrent
// use. Small ops share the call stream (one frame each way, concurrent calls
// told apart by ID); bulk and long-lived ops get a yamux stream each.
type Client struct {
	mux   *yamux.Session
	hello proto.Hello

	calls *yamux.Stream // the hello stream, kept as the call stream
	wmu   sync.Mutex    // one request frame at a time on calls

	mu      sync.Mutex
	nextID  uint64
	pending map[uint64]chan proto.Response
	done    chan struct{} // closed when the call stream's reader stops

	workerExe func(context.Context) ([]byte, error) // see SetWorkerExe
}

// SetWorkerExe gives the client the host's worker executor, which
// SpawnWorker hands to an agent whose image has none beside it.
func (c *Client) SetWorkerExe(f func(context.Context) ([]byte, error)) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.workerExe = f
}

// Dial starts a session over conn, exchanges Hello and checks the protocol
// version. conn is owned by the client from then on (closed by Close, or on
// failure here).
func Dial(ctx context.Context, conn io.ReadWriteCloser) (*Client, error) {
	conn, err := proto.DialSync(ctx, conn)
	if err != nil {
		return nil, fmt.Errorf("agentclient: %w", err)
	}
	mux, err := yamux.Client(proto.CoalesceFrames(conn), yamuxConfig())
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("agentclient: start session: %w", err)
	}
	c := &Client{mux: mux, pending: map[uint64]chan proto.Response{}, done: make(chan struct{})}
	h, err := c.handshake(ctx)
	if err != nil {
		mux.Close()
		return nil, fmt.Errorf("agentclient: hello: %w", err)
	}
	if h.Protocol != proto.ProtocolVersion {
		mux.Close()
		return nil, &VersionError{Agent: h.Protocol, Host: proto.ProtocolVersion, AgentVersion: h.AgentVersion}
	}
	c.hello = h
	go c.readCalls()
	return c, nil
}

// handshake sends the Hello on a new stream, which then becomes the call
// stream.
func (c *Client) handshake(ctx context.Context) (proto.Hello, error) {
	var h proto.Hello
	st, err := c.mux.OpenStream()
	if err != nil {
		return h, fmt.Errorf("open stream: %w", err)
	}
	stop := context.AfterFunc(ctx, func() { _ = st.SetReadDeadline(time.Now()) })
	defer stop()
	if err := writeRequest(st, proto.OpHello, proto.HelloReq{Protocol: proto.ProtocolVersion}); err != nil {
		return h, ctxErr(ctx, err)
	}
	if err := readResponse(st, &h); err != nil {
		return h, agentOrCtxErr(ctx, err)
	}
	if !stop() {
		return h, ctx.Err()
	}
	c.calls = st
	return h, nil
}

// readCalls delivers call-stream responses to their callers until the
// stream or session ends; then every pending and later call fails.
func (c *Client) readCalls() {
	defer func() {
		c.mu.Lock()
		close(c.done)
		c.pending = nil
		c.mu.Unlock()
	}()
	for {
		var resp proto.Response
		if err := proto.ReadFrame(c.calls, &resp); err != nil {
			return
		}
		c.mu.Lock()
		ch := c.pending[resp.ID]
		delete(c.pending, resp.ID)
		c.mu.Unlock()
		if ch != nil {
			ch <- resp // buffered: never blocks the reader
		}
	}
}

func (c *Client) sendCall(req proto.Request) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	return proto.WriteFrame(c.calls, req)
}

// call runs a one-request, one-response operation on the call stream.
func (c *Client) call(ctx context.Context, op string, req, out any) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	body, err := proto.Marshal(req)
	if err != nil {
		return err
	}
	ch := make(chan proto.Response, 1)
	c.mu.Lock()
	if c.pending == nil {
		c.mu.Unlock()
		return ErrClosed
	}
	c.nextID++
	id := c.nextID
	c.pending[id] = ch
	c.mu.Unlock()
	forget := func() {
		c.mu.Lock()
		if c.pending != nil {
			delete(c.pending, id)
		}
		c.mu.Unlock()
	}
	if err := c.sendCall(proto.Request{ID: id, Op: op, Body: body}); err != nil {
		forget()
		return ctxErr(ctx, err)
	}
	select {
	case resp := <-ch:
		return decodeResponse(resp, out)
	case <-ctx.Done():
		forget()
		// Best effort: the agent stops the op (kills its command); its
		// late reply finds no caller and is dropped.
		if b, err := proto.Marshal(proto.CancelReq{ID: id}); err == nil {
			_ = c.sendCall(proto.Request{Op: proto.OpCancel, Body: b})
		}
		return ctx.Err()
	case <-c.done:
		// The reader may have delivered just before stopping.
		select {
		case resp := <-ch:
			return decodeResponse(resp, out)
		default:
			return ErrClosed
		}
	}
}

// yamuxConfig mirrors the agent's: no keepalives (a paused VM is not a dead
// one) and a long write timeout for slow TCG guests.
func yamuxConfig() *yamux.Config {
	cfg := yamux.DefaultConfig()
	cfg.EnableKeepAlive = false
	cfg.ConnectionWriteTimeout = 60 * time.Second
	cfg.MaxStreamWindowSize = 1 << 20
	cfg.LogOutput = io.Discard
	return cfg
}

// Hello returns what the agent reported at Dial.
func (c *Client) Hello() proto.Hello { return c.hello }

// Close ends the session; the agent then drops every handle of it.
func (c *Client) Close() error { return c.mux.Close() }

// Detach asks the agent to end the session itself and go back to waiting
// for a new one, then closes the client (and conn). Use it before a
// snapshot: the saved guest is then idle on its channel, so both the
// resumed original and a restored copy accept a fresh Dial.
func (c *Client) Detach(ctx context.Context) error {
	defer c.mux.Close()
	s, err := c.open(ctx)
	if err != nil {
		return err
	}
	defer s.release()
	// The agent may answer and end the session before yamux reports the
	// request as sent, so the write can fail with "session shutdown" after
	// the fact; the reply (already buffered in the stream) is what counts.
	werr := writeRequest(s.st, proto.OpDetach, proto.Empty{})
	if rerr := readResponse(s.st, nil); rerr != nil {
		if werr != nil {
			return ctxErr(ctx, werr)
		}
		return agentOrCtxErr(ctx, rerr)
	}
	return nil
}

// Done is closed when the session ends for any reason.
func (c *Client) Done() <-chan struct{} { return c.mux.CloseChan() }

// stream is one operation's yamux stream, closed (and its watcher stopped)
// by release. Cancelling ctx closes the stream, which unblocks any read.
type stream struct {
	st   *yamux.Stream
	stop func() bool
}

func (c *Client) open(ctx context.Context) (*stream, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	st, err := c.mux.OpenStream()
	if err != nil {
		if errors.Is(err, yamux.ErrSessionShutdown) {
			return nil, ErrClosed
		}
		return nil, fmt.Errorf("agentclient: open stream: %w", err)
	}
	// yamux's Close is a half-close that does not wake a blocked Read, so a
	// cancelled call also expires the read deadline to return at once.
	stop := context.AfterFunc(ctx, func() {
		_ = st.SetReadDeadline(time.Now())
		st.Close()
	})
	return &stream{st: st, stop: stop}, nil
}

func (s *stream) release() {
	s.stop()
	s.st.Close()
}

// ctxErr prefers the context's error over the I/O error it caused.
func ctxErr(ctx context.Context, err error) error {
	if cerr := ctx.Err(); cerr != nil {
		return cerr
	}
	if errors.Is(err, yamux.ErrSessionShutdown) || errors.Is(err, yamux.ErrStreamClosed) || errors.Is(err, io.EOF) || errors.Is(err, net.ErrClosed) {
		return fmt.Errorf("%w: %v", ErrClosed, err)
	}
	return err
}

func writeRequest(w io.Writer, op string, body any) error {
	b, err := proto.Marshal(body)
	if err != nil {
		return err
	}
	return proto.WriteFrame(w, proto.Request{Op: op, Body: b})
}

// readResponse reads one Response and decodes its body into out (nil to
// ignore it). An agent-side failure comes back as *Error.
func readResponse(r io.Reader, out any) error {
	var resp proto.Response
	if err := proto.ReadFrame(r, &resp); err != nil {
		return err
	}
	return decodeResponse(resp, out)
}

func decodeResponse(resp proto.Response, out any) error {
	if resp.Err != nil {
		return newError(resp.Err)
	}
	if out == nil || len(resp.Body) == 0 {
		return nil
	}
	return proto.Unmarshal(resp.Body, out)
}
