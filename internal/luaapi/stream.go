package luaapi

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/provium/provium/internal/agentclient"
	"github.com/provium/provium/internal/guest"
	"github.com/provium/provium/internal/lab"
	"github.com/provium/provium/internal/lua"
	"github.com/provium/provium/internal/proto"
)

const (
	classTail = "Tail"

	streamNextDefault  = 10 * time.Second
	streamDrainDefault = 500 * time.Millisecond
	// streamPollWait is how long a non-blocking read (timeout 0) lets a
	// frame that already arrived reach the reader.
	streamPollWait = 2 * time.Millisecond

	errStreamEOF            = "stream EOF"
	errTailClosed           = "stream closed"
	errFmtStreamTimeout     = "%s timed out waiting for `%s`"
	errFmtTailStart         = "vm:tail_file: opts.start = `%s` (expected \"beginning\"|\"end\"|number)"
	errFmtFdStreamArg       = "vm:fd_stream expected fd or File, got %s"
	kindTailFile            = "tail_file"
	kindFileTailStream      = "file_tail_stream"
	kindFdStream            = "fd_stream"
	creationSiteTestSuffix  = ".test.lua"
	creationSiteFixtureSufx = ".fixture.lua"
)

// errTimedOut and errClosedStream are readFrame's "nothing came" outcomes.
var (
	errTimedOut     = errors.New("timed out")
	errClosedStream = errors.New("closed")
)

// frameSource is where a stream's bytes come from.
type frameSource interface {
	// read returns the next chunk: ctx's error when ctx ends first (nothing
	// is lost), io.EOF at the end, another error when the source failed.
	read(ctx context.Context) ([]byte, error)
	// poll returns a chunk that is already available, or errTimedOut.
	poll(ctx context.Context) ([]byte, error)
	// live is false once the source can deliver nothing more (its guest
	// session ended): the stream then reports EOF.
	live() bool
	// close releases the source; it unblocks a concurrent read.
	close()
}

// streamObj is a Tail or a ConsoleStream: a frame source plus the bytes
// read past the last match (pending). It is used from the Lua thread; Close
// may also come from a scope walk, so the state is guarded by mu, which is
// never held while reading.
type streamObj struct {
	api       *API
	vm        *lab.VM
	bridge    *lab.Bridge // captures: a snapshot of any member refuses
	class     string      // classTail, classConsoleStream or classCapture
	prefix    string      // method prefix of error sites: "tail", "console_stream"
	closedMsg string      // what read_until/expect raise once closed
	kind      string
	detail    string
	site      *lua.Frame
	src       frameSource

	mu      sync.Mutex
	pending []byte
	eof     bool // the source reported its end
	closed  bool
}

// newStream registers a stream with the current scope and pushes it.
func (a *API) newStream(L *lua.Thread, s *streamObj) {
	s.api = a
	s.site = creationSite(L)
	if a.streams == nil {
		a.streams = map[*streamObj]struct{}{}
	}
	a.streams[s] = struct{}{}
	a.scope().Register(lab.ResStream, s)
	L.PushObject(s, s.class)
}

// pushTail pushes a Tail over st (an agent stream of session s), registered
// with the current scope. kind and detail are those of 10-lua-api.md §6.3.
func (a *API) pushTail(L *lua.Thread, s *session, st *agentclient.Stream, kind, detail string) {
	a.newStream(L, &streamObj{
		vm:        s.vm,
		class:     classTail,
		prefix:    "tail",
		closedMsg: errTailClosed,
		kind:      kind,
		detail:    detail,
		src:       &tailSource{vm: s.vm, machine: s.machine, agent: s.agent, st: st},
	})
}

// creationSite is the first test or fixture file frame of the Lua stack.
func creationSite(L *lua.Thread) *lua.Frame {
	for _, f := range L.Stack() {
		if strings.HasSuffix(f.Source, creationSiteTestSuffix) || strings.HasSuffix(f.Source, creationSiteFixtureSufx) {
			f := f
			return &f
		}
	}
	return nil
}

// Close is idempotent: it drops pending bytes and releases the source.
func (s *streamObj) Close(context.Context) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	s.pending = nil
	s.mu.Unlock()
	delete(s.api.streams, s)
	s.src.close()
	return nil
}

func (s *streamObj) isClosed() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closed
}

// takePending returns and clears the pending bytes.
func (s *streamObj) takePending() []byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.pending
	s.pending = nil
	return p
}

func (s *streamObj) setPending(p []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.closed && len(p) > 0 {
		s.pending = p
	}
}

func (s *streamObj) ended() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.eof
}

func (s *streamObj) markEOF() {
	s.mu.Lock()
	s.eof = true
	s.mu.Unlock()
	s.src.close()
}

// atEOF is eof(): the end was reported (or the stream closed) and nothing
// is pending. A stream whose guest session is gone has ended: what it had
// already received becomes pending, then it reports EOF.
func (s *streamObj) atEOF(ctx context.Context) bool {
	if s.isClosed() {
		return true
	}
	if !s.ended() && !s.src.live() {
		if b, err := s.src.poll(ctx); err == nil {
			s.mu.Lock()
			s.pending = append(s.pending, b...)
			s.mu.Unlock()
			return false
		}
		s.markEOF()
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.eof && len(s.pending) == 0
}

// open is what open_stream_count counts: not closed, not ended, and its
// guest session (if any) is current.
func (s *streamObj) open() bool {
	if s.isClosed() || s.ended() || !s.src.live() {
		return false
	}
	if x, ok := s.src.(interface{ exhausted() bool }); ok && x.exhausted() {
		return false
	}
	return true
}

// readFrame reads one frame before ctx ends (poll: only one already
// there). It returns errTimedOut, io.EOF or errClosedStream when nothing
// came, and any other error (the test's own context ended) to raise.
func (s *streamObj) readFrame(parent, ctx context.Context, poll bool) ([]byte, error) {
	if s.isClosed() {
		return nil, errClosedStream
	}
	if s.ended() {
		return nil, io.EOF
	}
	var b []byte
	var err error
	if stale := !s.src.live(); poll || stale {
		// A stale source only delivers what it already received.
		b, err = s.src.poll(parent)
		if stale && errors.Is(err, errTimedOut) {
			err = io.EOF
		}
	} else {
		b, err = s.src.read(ctx)
	}
	switch {
	case err == nil:
		return b, nil
	case s.isClosed():
		return nil, errClosedStream
	case parent.Err() != nil:
		return nil, ctxErr(parent, parent.Err())
	case errors.Is(err, errTimedOut), errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
		return nil, errTimedOut
	}
	// io.EOF, the session's end, or a failed agent read: the stream ends.
	s.markEOF()
	return nil, io.EOF
}

// window is one call's time budget: poll for timeout 0, else a deadline.
type window struct {
	parent context.Context
	ctx    context.Context
	cancel context.CancelFunc
	poll   bool
}

func newWindow(parent context.Context, timeout time.Duration) *window {
	w := &window{parent: parent, poll: timeout == 0}
	if w.poll {
		w.ctx, w.cancel = parent, func() {}
	} else {
		w.ctx, w.cancel = context.WithTimeout(parent, timeout)
	}
	return w
}

func (w *window) read(s *streamObj) ([]byte, error) { return s.readFrame(w.parent, w.ctx, w.poll) }

// timeoutArg reads an optional duration argument (0 allowed).
func timeoutArg(L *lua.Thread, i int, site string, def time.Duration) (time.Duration, error) {
	if L.IsNoneOrNil(i) {
		return def, nil
	}
	return Duration(L, i, site)
}

func streamMethod(name string, body func(L *lua.Thread, s *streamObj, site string) (int, error)) lua.Function {
	return func(L *lua.Thread) (int, error) {
		s, err := self[*streamObj](L, "stream:"+name)
		if err != nil {
			return 0, err
		}
		return body(L, s, s.prefix+":"+name)
	}
}

func streamNext(L *lua.Thread, s *streamObj, site string) (int, error) {
	timeout, err := timeoutArg(L, 2, site, streamNextDefault)
	if err != nil {
		return 0, err
	}
	if s.isClosed() {
		L.PushNil()
		return 1, nil
	}
	if p := s.takePending(); len(p) > 0 {
		L.PushString(string(p))
		return 1, nil
	}
	w := newWindow(L.Context(), timeout)
	defer w.cancel()
	b, err := w.read(s)
	switch {
	case err == nil:
		L.PushString(string(b))
	case errors.Is(err, errTimedOut), errors.Is(err, io.EOF), errors.Is(err, errClosedStream):
		L.PushNil()
	default:
		return 0, err
	}
	return 1, nil
}

// readUntil reads through the first occurrence of pat; what follows it
// stays pending. On failure the bytes read so far go back to pending.
func readUntil(L *lua.Thread, s *streamObj, site, what string) ([]byte, error) {
	pat, ok := L.ToString(2)
	if !ok {
		return nil, fmt.Errorf("%s: pattern must be a string, got %s", site, L.TypeName(2))
	}
	timeout, err := timeoutArg(L, 3, site, streamNextDefault)
	if err != nil {
		return nil, err
	}
	if s.isClosed() {
		return nil, errors.New(s.closedMsg)
	}
	needle := []byte(pat)
	buf := s.takePending()
	from := 0 // buf[:from] holds no match start
	w := newWindow(L.Context(), timeout)
	defer w.cancel()
	for {
		if i := bytes.Index(buf[from:], needle); i >= 0 {
			end := from + i + len(needle)
			s.setPending(bytes.Clone(buf[end:]))
			return buf[:end], nil
		}
		if n := len(buf) - len(needle) + 1; n > from {
			from = n
		}
		b, err := w.read(s)
		if err == nil {
			buf = append(buf, b...)
			continue
		}
		s.setPending(buf)
		switch {
		case errors.Is(err, errTimedOut):
			return nil, fmt.Errorf(errFmtStreamTimeout, what, pat)
		case errors.Is(err, io.EOF):
			return nil, errors.New(errStreamEOF)
		case errors.Is(err, errClosedStream):
			return nil, errors.New(s.closedMsg)
		}
		return nil, err
	}
}

func streamDrain(L *lua.Thread, s *streamObj, site string) (int, error) {
	timeout, err := timeoutArg(L, 2, site, streamDrainDefault)
	if err != nil {
		return 0, err
	}
	var frames [][]byte
	if p := s.takePending(); len(p) > 0 {
		frames = append(frames, p)
	}
	w := newWindow(L.Context(), timeout)
	defer w.cancel()
	for {
		b, err := w.read(s)
		if err != nil {
			if errors.Is(err, errTimedOut) || errors.Is(err, io.EOF) || errors.Is(err, errClosedStream) {
				break
			}
			return 0, err
		}
		frames = append(frames, b)
	}
	L.NewTable(len(frames), 0)
	for i, f := range frames {
		L.PushString(string(f))
		L.RawSetI(-2, int64(i+1))
	}
	return 1, nil
}

func (a *API) streamClass(name string) lua.Class {
	return lua.Class{
		Name: name,
		Methods: map[string]lua.Function{
			"next": streamMethod("next", streamNext),
			"read_until": streamMethod("read_until", func(L *lua.Thread, s *streamObj, site string) (int, error) {
				b, err := readUntil(L, s, site, "read_until")
				if err != nil {
					return 0, err
				}
				L.PushString(string(b))
				return 1, nil
			}),
			"expect": streamMethod("expect", func(L *lua.Thread, s *streamObj, site string) (int, error) {
				_, err := readUntil(L, s, site, "expect")
				return 0, err
			}),
			"drain": streamMethod("drain", streamDrain),
			"close": streamMethod("close", func(L *lua.Thread, s *streamObj, _ string) (int, error) {
				return 0, s.Close(L.Context())
			}),
			"eof": streamMethod("eof", func(L *lua.Thread, s *streamObj, _ string) (int, error) {
				L.PushBoolean(s.atEOF(L.Context()))
				return 1, nil
			}),
			"creation_site": streamMethod("creation_site", func(L *lua.Thread, s *streamObj, _ string) (int, error) {
				if s.site == nil {
					L.PushNil()
					return 1, nil
				}
				L.NewTable(0, 2)
				L.PushString(s.site.Source)
				L.RawSetField(-2, "file")
				L.PushInteger(int64(s.site.Line))
				L.RawSetField(-2, "line")
				return 1, nil
			}),
			"kind": streamMethod("kind", func(L *lua.Thread, s *streamObj, _ string) (int, error) {
				L.PushString(s.kind)
				return 1, nil
			}),
			"detail": streamMethod("detail", func(L *lua.Thread, s *streamObj, _ string) (int, error) {
				L.PushString(s.detail)
				return 1, nil
			}),
		},
		Meta: map[string]lua.Function{
			"__eq": eq,
			"__tostring": streamMethod("tostring", func(L *lua.Thread, s *streamObj, _ string) (int, error) {
				state := "open"
				switch {
				case s.isClosed():
					state = "closed"
				case s.atEOF(L.Context()):
					state = "eof"
				}
				where := " vm=" + s.vm.Name()
				if strings.HasPrefix(s.detail, "vm=") {
					where = "" // the detail names it already
				}
				L.PushString(fmt.Sprintf("%s(%s %s%s %s)", s.prefix, s.kind, s.detail, where, state))
				return 1, nil
			}),
		},
	}
}

// openStreamCount counts the VM's open streams (Tails and ConsoleStreams).
func (a *API) openStreamCount(vm *lab.VM) int {
	n := 0
	for s := range a.streams {
		if s.vm == vm && s.open() {
			n++
		}
	}
	return n
}

// tailSource reads an agent stream of one guest session.
type tailSource struct {
	vm      *lab.VM
	machine *guest.Machine
	agent   *agentclient.Client
	st      *agentclient.Stream
}

func (t *tailSource) read(ctx context.Context) ([]byte, error) { return t.st.Next(ctx) }

func (t *tailSource) poll(ctx context.Context) ([]byte, error) {
	pctx, cancel := context.WithTimeout(ctx, streamPollWait)
	defer cancel()
	b, err := t.st.Next(pctx)
	if err != nil && ctx.Err() == nil && errors.Is(err, context.DeadlineExceeded) {
		return nil, errTimedOut
	}
	return b, err
}

func (t *tailSource) live() bool { return staleReason(t.vm, t.machine, t.agent) == "" }

func (t *tailSource) close() { _ = t.st.Close() }

// tailStart parses vm:tail_file's opts.start.
func tailStart(L *lua.Thread, i int) (string, int64, error) {
	if L.Type(i) != lua.TypeTable {
		if L.IsNoneOrNil(i) {
			return proto.TailEnd, 0, nil
		}
		return "", 0, fmt.Errorf("vm:tail_file: opts must be a table, got %s", L.TypeName(i))
	}
	defer L.Pop(1)
	switch L.RawGetField(i, "start") {
	case lua.TypeNil:
		return proto.TailEnd, 0, nil
	case lua.TypeString:
		v, _ := L.ToString(-1)
		switch v {
		case "end":
			return proto.TailEnd, 0, nil
		case "beginning", "start":
			return proto.TailBeginning, 0, nil
		}
		return "", 0, fmt.Errorf(errFmtTailStart, v)
	case lua.TypeNumber:
		if L.IsInteger(-1) {
			n, _ := L.ToInteger(-1)
			return proto.TailOffset, n, nil
		}
		f, _ := L.ToNumber(-1)
		if math.IsNaN(f) || math.IsInf(f, 0) || math.Abs(f) >= math.MaxInt64 {
			s, _ := L.ToStringMeta(-1)
			return "", 0, fmt.Errorf(errFmtTailStart, s)
		}
		return proto.TailOffset, int64(math.Trunc(f)), nil
	}
	s, _ := L.ToStringMeta(-1)
	return "", 0, fmt.Errorf(errFmtTailStart, s)
}

func (a *API) vmTailFile(L *lua.Thread) (int, error) {
	s, err := a.guestSession(L, "tail_file")
	if err != nil {
		return 0, err
	}
	path, err := pathArg(L, 2, "vm:tail_file")
	if err != nil {
		return 0, err
	}
	start, off, err := tailStart(L, 3)
	if err != nil {
		return 0, err
	}
	st, err := s.agent.TailFile(L.Context(), path, start, off)
	if err != nil {
		return 0, ctxErr(L.Context(), opError("tail_file", path, err))
	}
	a.pushTail(L, s, st, kindTailFile, strconv.Quote(path))
	return 1, nil
}

func (a *API) vmFdStream(L *lua.Thread) (int, error) {
	s, err := a.guestSession(L, "fd_stream")
	if err != nil {
		return 0, err
	}
	var fd int64
	switch L.Type(2) {
	case lua.TypeNumber:
		n, ok := L.ToInteger(2)
		if !ok || n <= 0 || n > math.MaxInt32 {
			v, _ := L.ToStringMeta(2)
			return 0, fmt.Errorf("vm:fd_stream: fd must be an integer > 0 (got %s)", v)
		}
		fd = n
	case lua.TypeUserdata:
		v, _, _ := L.ToObject(2)
		f, ok := v.(*fileObj)
		if !ok {
			return 0, fmt.Errorf(errFmtFdStreamArg, L.TypeName(2))
		}
		if f.closed {
			return 0, errors.New("vm:fd_stream: " + errFileClosed)
		}
		if err := f.live("fd_stream"); err != nil {
			return 0, err
		}
		fd = int64(f.f.Fd())
	default:
		return 0, fmt.Errorf(errFmtFdStreamArg, L.TypeName(2))
	}
	st, err := s.agent.FdStream(L.Context(), int(fd))
	if err != nil {
		return 0, ctxErr(L.Context(), opError("fd_stream", "", err))
	}
	a.pushTail(L, s, st, kindFdStream, strconv.FormatInt(fd, 10))
	return 1, nil
}

// fileTailStream is file:tail_stream(): a Tail from the handle's cursor.
func (a *API) fileTailStream(L *lua.Thread, f *fileObj) (int, error) {
	st, err := f.f.TailStream(L.Context())
	if err != nil {
		return 0, ctxErr(L.Context(), fileErr("tail_stream", err))
	}
	detail := strconv.Quote(f.path)
	if f.path == "" {
		detail = fmt.Sprintf("fd=%d", f.f.Fd())
	}
	a.pushTail(L, &session{vm: f.vm, machine: f.machine, agent: f.agent}, st, kindFileTailStream, detail)
	return 1, nil
}
