package events

import (
	"bytes"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

func sockPath(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "pvev")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return filepath.Join(dir, "ev.sock")
}

func waitClients(t *testing.T, s *SocketSink, n int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for s.Clients() != n {
		if time.Now().After(deadline) {
			t.Fatalf("%d clients, want %d", s.Clients(), n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// A client sees the frames emitted after it connected, byte for byte as
// the file sink has them; one that never reads is dropped with a notice
// and never holds the emitter up.
func TestSocketFanOutAndSlowClient(t *testing.T) {
	path := sockPath(t)
	var mu sync.Mutex
	var notices []string
	s, err := ListenSocket(path, func(l string) { mu.Lock(); notices = append(notices, l); mu.Unlock() })
	if err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(path)
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("socket mode: %v %v", st.Mode(), err)
	}
	filePath := filepath.Join(t.TempDir(), "ev.bin")
	f, err := OpenFile(filePath)
	if err != nil {
		t.Fatal(err)
	}
	em := NewEmitter(nil, f, s)
	em.Emit(FixtureCacheHit{Path: "before-anyone-connected"})

	reader, err := net.Dial("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	stalled, err := net.Dial("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	defer stalled.Close()
	// A small receive buffer fills quickly, so the stalled client's writes
	// block and its queue fills.
	_ = stalled.(*net.UnixConn).SetReadBuffer(4096)
	waitClients(t, s, 2)

	var got bytes.Buffer
	readDone := make(chan error, 1)
	go func() { _, err := io.Copy(&got, reader); readDone <- err }()

	big := strings.Repeat("x", 1000)
	const n = 3000
	start := time.Now()
	for i := 0; i < n; i++ {
		em.Emit(FixtureBuildWaiting{Path: big, HeldByFile: "f"})
		if i%50 == 49 {
			// Pace the emitter so the reading client keeps up; the stalled
			// one cannot whatever the pace.
			s.Flush(100 * time.Millisecond)
		}
	}
	emitTime := time.Since(start)
	waitClients(t, s, 1)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := <-readDone; err != nil {
		t.Fatal(err)
	}
	f.Close()
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Errorf("socket not unlinked: %v", err)
	}

	all, err := os.ReadFile(filePath)
	if err != nil {
		t.Fatal(err)
	}
	first := all[:4+int(all[3])] // a small frame: its length fits the last byte
	// The file has everything; the reader everything after the first
	// frame (no replay), identically.
	if !bytes.Equal(got.Bytes(), all[len(first):]) {
		t.Fatalf("reader got %d bytes, file has %d after the first frame", got.Len(), len(all)-len(first))
	}
	mu.Lock()
	defer mu.Unlock()
	if len(notices) != 1 || !strings.Contains(notices[0], "dropped a slow client") {
		t.Fatalf("notices = %q", notices)
	}
	t.Logf("emitting %d frames with a stalled client took %s", n, emitTime)
}

func TestStaleSocketReplacedLiveRefused(t *testing.T) {
	path := sockPath(t)
	ln, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ListenSocket(path, nil); err == nil || !strings.Contains(err.Error(), "in use") {
		t.Fatalf("live socket: err = %v", err)
	}
	ln.(*net.UnixListener).SetUnlinkOnClose(false)
	ln.Close() // leaves a stale socket file
	s, err := ListenSocket(path, nil)
	if err != nil {
		t.Fatalf("stale socket not replaced: %v", err)
	}
	s.Close()
}

// The emitter's ts never decreases even when the clock steps back.
func TestEmitterClampsTS(t *testing.T) {
	var buf bytes.Buffer
	em := NewEmitter(nil, &WriterSink{W: &buf, Flag: "--events-stdout"})
	times := []int64{100, 50, 200}
	i := 0
	em.now = func() time.Time { t := time.Unix(0, times[i]); i++; return t }
	for range times {
		em.Emit(FixtureCacheHit{Path: "a"})
	}
	r := NewReader(&buf)
	var got []int64
	for {
		ev, err := r.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, ev.TS)
	}
	if len(got) != 3 || got[0] != 100 || got[1] != 100 || got[2] != 200 {
		t.Fatalf("ts = %v", got)
	}
}

type failingSink struct{ n int }

func (f *failingSink) Name() string { return "--save-events" }
func (f *failingSink) Write([]byte) error {
	f.n++
	return io.ErrShortWrite
}

// A failing sink warns once and is dropped; the others go on.
func TestFailingSinkDroppedOnce(t *testing.T) {
	var warns []string
	bad := &failingSink{}
	var buf bytes.Buffer
	em := NewEmitter(func(s string) { warns = append(warns, s) }, bad, &WriterSink{W: &buf, Flag: "x"})
	for i := 0; i < 3; i++ {
		em.Emit(FixtureCacheHit{Path: "a"})
	}
	if bad.n != 1 || len(warns) != 1 || !strings.Contains(warns[0], "--save-events") {
		t.Fatalf("writes %d, warnings %q", bad.n, warns)
	}
	r := NewReader(&buf)
	n := 0
	for {
		if _, err := r.Next(); err != nil {
			break
		}
		n++
	}
	if n != 3 {
		t.Fatalf("other sink got %d frames", n)
	}
}

func TestReaderLimits(t *testing.T) {
	if _, err := NewReader(bytes.NewReader([]byte{0x08, 0, 0, 1})).Next(); err == nil || !strings.Contains(err.Error(), "frame too large") {
		t.Fatalf("oversized: %v", err)
	}
	frame, _ := Encode(1, FixtureCacheHit{Path: "a"})
	if _, err := NewReader(bytes.NewReader(frame[:len(frame)-2])).Next(); err != ErrTornFrame {
		t.Fatalf("torn: %v", err)
	}
}
