package luaapi

import (
	"context"
	"io"
	"sync"
	"testing"
	"time"

	"github.com/provium/provium/internal/lab"
	"github.com/provium/provium/internal/lua"
)

// fakeSource delivers frames from a channel; closing eof ends it.
type fakeSource struct {
	frames chan []byte
	mu     sync.Mutex
	stale  bool
	closed bool
	end    bool
}

func (f *fakeSource) read(ctx context.Context) ([]byte, error) {
	select {
	case b := <-f.frames:
		return b, nil
	default:
	}
	f.mu.Lock()
	end := f.end
	f.mu.Unlock()
	if end {
		return nil, io.EOF
	}
	select {
	case b := <-f.frames:
		return b, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

func (f *fakeSource) poll(ctx context.Context) ([]byte, error) {
	select {
	case b := <-f.frames:
		return b, nil
	default:
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.end {
		return nil, io.EOF
	}
	return nil, errTimedOut
}

func (f *fakeSource) live() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return !f.stale
}

func (f *fakeSource) close() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.closed = true
}

// newFakeStream installs the API on a fresh Lua state and binds global `s`
// to a Tail over a fake source.
func newFakeStream(t *testing.T) (*lua.Thread, *API, *fakeSource, *lab.VM) {
	t.Helper()
	st, err := lua.NewState()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(st.Close)
	st.SetContext(context.Background())
	// Profile `linux` names its guest_os, as the default image's does.
	root := lab.NewRoot(lab.Env{Profiles: lab.StaticProfiles{"linux"}, GuestOS: func(string) string { return "linux" }})
	L := st.Main()
	a, err := Install(L, root)
	if err != nil {
		t.Fatal(err)
	}
	vm, err := root.NewVM("v", "linux", lab.BootOpts{})
	if err != nil {
		t.Fatal(err)
	}
	src := &fakeSource{frames: make(chan []byte, 16)}
	a.newStream(L, &streamObj{vm: vm, class: classTail, prefix: "tail", closedMsg: errTailClosed,
		kind: kindTailFile, detail: `"/x"`, src: src})
	L.SetGlobal("s")
	a.push(L, vm)
	L.SetGlobal("vm")
	return L, a, src, vm
}

func runLua(t *testing.T, L *lua.Thread, code string) {
	t.Helper()
	if err := L.DoString(code, "=unit"); err != nil {
		t.Fatal(err)
	}
}

func TestStreamPendingSemantics(t *testing.T) {
	L, _, src, _ := newFakeStream(t)
	src.frames <- []byte("hello wor")
	src.frames <- []byte("ld\nrest")
	runLua(t, L, `
		assert(s:read_until("world", 1) == "hello world")
		assert(s:next(0) == "\nrest")
		assert(s:next(0) == nil)
		assert(s:kind() == "tail_file" and s:detail() == '"/x"')
		assert(s:creation_site() == nil)
		assert(vm:open_stream_count() == 1)
		assert(s:eof() == false)
	`)
	src.frames <- []byte("abc")
	runLua(t, L, `
		local ok, e = pcall(s.read_until, s, "zzz", 0.05)
		assert(not ok and e == "read_until timed out waiting for `+"`zzz`"+`", e)
		ok, e = pcall(s.expect, s, "zzz", 0)
		assert(not ok and e == "expect timed out waiting for `+"`zzz`"+`", e)
		-- the bytes read so far went back to pending
		assert(s:next(0) == "abc")
	`)
	src.frames <- []byte("one")
	src.frames <- []byte("two")
	runLua(t, L, `
		local d = s:drain(0.05)
		assert(#d == 2 and d[1] == "one" and d[2] == "two", #d)
	`)
}

func TestStreamEOFAndClose(t *testing.T) {
	L, a, src, vm := newFakeStream(t)
	src.frames <- []byte("tail-end")
	src.mu.Lock()
	src.end = true
	src.mu.Unlock()
	runLua(t, L, `
		assert(s:read_until("tail", 1) == "tail")
		local ok, e = pcall(s.read_until, s, "never", 1)
		assert(not ok and e == "stream EOF", e)
		assert(s:eof() == false) -- "-end" is pending
		assert(s:next() == "-end")
		assert(s:eof() == true)
		assert(s:next() == nil)
		assert(vm:open_stream_count() == 0)
		s:close()
		s:close()
		ok, e = pcall(s.expect, s, "x")
		assert(not ok and e == "stream closed", e)
		assert(#s:drain() == 0)
	`)
	if len(a.streams) != 0 || !src.closed {
		t.Errorf("closed stream still tracked (%d) or source open (%v)", len(a.streams), src.closed)
	}
	_ = vm
}

func TestStreamStaleSourceEnds(t *testing.T) {
	L, _, src, _ := newFakeStream(t)
	src.frames <- []byte("buffered")
	src.mu.Lock()
	src.stale = true
	src.mu.Unlock()
	start := time.Now()
	runLua(t, L, `
		assert(vm:open_stream_count() == 0)
		assert(s:next() == "buffered")
		assert(s:next() == nil)
		assert(s:eof() == true)
	`)
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("a stale stream blocked for %v", d)
	}
}

func TestStreamScopeCloses(t *testing.T) {
	_, a, src, _ := newFakeStream(t)
	if errs := a.Root.Scope().Close(context.Background()); len(errs) != 0 {
		t.Fatal(errs)
	}
	if !src.closed || len(a.streams) != 0 {
		t.Error("the scope did not close the stream")
	}
}

func TestTimeControlled(t *testing.T) {
	_, a, _, vm := newFakeStream(t)
	if a.timeControlled(vm) {
		t.Fatal("a fresh VM is time-controlled")
	}
	a.markTimeControlled(vm)
	if !a.timeControlled(vm) {
		t.Fatal("markTimeControlled had no effect")
	}
	at := time.Unix(1700000000, 0)
	vm2, err := a.Root.NewVM("w", "linux", lab.BootOpts{InitialTime: &at})
	if err != nil {
		t.Fatal(err)
	}
	if !a.timeControlled(vm2) {
		t.Error("initial_time does not make the VM time-controlled")
	}
}
